"""The Ulysses path under ``torch.compile`` on CPU/gloo gives the eager result.

With a ``seq_key`` whose lengths are already known, the hit path has no graph break, so even
``fullgraph=True`` compiles (the all-to-alls are functional collectives in the graph). Relative
error is ``(a - b).abs().max() / b.abs().max()``; compiled vs eager must agree to 1e-5.

The graph waits for an all-to-all where the code asks for its result, not right after issuing
it: with two head chunks all six Q/K/V exchanges are in flight before the first wait, and
chunk 0's output exchange is issued before chunk 1's attention (what lets them overlap). The
copy-engine exchange's custom ops (``ulysses_copy_engine``) sit in the same places, and inductor
keeps their in-flight buffers (same result as eager).
"""

import pytest
import torch

from ditkit_interfaces.parallel_config import ParallelismConfig
from ditkit_parallel.attention import context_parallel_attention
from ditkit_parallel.launch import run_distributed
from ditkit_parallel.mesh import build_cp_mesh
from ditkit_testing.parallel_cases import rel_error


def _op_order(graph: torch.fx.Graph) -> list[str]:
    """The collective ops and attention calls of a dynamo graph, in graph order."""
    names = []
    # the copy-engine exchange's custom ops count as the issue and the wait
    keys = {"all_to_all_single": "all_to_all_single", "ce_all_to_all": "all_to_all_single",
            "wait_tensor": "wait_tensor", "ce_wait": "wait_tensor",
            "scaled_dot_product_attention": "scaled_dot_product_attention"}  # fmt: skip
    for node in graph.nodes:
        target = str(getattr(node.target, "__name__", node.target))
        for key, name in keys.items():
            if node.op == "call_function" and key in target:
                names.append(name)
    return names


def _chunked_order_worker(rank: int, world_size: int, **options) -> dict:
    torch._dynamo.reset()
    mesh = build_cp_mesh(
        ParallelismConfig(ulysses_size=2, **(options or {"ulysses_head_chunks": 2}))
    )
    g = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(1, 12, 8, 4, generator=g) for _ in range(3))
    q, k, v = (torch.tensor_split(t, 2, dim=1)[rank] for t in (q, k, v))
    graphs: list[torch.fx.GraphModule] = []

    def record(gm: torch.fx.GraphModule, example_inputs: list) -> torch.fx.GraphModule:
        graphs.append(gm)
        return gm

    def attend(q, k, v):
        return context_parallel_attention(q, k, v, mesh=mesh, seq_key="chunked") * 1.0

    eager = attend(q, k, v)  # also fills the length table for this key
    traced = torch.compile(attend, backend=record, fullgraph=True)(q, k, v)
    inductor = torch.compile(attend, fullgraph=True)(q, k, v)  # reuses no in-flight buffer
    err = max(rel_error(traced, eager), rel_error(inductor, eager))
    return {"err": err, "order": _op_order(graphs[0].graph)}


def _compile_worker(rank: int, world_size: int) -> dict:
    torch._dynamo.reset()
    mesh = build_cp_mesh(ParallelismConfig(ulysses_size=2))
    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(2, 13, 5, 8, generator=g) for _ in range(3))
    q, k, v = (torch.tensor_split(t, 2, dim=1)[rank] for t in (q, k, v))

    def attend(q, k, v, key=None):
        return context_parallel_attention(q, k, v, mesh=mesh, seq_key=key) * 1.0

    eager = attend(q, k, v)
    loose = torch.compile(attend, fullgraph=False)(q, k, v)
    attend(q, k, v, "layer")  # fills the length table for this key
    exchanges = mesh.seq_lens.exchanges
    full = torch.compile(attend, fullgraph=True)
    strict = [full(q, k, v, "layer") for _ in range(2)]
    return {
        "loose": rel_error(loose, eager),
        "strict": max(rel_error(s, eager) for s in strict),
        "strict_exchanges": mesh.seq_lens.exchanges - exchanges,
    }


@pytest.fixture(scope="module")
def ranks() -> list:
    return run_distributed(_compile_worker, 2)


def test_compiled_ulysses_matches_eager(ranks):
    for results in ranks:
        assert results["loose"] < 1e-5
        assert results["strict"] < 1e-5


def test_compiled_keyed_calls_exchange_no_lengths(ranks):
    assert [r["strict_exchanges"] for r in ranks] == [0, 0]


@pytest.fixture(scope="module")
def chunked() -> list:
    return run_distributed(_chunked_order_worker, 2)


def _copy_engine_order_worker(rank: int, world_size: int) -> dict:
    return _chunked_order_worker(rank, world_size, ulysses_head_chunks=2, ulysses_copy_engine=True)


@pytest.fixture(scope="module")
def copy_engine_chunked() -> list:
    return run_distributed(_copy_engine_order_worker, 2)


@pytest.mark.parametrize("exchange", ["nccl_or_gloo", "copy_engine"])
def test_compiled_waits_sit_where_results_are_needed(chunked, copy_engine_chunked, exchange):
    for results in chunked if exchange == "nccl_or_gloo" else copy_engine_chunked:
        assert results["err"] < 1e-5
        order = results["order"]
        assert order.count("all_to_all_single") == 8  # (Q, K, V, O) x 2 chunks
        assert order.index("wait_tensor") == 6  # all Q/K/V exchanges issued first
        first_attn = order.index("scaled_dot_product_attention")
        second_attn = order.index("scaled_dot_product_attention", first_attn + 1)
        # chunk 0's output exchange is issued before chunk 1 is attended, and not waited yet
        assert "all_to_all_single" in order[first_attn:second_attn]
        assert order[second_attn:].count("wait_tensor") >= 2


def _overlap_order_worker(rank: int, world_size: int) -> dict:
    return _chunked_order_worker(rank, world_size, ulysses_overlap_output=True)


@pytest.fixture(scope="module")
def overlapped() -> list:
    return run_distributed(_overlap_order_worker, 2)


def test_compiled_output_exchange_overlaps_the_own_queries(overlapped):
    for results in overlapped:
        assert results["err"] < 1e-5
        order = results["order"]
        first_attn = order.index("scaled_dot_product_attention")
        second_attn = order.index("scaled_dot_product_attention", first_attn + 1)
        # the other ranks' rows are attended, their output exchange starts, then the own rows
        assert order[first_attn:second_attn].count("all_to_all_single") == 1
        assert "wait_tensor" not in order[first_attn:second_attn]
        assert order[second_attn:].count("wait_tensor") == 1
