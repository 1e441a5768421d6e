"""Ulysses attention: trade the sequence shard for a head shard, attend, trade back.

Each of the ``U`` ranks of the Ulysses group holds ``(B, S_r, H, D)`` of Q, K, V. One
all-to-all per tensor gives every rank the whole sequence ``sum(S_r)`` for its
``H_r = head_split_sizes(H, U)[r]`` heads (uneven heads are dealt as ``tensor_split`` does,
nothing is padded; uneven lengths use explicit split sizes). Local attention runs on that, and
one all-to-all sends each rank's queries back with all heads. The key-padding mask is
all-gathered over the group in the same rank order as the keys.

With ``mesh.float8``, Q, V and the output cross the wire as float8 rows (see
:mod:`~ditkit_parallel.attention.fp8`); K stays in its dtype.

Example (one rank: the all-to-alls are identities)::

    out = ulysses_attention(q, k, v, None, None, mesh=mesh, q_lens=(S,), kv_lens=(S,))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.distributed import ProcessGroup

from ..comm import all_gather_uneven, all_to_all_heads_to_seq, all_to_all_seq_to_heads, wait
from ..mesh import CPMesh
from .chunked import can_chunk, chunked_head_shards
from .fp8 import fp8_all_to_all_heads_to_seq, fp8_all_to_all_seq_to_heads
from .local import sdpa
from .output_overlap import attend_overlapping_output, can_overlap_output

__all__ = [
    "UlyssesShards",
    "around_head_shards",
    "gather_heads",
    "gather_key_mask",
    "scatter_heads",
    "ulysses_attention",
]


class UlyssesShards:
    """Q, K, V (and the mask) of one rank after the forward all-to-all.

    Attributes:
        query: ``(B, sum(q_lens), H_r, D)``.
        key, value: ``(B, sum(kv_lens), H_r, D)``.
        key_mask: ``(B or 1, sum(kv_lens))`` or None.
    """

    __slots__ = ("key", "key_mask", "query", "value")

    def __init__(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_mask: torch.Tensor | None,
    ) -> None:
        self.query, self.key, self.value, self.key_mask = query, key, value, key_mask


def gather_key_mask(
    key_mask: torch.Tensor, kv_lens: Sequence[int], group: ProcessGroup
) -> torch.Tensor:
    """Every rank's ``(B or 1, S_kv_r)`` key-padding mask, concatenated in rank order like the
    keys; bool masks travel as uint8. A float mask's result may still be in flight (``wait``)."""
    is_bool = key_mask.dtype == torch.bool
    full = all_gather_uneven(key_mask.to(torch.uint8) if is_bool else key_mask, kv_lens, 1, group)
    return full.bool() if is_bool else full


def scatter_heads(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_mask: torch.Tensor | None,
    *,
    group: ProcessGroup,
    rank: int,
    q_lens: Sequence[int],
    kv_lens: Sequence[int],
    float8: bool = False,
) -> UlyssesShards:
    """Sequence shards ``(B, S_r, H, D)`` -> head shards over the group's whole sequence."""
    to_heads = fp8_all_to_all_seq_to_heads if float8 else all_to_all_seq_to_heads
    # V first, then Q, then K: each all-to-all is asynchronous until its result is used
    v = to_heads(value, kv_lens, rank, group)
    q = to_heads(query, q_lens, rank, group)
    k = all_to_all_seq_to_heads(key, kv_lens, rank, group)
    mask = None if key_mask is None else wait(gather_key_mask(key_mask, kv_lens, group))
    return UlyssesShards(wait(q), wait(k), wait(v), mask)


def gather_heads(
    out: torch.Tensor,
    *,
    group: ProcessGroup,
    rank: int,
    q_lens: Sequence[int],
    n_heads: int,
    float8: bool = False,
) -> torch.Tensor:
    """Head shard ``(B, sum(q_lens), H_r, D)`` -> this rank's queries ``(B, S_r, H, D)``."""
    back = fp8_all_to_all_heads_to_seq if float8 else all_to_all_heads_to_seq
    return wait(back(out, q_lens, n_heads, rank, group))


def around_head_shards(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_mask: torch.Tensor | None,
    attend: Callable[[UlyssesShards], torch.Tensor],
    *,
    mesh: CPMesh,
    q_lens: Sequence[int],
    kv_lens: Sequence[int],
) -> torch.Tensor:
    """Scatter heads over ``mesh``'s Ulysses group, ``attend`` on this rank's head shard, and
    gather this rank's queries back, ``(B, S_r, H, D)``.

    ``attend(shards)`` returns ``(B, sum(q_lens), H_r, D)``; it is not called on a rank that
    holds no heads (fewer heads than ranks), which sends zeros back instead. ``q_lens`` and
    ``kv_lens`` are the local lengths of the Ulysses group's ranks. With ``mesh.head_chunks``
    above 1 (and heads that divide), the heads go in chunks whose all-to-alls overlap the
    other chunks' attention (:mod:`.chunked`); with ``mesh.overlap_output`` the output
    all-to-all overlaps this rank's own queries' attention (:mod:`.output_overlap`).
    """
    group, rank = mesh.ulysses_group, mesh.ulysses_rank
    assert group is not None, "Ulysses attention needs mesh.ulysses_size > 1"
    if can_chunk(query.shape[2], key.shape[2], mesh.ulysses_size, mesh.head_chunks):
        return chunked_head_shards(
            query,
            key,
            value,
            key_mask,
            attend,
            mesh=mesh,
            q_lens=q_lens,
            kv_lens=kv_lens,
        )
    shards = scatter_heads(
        query,
        key,
        value,
        key_mask,
        group=group,
        rank=rank,
        q_lens=q_lens,
        kv_lens=kv_lens,
        float8=mesh.float8,
    )
    if can_overlap_output(mesh, query.shape[2], key.shape[2]):

        def attend_rows(rows: torch.Tensor) -> torch.Tensor:
            return attend(UlyssesShards(rows, shards.key, shards.value, shards.key_mask))

        return attend_overlapping_output(
            shards.query,
            attend_rows,
            q_lens=q_lens,
            n_heads=query.shape[2],
            rank=rank,
            group=group,
        )
    if shards.query.shape[2] == 0:
        out = shards.query.new_zeros(shards.query.shape)
    else:
        out = attend(shards)
    return gather_heads(
        out, group=group, rank=rank, q_lens=q_lens, n_heads=query.shape[2], float8=mesh.float8
    )


def ulysses_attention(
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
    """Ulysses attention of this rank's queries, ``(B, S_r, H, D)``.

    Args:
        query, key, value: ``(B, S_r, H, D)`` this rank's tokens (K/V may be shorter or longer).
        key_mask: ``(B or 1, S_kv_r)`` key-padding mask of this rank's keys, or None.
        scale: softmax scale (default ``1 / sqrt(D)``).
        mesh: the layout; its Ulysses group and rank are used.
        q_lens, kv_lens: every Ulysses rank's local query / key lengths.
    """

    def local(shards: UlyssesShards) -> torch.Tensor:
        return sdpa(shards.query, shards.key, shards.value, shards.key_mask, scale)

    return around_head_shards(
        query, key, value, key_mask, local, mesh=mesh, q_lens=q_lens, kv_lens=kv_lens
    )
