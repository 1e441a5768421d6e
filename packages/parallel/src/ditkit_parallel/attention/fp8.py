r"""Float8 rows for the Ulysses all-to-all, and the error bound they imply for attention.

Quantization. Each row ``x`` (one token of one head, ``D`` values) with absmax ``a`` gets the
float32 scale ``s = a / 448`` (448 is float8_e4m3fn's largest finite value; ``s = 1`` for a zero
row), the values ``y = x / s`` (``|y| <= 448``) are rounded to float8_e4m3fn and sent with the
scale's four bytes appended: a ``(..., D + 4)`` uint8 row, about half the bytes of bf16 for
``D = 128``. The receiver computes ``x_hat = fl8(y) * s``. K is never quantized (the scores
are most sensitive to it), nor is the LSE.

Rounding error of one element. e4m3fn has 3 mantissa bits: in the binade ``[2^e, 2^(e+1))``
(normal numbers, ``e >= -6``) the spacing is ``2^(e-3)``, so round-to-nearest is off by at most
``2^(e-4) <= 2^-4 |y|``; below ``2^-6`` (subnormals, spacing ``2^-9``) by at most ``2^-10``.
Scaling back by ``s`` and the float32 divide/multiply (relative ``2^-24`` each) give::

    |x_hat - x| <= beta(x) := 2^-4 |x| + a * eta,    eta = 2^-10 / 448 + 2^-22

so a row never errs by more than ``2^-4 a (1 + 16 eta)``: 6.25% of its absmax, and an element
is off by at most 6.25% of itself unless it is tiny next to its row's absmax.

Effect on attention. For query ``i`` and key ``j`` of one head, logits
``z_ij = c <q_i, k_j>`` (``c`` the softmax scale), ``p = softmax_j(z)``, ``o_i = sum_j p_ij v_j``.

1. Q error: ``|dz_ij| <= delta_ij := c sum_d beta(q_id) |k_jd|``; with
   ``delta_i = max_j delta_ij`` every probability moves by a factor in
   ``[exp(-2 delta_i), exp(2 delta_i)]``, so ``|p_hat_ij - p_ij| <= (exp(2 delta_i) - 1) p_ij``.
2. V error: ``|v_hat_jd - v_jd| <= beta(v_jd)``.
3. ``o_hat - o = sum_j p_hat_ij (v_hat_jd - v_jd) + sum_j (p_hat_ij - p_ij) v_jd``, hence::

       |o_hat_id - o_id| <= eps_id := exp(2 delta_i) sum_j p_ij beta(v_jd)
                                      + (exp(2 delta_i) - 1) sum_j p_ij |v_jd|

4. O is quantized per row for the way back: ``|O_hat_id - o_hat_id| <= beta(o_hat_id)`` with
   ``|o_hat_id| <= |o_id| + eps_id``; the total is::

       |O_hat_id - o_id| <= eps_id + 2^-4 (|o_id| + eps_id) + max_d(|o_id| + eps_id) * eta

:func:`attention_error_bound` evaluates exactly this (in float64) from the unquantized inputs;
the tests check the measured error of the FP8 Ulysses attention against it. It is a worst case
(every rounding error aligned); measured errors are typically 10-50x smaller.

Example:
    >>> x = torch.tensor([[1.0, -0.3, 0.0, 448.0]])
    >>> packed = quantize_rows(x)
    >>> packed.dtype, tuple(packed.shape)
    (torch.uint8, (1, 8))
    >>> bool(((dequantize_rows(packed, torch.float32) - x).abs() <= 2**-4 * x.abs() + 1e-6).all())
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.distributed import ProcessGroup

from ..comm import all_to_all_heads_to_seq, all_to_all_seq_to_heads, wait

__all__ = [
    "E4M3_MAX",
    "ETA",
    "attention_error_bound",
    "dequantize_rows",
    "element_error_bound",
    "fp8_all_to_all_heads_to_seq",
    "fp8_all_to_all_seq_to_heads",
    "quantize_rows",
]

E4M3_MAX = 448.0
UNIT = 2.0**-4  # half the relative spacing of e4m3 (3 mantissa bits)
ETA = 2.0**-10 / E4M3_MAX + 2.0**-22  # subnormal floor (relative to the absmax) + fp32 slack
_SCALE_BYTES = 4


def quantize_rows(x: torch.Tensor) -> torch.Tensor:
    """``(..., D)`` -> ``(..., D + 4)`` uint8: float8_e4m3fn values then the float32 scale."""
    xf = x.float()
    amax = xf.abs().amax(dim=-1, keepdim=True)
    scale = torch.where(amax > 0, amax / E4M3_MAX, torch.ones_like(amax))
    values = (xf / scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    # the scale's bytes from a view with a unit last stride: inductor refuses a dtype view of
    # a (..., 1) tensor whose size-1 last dim carries another stride (seen on 2xH200)
    rows = scale.shape[:-1]
    scale_bytes = scale.reshape(rows).contiguous().view(torch.uint8).reshape(*rows, _SCALE_BYTES)
    return torch.cat([values.view(torch.uint8), scale_bytes], dim=-1)


def dequantize_rows(packed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Inverse of :func:`quantize_rows`: ``(..., D + 4)`` uint8 -> ``(..., D)`` of ``dtype``."""
    dim = packed.shape[-1] - _SCALE_BYTES
    values = packed[..., :dim].contiguous().view(torch.float8_e4m3fn).float()
    scale = packed[..., dim:].contiguous().view(torch.float32)
    return (values * scale).to(dtype)


