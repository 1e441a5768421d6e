"""USP (unified sequence parallelism): Ulysses inside, Ring across.

The ``cp_size = U * R`` ranks form a ``(ring, ulysses)`` grid (cp rank ``r`` sits at
``(r // U, r % U)``). Attention of one rank:

1. Ulysses all-to-all inside its row: ``(B, S_r, H, D)`` -> the row's whole sequence for
   ``H_u`` heads (``head_split_sizes(H, U)[u]``; uneven heads and lengths allowed).
2. Ring attention across its column: the ranks of a column hold the same heads and the
   sequences of different rows; K/V of a row (length = sum of the row's local K/V lengths)
   rotate around the column and partials merge by LSE.
3. Ulysses all-to-all back inside the row.

Uneven lengths work here too (the row totals come from the cached length table): unlike
cache-dit, ``ulysses_anything`` needs no special case with a ring.

Example (the row and column lengths a 2 x 2 grid derives from per-rank lengths)::

    q_lens = (3, 3, 2, 2)              # cp ranks 0..3
    row_lengths(q_lens, ulysses=2, ring_rank=1) == (2, 2)
    ring_lengths(q_lens, ulysses=2) == (6, 4)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..mesh import CPMesh
from .ring import ring_attention
from .ulysses import UlyssesShards, around_head_shards

__all__ = ["ring_lengths", "row_lengths", "usp_attention"]


def row_lengths(lens: Sequence[int], ulysses: int, ring_rank: int) -> tuple[int, ...]:
    """The local lengths of the Ulysses group (grid row) ``ring_rank``."""
    return tuple(lens[ring_rank * ulysses : (ring_rank + 1) * ulysses])


def ring_lengths(lens: Sequence[int], ulysses: int) -> tuple[int, ...]:
    """Each grid row's total length: the K/V shard lengths the ring rotates."""
    return tuple(sum(lens[i : i + ulysses]) for i in range(0, len(lens), ulysses))


def usp_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_mask: torch.Tensor | None,
    scale: float | None,
    *,
    mesh: CPMesh,
    q_lens: Sequence[int],
    kv_lens: Sequence[int],
) -> torch.Tensor:
    """USP attention of this rank's queries, ``(B, S_r, H, D)``.

    Args:
        query, key, value: ``(B, S_r, H, D)`` this rank's tokens.
        key_mask: ``(B or 1, S_kv_r)`` key-padding mask of this rank's keys, or None.
        scale: softmax scale (default ``1 / sqrt(D)``).
        mesh: a mesh with ``ulysses_size > 1`` and ``ring_size > 1``.
        q_lens, kv_lens: every cp rank's local query / key lengths (cp-rank order).
    """
    ring_group = mesh.ring_group
    assert ring_group is not None, "usp_attention needs mesh.ring_size > 1"
    u_size, ring_rank = mesh.ulysses_size, mesh.ring_rank

    def ring(shards: UlyssesShards) -> torch.Tensor:
        return ring_attention(
            shards.query,
            shards.key,
            shards.value,
            shards.key_mask,
            scale,
            group=ring_group,
            rank=ring_rank,
            size=mesh.ring_size,
            kv_lens=ring_lengths(kv_lens, u_size),
            method=mesh.ring_rotate_method,
            convert_to_fp32=mesh.ring_convert_to_fp32,
        )

    # with fewer heads than Ulysses ranks, a whole column (one Ulysses rank in every row) has
    # no heads: it skips the ring together, so no rotation waits on a rank that never sends
    return around_head_shards(
        query,
        key,
        value,
        key_mask,
        ring,
        mesh=mesh,
        q_lens=row_lengths(q_lens, u_size, ring_rank),
        kv_lens=row_lengths(kv_lens, u_size, ring_rank),
    )
