"""USP (Ulysses 2 x Ring 2) on 4 gloo ranks vs one-process SDPA, p2p and allgather.

Uneven lengths are allowed with a ring here (cache-dit forbids ``ulysses_anything`` with
``ring_size > 1``). Relative error is ``(out - ref).abs().max() / ref.abs().max()``; float32
must agree to 1e-5.
"""

import dataclasses

import pytest

from ditkit_interfaces.parallel_config import ParallelismConfig
from ditkit_parallel.attention import context_parallel_attention
from ditkit_parallel.launch import run_distributed
from ditkit_parallel.mesh import CPMesh, build_cp_mesh
from ditkit_testing.parallel_cases import attention_case_error, case_errors

# several spawned processes each: in CI's `all` session (slow), not the package session
pytestmark = pytest.mark.slow

TOL = 1e-5

# name: (batch, Sq, Skv, heads, kv_heads, mask kind)
CASES = {
    "even": (2, 16, 16, 4, 4, None),
    "uneven_seq": (2, 14, 14, 4, 4, None),  # local lengths 4, 4, 3, 3: rows of 8 and 6
    "uneven_heads": (2, 16, 16, 5, 5, None),
    "uneven_both": (2, 13, 13, 5, 5, None),
    "one_head": (1, 13, 13, 1, 1, None),  # one Ulysses column has no heads
    "cross_attention": (2, 13, 6, 3, 3, None),
    "bool_mask": (2, 13, 13, 3, 3, "bool"),
}


def _run_case(mesh: CPMesh, case: tuple) -> float:
    return attention_case_error(
        context_parallel_attention, case, mesh.cp_size, mesh.cp_rank, seed=2, mesh=mesh
    )


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
        count, bad = case_errors(results, TOL)
        assert count == 2 * len(CASES)
        assert not bad, f"rank {rank}: relative error above {TOL}: {bad}"


def test_usp_grid_is_ulysses_inside_ring_across(ranks):
    assert [r["layout"] for r in ranks] == [(0, 0, 0), (0, 1, 1), (1, 0, 2), (1, 1, 3)]
