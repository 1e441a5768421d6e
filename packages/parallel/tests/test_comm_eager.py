"""Eager collectives go straight to ``torch.distributed``; compiled ones stay functional.

On 2 gloo ranks: an eager all-to-all returns a plain tensor whose ``Work`` :func:`wait` finds
through any view of it; no ``Work`` is left behind after a forward in any Ulysses variant, Ring
or TP; and the Python work of parallelism stays small. Measured on a tiny Flux forward
(Python calls per rank, one process: 2 390): Ulysses-2 11 554 with functional collectives
(about 380 calls per all-to-all) and 3 949 now; TP-2 7 830 (functional all-reduces) and 2 810
now. The bound below is 2× one process. The compiled path (functional collectives traced into
the graph, no graph break) is ``test_context_compile.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.distributed as dist

from ditkit_interfaces import ParallelismConfig
from ditkit_parallel import comm, disable_parallelism, enable_parallelism
from ditkit_parallel.launch import run_distributed
from ditkit_testing.parallel_cases import python_calls, rel_error, sample_of, tiny_flux_case

pytestmark = pytest.mark.slow  # spawned processes: CI's all-packages session

TOL = 1e-5
MODES = {
    "ulysses": {"ulysses_size": 2},
    "ulysses_async": {"ulysses_size": 2, "ulysses_async": True},
    "ulysses_float8": {"ulysses_size": 2, "ulysses_float8": True},
    "ulysses_chunks": {"ulysses_size": 2, "ulysses_head_chunks": 2},
    "ring": {"ring_size": 2},
    "tp": {"tp_size": 2},
}


def _worker(rank: int, world: int) -> dict[str, Any]:
    group = dist.group.WORLD
    out: dict[str, Any] = {}
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5) + 100 * rank
    heads = comm.all_to_all_seq_to_heads(x, [3, 3], rank, group)
    out["plain_tensor"] = type(heads) is torch.Tensor
    out["pending_before"] = len(comm._PENDING)
    ready = comm.wait(heads.narrow(1, 0, 3))  # a view of a view finds the same Work
    out["pending_after"] = len(comm._PENDING)
    expect = torch.cat([x.narrow(2, 2 * rank, 2) - 100 * rank + 100 * r for r in range(2)], 1)
    out["values"] = torch.equal(comm.wait(heads), expect) and ready.shape[1] == 3

    for name, sizes in MODES.items():
        model, kwargs = tiny_flux_case(4, (5, 5), 7, num_layers=2, num_single_layers=2)
        single = sample_of(model, kwargs)
        single_calls = python_calls(model, kwargs)
        enable_parallelism(model, ParallelismConfig(**sizes))
        result = sample_of(model, kwargs)  # the first forward also learns the lengths
        calls = python_calls(model, kwargs)
        out[name] = {
            "err": rel_error(result, single),
            "pending": len(comm._PENDING),
            "calls": (calls, single_calls),
        }
        disable_parallelism(model)
    return out


@pytest.fixture(scope="module")
def ranks() -> list[dict[str, Any]]:
    return run_distributed(_worker, 2)


def test_eager_all_to_all_is_a_plain_tensor_waited_through_views(ranks):
    for result in ranks:
        assert result["plain_tensor"] and result["values"]
        assert (result["pending_before"], result["pending_after"]) == (1, 0)


@pytest.mark.parametrize("mode", MODES)
def test_no_work_is_left_pending_and_the_output_is_one_process(ranks, mode):
    for result in ranks:
        row = result[mode]
        assert row["pending"] == 0
        assert row["err"] < (0.1 if mode == "ulysses_float8" else TOL), row


@pytest.mark.parametrize("mode", ["ulysses", "ring", "tp"])
def test_context_parallel_python_work_stays_near_one_process(ranks, mode):
    calls, single_calls = ranks[0][mode]["calls"]
    assert calls < 2 * single_calls, (calls, single_calls)
