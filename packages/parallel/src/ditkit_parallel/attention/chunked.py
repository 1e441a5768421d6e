"""Ulysses in head chunks: each chunk's all-to-alls overlap another chunk's attention.

Plain Ulysses sends Q, K and V (all heads) before any attention can start and O (all heads)
after all of it ends: four all-to-alls per attention that nothing hides. With ``C`` chunks,
every rank's heads are cut in ``C`` equal groups; all chunks' Q/K/V all-to-alls are issued at
once, then chunk ``c`` is attended while the later chunks are still in flight, and chunk
``c``'s O all-to-all runs while chunk ``c + 1`` is attended. What stays unhidden is about one
chunk's Q/K/V exchange and one chunk's O exchange: ``1/C`` of the plain path's.

Chunk ``c`` of the ``(B, S_r, H, D)`` input takes the ``c``-th group of every destination
rank's heads, so the plain sequence-to-heads all-to-all of that ``(B, S_r, U*h, D)`` slice
delivers each rank exactly its own heads of that chunk; the outputs are interleaved back into
the original head order. Used when ``H`` divides by ``U * C`` (else the plain path runs); the
result equals plain Ulysses up to floating-point summation order within a head (none: each
head's attention is the same computation).

Example (what :func:`chunk_heads` selects: 8 heads, 2 ranks, 2 chunks)::

    >>> import torch
    >>> x = torch.arange(8.0).view(1, 1, 8, 1)
    >>> chunk_heads(x, ranks=2, chunks=2, index=1).flatten().tolist()
    [2.0, 3.0, 6.0, 7.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..comm import all_to_all_heads_to_seq, all_to_all_seq_to_heads, wait
from ..mesh import CPMesh
from .fp8 import fp8_all_to_all_heads_to_seq, fp8_all_to_all_seq_to_heads

__all__ = ["can_chunk", "chunk_heads", "chunked_head_shards"]


def can_chunk(n_heads: int, kv_heads: int, ranks: int, chunks: int) -> bool:
    """Whether ``n_heads`` query and ``kv_heads`` key/value heads split into equal chunks."""
    return chunks > 1 and n_heads == kv_heads and n_heads % (ranks * chunks) == 0


def chunk_heads(x: torch.Tensor, ranks: int, chunks: int, index: int) -> torch.Tensor:
    """``(B, S, H, D)`` -> ``(B, S, ranks * H / (ranks * chunks), D)``: group ``index`` of every
    rank's heads, in rank order."""
    per_chunk = x.shape[2] // (ranks * chunks)
    return x.unflatten(2, (ranks, chunks, per_chunk))[:, :, :, index].flatten(2, 3)


def chunked_head_shards(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_mask: torch.Tensor | None,
    attend: Callable[..., torch.Tensor],
    *,
    mesh: CPMesh,
    q_lens: Sequence[int],
    kv_lens: Sequence[int],
) -> torch.Tensor:
    """The chunked form of :func:`~.ulysses.around_head_shards` (same arguments and result);
    ``key_mask`` is this rank's key-padding mask, gathered once for all chunks."""
    from .ulysses import UlyssesShards, gather_key_mask  # (ulysses imports this module)

    group, rank, ranks = mesh.ulysses_group, mesh.ulysses_rank, mesh.ulysses_size
    assert group is not None
    chunks = mesh.head_chunks
    to_heads = fp8_all_to_all_seq_to_heads if mesh.float8 else all_to_all_seq_to_heads
    back = fp8_all_to_all_heads_to_seq if mesh.float8 else all_to_all_heads_to_seq
    in_flight = []
    for c in range(chunks):  # every chunk's exchange starts before any attention
        v = to_heads(chunk_heads(value, ranks, chunks, c), kv_lens, rank, group)
        q = to_heads(chunk_heads(query, ranks, chunks, c), q_lens, rank, group)
        k = all_to_all_seq_to_heads(chunk_heads(key, ranks, chunks, c), kv_lens, rank, group)
        in_flight.append((q, k, v))
    mask = None if key_mask is None else wait(gather_key_mask(key_mask, kv_lens, group))
    heads_per_chunk = query.shape[2] // chunks
    outputs = []
    for q, k, v in in_flight:
        out = attend(UlyssesShards(wait(q), wait(k), wait(v), mask))
        outputs.append(back(out, q_lens, heads_per_chunk, rank, group))  # overlaps the next
    pieces = [wait(o).unflatten(2, (ranks, heads_per_chunk // ranks)) for o in outputs]
    return torch.stack(pieces, dim=3).flatten(2, 4)
