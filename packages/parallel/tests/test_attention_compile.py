"""The Ulysses path under ``torch.compile`` on CPU/gloo gives the eager result.

With a ``seq_key`` whose lengths are already known, the hit path has no graph break, so even
``fullgraph=True`` compiles (the all-to-alls are functional collectives in the graph). Relative
error is ``(a - b).abs().max() / b.abs().max()``; compiled vs eager must agree to 1e-5.
"""

import pytest
import torch

from ditkit_interfaces.parallel_config import ParallelismConfig
from ditkit_parallel.attention import context_parallel_attention
from ditkit_parallel.launch import run_distributed
from ditkit_parallel.mesh import build_cp_mesh
from ditkit_testing.parallel_cases import rel_error


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
