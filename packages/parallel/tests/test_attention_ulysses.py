"""Ulysses attention on 4 gloo ranks (and on two 2-rank sub-groups of them) vs one-process SDPA.

One spawned run covers every case; the test asserts each rank's error. Relative error is
``(out - ref).abs().max() / ref.abs().max()`` with ``ref`` the single-process SDPA on the full
sequence, sliced to the rank's queries; float32 must agree to 1e-5.
"""

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
    "fewer_heads_than_ranks": (1, 13, 13, 3, 3, None),
    "fewer_tokens_than_ranks": (1, 3, 3, 4, 4, None),
    "cross_attention": (2, 13, 7, 5, 5, None),
    "gqa": (2, 13, 13, 4, 2, None),
    "bool_mask_2d": (2, 13, 13, 5, 5, "bool2d"),
    "bool_mask_4d": (2, 13, 11, 4, 4, "bool4d"),
    "float_mask": (2, 13, 13, 4, 4, "float"),
}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def _full_case(batch, sq, skv, heads, kv_heads, mask_kind, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, sq, heads, 8, generator=g)
    k = torch.randn(batch, skv, kv_heads, 8, generator=g)
    v = torch.randn(batch, skv, kv_heads, 8, generator=g)
    mask = None
    if mask_kind is not None:
        keep = torch.rand(batch, skv, generator=g) > 0.35
        keep[:, 0] = True
        if mask_kind == "float":
            mask = torch.zeros(batch, skv).masked_fill(~keep, float("-inf"))
        else:
            mask = keep
    return q, k, v, mask


def _reference(q, k, v, mask):
    rep = q.shape[2] // k.shape[2]
    k, v = k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2)
    m = None if mask is None else mask[:, None, None, :]
    out = torch.nn.functional.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=m
    )
    return out.transpose(1, 2)


def _run_case(mesh: CPMesh, case, **kwargs) -> float:
    q, k, v, mask = _full_case(*case)
    n, r = mesh.cp_size, mesh.cp_rank
    piece = [torch.tensor_split(t, n, dim=1)[r] for t in (q, k, v)]
    local_mask = None if mask is None else torch.tensor_split(mask, n, dim=1)[r]
    if case[-1] == "bool4d":
        local_mask = local_mask[:, None, None, :]
    out = context_parallel_attention(*piece, local_mask, mesh=mesh, **kwargs)
    expect = torch.tensor_split(_reference(q, k, v, mask), n, dim=1)[r]
    assert out.shape == expect.shape, (out.shape, expect.shape)
    return _rel(out, expect) if expect.numel() else float((out != 0).any())


def _length_exchanges(mesh: CPMesh) -> dict:
    table = mesh.seq_lens
    table.reset()
    start = table.exchanges
    keyed = [_run_case(mesh, CASES["uneven_both"], seq_key="layer0") for _ in range(3)]
    after_keyed = table.exchanges - start
    try:  # the same key with other local lengths (every rank's changes): a clear error
        _run_case(mesh, (2, 20, 20, 4, 4, None), seq_key="layer0")
        stale = "no error"
    except RuntimeError as exc:
        stale = str(exc)
    # no key: the local length of rank 0 is 4 for both 16 and 13 tokens; must not deadlock
    start = table.exchanges
    unkeyed = [_run_case(mesh, CASES[name]) for name in ("even", "uneven_seq", "even")]
    return {
        "keyed_errors": keyed,
        "keyed_exchanges": after_keyed,
        "stale": stale,
        "unkeyed_errors": unkeyed,
        "unkeyed_exchanges": table.exchanges - start,
    }


def _ulysses_worker(rank: int, world_size: int) -> dict:
    results: dict = {}
    world = build_cp_mesh(ParallelismConfig(ulysses_size=4))
    halves = [dist.new_group([0, 1]), dist.new_group([2, 3])]
    half = build_cp_mesh(ParallelismConfig(ulysses_size=2), group=halves[rank // 2])
    for label, mesh in (("u4", world), ("u2", half)):
        for name, case in CASES.items():
            results[f"{label}/{name}"] = _run_case(mesh, case)
    results["exchanges"] = _length_exchanges(world)
    results["layout"] = (world.ulysses_rank, world.ring_size, half.cp_rank, half.ulysses_size)
    return results


@pytest.fixture(scope="module")
def ranks() -> list:
    return run_distributed(_ulysses_worker, 4)


def test_ulysses_matches_single_process_sdpa_in_every_case(ranks):
    for rank, results in enumerate(ranks):
        errors = {k: v for k, v in results.items() if "/" in k}
        assert len(errors) == 2 * len(CASES)
        bad = {k: v for k, v in errors.items() if not v < TOL}
        assert not bad, f"rank {rank}: relative error above {TOL}: {bad}"
        assert results["layout"] == (rank, 1, rank % 2, 2)


def test_ulysses_length_exchange_happens_once_per_key_and_every_call_without_one(ranks):
    for results in ranks:
        ex = results["exchanges"]
        assert max(ex["keyed_errors"]) < TOL and max(ex["unkeyed_errors"]) < TOL
        assert ex["keyed_exchanges"] == 1  # three calls, one all-gather
        assert "first seen with local lengths" in ex["stale"]
        assert ex["unkeyed_exchanges"] == 3
