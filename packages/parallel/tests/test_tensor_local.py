"""Eager tensor parallelism runs on local shards; compiled, it runs the DTensor path.

On 2 gloo ranks, tiny Flux (3 heads: padded to 4, uneven) under TP-2: the eager forward never
enters :meth:`LocalLinearForward._dtensor` and equals one process to 1e-5 relative (float32);
with every block compiled (``block.compile()``) the DTensor path is what dynamo traces (the
graphs measured on the GPU), with the same result; and the eager path runs far fewer Python
calls than the DTensor one it replaces (the reason it exists).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ditkit_interfaces import ParallelismConfig
from ditkit_parallel.launch import run_distributed
from ditkit_parallel.tensor import enable_tensor_parallel
from ditkit_parallel.tensor.local import LocalLinearForward
from ditkit_testing.parallel_cases import python_calls, rel_error, sample_of, tiny_flux_case

# spawned processes: in CI's `all` session (slow), not the package session
pytestmark = pytest.mark.slow

TOL = 1e-5


def _worker(rank: int, world_size: int) -> dict[str, Any]:
    torch._dynamo.reset()
    case = dict(heads=3, num_layers=2, num_single_layers=2)
    model, kwargs = tiny_flux_case(**case)
    single = sample_of(model, kwargs)
    enable_tensor_parallel(model, ParallelismConfig(tp_size=2))
    forwards = [m.forward for m in model.modules() if isinstance(m.forward, LocalLinearForward)]
    dtensor_calls = []
    for local in forwards:
        original = local._dtensor
        local._dtensor = lambda x, original=original: dtensor_calls.append(1) or original(x)
    eager = sample_of(model, kwargs)
    eager_dtensor_calls = len(dtensor_calls)
    local_calls = python_calls(model, kwargs)
    # the DTensor path itself, eagerly (what parallelize_module ran), for the call count
    dtensor_path = [
        (m, m.forward) for m in model.modules() if isinstance(m.forward, LocalLinearForward)
    ]
    for module, local in dtensor_path:
        module.forward = local._dtensor
    reference_calls = python_calls(model, kwargs)
    dtensor_eager = sample_of(model, kwargs)
    for module, local in dtensor_path:
        module.forward = local
    for block in [*model.transformer_blocks, *model.single_transformer_blocks]:
        block.compile()
    before_compile = len(dtensor_calls)
    compiled = sample_of(model, kwargs)
    return {
        "sharded_linears": len(forwards),
        "err_eager": rel_error(eager, single),
        "err_dtensor_eager": rel_error(dtensor_eager, single),
        "err_compiled": rel_error(compiled, single),
        "eager_dtensor_calls": eager_dtensor_calls,
        "compiled_dtensor_calls": len(dtensor_calls) - before_compile,
        "python_calls": (local_calls, reference_calls),
    }


@pytest.fixture(scope="module")
def ranks() -> list[dict[str, Any]]:
    return run_distributed(_worker, 2)


def test_eager_tp_runs_on_local_shards_and_is_exact(ranks):
    for r in ranks:
        assert r["sharded_linears"] > 0
        assert r["eager_dtensor_calls"] == 0
        assert r["err_eager"] < TOL
        assert r["err_dtensor_eager"] < TOL


def test_compiled_tp_traces_the_dtensor_path_and_is_exact(ranks):
    for r in ranks:
        assert r["compiled_dtensor_calls"] > 0
        assert r["err_compiled"] < TOL


def test_eager_local_path_makes_far_fewer_python_calls(ranks):
    for r in ranks:
        local, dtensor = r["python_calls"]
        assert local * 3 < dtensor, (local, dtensor)
