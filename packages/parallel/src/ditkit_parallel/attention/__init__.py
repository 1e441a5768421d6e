"""Context-parallel attention: one entry point, dispatched by the mesh.

:func:`context_parallel_attention` takes this rank's ``(B, S_local, H, D)`` Q, K, V (diffusers'
``dispatch_attention_fn`` layout) and returns this rank's queries' outputs, ``(B, S_local, H,
D)``, computed against the keys of every rank of the context-parallel group:

- ``cp_size == 1``: plain SDPA;
- Ulysses only: :func:`~ditkit_parallel.attention.ulysses.ulysses_attention`;
- Ring only: :func:`~ditkit_parallel.attention.ring.ring_attention`;
- both: :func:`~ditkit_parallel.attention.usp.usp_attention`.

Local lengths may differ by rank and heads need not divide the group, in every mode. Every
rank's lengths come from ``mesh.seq_lens`` (one all-gather per new local shape, then cached).
K/V with fewer heads than Q (GQA) are repeated to Q's head count first.

Masks: key-padding only, bool (True = attend) or float (added to the scores), of shape
``(B or 1, S_kv_local)`` or ``(B or 1, 1, 1, S_kv_local)``, describing this rank's keys.

Example:
    >>> from ditkit_parallel.mesh import CPMesh
    >>> q = torch.randn(2, 6, 4, 8)
    >>> out = context_parallel_attention(q, q, q, mesh=CPMesh.single())
    >>> tuple(out.shape)
    (2, 6, 4, 8)
"""

from __future__ import annotations

from collections.abc import Hashable

import torch

from ..mesh import CPMesh
from .local import attention_with_lse, sdpa
from .ring import merge_partials, ring_attention
from .ulysses import ulysses_attention
from .usp import usp_attention

__all__ = [
    "attention_with_lse",
    "context_parallel_attention",
    "key_padding_mask",
    "merge_partials",
    "ring_attention",
    "sdpa",
    "ulysses_attention",
    "usp_attention",
]

_MASK_FORMS = "(B, S_kv_local) or (B, 1, 1, S_kv_local) (B may be 1), bool or float"


def key_padding_mask(
    attn_mask: torch.Tensor | None, batch: int, kv_len: int
) -> torch.Tensor | None:
    """``attn_mask`` as a ``(B or 1, kv_len)`` key-padding mask.

    Raises:
        NotImplementedError: any other mask shape (per-query masks do not split by key shard).
    """
    if attn_mask is None:
        return None
    shape = tuple(attn_mask.shape)
    if attn_mask.dim() == 4 and shape[1:3] == (1, 1):
        attn_mask = attn_mask[:, 0, 0, :]
    elif attn_mask.dim() == 3 and shape[1] == 1:
        attn_mask = attn_mask[:, 0, :]
    if attn_mask.dim() != 2 or attn_mask.shape[0] not in (1, batch) or attn_mask.shape[1] != kv_len:
        raise NotImplementedError(
            f"context-parallel attention supports key-padding masks {_MASK_FORMS}; got a mask "
            f"of shape {shape} for batch {batch} and {kv_len} local keys"
        )
    return attn_mask


def context_parallel_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    *,
    mesh: CPMesh,
    seq_key: Hashable | None = None,
) -> torch.Tensor:
    """Attention of this rank's queries over the keys of the whole context-parallel group.

    Args:
        query: ``(B, Sq_local, H, D)``.
        key, value: ``(B, Skv_local, H_kv, D)``; ``H`` must be a multiple of ``H_kv``.
        attn_mask: key-padding mask of this rank's keys (see the module docstring), or None.
        dropout_p: must be 0 (inference).
        is_causal: must be False under context parallelism (DiTs attend bidirectionally).
        scale: softmax scale (default ``1 / sqrt(D)``).
        mesh: this rank's :class:`~ditkit_parallel.mesh.CPMesh`.
        seq_key: optional key of the length table, equal on all ranks, naming the call site
            and the global shapes (or reset ``mesh.seq_lens`` when those change): repeated
            calls then exchange nothing (see :class:`~ditkit_parallel.mesh.SeqLenTable`).

    Returns:
        ``(B, Sq_local, H, D)`` in ``query.dtype``.
    """
    if dropout_p:
        raise ValueError(f"context_parallel_attention: dropout_p={dropout_p}; use 0 at inference")
    if query.dim() != 4 or key.dim() != 4 or value.dim() != 4:
        raise ValueError(
            "context_parallel_attention expects (B, S, H, D) query/key/value, got shapes "
            f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
        )
    if mesh.cp_size == 1:
        return torch.nn.functional.scaled_dot_product_attention(
            query.transpose(1, 2),
            key.transpose(1, 2),
            value.transpose(1, 2),
            attn_mask=attn_mask,
            is_causal=is_causal,
            scale=scale,
            enable_gqa=key.shape[2] != query.shape[2],
        ).transpose(1, 2)
    if is_causal:
        raise NotImplementedError(
            "context_parallel_attention: is_causal=True is not supported under context "
            "parallelism (DiTs attend bidirectionally); pass is_causal=False"
        )
    heads, kv_heads = query.shape[2], key.shape[2]
    if kv_heads != heads:
        if heads % kv_heads:
            raise ValueError(f"query heads ({heads}) must be a multiple of key heads ({kv_heads})")
        key = key.repeat_interleave(heads // kv_heads, dim=2)
        value = value.repeat_interleave(heads // kv_heads, dim=2)
    key_mask = key_padding_mask(attn_mask, query.shape[0], key.shape[1])
    group = mesh.length_group
    assert group is not None
    q_lens, kv_lens = mesh.seq_lens.lengths(query.shape[1], key.shape[1], group, seq_key)
    if mesh.ring_size == 1:
        return ulysses_attention(
            query, key, value, key_mask, scale, mesh=mesh, q_lens=q_lens, kv_lens=kv_lens
        )
    if mesh.ulysses_size == 1:
        assert mesh.ring_group is not None
        return ring_attention(
            query,
            key,
            value,
            key_mask,
            scale,
            group=mesh.ring_group,
            rank=mesh.ring_rank,
            size=mesh.ring_size,
            kv_lens=kv_lens,
            method=mesh.ring_rotate_method,
            convert_to_fp32=mesh.ring_convert_to_fp32,
        )
    return usp_attention(
        query, key, value, key_mask, scale, mesh=mesh, q_lens=q_lens, kv_lens=kv_lens
    )
