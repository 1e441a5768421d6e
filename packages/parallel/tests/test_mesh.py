"""``build_cp_mesh`` and ``CPMesh``: the (ring, ulysses) grid, its sub-groups, early errors."""

import pytest
import torch.distributed as dist

from ditkit_interfaces.errors import ConfigError
from ditkit_interfaces.parallel_config import ParallelismConfig
from ditkit_parallel.launch import run_distributed
from ditkit_parallel.mesh import CPMesh, build_cp_mesh, cp_grid_position


def test_grid_position_puts_ulysses_inside_and_ring_across():
    assert [cp_grid_position(r, 2) for r in range(4)] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [cp_grid_position(r, 4) for r in range(4)] == [(0, r) for r in range(4)]


def test_build_without_a_process_group_says_how_to_start_one():
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="init_process_group"):
        build_cp_mesh(ParallelismConfig(ulysses_size=2))


def test_cp_mesh_checks_itself():
    assert CPMesh.single().cp_size == 1
    with pytest.raises(ConfigError, match="ring_rotate_method='ring'"):
        CPMesh(None, 1, 0, None, 1, 0, None, 1, 0, ring_rotate_method="ring")
    with pytest.raises(ConfigError, match=r"ulysses_size \* ring_size = 2"):
        CPMesh(None, 2, 0, None, 1, 0, None, 4, 0)
    with pytest.raises(ValueError, match="ulysses_size=2 needs a ulysses_group"):
        CPMesh(None, 2, 0, None, 1, 0, None, 2, 0)


def _members(group) -> list[int] | None:
    return None if group is None else dist.get_process_group_ranks(group)


def _mesh_worker(rank: int, world_size: int) -> dict:
    out: dict = {}
    usp = build_cp_mesh(ParallelismConfig(ulysses_size=2, ring_size=2))
    out["usp"] = (
        usp.ring_rank,
        usp.ulysses_rank,
        _members(usp.ulysses_group),
        _members(usp.ring_group),
        usp.cp_size,
    )
    uly = build_cp_mesh(ParallelismConfig(ulysses_size=4, ulysses_float8=True))
    out["ulysses"] = (uly.ulysses_rank, uly.ring_group, _members(uly.ulysses_group), uly.float8)
    ring = build_cp_mesh(ParallelismConfig(ring_size=4), ring_rotate_method="allgather")
    out["ring"] = (ring.ring_rank, ring.ulysses_group, ring.ring_rotate_method)
    errors = []
    for cfg in (ParallelismConfig(ulysses_size=3), ParallelismConfig(ulysses_size=2, ring_size=4)):
        try:
            build_cp_mesh(cfg)
            errors.append("no error")
        except ConfigError as exc:
            errors.append(str(exc))
    try:
        build_cp_mesh(ParallelismConfig(ring_size=4), ring_rotate_method="ring")
        errors.append("no error")
    except ConfigError as exc:
        errors.append(str(exc))
    out["errors"] = errors
    return out


@pytest.fixture(scope="module")
def ranks() -> list:
    return run_distributed(_mesh_worker, 4)


def test_usp_2x2_grid_and_sub_groups(ranks):
    assert [r["usp"] for r in ranks] == [
        (0, 0, [0, 1], [0, 2], 4),
        (0, 1, [0, 1], [1, 3], 4),
        (1, 0, [2, 3], [0, 2], 4),
        (1, 1, [2, 3], [1, 3], 4),
    ]


def test_single_kind_meshes_reuse_the_whole_group(ranks):
    assert [r["ulysses"] for r in ranks] == [(i, None, [0, 1, 2, 3], True) for i in range(4)]
    assert [r["ring"] for r in ranks] == [(i, None, "allgather") for i in range(4)]


def test_sizes_that_cannot_work_raise_naming_the_field_and_the_fix(ranks):
    wrong_product, too_many, bad_method = ranks[0]["errors"]
    assert "ulysses_size * ring_size=3" in wrong_product
    assert "context-parallel group (4 ranks)" in wrong_product and "Fix:" in wrong_product
    assert "ulysses_size * ring_size=8" in too_many
    assert "ring_rotate_method='ring'" in bad_method
