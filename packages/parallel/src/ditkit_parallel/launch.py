"""Run a function on N local processes joined in one ``torch.distributed`` group.

``torchrun`` is how users launch ditkit-parallel on GPUs. Tests, examples and quick CPU checks
need the same thing from inside Python: :func:`run_distributed` spawns ``world_size`` processes,
initialises a process group in each (``gloo`` on the CPU, ``nccl`` on GPUs), calls ``fn(rank,
world_size, *args)``, tears the group down and returns every rank's return value, in rank order.
An exception on any rank is re-raised in the caller with that rank's traceback.

Example:
    >>> from ditkit_parallel.launch import run_distributed
    >>> def rank_times_ten(rank: int, world_size: int) -> int:
    ...     return rank * 10
    >>> run_distributed(rank_times_ten, 2)  # doctest: +SKIP
    [0, 10]

(The example is skipped in doctests only because ``fn`` must be importable by the spawned
processes; the package's tests run it for real.)
"""

from __future__ import annotations

import os
import socket
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

__all__ = ["DistributedRunError", "free_port", "run_distributed"]


class DistributedRunError(RuntimeError):
    """A rank of :func:`run_distributed` raised; the message holds its traceback."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(
    rank: int,
    world_size: int,
    port: int,
    backend: str,
    threads: int,
    timeout_s: float,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    results: Any,
) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    os.environ["RANK"] = str(rank)
    os.environ["WORLD_SIZE"] = str(world_size)
    os.environ["LOCAL_RANK"] = str(rank)
    torch.set_num_threads(threads)
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(
        backend, rank=rank, world_size=world_size, timeout=timedelta(seconds=timeout_s)
    )
    try:
        results[rank] = ("ok", fn(rank, world_size, *args))
    except BaseException:  # every failure is reported to the parent
        results[rank] = ("error", traceback.format_exc())
        raise
    finally:
        dist.destroy_process_group()


def run_distributed(
    fn: Callable[..., Any],
    world_size: int,
    *args: Any,
    backend: str | None = None,
    threads_per_rank: int = 1,
    timeout_s: float = 300.0,
) -> list[Any]:
    """Call ``fn(rank, world_size, *args)`` on ``world_size`` spawned processes.

    Args:
        fn: a module-level (picklable) function; its return value must be picklable.
        world_size: the number of processes (>= 1).
        *args: passed to every rank after ``rank`` and ``world_size``.
        backend: ``"gloo"`` (default without CUDA) or ``"nccl"`` (default with enough GPUs).
        threads_per_rank: ``torch.set_num_threads`` in each process.
        timeout_s: collective timeout, so a rank that dies mid-collective does not leave the
            others waiting for torch's default of 30 minutes.

    Returns:
        The return values of the ranks, in rank order.

    Raises:
        ValueError: ``world_size`` < 1.
        DistributedRunError: a rank raised; the message carries its traceback.
    """
    if world_size < 1:
        raise ValueError(f"run_distributed(world_size={world_size}): world_size must be >= 1")
    if backend is None:
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        backend = "nccl" if gpus >= world_size else "gloo"
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        results = manager.dict()
        port = free_port()
        try:
            mp.start_processes(
                _worker,
                args=(world_size, port, backend, threads_per_rank, timeout_s, fn, args, results),
                nprocs=world_size,
                join=True,
                start_method="spawn",
            )
        except mp.ProcessRaisedException as exc:
            errors = [
                f"--- rank {rank} ---\n{payload}"
                for rank, (status, payload) in sorted(results.items())
                if status == "error"
            ]
            raise DistributedRunError("\n".join(errors) or str(exc)) from None
        except mp.ProcessExitedException as exc:
            raise DistributedRunError(f"a rank exited abnormally: {exc}") from None
        return [results[rank][1] for rank in range(world_size)]
