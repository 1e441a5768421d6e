"""``ditkit.enable_cuda_graphs`` over context and tensor parallelism (2 gloo ranks, CPU).

Each rank swaps the CUDA graph for the CPU stand-in of ``packages/ditkit/tests`` (outputs hold
NaN until a replay recomputes them from the static inputs), enables parallelism, then graphs,
and runs a short denoising loop. The graphed parallel loop must equal the single-process loop
(relative error below 1e-5), replay from the third call on, and leave the model exactly as
parallelism alone left it once graphs are disabled. The real capture under NCCL is measured by
``tools/bench/gpu_parallel.py --phases cudagraph`` on the GPU machine.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils._pytree import tree_flatten

from ditkit_parallel.launch import run_distributed
from ditkit_testing.parallel_cases import rel_error, tiny_flux_case

TOL = 1e-5
STEPS = 6
CASES = {
    "ulysses_uneven": {"ulysses_size": 2},
    "ring": {"ring_size": 2},
    "tp": {"tp_size": 2},
}


class _FakeGraph:
    def __init__(self, pool: object) -> None:
        self.call = self.output = None

    def capture(self, call):
        self.call = call
        self.output = call()
        for leaf in tree_flatten(self.output)[0]:
            if isinstance(leaf, torch.Tensor):
                leaf.fill_(float("nan"))
        return self.output

    def replay(self) -> None:
        fresh = tree_flatten(self.call())[0]
        for kept, value in zip(tree_flatten(self.output)[0], fresh, strict=True):
            kept.copy_(value)


def _denoise(model: torch.nn.Module, kwargs: dict[str, Any]) -> torch.Tensor:
    latents = kwargs["hidden_states"].clone()
    with torch.no_grad():
        for i in range(STEPS):
            call = dict(kwargs, hidden_states=latents, timestep=torch.tensor([1.0 - i / STEPS]))
            latents = latents - model(**call, return_dict=False)[0] / STEPS
    return latents


def _worker(rank: int, world: int) -> dict[str, Any]:
    import ditkit
    from ditkit import cuda_graphs
    from ditkit_interfaces import ParallelismConfig
    from ditkit_parallel import disable_parallelism, enable_parallelism

    cuda_graphs._CudaGraph = _FakeGraph
    cuda_graphs._new_pool = object
    cuda_graphs._graphable_device = lambda tensor: True
    results = {}
    for name, sizes in CASES.items():
        model, kwargs = tiny_flux_case(3, (5, 5), 7)
        single = _denoise(model, kwargs)
        enable_parallelism(model, ParallelismConfig(**sizes))
        parallel = _denoise(model, kwargs)
        ditkit.enable_cuda_graphs(model)
        graphed = _denoise(model, kwargs)
        stats = ditkit.cuda_graph_stats(model)
        ditkit.disable_cuda_graphs(model)
        after = _denoise(model, kwargs)
        disable_parallelism(model)
        results[name] = {
            "err": rel_error(graphed, single),
            "same_as_parallel": torch.equal(graphed, parallel),
            "restored": torch.equal(after, parallel),
            "stats": stats,
        }
    return results


@pytest.fixture(scope="module")
def ranks() -> list[dict[str, Any]]:
    return run_distributed(_worker, 2)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_graphed_parallel_loop_equals_one_process_and_restores(ranks, case):
    for result in (r[case] for r in ranks):
        assert result["err"] < TOL, result
        assert result["same_as_parallel"] and result["restored"]
        assert result["stats"] == {
            "graphs": 1,
            "replays": STEPS - 2,
            "eager_calls": 0,
            "failed": [],
        }
