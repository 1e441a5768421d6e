"""``enable_parallelism``: dispatch by sizes, hybrid CP x TP, and early errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ditkit_interfaces import ConfigError, ParallelismConfig
from ditkit_parallel import enable_parallelism, transformers_of
from ditkit_parallel.launch import run_distributed
from ditkit_testing.parallel_cases import rel_error, tiny_flux_case

# several spawned processes each: in CI's `all` session (slow), not the package session
pytestmark = pytest.mark.slow

TOL = 1e-5


def _flux() -> tuple[torch.nn.Module, dict[str, Any]]:
    return tiny_flux_case(heads=4)


def _forward(model: torch.nn.Module, kwargs: dict[str, Any]) -> torch.Tensor:
    with torch.no_grad():
        return model(**kwargs, return_dict=False)[0]


def _hybrid(rank: int, world: int) -> dict[str, Any]:
    model, kwargs = _flux()
    single = _forward(model, kwargs)
    config = ParallelismConfig(ulysses_size=2, tp_size=2)
    enable_parallelism(model, config)
    out = _forward(model, kwargs)
    errors = {}
    try:
        enable_parallelism(_flux()[0], ParallelismConfig(ulysses_size=2))  # 2 != 4 processes
    except ConfigError as error:
        errors["sizes"] = str(error)
    return {
        "err": rel_error(out, single),
        "cp": getattr(model, "_ditkit_cp_handle", None) is not None,
        "tp": getattr(model, "_tp_shards", None) is not None,
        "errors": errors,
    }


@pytest.fixture(scope="module")
def hybrid() -> list[dict[str, Any]]:
    return run_distributed(_hybrid, 4)


def test_hybrid_ulysses2_x_tp2_equals_one_process(hybrid):
    for rank in hybrid:
        assert rank["cp"] and rank["tp"]
        assert rank["err"] < TOL, rank["err"]


def test_sizes_that_do_not_match_the_processes_fail_naming_the_fix(hybrid):
    for rank in hybrid:
        message = rank["errors"]["sizes"]
        assert "ulysses_size * ring_size * tp_size" in message and "4" in message


def test_no_process_group_fails_before_anything_changes():
    model, _ = _flux()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError, match="init_process_group"):
        enable_parallelism(model, ParallelismConfig(ulysses_size=2))
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert not getattr(model, "_is_parallelized", False)


def test_a_config_without_any_size_above_one_is_refused():
    with pytest.raises(ConfigError, match="above 1"):
        enable_parallelism(torch.nn.Linear(2, 2), ParallelismConfig())


def test_transformers_of_finds_both_transformers_of_a_pipeline():
    class Pipe:
        transformer = torch.nn.Linear(1, 1)
        transformer_2 = torch.nn.Linear(1, 1)

    class Adapter:
        transformer = torch.nn.Linear(1, 1)

    pipe = Pipe()
    assert transformers_of(pipe) == [pipe.transformer, pipe.transformer_2]
    adapter = Adapter()
    assert transformers_of(adapter) == [adapter.transformer]
    module = torch.nn.Linear(1, 1)
    assert transformers_of(module) == [module]
