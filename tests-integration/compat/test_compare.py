"""The comparison rules of ``tools/compat/compare.py``, on hand-made results (fast, no torch)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _load_compare() -> ModuleType:
    path = ROOT / "tools" / "compat" / "compare.py"
    spec = importlib.util.spec_from_file_location("_ditkit_compat_compare_rules", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


compare = _load_compare()


def result(
    cached: list[int],
    diffs: dict[int, Any],
    cfg_cached: list[int] | None = None,
    cfg_diffs: dict[int, Any] | None = None,
    pruned_blocks: list[int] | None = None,
    **config: Any,
) -> dict[str, Any]:
    """A run_cached.py result with one CacheStats entry."""
    stats = {
        "cached_steps": cached,
        "residual_diffs": {str(k): v for k, v in diffs.items()},
        "cfg_cached_steps": cfg_cached or [],
        "cfg_residual_diffs": {str(k): v for k, v in (cfg_diffs or {}).items()},
        "pruned_blocks": pruned_blocks or [],
    }
    return {"config": {"residual_diff_threshold": 0.2, **config}, "stats": [stats], "error": None}


DIFFS = {8: 0.1, 9: 0.15, 10: 0.3, 11: 0.12}


def test_equal_decisions_pass() -> None:
    outcome = compare.compare_runs(result([8, 9, 11], DIFFS), result([8, 9, 11], DIFFS))
    assert outcome.ok and outcome.ambiguous == [] and outcome.horizon is None


def test_a_different_step_is_reported_by_branch() -> None:
    reference = result([8, 9], DIFFS, cfg_cached=[8], cfg_diffs=DIFFS)
    outcome = compare.compare_runs(reference, result([8, 9], DIFFS, cfg_cached=[8, 11]))
    assert len(outcome.problems) == 1
    assert outcome.problems[0].startswith("cfg_cached_steps differ")
    assert "only ditkit cached [11]" in outcome.problems[0]


def test_a_step_at_the_threshold_is_excluded_and_ends_the_comparison_if_flipped() -> None:
    near = {8: 0.1, 9: 0.2000004, 10: 0.3, 11: 0.12}
    reference = result([8, 9, 11], near)
    # ditkit computed step 9: its trajectory (so step 11) may differ from there on
    outcome = compare.compare_runs(reference, result([8], {**near, 9: 0.2000001}))
    assert outcome.ok and outcome.ambiguous == [9] and outcome.horizon == 9
    # the same decision at the ambiguous step: later steps are still compared
    outcome = compare.compare_runs(reference, result([8, 9], near))
    assert not outcome.ok and outcome.horizon is None and "[11]" in outcome.problems[0]


def test_allowed_steps_are_excluded() -> None:
    outcome = compare.compare_runs(result([8, 9], DIFFS), result([8], DIFFS), allowed_steps=[9])
    assert outcome.ok and outcome.allowed == [9]


def test_the_accumulated_cap_makes_steps_ambiguous() -> None:
    diffs = {8: 0.25, 9: 0.15, 10: 0.1}
    assert compare.ambiguous_steps(diffs, 0.2, accumulated_cap=0.4) == {10}
    assert compare.ambiguous_steps(diffs, 0.2, accumulated_cap=0.45) == set()
    assert compare.ambiguous_steps({8: [0.3, 0.2, -1.0]}, 0.2) == {8}  # sentinels ignored


def test_pruned_block_counts_are_compared() -> None:
    prune = {8: [0.02, 0.03], 9: [0.05, 0.06]}
    reference = result([8, 9], prune, pruned_blocks=[0] * 8 + [2, 2])
    outcome = compare.compare_runs(reference, result([8, 9], prune, pruned_blocks=[0] * 8 + [2, 1]))
    assert outcome.problems == [
        f"pruned_blocks differ at steps [9]: cache-dit {[0] * 8 + [2, 2]}, "
        f"ditkit {[0] * 8 + [2, 1]}"
    ]


def test_table_marks_cached_steps() -> None:
    text = compare.table(result([8], {8: 0.1}), result([], {8: 0.1}))
    assert "0.100000 C" in text and text.count(" C") == 1
