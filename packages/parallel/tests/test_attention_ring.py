"""Ring attention (p2p and allgather) on 4 gloo ranks and on two 2-rank sub-groups.

One spawned run covers every case. Relative error is ``(out - ref).abs().max() /
ref.abs().max()`` against single-process SDPA on the full sequence; float32 must agree to 1e-5.
"""

import dataclasses

import pytest
import torch.distributed as dist

from ditkit_interfaces.parallel_config import ParallelismConfig
from ditkit_parallel.attention import context_parallel_attention
from ditkit_parallel.launch import run_distributed
from ditkit_parallel.mesh import CPMesh, build_cp_mesh
from ditkit_testing.parallel_cases import (
    UNEVEN_ATTENTION_CASES,
    attention_case_error,
    case_errors,
)

# several spawned processes each: in CI's `all` session (slow), not the package session
pytestmark = pytest.mark.slow

TOL = 1e-5

# name: (batch, Sq, Skv, heads, kv_heads, mask kind)
CASES = {
    **UNEVEN_ATTENTION_CASES,
    "cross_attention": (2, 13, 7, 3, 3, None),
    "fewer_tokens_than_ranks": (1, 3, 3, 2, 2, None),
    "bool_mask": (2, 13, 13, 3, 3, "bool"),
    "float_mask": (2, 11, 13, 3, 3, "float"),
    "masked_out_shard": (2, 12, 12, 3, 3, "tail"),  # the last shards are padding
}


def _run_case(mesh: CPMesh, case: tuple) -> float:
    return attention_case_error(
        context_parallel_attention, case, mesh.cp_size, mesh.cp_rank, seed=1, mesh=mesh
    )


def _ring_worker(rank: int, world_size: int) -> dict:
    results: dict = {}
    halves = [dist.new_group([0, 1]), dist.new_group([2, 3])]
    meshes = {}
    for method in ("p2p", "allgather"):
        cfg = ParallelismConfig(ring_size=4)
        meshes[f"r4_{method}"] = build_cp_mesh(cfg, ring_rotate_method=method)
        cfg = ParallelismConfig(ring_size=2)
        meshes[f"r2_{method}"] = build_cp_mesh(
            cfg, group=halves[rank // 2], ring_rotate_method=method
        )
    meshes["r4_p2p_no_fp32"] = dataclasses.replace(meshes["r4_p2p"], ring_convert_to_fp32=False)
    for label, mesh in meshes.items():
        for name, case in CASES.items():
            results[f"{label}/{name}"] = _run_case(mesh, case)
    world = meshes["r4_p2p"]
    results["layout"] = (world.ring_rank, world.ulysses_size, world.ring_rotate_method)
    return results


@pytest.fixture(scope="module")
def ranks() -> list:
    return run_distributed(_ring_worker, 4)


def test_ring_p2p_and_allgather_match_single_process_sdpa(ranks):
    for rank, results in enumerate(ranks):
        count, bad = case_errors(results, TOL)
        assert count == 5 * len(CASES)
        assert not bad, f"rank {rank}: relative error above {TOL}: {bad}"


def test_ring_mesh_layout(ranks):
    assert [r["layout"] for r in ranks] == [(i, 1, "p2p") for i in range(4)]
