"""Ulysses attention on 4 gloo ranks (and on two 2-rank sub-groups of them) vs one-process SDPA,
plain, in head chunks (``ulysses_head_chunks=2``) and with the output exchange overlapped
(``ulysses_overlap_output=True``).

One spawned run covers every case; the test asserts each rank's error. Relative error is
``(out - ref).abs().max() / ref.abs().max()`` with ``ref`` the single-process SDPA on the full
sequence, sliced to the rank's queries; float32 must agree to 1e-5.
"""

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

TOL = 1e-5

# name: (batch, Sq, Skv, heads, kv_heads, mask kind; "bool4d" passes it as (B, 1, 1, S))
CASES = {
    **UNEVEN_ATTENTION_CASES,
    "fewer_heads_than_ranks": (1, 13, 13, 3, 3, None),
    "fewer_tokens_than_ranks": (1, 3, 3, 4, 4, None),
    "cross_attention": (2, 13, 7, 5, 5, None),
    "bool_mask_2d": (2, 13, 13, 5, 5, "bool"),
    "bool_mask_4d": (2, 13, 11, 4, 4, "bool4d"),
    "float_mask": (2, 13, 13, 4, 4, "float"),
}


def _run_case(mesh: CPMesh, case: tuple, **kwargs) -> float:
    return attention_case_error(
        context_parallel_attention, case, mesh.cp_size, mesh.cp_rank, mesh=mesh, **kwargs
    )


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


# head chunks (ulysses_head_chunks=2): 8 heads split on 4 ranks x 2 chunks and on 2 x 2; the
# 5-head case cannot be chunked and takes the plain path
CHUNKED_CASES = {
    "uneven_seq": (2, 13, 13, 8, 8, None),
    "cross_attention": (2, 13, 7, 8, 8, None),
    "bool_mask": (2, 13, 11, 8, 8, "bool"),
    "float_mask": (1, 14, 14, 8, 8, "float"),
    "not_divisible": (2, 13, 13, 5, 5, None),
}


def _ulysses_worker(rank: int, world_size: int) -> dict:
    results: dict = {}
    world = build_cp_mesh(ParallelismConfig(ulysses_size=4))
    halves = [dist.new_group([0, 1]), dist.new_group([2, 3])]
    half = build_cp_mesh(ParallelismConfig(ulysses_size=2), group=halves[rank // 2])
    for label, mesh in (("u4", world), ("u2", half)):
        for name, case in CASES.items():
            results[f"{label}/{name}"] = _run_case(mesh, case)
    chunked = {
        "c4": build_cp_mesh(ParallelismConfig(ulysses_size=4, ulysses_head_chunks=2)),
        "c2": build_cp_mesh(
            ParallelismConfig(ulysses_size=2, ulysses_head_chunks=2), group=halves[rank // 2]
        ),
    }
    from ditkit_parallel.attention import ulysses

    taken = []
    plain_chunked = ulysses.chunked_head_shards
    ulysses.chunked_head_shards = lambda *a, **k: taken.append(1) or plain_chunked(*a, **k)
    try:
        for label, mesh in chunked.items():
            for name, case in CHUNKED_CASES.items():
                before = len(taken)
                results[f"{label}/{name}"] = _run_case(mesh, case)
                results[f"chunked_path {label}:{name}"] = len(taken) > before
    finally:
        ulysses.chunked_head_shards = plain_chunked
    overlapped = {
        "o4": build_cp_mesh(ParallelismConfig(ulysses_size=4, ulysses_overlap_output=True)),
        "o2": build_cp_mesh(
            ParallelismConfig(ulysses_size=2, ulysses_overlap_output=True), group=halves[rank // 2]
        ),
    }
    plain_overlap = ulysses.attend_overlapping_output
    ulysses.attend_overlapping_output = lambda *a, **k: taken.append(1) or plain_overlap(*a, **k)
    try:
        for label, mesh in overlapped.items():
            for name, case in CASES.items():
                before = len(taken)
                results[f"{label}/{name}"] = _run_case(mesh, case)
                results[f"overlap_path {label}:{name}"] = len(taken) > before
    finally:
        ulysses.attend_overlapping_output = plain_overlap
    results["exchanges"] = _length_exchanges(world)
    results["layout"] = (world.ulysses_rank, world.ring_size, half.cp_rank, half.ulysses_size)
    return results


@pytest.fixture(scope="module")
def ranks() -> list:
    return run_distributed(_ulysses_worker, 4)


def test_ulysses_matches_single_process_sdpa_in_every_case(ranks):
    for rank, results in enumerate(ranks):
        count, bad = case_errors(results, TOL)
        assert count == 4 * len(CASES) + 2 * len(CHUNKED_CASES)
        assert not bad, f"rank {rank}: relative error above {TOL}: {bad}"
        assert results["layout"] == (rank, 1, rank % 2, 2)


def test_ulysses_length_exchange_happens_once_per_key_and_every_call_without_one(ranks):
    for results in ranks:
        ex = results["exchanges"]
        assert max(ex["keyed_errors"]) < TOL and max(ex["unkeyed_errors"]) < TOL
        assert ex["keyed_exchanges"] == 1  # three calls, one all-gather
        assert "first seen with local lengths" in ex["stale"]
        assert ex["unkeyed_exchanges"] == 3


def test_head_chunks_take_the_chunked_path_when_heads_divide(ranks):
    for results in ranks:
        for label in ("c4", "c2"):
            for name in CHUNKED_CASES:
                assert results[f"chunked_path {label}:{name}"] == (name != "not_divisible")


def test_output_overlap_runs_unless_a_rank_would_hold_no_heads(ranks):
    for results in ranks:
        for label, size in (("o4", 4), ("o2", 2)):
            for name, case in CASES.items():
                assert results[f"overlap_path {label}:{name}"] == (case[3] >= size), name
