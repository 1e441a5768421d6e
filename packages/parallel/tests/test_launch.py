"""The local multi-process launcher the parallel tests (and users' CPU checks) rely on."""

import pytest
import torch
import torch.distributed as dist

from ditkit_parallel.launch import DistributedRunError, run_distributed


def _sum_of_ranks(rank: int, world_size: int, scale: float) -> float:
    value = torch.tensor([float(rank)])
    dist.all_reduce(value)
    return float(value.item()) * scale


def _fail_on_rank_one(rank: int, world_size: int) -> int:
    if rank == 1:
        raise ValueError("rank one refuses")
    return rank


def test_every_rank_returns_in_rank_order():
    assert run_distributed(_sum_of_ranks, 3, 2.0) == [6.0, 6.0, 6.0]


def test_a_failing_rank_raises_with_its_traceback():
    with pytest.raises(DistributedRunError, match="rank one refuses"):
        run_distributed(_fail_on_rank_one, 2)


def test_world_size_must_be_positive():
    with pytest.raises(ValueError, match="world_size"):
        run_distributed(_sum_of_ranks, 0, 1.0)
