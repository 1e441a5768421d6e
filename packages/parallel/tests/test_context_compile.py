"""Regional ``torch.compile`` of a context-parallel transformer: whole graphs, no recompiles.

On 2 gloo ranks, tiny Flux (2 double + 2 single blocks, 3 heads, 25 + 7 tokens: uneven) under
Ulysses-2, async QKV and Ring-2 (P2P rotation, which compiles as the all-gather one), every
block compiled with ``block.compile()`` as users do:

- the first forward of the layout runs eagerly (it fills the length table), so dynamo never
  traces the length exchange: 0 graph breaks, and no exchange in later forwards;
- blocks of one kind share one graph: as many unique graphs as the same model compiled on one
  process (before, each routed attention had its own site key: one compile per block);
- the compiled output equals the eager parallel output (and one process) to 1e-5 relative;
- a new layout (another text length) runs its first forward eagerly again.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ditkit_interfaces import ParallelismConfig
from ditkit_parallel.context import disable_context_parallel, enable_context_parallel
from ditkit_parallel.launch import run_distributed
from ditkit_testing.parallel_cases import rel_error, tiny_flux_case, unzero

# spawned processes: in CI's `all` session (slow), not the package session
pytestmark = pytest.mark.slow

TOL = 1e-5


def _compile_blocks(model: torch.nn.Module) -> None:
    for block in [*model.transformer_blocks, *model.single_transformer_blocks]:
        block.compile()


def _forward(model: torch.nn.Module, kwargs: dict[str, Any]) -> torch.Tensor:
    with torch.no_grad():
        return model(**kwargs, return_dict=False)[0]


def _graphs_and_breaks(model: torch.nn.Module, kwargs: dict[str, Any]) -> tuple[Any, int, int]:
    """A forward, the unique graphs dynamo compiled during it and its graph breaks."""
    from torch._dynamo.utils import counters

    counters.clear()
    out = _forward(model, kwargs)
    return out, counters["stats"]["unique_graphs"], sum(counters["graph_break"].values())


def _worker(rank: int, world_size: int) -> dict[str, Any]:
    torch._dynamo.reset()
    results: dict[str, Any] = {}
    case = dict(heads=3, num_layers=2, num_single_layers=2)
    model, kwargs = tiny_flux_case(**case)
    single = _forward(model, kwargs)
    _compile_blocks(model)
    _, results["single_graphs"], _ = _graphs_and_breaks(model, kwargs)

    modes = {
        "ulysses": {"ulysses_size": 2},
        "async": {"ulysses_size": 2, "ulysses_async": True},
        "ring_p2p": {"ring_size": 2},  # traced as the all-gather rotation
        "overlap": {"ulysses_size": 2, "ulysses_overlap_output": True},
        "async_overlap": {"ulysses_size": 2, "ulysses_async": True, "ulysses_overlap_output": True},
        "copy_engine": {"ulysses_size": 2, "ulysses_copy_engine": True},
        "async_copy_engine": {
            "ulysses_size": 2,
            "ulysses_async": True,
            "ulysses_copy_engine": True,
        },
    }
    for name, options in modes.items():
        torch._dynamo.reset()
        model, kwargs = tiny_flux_case(**case)
        handle = enable_context_parallel(model, ParallelismConfig(**options))
        eager = _forward(model, kwargs)
        disable_context_parallel(model)
        handle = enable_context_parallel(model, ParallelismConfig(**options))
        _compile_blocks(model)
        first = _forward(model, kwargs)  # a new layout: runs eagerly, fills the table
        exchanges = handle.mesh.seq_lens.exchanges
        compiled, graphs, breaks = _graphs_and_breaks(model, kwargs)
        again, graphs_again, _ = _graphs_and_breaks(model, kwargs)
        steady_exchanges = handle.mesh.seq_lens.exchanges - exchanges
        longer = dict(kwargs, encoder_hidden_states=kwargs["encoder_hidden_states"][:, :6])
        longer["txt_ids"] = kwargs["txt_ids"][:6]
        eager_before = handle.eager_first.eager_forwards
        _forward(model, longer)
        results[name] = {
            "err_eager_vs_single": rel_error(eager, single),
            "err_first": rel_error(first, eager),
            "err_compiled": max(rel_error(compiled, eager), rel_error(again, eager)),
            "graphs": graphs,
            "graphs_again": graphs_again,
            "breaks": breaks,
            "exchanges_after_first": steady_exchanges,
            "eager_forwards": eager_before,
            "eager_new_layout": handle.eager_first.eager_forwards - eager_before,
        }
        disable_context_parallel(model)

    # Wan's plan splits inside the blocks: nothing is recorded before they run, so the layout
    # key needs the input shapes; a new resolution must run its first forward eagerly too
    from ditkit_testing import build_tiny_transformer

    torch._dynamo.reset()
    wan = unzero(build_tiny_transformer("wan", seed=0))
    handle = enable_context_parallel(wan, ParallelismConfig(ulysses_size=2))
    for block in wan.blocks:
        block.compile()
    text = torch.randn(1, 7, 32)
    shapes = [(1, 16, 1, 6, 10), (1, 16, 1, 6, 10), (1, 16, 1, 8, 10), (1, 16, 1, 8, 10)]
    counts = []
    for shape in shapes:
        call = dict(hidden_states=torch.randn(shape), encoder_hidden_states=text)
        _forward(wan, dict(call, timestep=torch.tensor([0.6])))
        counts.append(handle.eager_first.eager_forwards)
    results["wan_eager_forwards"] = counts
    disable_context_parallel(wan)
    return results


@pytest.fixture(scope="module")
def ranks() -> list[dict[str, Any]]:
    return run_distributed(_worker, 2)


MODES = ["ulysses", "async", "ring_p2p", "overlap", "async_overlap", "copy_engine",
         "async_copy_engine"]  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
def test_regional_compile_is_whole_graphs_and_exact(ranks, mode):
    for results in ranks:
        r = results[mode]
        assert r["err_eager_vs_single"] < TOL
        assert r["err_first"] < TOL
        assert r["err_compiled"] < TOL
        assert r["breaks"] == 0
        assert r["graphs"] == results["single_graphs"]  # one graph per block kind
        assert r["graphs_again"] == 0  # no recompile in steady state
        assert r["exchanges_after_first"] == 0


@pytest.mark.parametrize("mode", MODES)
def test_first_forward_of_each_layout_runs_eagerly(ranks, mode):
    for results in ranks:
        assert results[mode]["eager_forwards"] == 1  # the first forward after compiling
        assert results[mode]["eager_new_layout"] == 1


def test_a_new_resolution_runs_eagerly_when_the_plan_splits_inside_blocks(ranks):
    for results in ranks:
        assert results["wan_eager_forwards"] == [1, 1, 2, 2]
