"""``DistributedDecisionReducer``: every parallel rank takes the same cache decision.

The cache's relative-L1 diff is ``mean|prev - cur| / mean|prev|``. Under context parallelism
each rank holds a piece of the sequence, so both means are averaged over the ranks before the
division (one all-reduce of a few floats, in the same call as the cache's one host read); under
tensor parallelism every rank holds the same replicated values, and the average only removes
rounding differences that could split a decision at the threshold. With uneven pieces the
average of the per-rank means differs from the global mean by the pieces' length imbalance (one
token in thousands at most); every rank still reaches the same number.

:meth:`match_shard` serves plans that split inside the first cached block (Qwen-Image, Wan,
HunyuanVideo, CogVideoX, Z-Image): the cache holds the block list's full-length input while the
first block returns this rank's piece, and compares the Fn residual on matching pieces.

Example (one process, so the mean is the value itself):
    >>> import torch
    >>> from ditkit_parallel.launch import run_distributed
    >>> from ditkit_parallel.reducer import DistributedDecisionReducer
    >>> DistributedDecisionReducer.__name__
    'DistributedDecisionReducer'
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch.distributed import ProcessGroup

from .context.apply import _HANDLE as CP_HANDLE_ATTRIBUTE

__all__ = ["DistributedDecisionReducer", "find_cp_handle"]


def find_cp_handle(owner: Any) -> Any:
    """The context-parallel handle of ``owner`` (a transformer, a pipeline or an adapter)."""
    for candidate in (owner, getattr(owner, "transformer", None), getattr(owner, "pipe", None)):
        if candidate is None:
            continue
        handle = getattr(candidate, "__dict__", {}).get(CP_HANDLE_ATTRIBUTE)
        if handle is not None:
            return handle
        if candidate is not owner:
            nested = getattr(candidate, "transformer", None)
            handle = getattr(nested, "__dict__", {}).get(CP_HANDLE_ATTRIBUTE)
            if handle is not None:
                return handle
    return None


class DistributedDecisionReducer:
    """Averages the cache's statistics over ``group`` (default: the world).

    Args:
        group: the ranks that run one transformer call together (all CP and TP ranks).
        owner: the transformer, pipeline or adapter whose context-parallel handle cuts the
            pieces for :meth:`match_shard` (looked up when needed, so the reducer can be made
            before ``enable_parallelism`` runs).
    """

    def __init__(self, group: ProcessGroup | None = None, owner: Any = None) -> None:
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(
                "DistributedDecisionReducer needs an initialised torch.distributed process "
                "group: call torch.distributed.init_process_group() first"
            )
        self.group = group if group is not None else dist.group.WORLD
        self.owner = owner
        self._size = dist.get_world_size(self.group)

    @property
    def world_size(self) -> int:
        return self._size

    def mean_across_ranks(self, value: torch.Tensor) -> torch.Tensor:
        """The element-wise mean of ``value`` over the group (a functional all-reduce)."""
        if self._size == 1:
            return value
        from torch.distributed import _functional_collectives as funcol

        summed = funcol.all_reduce(value, "sum", self.group)
        return funcol.wait_tensor(summed) / self._size

    def match_shard(self, full: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
        """This rank's piece of ``full``, cut as the context-parallel plan cuts, along the dim
        ``local`` is shorter in; ``full`` unchanged when the shapes agree or no plan is on."""
        if full.shape == local.shape or full.dim() != local.dim():
            return full
        handle = find_cp_handle(self.owner)
        if handle is None:
            return full
        dim = next(
            d for d, (a, b) in enumerate(zip(full.shape, local.shape, strict=True)) if a != b
        )
        return handle.shard(full, dim)

    def __repr__(self) -> str:
        return f"DistributedDecisionReducer(world_size={self._size})"
