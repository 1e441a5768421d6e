"""Ulysses all-to-alls moved by the GPU's copy engines instead of NCCL's SM kernels.

NCCL moves data with kernels that occupy streaming multiprocessors, so an all-to-all issued
beside a matmul slows the matmul by about as much as it hides (docs/parallel.md, 2×H200 at
2048²). Here every rank copies the pieces its peers need into a symmetric-memory workspace
(``torch.distributed._symmetric_memory``: each rank's workspace is mapped into its peers'
address space over NVLink), and each rank then *pulls* its pieces from its peers' workspaces
with plain device copies. Contiguous same-dtype copies are ``cudaMemcpyAsync`` calls, which the
copy engines carry out without SMs. Everything runs on one side stream, in this order per
exchange:

1. wait for the producer (the main stream) of ``send``;
2. stage the peers' pieces of ``send`` in this rank's workspace (this rank's own piece is
   copied straight into the result on a second side stream, beside steps 2-4);
3. barrier: every rank has staged;
4. pull the piece each peer staged for this rank into the result; record ``arrived``;
5. barrier: every rank has pulled, so the workspaces may be staged again (the next exchange's
   step 2 follows this on the same stream). While a CUDA graph is captured, ``arrived`` is
   recorded after this barrier instead: a capture fails ("capturing stream has unjoined work")
   unless the main stream waits for everything its side streams did.

:func:`finish` makes the main stream wait for ``arrived``. Only the ranks of one host can map
each other's memory, so the option is for Ulysses groups inside a node.

The barriers take no SMs either: each rank writes an epoch number into its peers' signal pads
and waits until its own pad holds theirs, as CUDA stream memory operations
(``cuStreamWriteValue32`` / ``cuStreamWaitValue32`` through ``cuda.bindings``), which the GPU's
front end carries out. A barrier kernel (``torch``'s ``barrier``) would wait for an SM while a
matmul holds them all, which serialises the exchange behind the compute it should overlap; it
is used only when ``cuda.bindings`` is missing or while a CUDA graph is captured (an epoch
baked into a graph would repeat on replay).

The exchange is two custom ops, so ``torch.compile`` traces it with no graph break:
``ditkit_parallel::ce_all_to_all(send, out_splits, in_splits, group_name) -> recv`` issues it
and ``ditkit_parallel::ce_wait(recv, send)`` (declared as mutating ``recv``) waits; ``send``
is an input of the wait so that inductor keeps its buffer until then. On CPU tensors (gloo,
the tests) the same ops run ``torch.distributed.all_to_all_single`` asynchronously.

Routing is per process group (:func:`route`, called by ``build_cp_mesh`` from
``ParallelismConfig(ulysses_copy_engine=True)``): :mod:`ditkit_parallel.comm` sends a routed
group's all-to-alls here.

Example:
    >>> routed("some-group")
    False
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["finish", "route", "routed", "start"]

#: names of the process groups whose all-to-alls go through the copy engines
_ROUTED: frozenset[str] = frozenset()
#: results in flight, by their storage's address: ``(event, free list)`` (CUDA) or the
#: ``Work`` (CPU) to wait for
_INFLIGHT: dict[int, Any] = {}
#: per group name: the :class:`_Exchanger` that owns the workspace and the side stream
_EXCHANGERS: dict[str, _Exchanger] = {}
#: barriers as CUDA stream memory operations where ``cuda.bindings`` is installed (``False``:
#: always the barrier kernel; the bench compares the two)
STREAM_OP_BARRIERS = True
#: a stuck peer raises after this long instead of hanging the job
BARRIER_TIMEOUT_MS = 120_000
#: workspaces grow in steps of this many bytes (every rank computes the same size)
GROWTH_BYTES = 64 * 2**20


def route(group: dist.ProcessGroup | None, enabled: bool) -> None:
    """Send ``group``'s Ulysses all-to-alls through the copy engines (or stop doing so)."""
    global _ROUTED
    if group is None:
        return
    name = group.group_name
    _ROUTED = _ROUTED | {name} if enabled else _ROUTED - {name}


