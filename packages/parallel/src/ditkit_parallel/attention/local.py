"""Attention on one rank's pieces: plain SDPA, or (output, log-sum-exp) for merging.

Inputs are in diffusers' layout ``(B, S, H, D)``; ``key_mask`` is a key-padding mask of shape
``(B or 1, S_k)``, bool (True = attend) or float (added to the scores), or None.

- :func:`sdpa`: ``torch.nn.functional.scaled_dot_product_attention``; what Ulysses without
  Ring uses (no LSE needed, the fastest kernel torch picks).
- :func:`attention_with_lse`: ``(out, lse)`` with ``lse[b, s, h] = log sum_j exp(score)``, what
  Ring merges. On CUDA in fp16/bf16 it calls the flash kernel (no mask) or the memory-efficient
  kernel (``compute_log_sumexp=True``), which both return the LSE; otherwise (CPU, float32,
  shapes the kernels refuse) a float32 math path, chunked over queries to bound memory.

Example:
    >>> q = k = v = torch.randn(1, 5, 2, 8)
    >>> out, lse = attention_with_lse(q, k, v)
    >>> torch.allclose(out, sdpa(q, k, v), atol=1e-6), tuple(lse.shape)
    (True, (1, 5, 2))
"""

from __future__ import annotations

import math

import torch
from torch.nn.functional import scaled_dot_product_attention

__all__ = ["attention_with_lse", "math_attention_with_lse", "sdpa"]

_SCORE_BUDGET = 1 << 26  # float32 score elements per query chunk of the math path (256 MiB)


def _bhsd(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(1, 2)


def _mask4d(key_mask: torch.Tensor | None) -> torch.Tensor | None:
    return None if key_mask is None else key_mask[:, None, None, :]


def sdpa(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_mask: torch.Tensor | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """``(B, Sq, H, D)`` attention output of torch's SDPA (any kernel it picks)."""
    out = scaled_dot_product_attention(
        _bhsd(query), _bhsd(key), _bhsd(value), attn_mask=_mask4d(key_mask), scale=scale
    )
    return _bhsd(out)


def math_attention_with_lse(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_mask: torch.Tensor | None = None,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 ``(out (B, Sq, H, D), lse (B, Sq, H))``; rows with no visible key give 0, -inf."""
    batch, sq, heads, dim = query.shape
    sk = key.shape[1]
    scale = 1.0 / math.sqrt(dim) if scale is None else scale
    k = _bhsd(key).float()
    v = _bhsd(value).float()
    mask = _mask4d(key_mask)
    chunk = max(1, _SCORE_BUDGET // max(1, batch * heads * sk))
    outs, lses = [], []
    for start in range(0, sq, chunk):
        q = _bhsd(query[:, start : start + chunk]).float()
        scores = torch.matmul(q, k.transpose(-1, -2)) * scale
        if mask is not None:
            if mask.dtype == torch.bool:
                scores = scores.masked_fill(~mask, float("-inf"))
            else:
                scores = scores + mask.float()
        lse = torch.logsumexp(scores, dim=-1)
        finite = torch.where(torch.isinf(lse), torch.zeros_like(lse), lse)
        probs = torch.exp(scores - finite.unsqueeze(-1))
        outs.append(torch.matmul(probs, v))
        lses.append(lse)
    out = torch.cat(outs, dim=2) if outs else query.new_zeros(batch, heads, 0, dim).float()
    lse = torch.cat(lses, dim=2) if lses else query.new_zeros(batch, heads, 0).float()
    return _bhsd(out), lse.transpose(1, 2)


def _fused_ok(query: torch.Tensor) -> bool:
    return (
        query.is_cuda
        and query.dtype in (torch.float16, torch.bfloat16)
        and query.shape[-1] % 8 == 0
        and query.shape[-1] <= 256
    )


def _flash_with_lse(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    res = torch.ops.aten._scaled_dot_product_flash_attention(
        _bhsd(query), _bhsd(key), _bhsd(value), 0.0, False, False, scale=scale
    )
    return _bhsd(res[0]), res[1].transpose(1, 2)


def _efficient_with_lse(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_mask: torch.Tensor | None,
    scale: float | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    batch, sq, heads, _ = query.shape
    sk = key.shape[1]
    bias = None
    if key_mask is not None:
        # the kernel wants the bias' last dim 16-aligned in memory: allocate wider, slice
        aligned = (sk + 15) // 16 * 16
        bias = query.new_zeros(key_mask.shape[0], 1, 1, aligned)[..., :sk]
        if key_mask.dtype == torch.bool:
            bias.masked_fill_(~key_mask[:, None, None, :], float("-inf"))
        else:
            bias.copy_(key_mask[:, None, None, :].to(query.dtype))
        bias = bias.expand(batch, heads, sq, sk)
    res = torch.ops.aten._scaled_dot_product_efficient_attention(
        _bhsd(query), _bhsd(key), _bhsd(value), bias, True, 0.0, False, scale=scale
    )
    out, lse = _bhsd(res[0]), res[1][:, :, :sq].transpose(1, 2)
    if key_mask is not None:
        # the kernel reports lse = 0 for a batch row whose keys are all masked: make it -inf
        visible = key_mask if key_mask.dtype == torch.bool else key_mask > float("-inf")
        hidden = ~visible.any(dim=-1)  # (B or 1,)
        lse = lse.masked_fill(hidden[:, None, None], float("-inf"))
        out = out.masked_fill(hidden[:, None, None, None], 0.0)
    return out, lse


def attention_with_lse(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_mask: torch.Tensor | None = None,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(out (B, Sq, H, D), lse (B, Sq, H) float32)`` by the fastest path that returns the LSE.

    ``out`` is float32 from the math path and ``query.dtype`` from the fused CUDA kernels.
    """
    if _fused_ok(query) and key.shape[1] > 0:
        try:
            if key_mask is None:
                return _flash_with_lse(query, key, value, scale)
            return _efficient_with_lse(query, key, value, key_mask, scale)
        except RuntimeError:  # a shape/arch the kernels refuse: the math path always works
            pass
    return math_attention_with_lse(query, key, value, key_mask, scale)
