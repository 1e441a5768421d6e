"""Ulysses with the output all-to-all hidden behind this rank's own queries' attention.

Plain Ulysses attends all ``sum(S_r)`` queries of its ``H_r`` heads, then sends every rank its
tokens back: that last all-to-all waits for the whole attention and nothing runs beside it.
Here the queries are cut by owner (``ParallelismConfig(ulysses_overlap_output=True)``):

1. attend the other ranks' queries and start sending those outputs (this rank's own piece is
   left out of the exchange, ``all_to_all_heads_to_seq(..., skip_self=True)``);
2. attend this rank's own queries while that exchange is on the wire;
3. wait, and put this rank's heads between the received ones.

Each query row's attention is the same computation as in one call (same keys and values), so
the result equals plain Ulysses up to floating-point summation order (none within a row). On
``U`` ranks ``1/U`` of the attention hides the output exchange: half of it on two GPUs.
Used with ``ring_size == 1``, no float8 wire format, one head chunk and every rank holding at
least one head; otherwise the plain path runs.

Example (which query rows rank 1 of 3 attends first, for lengths 4, 3, 3)::

    >>> remote_rows([4, 3, 3], 1)
    ((0, 4), (7, 10))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.distributed import ProcessGroup

from ..comm import all_to_all_heads_to_seq, head_split_sizes, offsets, wait
from ..mesh import CPMesh

__all__ = ["attend_overlapping_output", "can_overlap_output", "remote_rows"]


def can_overlap_output(mesh: CPMesh, n_heads: int, kv_heads: int) -> bool:
    """Whether ``mesh`` asks for the overlap and the layout allows it (see the module doc)."""
    return (
        mesh.overlap_output
        and n_heads == kv_heads
        and mesh.ulysses_size > 1
        and mesh.ring_size == 1
        and not mesh.float8
        and mesh.head_chunks == 1
        and min(head_split_sizes(n_heads, mesh.ulysses_size)) > 0
    )


def remote_rows(q_lens: Sequence[int], rank: int) -> tuple[tuple[int, int], ...]:
    """The ``(start, end)`` query rows of the other ranks, in rank order, merged when adjacent."""
    off = offsets(q_lens)
    spans = [(0, off[rank]), (off[rank + 1], off[-1])]
    return tuple(span for span in spans if span[1] > span[0])


def attend_overlapping_output(
    query: torch.Tensor,
    attend: Callable[[torch.Tensor], torch.Tensor],
    *,
    q_lens: Sequence[int],
    n_heads: int,
    rank: int,
    group: ProcessGroup,
) -> torch.Tensor:
    """Attention of the full-sequence head shard, its output sent back as it is computed.

    Args:
        query: ``(B, sum(q_lens), H_r, D)`` (waited for), this rank's heads.
        attend: ``attend(q_rows) -> (B, rows, H_r, D)`` over this rank's full-sequence keys
            and values.
        q_lens: every rank's query length, group-rank order.
        n_heads: the total head count ``H``.
        rank, group: this rank and the Ulysses group.

    Returns:
        ``(B, q_lens[rank], H, D)``, this rank's queries with all heads.
    """
    off = offsets(q_lens)
    rows = [query[:, start:end] for start, end in remote_rows(q_lens, rank)]
    if rows:
        out_remote = attend(rows[0] if len(rows) == 1 else torch.cat(rows, dim=1)).contiguous()
    else:  # the other ranks hold no tokens: nothing to attend for them, only to receive
        out_remote = query.new_empty((query.shape[0], 0, *query.shape[2:]))
    back = all_to_all_heads_to_seq(out_remote, q_lens, n_heads, rank, group, skip_self=True)
    out_local = attend(query[:, off[rank] : off[rank + 1]])  # while ``back`` is on the wire
    others = wait(back)  # (B, S_r, H - H_r, D)
    first = offsets(head_split_sizes(n_heads, len(q_lens)))[rank]
    return torch.cat([others[:, :, :first], out_local, others[:, :, first:]], dim=2)
