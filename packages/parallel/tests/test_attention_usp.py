"""USP (Ulysses 2 x Ring 2) on 4 gloo ranks vs one-process SDPA, p2p and allgather.

Uneven lengths are allowed with a ring here (cache-dit forbids ``ulysses_anything`` with
``ring_size > 1``). Relative error is ``(out - ref).abs().max() / ref.abs().max()``; float32
must agree to 1e-5.
"""

import dataclasses

import pytest
import torch

from ditkit_interfaces.parallel_config import ParallelismConfig
from ditkit_parallel.attention import context_parallel_attention
from ditkit_parallel.launch import run_distributed
from ditkit_parallel.mesh import CPMesh, build_cp_mesh

TOL = 1e-5

# name: (batch, Sq, Skv, heads, mask)
CASES = {
    "even": (2, 16, 16, 4, False),
    "uneven_seq": (2, 14, 14, 4, False),  # local lengths 4, 4, 3, 3: rows of 8 and 6
    "uneven_heads": (2, 16, 16, 5, False),
    "uneven_both": (2, 13, 13, 5, False),
    "one_head": (1, 13, 13, 1, False),  # one Ulysses column has no heads
    "cross_attention": (2, 13, 6, 3, False),
    "bool_mask": (2, 13, 13, 3, True),
}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def _run_case(mesh: CPMesh, case) -> float:
    batch, sq, skv, heads, masked = case
    g = torch.Generator().manual_seed(2)
    q = torch.randn(batch, sq, heads, 8, generator=g)
    k = torch.randn(batch, skv, heads, 8, generator=g)
    v = torch.randn(batch, skv, heads, 8, generator=g)
    mask = None
    if masked:
        mask = torch.rand(batch, skv, generator=g) > 0.35
        mask[:, 0] = True
    n, r = mesh.cp_size, mesh.cp_rank
    piece = [torch.tensor_split(t, n, dim=1)[r] for t in (q, k, v)]
    local_mask = None if mask is None else torch.tensor_split(mask, n, dim=1)[r]
    out = context_parallel_attention(*piece, local_mask, mesh=mesh)
    m = None if mask is None else mask[:, None, None, :]
    ref = torch.nn.functional.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=m
    ).transpose(1, 2)
    expect = torch.tensor_split(ref, n, dim=1)[r]
    assert out.shape == expect.shape
    return _rel(out, expect)


def _usp_worker(rank: int, world_size: int) -> dict:
    mesh = build_cp_mesh(ParallelismConfig(ulysses_size=2, ring_size=2))
    meshes = {"p2p": mesh, "allgather": dataclasses.replace(mesh, ring_rotate_method="allgather")}
    results: dict = {
        f"{label}/{name}": _run_case(m, case)
        for label, m in meshes.items()
        for name, case in CASES.items()
    }
    results["layout"] = (mesh.ring_rank, mesh.ulysses_rank, mesh.cp_rank)
    return results


@pytest.fixture(scope="module")
def ranks() -> list:
    return run_distributed(_usp_worker, 4)


def test_usp_matches_single_process_sdpa(ranks):
    for rank, results in enumerate(ranks):
        errors = {k: v for k, v in results.items() if "/" in k}
        assert len(errors) == 2 * len(CASES)
        bad = {k: v for k, v in errors.items() if not v < TOL}
        assert not bad, f"rank {rank}: relative error above {TOL}: {bad}"


def test_usp_grid_is_ulysses_inside_ring_across(ranks):
    assert [r["layout"] for r in ranks] == [(0, 0, 0), (0, 1, 1), (1, 0, 2), (1, 1, 3)]
