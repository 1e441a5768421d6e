"""Flux single blocks under async Ulysses run their MLP beside the all-to-alls, compiled too.

On 2 gloo ranks, tiny Flux with ``ulysses_async=True``: in the dynamo graph of a compiled single
block, the MLP (its GELU) comes after the Q/K/V all-to-alls are issued and before the first
wait, and a linear layer (the MLP's share of the output projection) comes after the output's
all-to-all is issued and before its wait. The results against one process are checked in
``test_context_parallel.py`` (the "async" rows), graph breaks and recompiles in
``test_context_compile.py``.

Inductor keeps that order only with ``reorder_for_peak_memory`` and ``reorder_for_locality``
off (``ditkit.set_compile_configs`` turns them off under ``torch.distributed``): by default it
moved each wait right after its all-to-all and the MLP after the waits. The second test reads
inductor's generated code with those options: the MLP's first matmul runs while Q, K and V are
in flight, and its GELU and second matmul while the output is.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ditkit_interfaces import ParallelismConfig
from ditkit_parallel.context import enable_context_parallel
from ditkit_parallel.context.single_blocks import FluxSingleBlockOverlap
from ditkit_parallel.launch import run_distributed
from ditkit_testing.parallel_cases import rel_error, tiny_flux_case

pytestmark = pytest.mark.slow  # spawned processes: in CI's `all` session

KEYS = ("all_to_all_single", "wait_tensor", "gelu", "linear")
KEEP_ORDER = {"reorder_for_peak_memory": False, "reorder_for_locality": False}


def _order(graph: torch.fx.Graph) -> list[str]:
    names = []
    for node in graph.nodes:
        target = str(getattr(node.target, "__name__", node.target))
        names += [key for key in KEYS if node.op == "call_function" and key in target]
    return names


def _worker(rank: int, world_size: int) -> dict[str, Any]:
    torch._dynamo.reset()
    model, kwargs = tiny_flux_case(heads=3, num_layers=1, num_single_layers=2)
    enable_context_parallel(model, ParallelismConfig(ulysses_size=2, ulysses_async=True))
    with torch.no_grad():
        eager = model(**kwargs, return_dict=False)[0]  # fills the length table
    graphs: list[torch.fx.GraphModule] = []

    def record(gm: torch.fx.GraphModule, example_inputs: list) -> torch.fx.GraphModule:
        graphs.append(gm)
        return gm

    block = model.single_transformer_blocks[1]
    block.compile(backend=record, fullgraph=True)
    with torch.no_grad():
        compiled = model(**kwargs, return_dict=False)[0]
    from torch._inductor.utils import run_and_get_code

    torch._dynamo.reset()
    block = model.single_transformer_blocks[0]
    block.compile(options=KEEP_ORDER, fullgraph=True)
    with torch.no_grad():
        inductor, codes = run_and_get_code(lambda: model(**kwargs, return_dict=False)[0])
    lines = []
    for code in codes:
        body = code[code.find("def call(") :]
        lines += [line.strip() for line in body.splitlines() if not line.strip().startswith("#")]
    return {
        "installed": isinstance(vars(block).get("forward"), FluxSingleBlockOverlap),
        "err": max(rel_error(compiled, eager), rel_error(inductor, eager)),
        "order": _order(graphs[0].graph),
        "code": lines,
    }


@pytest.fixture(scope="module")
def ranks() -> list[dict[str, Any]]:
    return run_distributed(_worker, 2)


def test_compiled_single_block_runs_its_mlp_beside_the_exchanges(ranks):
    for r in ranks:
        assert r["installed"] and r["err"] < 1e-5
        order = r["order"]
        issues = [i for i, name in enumerate(order) if name == "all_to_all_single"]
        waits = [i for i, name in enumerate(order) if name == "wait_tensor"]
        assert len(issues) == 4 and len(waits) == 4  # Q, K, V and the output
        gelu = order.index("gelu")
        assert issues[2] < gelu < waits[0]  # the MLP while Q, K and V travel
        # the output's exchange is issued, a linear runs, then it is waited for
        assert "linear" in order[issues[3] : waits[3]]


def test_inductor_keeps_the_overlap_with_the_graph_order_options(ranks):
    for r in ranks:
        code = r["code"]
        issues = [i for i, line in enumerate(code) if "all_to_all_single.default(" in line]
        waits = [i for i, line in enumerate(code) if "wait_tensor.default(" in line]
        assert len(issues) == 4 and len(waits) == 4
        matmuls = [i for i, line in enumerate(code) if "mm(" in line]
        gelu = [i for i, line in enumerate(code) if "gelu" in line and "(" in line]
        # proj_mlp's matmul while Q, K and V travel; GELU and a matmul while the output does
        assert any(issues[2] < i < waits[0] for i in matmuls), code
        assert any(issues[3] < i < waits[3] for i in gelu), code
        assert any(issues[3] < i < waits[3] for i in matmuls), code