def fp8_all_to_all_seq_to_heads(
    x: torch.Tensor, seq_lens: Sequence[int], rank: int, group: ProcessGroup
) -> torch.Tensor:
    """:func:`~ditkit_parallel.comm.all_to_all_seq_to_heads` with float8 rows on the wire."""
    recv = all_to_all_seq_to_heads(quantize_rows(x), seq_lens, rank, group)
    return dequantize_rows(wait(recv), x.dtype)


def fp8_all_to_all_heads_to_seq(
    y: torch.Tensor, seq_lens: Sequence[int], n_heads: int, rank: int, group: ProcessGroup
) -> torch.Tensor:
    """:func:`~ditkit_parallel.comm.all_to_all_heads_to_seq` with float8 rows on the wire."""
    recv = all_to_all_heads_to_seq(quantize_rows(y), seq_lens, n_heads, rank, group)
    return dequantize_rows(wait(recv), y.dtype)


def element_error_bound(x: torch.Tensor) -> torch.Tensor:
    """``beta(x)``: the largest ``|dequantize(quantize(x)) - x|`` per element (same shape)."""
    x = x.double()
    amax = x.abs().amax(dim=-1, keepdim=True)
    return UNIT * x.abs() + amax * ETA


def attention_error_bound(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_mask: torch.Tensor | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """The module docstring's bound on ``|O_fp8 - O|`` per output element, ``(B, Sq, H, D)``.

    Args:
        query, key, value: the full, unquantized ``(B, S, H, D)`` inputs.
        key_mask: bool key-padding mask ``(B or 1, Sk)`` (True = attend), or None.
        scale: softmax scale (default ``1 / sqrt(D)``).
    """
    c = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    q, k, v = (t.double().transpose(1, 2) for t in (query, key, value))  # (B, H, S, D)
    scores = c * q @ k.transpose(-1, -2)
    delta = c * element_error_bound(q) @ k.abs().transpose(-1, -2)  # (B, H, Sq, Sk)
    if key_mask is not None:
        visible = key_mask[:, None, None, :].bool()
        scores = scores.masked_fill(~visible, float("-inf"))
        delta = delta.masked_fill(~visible, 0.0)
    probs = torch.softmax(scores, dim=-1)
    grow = torch.exp(2 * delta.amax(dim=-1, keepdim=True))  # exp(2 delta_i), (B, H, Sq, 1)
    eps = grow * (probs @ element_error_bound(v)) + (grow - 1) * (probs @ v.abs())
    out = (probs @ v).abs()
    total = eps + UNIT * (out + eps) + (out + eps).amax(dim=-1, keepdim=True) * ETA
    return total.transpose(1, 2)
