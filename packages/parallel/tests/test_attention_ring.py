"""Ring attention (p2p and allgather) on 4 gloo ranks and on two 2-rank sub-groups.

One spawned run covers every case. Relative error is ``(out - ref).abs().max() /
ref.abs().max()`` against single-process SDPA on the full sequence; float32 must agree to 1e-5.
"""

import dataclasses

import pytest
import torch
import torch.distributed as dist

from ditkit_interfaces.parallel_config import ParallelismConfig
from ditkit_parallel.attention import context_parallel_attention
from ditkit_parallel.launch import run_distributed
from ditkit_parallel.mesh import CPMesh, build_cp_mesh

TOL = 1e-5

# name: (batch, Sq, Skv, heads, kv_heads, mask kind)
CASES = {
    "even": (2, 16, 16, 4, 4, None),
    "uneven_seq": (2, 13, 13, 4, 4, None),
    "uneven_heads": (2, 16, 16, 5, 5, None),
    "uneven_both": (2, 13, 13, 5, 5, None),
    "cross_attention": (2, 13, 7, 3, 3, None),
    "fewer_tokens_than_ranks": (1, 3, 3, 2, 2, None),
    "gqa": (2, 13, 13, 4, 2, None),
    "bool_mask": (2, 13, 13, 3, 3, "bool"),
    "float_mask": (2, 11, 13, 3, 3, "float"),
    "masked_out_shard": (2, 12, 12, 3, 3, "tail"),
}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def _full_case(batch, sq, skv, heads, kv_heads, mask_kind, seed=1):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, sq, heads, 8, generator=g)
    k = torch.randn(batch, skv, kv_heads, 8, generator=g)
    v = torch.randn(batch, skv, kv_heads, 8, generator=g)
    mask = None
    if mask_kind is not None:
        keep = torch.rand(batch, skv, generator=g) > 0.35
        keep[:, 0] = True
        if mask_kind == "tail":  # the last ranks' whole shards are padding
            keep = torch.arange(skv)[None].expand(batch, -1) < skv // 3
        mask = keep
        if mask_kind == "float":
            mask = torch.zeros(batch, skv).masked_fill(~keep, float("-inf"))
    return q, k, v, mask


def _reference(q, k, v, mask):
    rep = q.shape[2] // k.shape[2]
    k, v = k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2)
    m = None if mask is None else mask[:, None, None, :]
    out = torch.nn.functional.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=m
    )
    return out.transpose(1, 2)


def _run_case(mesh: CPMesh, case) -> float:
    q, k, v, mask = _full_case(*case)
    n, r = mesh.cp_size, mesh.cp_rank
    piece = [torch.tensor_split(t, n, dim=1)[r] for t in (q, k, v)]
    local_mask = None if mask is None else torch.tensor_split(mask, n, dim=1)[r]
    out = context_parallel_attention(*piece, local_mask, mesh=mesh)
    expect = torch.tensor_split(_reference(q, k, v, mask), n, dim=1)[r]
    assert out.shape == expect.shape and out.dtype == q.dtype
    return _rel(out, expect) if expect.numel() else 0.0  # a rank with no queries


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
        errors = {k: v for k, v in results.items() if "/" in k}
        assert len(errors) == 5 * len(CASES)
        bad = {k: v for k, v in errors.items() if not v < TOL}
        assert not bad, f"rank {rank}: relative error above {TOL}: {bad}"


def test_ring_mesh_layout(ranks):
    assert [r["layout"] for r in ranks] == [(i, 1, "p2p") for i in range(4)]