def routed(group_name: str) -> bool:
    """Whether the group named ``group_name`` exchanges through the copy engines."""
    return group_name in _ROUTED


def _cuda_driver() -> Any:
    """``cuda.bindings.driver`` (NVIDIA's CUDA Python), or ``None`` where it is not installed."""
    try:
        from cuda.bindings import driver
    except ImportError:
        return None
    return driver


def _check(result: tuple) -> None:
    error = result[0]
    if int(error) != 0:
        raise RuntimeError(f"ulysses_copy_engine: a CUDA stream memory operation failed: {error}")


@dataclass(frozen=True, eq=False)  # hashed by identity: one plan per signature, a dict key
class _Plan:
    """One split signature's exchange, worked out once (the hot path only looks it up)."""

    out_sizes: list[int]  # elements this rank receives from each rank
    in_sizes: list[int]  # elements this rank sends to each rank
    staged_at: list[int]  # where each peer staged this rank's piece in its workspace
    most: int  # the most elements any rank stages
    to_stage: list[int]  # peers this rank stages a piece for, in rank order
    to_pull: list[int]  # peers this rank pulls a piece from, in rank order


class _Exchanger:
    """One group's symmetric workspace, side streams, events and per-signature plans.

    The hot path (:meth:`start`) was measured on 2×H200 at 191 µs of host time per exchange
    against NCCL's 94 µs, which cost a host-bound compiled 1024² step 30 ms (228 exchanges).
    So everything that depends only on the split signature, the dtype or the workspace is
    built once: the plans, the workspace views, the barrier's driver arguments, and the
    events (reused once waited for).
    """

    def __init__(self, group_name: str, device: torch.device) -> None:
        from torch.distributed.distributed_c10d import _resolve_process_group

        self.group = _resolve_process_group(group_name)
        self.group_name = group_name
        self.rank, self.size = dist.get_rank(self.group), dist.get_world_size(self.group)
        self.device = device
        self.index = device.index if device.index is not None else torch.cuda.current_device()
        self.stream = torch.cuda.Stream(device=device)
        self.own_stream = torch.cuda.Stream(device=device)  # the own piece's local copy
        self.fork = torch.cuda.Event()  # the main stream's point each exchange starts from
        self.own_done = torch.cuda.Event()
        self.free_events: list[torch.cuda.Event] = []  # ``arrived`` events already waited for
        self.workspace: torch.Tensor | None = None
        self.handle: Any = None
        self.epoch = 0  # barriers passed on this workspace (the stream-memory-op barrier)
        self.driver = _cuda_driver()
        self.stream_op_barriers = 0  # how many barriers took the SM-free path (for tests)
        self.plans: dict[tuple[tuple[int, ...], tuple[int, ...]], _Plan] = {}
        # (plan, dtype) -> (this rank's staging slots, one per to_stage peer; the peers'
        # slots this rank pulls from, one per to_pull peer): views of the current workspaces
        self.views: dict[tuple[_Plan, torch.dtype], tuple[list[torch.Tensor], ...]] = {}
        self.barrier_args: tuple[Any, ...] | None = None

    def plan(self, out_splits: Sequence[int], in_splits: Sequence[int]) -> _Plan:
        """Learn every rank's send layout once per split signature (a host collective)."""
        key = (tuple(out_splits), tuple(in_splits))
        plan = self.plans.get(key)
        if plan is None:
            out_sizes, in_sizes = [int(n) for n in key[0]], [int(n) for n in key[1]]
            every: list[Any] = [None] * self.size
            dist.all_gather_object(every, in_sizes, group=self.group)
            me, peers = self.rank, [j for j in range(self.size) if j != self.rank]
            plan = self.plans[key] = _Plan(
                out_sizes=out_sizes,
                in_sizes=in_sizes,
                staged_at=[sum(every[j][:me]) for j in range(self.size)],
                most=max(sum(splits) for splits in every),
                to_stage=[k for k in peers if in_sizes[k]],
                to_pull=[j for j in peers if out_sizes[j]],
            )
        return plan

    def slots(self, plan: _Plan, dtype: torch.dtype) -> tuple[list[torch.Tensor], ...]:
        """The workspace views ``plan`` stages into and pulls from, for ``dtype``."""
        views = self.views.get((plan, dtype))
        if views is None:
            handle, me, staged = self.handle, self.rank, list(accumulate(plan.in_sizes, initial=0))
            mine = handle.get_buffer(me, (staged[-1],), dtype, 0)
            stage = [mine[staged[k] : staged[k + 1]] for k in plan.to_stage]
            pull = [
                handle.get_buffer(j, (plan.out_sizes[j],), dtype, plan.staged_at[j])
                for j in plan.to_pull
            ]
            views = self.views[(plan, dtype)] = (stage, pull)
        return views

    def ensure(self, nbytes: int) -> None:
        """A workspace of at least ``nbytes`` on every rank (collective when it grows)."""
        have = 0 if self.workspace is None else self.workspace.numel()
        if nbytes <= have:
            return
        if torch.cuda.is_current_stream_capturing():
            raise RuntimeError(
                "ulysses_copy_engine: the workspace must grow during CUDA graph capture; run "
                "one request of this size before capturing"
            )
        import torch.distributed._symmetric_memory as symm_mem

        self.stream.synchronize()  # the peers have pulled everything from the old workspace
        size = -(-nbytes // GROWTH_BYTES) * GROWTH_BYTES
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # enable_symm_mem_for_group is deprecated later
            if hasattr(symm_mem, "enable_symm_mem_for_group"):
                symm_mem.enable_symm_mem_for_group(self.group_name)
        self.epoch = 0  # a new workspace's signal pads start at zero
        self.views, self.barrier_args = {}, None
        try:
            self.workspace = symm_mem.empty(size, dtype=torch.uint8, device=self.device)
            self.handle = symm_mem.rendezvous(self.workspace, self.group_name)
        except RuntimeError as error:
            raise RuntimeError(
                "ParallelismConfig(ulysses_copy_engine=True) needs CUDA symmetric memory over "
                "the Ulysses group (its ranks on one host, peer access between their GPUs); "
                f"it failed with: {error}. Set ulysses_copy_engine=False to exchange with NCCL"
            ) from error

    def barrier(self, capturing: bool) -> None:
        """Every rank of the group has reached this point of its side stream (issued there)."""
        driver, handle = self.driver, self.handle
        if driver is None or capturing or not STREAM_OP_BARRIERS:
            handle.barrier(channel=0, timeout_ms=BARRIER_TIMEOUT_MS)
            return
        if self.barrier_args is None:
            pads = handle.signal_pad_ptrs
            base = handle.signal_pad_size // 2  # torch's own barrier uses the pad's first slots
            peers = [j for j in range(self.size) if j != self.rank]
            self.barrier_args = (
                driver.CUstream(self.stream.cuda_stream),
                [driver.CUdeviceptr(pads[j] + base + 4 * self.rank) for j in peers],  # theirs
                [driver.CUdeviceptr(pads[self.rank] + base + 4 * j) for j in peers],  # mine
                driver.CUstreamWriteValue_flags.CU_STREAM_WRITE_VALUE_DEFAULT,  # fenced
                driver.CUstreamWaitValue_flags.CU_STREAM_WAIT_VALUE_GEQ,
            )
        stream, write_slots, wait_slots, write, at_least = self.barrier_args
        self.epoch += 1
        for slot in write_slots:
            _check(driver.cuStreamWriteValue32(stream, slot, self.epoch, write))
        for slot in wait_slots:
            _check(driver.cuStreamWaitValue32(stream, slot, self.epoch, at_least))
        self.stream_op_barriers += 1

    def start(
        self, send: torch.Tensor, out_splits: Sequence[int], in_splits: Sequence[int]
    ) -> torch.Tensor:
        plan, me = self.plan(out_splits, in_splits), self.rank
        self.ensure(plan.most * send.element_size())
        stage, pull = self.slots(plan, send.dtype)
        recv = send.new_empty(sum(plan.out_sizes))
        sends, recvs = send.split(plan.in_sizes), recv.split(plan.out_sizes)
        main = torch.cuda.current_stream(self.index)
        capturing = torch.cuda.is_current_stream_capturing()
        own = plan.out_sizes[me] > 0
        self.fork.record(main)
        try:
            if own:  # this rank's own piece, on a second engine beside the exchange
                self.own_stream.wait_event(self.fork)
                torch.cuda.set_stream(self.own_stream)
                recvs[me].copy_(sends[me])
                self.own_done.record(self.own_stream)
            self.stream.wait_event(self.fork)
            torch.cuda.set_stream(self.stream)
            for slot, k in zip(stage, plan.to_stage, strict=True):
                slot.copy_(sends[k])
            self.barrier(capturing)
            for slot, j in zip(pull, plan.to_pull, strict=True):
                recvs[j].copy_(slot)
            if own:
                self.stream.wait_event(self.own_done)
            arrived = self.free_events.pop() if self.free_events else torch.cuda.Event()
            if capturing:  # a graph must join every side stream's work back into its stream
                self.barrier(capturing)
                arrived.record(self.stream)
            else:
                arrived.record(self.stream)
                self.barrier(capturing)
        finally:
            torch.cuda.set_stream(main)
        # the own stream's copy is ordered before ``arrived`` on this stream, so recording
        # this stream alone keeps both tensors' memory until everything that used them is done
        send.record_stream(self.stream)
        recv.record_stream(self.stream)
        if recv.numel():
            _INFLIGHT[recv.untyped_storage().data_ptr()] = (arrived, self.free_events)
        return recv


def start(
    send: torch.Tensor, out_splits: Sequence[int], in_splits: Sequence[int], group_name: str
) -> torch.Tensor:
    """Issue the all-to-all of the flat ``send`` (``torch.distributed.all_to_all_single``'s
    split semantics); the result is in flight until :func:`finish`."""
    if not send.is_cuda:  # gloo (CPU tests): the same ops, NCCL-free
        from torch.distributed.distributed_c10d import _resolve_process_group

        recv = send.new_empty(sum(int(n) for n in out_splits))
        work = dist.all_to_all_single(
            recv,
            send,
            list(out_splits),
            list(in_splits),
            group=_resolve_process_group(group_name),
            async_op=True,
        )
        if recv.numel():
            _INFLIGHT[recv.untyped_storage().data_ptr()] = work
        else:
            work.wait()
        return recv
    exchanger = _EXCHANGERS.get(group_name)
    if exchanger is None:
        exchanger = _EXCHANGERS[group_name] = _Exchanger(group_name, send.device)
    return exchanger.start(send.contiguous(), out_splits, in_splits)


def finish(recv: torch.Tensor) -> None:
    """Make the current stream wait for ``recv`` (a result of :func:`start`) to arrive."""
    if not recv.numel():
        return
    pending = _INFLIGHT.pop(recv.untyped_storage().data_ptr(), None)
    if pending is None:
        return
    if isinstance(pending, tuple):  # (the CUDA event, its exchanger's free list)
        event, free = pending
        torch.cuda.current_stream(recv.device).wait_event(event)
        free.append(event)  # the wait is enqueued: recording it again cannot affect it
    else:
        pending.wait()


@torch.library.custom_op("ditkit_parallel::ce_all_to_all", mutates_args=())
def _ce_all_to_all(
    send: torch.Tensor, out_splits: list[int], in_splits: list[int], group_name: str
) -> torch.Tensor:
    return start(send, out_splits, in_splits, group_name)


@_ce_all_to_all.register_fake
def _(send: torch.Tensor, out_splits: list[int], in_splits: list[int], group_name: str):
    return send.new_empty(sum(out_splits))


@torch.library.custom_op("ditkit_parallel::ce_wait", mutates_args=("recv",))
def _ce_wait(recv: torch.Tensor, send: torch.Tensor) -> None:
    finish(recv)


@_ce_wait.register_fake
def _(recv: torch.Tensor, send: torch.Tensor) -> None:
    return None
