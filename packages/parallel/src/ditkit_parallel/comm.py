"""Collectives of context parallelism, for uneven sequence lengths and head counts.

Tensors are in diffusers' attention layout ``(B, S, H, E)`` (batch, sequence, heads, last dim;
``E`` is the head dim, or ``D + 4`` for packed float8 rows). Ranks of a group hold sequence
pieces of lengths ``seq_lens`` (cp-rank order, may differ by rank) and, after the all-to-all,
head pieces of sizes :func:`head_split_sizes` (``torch.tensor_split`` over heads, never padded).

- :func:`all_to_all_seq_to_heads`: ``(B, S_r, H, E) -> (B, sum(S), H_r, E)``;
- :func:`all_to_all_heads_to_seq`: ``(B, sum(S), H_r, E) -> (B, S_r, H, E)``, the inverse;
- :func:`all_gather_uneven`: concatenate pieces of different lengths along a dim;
- :class:`RingP2P`: send tensors to the next rank of a ring and receive from the previous one.

The all-to-alls return still-in-flight results: pass them to :func:`wait` before anything
reads them (eagerly a view of a buffer still being written, under compile an :class:`InFlight`).
Under ``torch.compile`` every collective is a functional collective
(``torch.distributed._functional_collectives``), which dynamo traces into the graph; the
all-to-alls are traced as the raw ``_c10d_functional`` ops, so the graph waits where
:func:`wait` is called and compute issued in between overlaps the exchange. Eagerly the
same calls go straight to ``torch.distributed`` (``async_op=True``; :func:`wait` waits the
``Work`` kept for the result's storage): a functional collective's eager dispatch (the
``AsyncCollectiveTensor`` wrapper, its ``__torch_dispatch__``, pytree maps) cost about 380 Python
calls per all-to-all, 4.8 times the Python work of the whole tiny model's forward
(``tests/test_comm_eager.py``). The eager all-gather is complete (stream-ordered) on return.
The split sizes are Python ints known before the call (from
:class:`~ditkit_parallel.mesh.SeqLenTable`), so nothing syncs the host. P2P has no functional
form and runs eagerly (``torch.compiler.disable``).

Example:
    >>> head_split_sizes(10, 4)
    [3, 3, 2, 2]
    >>> offsets([3, 3, 2, 2])
    [0, 3, 6, 8, 10]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as fc
from torch.distributed import ProcessGroup

from . import copy_engine

__all__ = [
    "InFlight",
    "Pending",
    "RingP2P",
    "all_gather_uneven",
    "all_reduce_sum",
    "all_to_all_heads_to_seq",
    "all_to_all_seq_to_heads",
    "head_split_sizes",
    "offsets",
    "wait",
]

_c10d = torch.ops._c10d_functional
_all_gather = getattr(fc, "all_gather_single", None) or fc.all_gather_tensor
_all_gather_eager = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
# eager all-to-alls in flight: the storage of the result -> its Work (popped by ``wait``)
_PENDING: dict[int, dist.Work] = {}


class InFlight(NamedTuple):
    """A compiled all-to-all's result before its wait: the flat buffer the collective writes
    and the view of it that :func:`wait` returns.

    The graph's ``wait_tensor`` must take the collective's own output, not a view of it:
    inductor keeps the send buffer alive until that wait only then, and otherwise reuses it
    for the next send while the exchange still reads it (seen on gloo as wrong results).
    """

    raw: torch.Tensor
    shape: tuple[int, ...]
    dims: tuple[int, ...]
    #: the send buffer of a copy-engine exchange (:mod:`~ditkit_parallel.copy_engine`), kept
    #: alive until the wait; ``None`` for NCCL/gloo
    send: torch.Tensor | None = None


Pending = torch.Tensor | InFlight


def _arrived(
    recv: torch.Tensor,
    shape: tuple[int, ...],
    dims: tuple[int, ...],
    send: torch.Tensor | None = None,
) -> Pending:
    """``recv.view(shape).permute(dims)``, or under compile the :class:`InFlight` for it."""
    if torch.compiler.is_compiling():
        return InFlight(recv, shape, dims, send)
    return recv.view(shape).permute(dims)


def wait(tensor: Pending) -> torch.Tensor:
    """Wait for a collective's (possibly still in flight) result, or any view of it; plain
    tensors pass. Issue several collectives first and wait afterwards to overlap them."""
    if isinstance(tensor, fc.AsyncCollectiveTensor):
        return tensor.wait()
    if isinstance(tensor, InFlight):  # compiled: the graph waits here, where it is needed
        if tensor.send is not None:
            torch.ops.ditkit_parallel.ce_wait(tensor.raw, tensor.send)
            return tensor.raw.view(tensor.shape).permute(tensor.dims)
        return _c10d.wait_tensor(tensor.raw).view(tensor.shape).permute(tensor.dims)
    if _PENDING and tensor.numel():
        work = _PENDING.pop(tensor.untyped_storage().data_ptr(), None)
        if work is not None:
            work.wait()
    if copy_engine._INFLIGHT:
        copy_engine.finish(tensor)
    return tensor


def _all_to_all(
    send: torch.Tensor, out_splits: list[int], in_splits: list[int], group: ProcessGroup
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """All-to-all of a flat tensor; functional under compile, ``torch.distributed`` eagerly.

    Under compile the raw functional op is traced, not ``fc.all_to_all_single``: while tracing,
    that one waits right after issuing (``_maybe_wrap_tensor``), so nothing could overlap the
    exchange; here the graph's ``wait_tensor`` is placed by :func:`wait`. A group routed to the
    copy engines (:func:`~ditkit_parallel.copy_engine.route`) exchanges through them instead;
    the second value is then ``send``, which the wait must keep alive (else ``None``).
    """
    name = fc._resolve_group_name(group, "")
    if copy_engine.routed(name):
        if torch.compiler.is_compiling():
            recv = torch.ops.ditkit_parallel.ce_all_to_all(send, out_splits, in_splits, name)
        else:
            recv = copy_engine.start(send, out_splits, in_splits, name)
        return recv, send
    if torch.compiler.is_compiling():
        return _c10d.all_to_all_single(send, out_splits, in_splits, name), None
    recv = send.new_empty(sum(out_splits))
    work = dist.all_to_all_single(recv, send, out_splits, in_splits, group=group, async_op=True)
    if recv.numel():
        _PENDING[recv.untyped_storage().data_ptr()] = work
    else:  # an empty result has no storage of its own to key the Work by
        work.wait()
    return recv, None


def head_split_sizes(n_heads: int, size: int) -> list[int]:
    """Heads per rank as ``torch.tensor_split`` deals them (the first ``n % size`` get one more)."""
    base, extra = divmod(n_heads, size)
    return [base + (1 if r < extra else 0) for r in range(size)]


def offsets(sizes: Sequence[int]) -> list[int]:
    """Prefix sums with a leading 0: piece ``i`` is ``[offsets[i], offsets[i + 1])``."""
    out = [0]
    for n in sizes:
        out.append(out[-1] + int(n))
    return out


def _packed(like: torch.Tensor, pieces: list[torch.Tensor]) -> torch.Tensor:
    """The pieces, each laid out contiguously, one after the other in a flat send buffer.

    Eagerly each piece is copied into its slice of one new buffer (one copy kernel each).
    Under compile it is one ``torch.cat``, which inductor realizes as one buffer. Filled by
    slice copies, the buffer was recomputed for each of its two readers, the copy engine's
    issue and its wait, so the wait kept a second copy alive instead of the buffer the copy
    engines read (``test_context_compile.py`` reads inductor's code for this).
    """
    if torch.compiler.is_compiling():
        flat = [p.reshape(-1) for p in pieces if p.numel()]
        if not flat:
            return like.new_empty(0)
        return flat[0].clone() if len(flat) == 1 else torch.cat(flat)
    send = like.new_empty(sum(p.numel() for p in pieces))
    start = 0
    for piece in pieces:
        if piece.numel():
            send[start : start + piece.numel()].view(piece.shape).copy_(piece)
            start += piece.numel()
    return send


def all_to_all_seq_to_heads(
    x: torch.Tensor, seq_lens: Sequence[int], rank: int, group: ProcessGroup
) -> Pending:
    """Sequence-sharded, all heads -> full sequence, this rank's heads.

    Args:
        x: ``(B, S_rank, H, E)``, this rank's tokens (``S_rank == seq_lens[rank]``).
        seq_lens: every rank's local length, in group-rank order.
        rank: this rank in ``group``.
        group: the all-to-all group.

    Returns:
        ``(B, sum(seq_lens), H_rank, E)`` (a strided view), tokens in rank order, heads
        ``head_split_sizes(H, size)[rank]`` starting at that split's offset; in flight until
        :func:`wait` (under compile an :class:`InFlight` that only :func:`wait` reads).
    """
    batch, seq, n_heads, last = x.shape
    size = len(seq_lens)
    heads = head_split_sizes(n_heads, size)
    h_off = offsets(heads)
    # send piece j laid out (S, B, h_j, E): the received pieces then stack along the sequence
    in_splits = [seq * batch * h * last for h in heads]
    send = _packed(x, [x[:, :, h_off[j] : h_off[j + 1]].transpose(0, 1) for j in range(size)])
    mine = heads[rank]
    out_splits = [int(n) * batch * mine * last for n in seq_lens]
    recv, keep = _all_to_all(send, out_splits, in_splits, group)
    return _arrived(recv, (sum(seq_lens), batch, mine, last), (1, 0, 2, 3), keep)


def all_to_all_heads_to_seq(
    y: torch.Tensor,
    seq_lens: Sequence[int],
    n_heads: int,
    rank: int,
    group: ProcessGroup,
    *,
    skip_self: bool = False,
) -> Pending:
    """Full sequence, this rank's heads -> sequence-sharded, all heads (inverse of the above).

    Args:
        y: ``(B, sum(seq_lens), H_rank, E)``; with ``skip_self`` only the other ranks' tokens,
            ``(B, sum(seq_lens) - seq_lens[rank], H_rank, E)`` (rank order).
        seq_lens: every rank's local length, in group-rank order.
        n_heads: the total head count ``H``.
        rank: this rank in ``group``.
        group: the all-to-all group.
        skip_self: leave this rank's own piece out of the exchange: the result then holds
            the other ranks' heads only, ``H - H_rank`` of them in rank order (the caller has
            its own piece; see :mod:`~ditkit_parallel.attention.output_overlap`).

    Returns:
        ``(B, seq_lens[rank], H, E)`` (a strided view), in flight until :func:`wait`.
    """
    batch, _, mine, last = y.shape
    size = len(seq_lens)
    heads = head_split_sizes(n_heads, size)
    if heads[rank] != mine:
        raise ValueError(
            f"all_to_all_heads_to_seq: rank {rank} holds {mine} heads, expected "
            f"{heads[rank]} of {n_heads}"
        )
    sent_lens = [0 if skip_self and j == rank else int(n) for j, n in enumerate(seq_lens)]
    t_off = offsets(sent_lens)
    in_splits = [n * batch * mine * last for n in sent_lens]
    # send piece j laid out (h_rank, S_j, B, E): received pieces then stack along heads
    pieces = [y[:, t_off[j] : t_off[j + 1]].permute(2, 1, 0, 3) for j in range(size)]
    send = _packed(y, [p if sent_lens[j] else p[:0] for j, p in enumerate(pieces)])
    seq = int(seq_lens[rank])
    got = [0 if skip_self and j == rank else h for j, h in enumerate(heads)]
    out_splits = [h * seq * batch * last for h in got]
    recv, keep = _all_to_all(send, out_splits, in_splits, group)
    return _arrived(recv, (sum(got), seq, batch, last), (2, 1, 0, 3), keep)


def all_reduce_sum(x: torch.Tensor, group: ProcessGroup) -> torch.Tensor:
    """The sum of every rank's ``x``, complete on return (stream-ordered): functional under
    compile; eagerly ``torch.distributed.all_reduce`` into ``x`` itself (pass a tensor nobody
    else reads, e.g. a fresh partial product)."""
    if torch.compiler.is_compiling():
        return fc.wait_tensor(fc.all_reduce(x, "sum", group))
    dist.all_reduce(x, group=group)
    return x


def all_gather_uneven(
    x: torch.Tensor, lens: Sequence[int], dim: int, group: ProcessGroup
) -> torch.Tensor:
    """Concatenate every rank's ``x`` along ``dim`` (rank order); ``x.shape[dim]`` may differ.

    Pieces shorter than ``max(lens)`` are padded for the gather (by at most the length
    difference) and the padding is dropped after it.

    Args:
        x: this rank's piece; ``x.shape[dim] == lens[rank]``.
        lens: every rank's length along ``dim``.
        dim: the dim to concatenate.
        group: the gather group.
    """
    dim = dim % x.dim()
    longest = max(int(n) for n in lens)
    if x.shape[dim] < longest:
        pad_shape = list(x.shape)
        pad_shape[dim] = longest - x.shape[dim]
        x = torch.cat([x, x.new_zeros(pad_shape)], dim)
    piece = x.unsqueeze(0).contiguous()
    if torch.compiler.is_compiling():
        gathered = _all_gather(piece, 0, group)
    else:
        gathered = piece.new_empty((len(lens), *piece.shape[1:]))
        _all_gather_eager(gathered, piece, group=group)
    if all(int(n) == longest for n in lens):
        return gathered.movedim(0, dim).flatten(dim, dim + 1)
    return torch.cat([gathered[i].narrow(dim, 0, int(n)) for i, n in enumerate(lens)], dim)


class RingP2P:
    """Point-to-point rotation around a ring: send to ``rank + 1``, receive from ``rank - 1``.

    ``start(tensors, recv_shapes)`` posts the sends of ``tensors`` and receives into new
    buffers of ``recv_shapes`` (same dtypes) in one ``batch_isend_irecv``; ``wait()`` returns the
    buffers. Peers are global ranks, found once.

    Args:
        group: the ring group.
        rank, size: this rank's position in it and its size.
    """

    def __init__(self, group: ProcessGroup, rank: int, size: int) -> None:
        self.group = group
        self.next_peer = dist.get_global_rank(group, (rank + 1) % size)
        self.prev_peer = dist.get_global_rank(group, (rank - 1) % size)
        self._works: list[dist.Work] = []
        self._buffers: list[torch.Tensor] = []
        self._sent: list[torch.Tensor] = []  # kept alive until the sends complete

    @torch.compiler.disable
    def start(self, tensors: Sequence[torch.Tensor], recv_shapes: Sequence[Sequence[int]]) -> None:
        """Post the sends of ``tensors`` and the receives of buffers shaped ``recv_shapes``."""
        if self._works:
            raise RuntimeError("RingP2P.start: wait() for the previous rotation first")
        ops = []
        self._buffers, self._sent = [], []
        for tensor, shape in zip(tensors, recv_shapes, strict=True):
            tensor = tensor.contiguous()
            buffer = tensor.new_empty(tuple(shape))
            self._sent.append(tensor)
            ops.append(dist.P2POp(dist.isend, tensor, self.next_peer, self.group))
            ops.append(dist.P2POp(dist.irecv, buffer, self.prev_peer, self.group))
            self._buffers.append(buffer)
        self._works = dist.batch_isend_irecv(ops)

    @torch.compiler.disable
    def wait(self) -> list[torch.Tensor]:
        """Wait for the posted rotation; the received tensors, in the order sent."""
        for work in self._works:
            work.wait()
        self._works, self._sent = [], []
        return self._buffers
