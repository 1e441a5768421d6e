"""ditkit caches the same steps as cache-dit 1.5.3 on the same tiny pipelines and configs.

Each library runs the whole matrix below in its own subprocess (``tools/compat/run_cached.py``,
started by ``tools/compat/harness.py``); cache-dit is installed with ``pip install --no-deps
--target build/compat/cache-dit-1.5.3`` on first use (or taken from ``$DITKIT_CACHE_DIT_PATH``)
and never enters the environment. The cached-step lists of ``summary()`` must be equal, except
steps whose diff lies within 1e-6 of a limit (see ``tools/compat/compare.py``) and the deliberate
fixes listed in ``ALLOWED_DIFFERENCES``.

The thresholds were chosen from cache-dit's measured diffs (``README.md`` in this folder) so
that every case caches some steps and computes others after warmup, with every recorded diff at
least 1e-3 away from the threshold.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "compat"
STEPS = 28
# cache-dit's registry runs CFG as a separate transformer call for these (QwenImage, Wan)
SEPARATE_CFG = {"flux": False, "qwen_image": True, "wan": True}

pytestmark = pytest.mark.slow


def _load(name: str) -> ModuleType:
    """Import ``tools/compat/<name>.py`` under a private module name."""
    spec = importlib.util.spec_from_file_location(f"_ditkit_compat_{name}", TOOLS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


harness = _load("harness")
compare = _load("compare")


@dataclasses.dataclass(frozen=True)
class Case:
    """One pipeline and config, run once under each library."""

    id: str
    pipeline: str
    config: dict[str, Any]

    def spec(self) -> dict[str, Any]:
        """The run as ``run_cached.py --matrix`` takes it."""
        return dict(id=self.id, pipeline=self.pipeline, steps=STEPS, seed=0, config=self.config)


F1B0 = {"Fn_compute_blocks": 1, "Bn_compute_blocks": 0}
CASES = [
    # plain DBCache, no CFG (Flux embeds guidance: one transformer call per step)
    Case("flux-F1B0", "flux", {**F1B0, "residual_diff_threshold": 0.22}),
    Case("flux-F3B0", "flux", {"Fn_compute_blocks": 3, "residual_diff_threshold": 0.2}),
    # the limits: each one binds (without it, more steps would be cached)
    Case(
        "flux-F1B0-max-cached",
        "flux",
        {**F1B0, "residual_diff_threshold": 0.25, "max_cached_steps": 5},
    ),
    Case(
        "flux-F1B0-max-continuous",
        "flux",
        {**F1B0, "residual_diff_threshold": 0.38, "max_continuous_cached_steps": 2},
    ),
    Case(
        "flux-F1B0-max-accumulated",
        "flux",
        {
            **F1B0,
            "residual_diff_threshold": 0.25,
            "max_accumulated_residual_diff_threshold": 1.2,
        },
    ),
    # warmup steps 0, 2, 4, 6 only: steps 1, 3, 5, 7 may be cached; Bn > 0
    Case(
        "flux-F2B1-warmup-interval",
        "flux",
        {
            "Fn_compute_blocks": 2,
            "Bn_compute_blocks": 1,
            "residual_diff_threshold": 0.22,
            "max_warmup_steps": 8,
            "warmup_interval": 2,
        },
    ),
    # steps computation masks from each library's own steps_mask (compared too)
    Case(
        "flux-F1B0-mask-static",
        "flux",
        {
            **F1B0,
            "residual_diff_threshold": 0.2,
            "steps_computation_mask": {"mask_policy": "medium", "total_steps": STEPS},
            "steps_computation_policy": "static",
        },
    ),
    Case(
        "flux-F1B0-mask-dynamic",
        "flux",
        {
            **F1B0,
            "residual_diff_threshold": 0.28,
            "steps_computation_mask": {"mask_policy": "fast", "total_steps": STEPS},
            "steps_computation_policy": "dynamic",
        },
    ),
    Case(
        "wan-F1B1-mask-static",
        "wan",
        {
            "Fn_compute_blocks": 1,
            "Bn_compute_blocks": 1,
            "residual_diff_threshold": 0.08,
            "steps_computation_mask": {"mask_policy": "slow", "total_steps": STEPS},
            "steps_computation_policy": "static",
        },
    ),
    # separate CFG (auto-detected): each branch its own diff, or the CFG branch reuses the
    # conditional one's; at 0.25 the separate branches cache different steps
    Case("qwen_image-F1B0-cfg-separate", "qwen_image", {**F1B0, "residual_diff_threshold": 0.25}),
    Case(
        "qwen_image-F1B0-cfg-shared",
        "qwen_image",
        {**F1B0, "residual_diff_threshold": 0.25, "cfg_diff_compute_separate": False},
    ),
    Case(
        "qwen_image-F2B1-cfg-compute-first",
        "qwen_image",
        {
            "Fn_compute_blocks": 2,
            "Bn_compute_blocks": 1,
            "residual_diff_threshold": 0.3,
            "cfg_compute_first": True,
            "cfg_diff_compute_separate": False,
            "max_continuous_cached_steps": 2,
        },
    ),
    Case("wan-F1B0-cfg-separate", "wan", {**F1B0, "residual_diff_threshold": 0.08}),
    Case(
        "wan-F2B0-cfg-shared-max-continuous",
        "wan",
        {
            "Fn_compute_blocks": 2,
            "Bn_compute_blocks": 0,
            "residual_diff_threshold": 0.1,
            "cfg_diff_compute_separate": False,
            "max_continuous_cached_steps": 3,
        },
    ),
    # DBPrune: blocks 1-5 prunable except block 3
    Case(
        "flux-prune-F1B0",
        "flux",
        {
            "cache_type": "DBPrune",
            **F1B0,
            "residual_diff_threshold": 0.09,
            "non_prune_block_ids": [3],
        },
    ),
]
CASE_IDS = [case.id for case in CASES]


@dataclasses.dataclass(frozen=True)
class Allowed:
    """A deliberate difference from cache-dit 1.5.3, recorded in docs/compat.md."""

    compat_entry: str  # text of the docs/compat.md row that records the fix
    steps: tuple[int, ...] = ()  # denoising steps whose decision may differ
    from_step: int | None = None  # the trajectory may differ from this step on


# Deliberate fixes, by case id. Add an entry only together with its docs/compat.md row, naming
# that row in `compat_entry` (the test checks that the text is there). Empty: no deliberate
# difference in the caching decisions is known yet.
ALLOWED_DIFFERENCES: dict[str, Allowed] = {}


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Both libraries' results for the whole matrix (cache-dit runs each config once)."""
    try:
        cache_dit_dir = harness.ensure_cache_dit()
    except RuntimeError as error:
        pytest.fail(f"cache-dit 1.5.3 is needed as the reference and could not be set up: {error}")
    workdir = tmp_path_factory.mktemp("cache-dit-parity")
    try:
        return harness.run_both([case.spec() for case in CASES], workdir, cache_dit_dir)
    except RuntimeError as error:  # a side could not even import its library, or hung
        pytest.fail(str(error), pytrace=False)


def _result(documents: dict[str, dict[str, Any]], library: str, case_id: str) -> dict[str, Any]:
    """One library's result for one case."""
    return documents[library]["runs"][case_id]


def _warmup_steps(config: dict[str, Any], mask: list[int] | None) -> set[int]:
    """cache-dit's warmup steps: range(0, max_warmup_steps, warmup_interval), capped by a mask."""
    limit = config.get("max_warmup_steps", 8)
    if mask is not None:
        leading = next((i for i, m in enumerate(mask) if m != 1), len(mask))
        limit = min(limit, leading)
    return set(range(0, limit, config.get("warmup_interval", 1)))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_cache_dit_caches_and_computes(documents: dict[str, Any], case: Case) -> None:
    """The reference side is meaningful: each branch caches some steps and computes others."""
    result = _result(documents, "cache_dit", case.id)
    assert result["error"] is None, result["error"]["traceback"]
    stats = result["stats"][-1]
    assert stats["enable_separate_cfg"] is SEPARATE_CFG[case.pipeline]
    warmup = _warmup_steps(case.config, result["steps_computation_mask"])
    branches = ("", "cfg_") if SEPARATE_CFG[case.pipeline] else ("",)
    for prefix in branches:
        cached = set(stats[f"{prefix}cached_steps"])
        computed = set(range(STEPS)) - warmup - cached
        assert cached and computed, f"{prefix}cached_steps {sorted(cached)}: choose a new threshold"
        assert not cached & warmup
    for name, _ in compare.BRANCHES:
        diffs = compare.branch(result, name).diffs
        threshold = case.config["residual_diff_threshold"]
        cap = case.config.get("max_accumulated_residual_diff_threshold")
        near = compare.ambiguous_steps(diffs, threshold, cap, tolerance=1e-3)
        assert not near, f"{name} diffs within 1e-3 of a limit at {sorted(near)}"


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_ditkit_caches_the_same_steps(documents: dict[str, Any], case: Case) -> None:
    """ditkit's cached steps (and CFG cached steps, and pruned blocks) equal cache-dit's."""
    reference = _result(documents, "cache_dit", case.id)
    candidate = _result(documents, "ditkit", case.id)
    assert reference["error"] is None, reference["error"]["traceback"]
    error = candidate["error"]
    if error is not None and error["type"] == "MissingComponentError":
        pytest.fail(
            f"ditkit raised MissingComponentError at '{error['stage']}': {error['message']}\n"
            "ditkit's cache engine (packages/cache, issue #3) has not landed (fully) yet, so "
            "this case cannot be compared with cache-dit 1.5.3. This test fails until it has.",
            pytrace=False,
        )
    assert error is None, f"ditkit failed at {error['stage']}:\n{error['traceback']}"
    assert candidate["steps_computation_mask"] == reference["steps_computation_mask"]
    allowed = ALLOWED_DIFFERENCES.get(case.id)
    steps: set[int] = set()
    if allowed is not None:
        steps = set(allowed.steps)
        if allowed.from_step is not None:
            steps |= set(range(allowed.from_step, STEPS))
    outcome = compare.compare_runs(reference, candidate, case.id, allowed_steps=steps)
    notes = f"ambiguous steps {outcome.ambiguous}, allowed {outcome.allowed}"
    assert outcome.ok, "\n".join([*outcome.problems, notes, compare.table(reference, candidate)])


def test_allowed_differences_are_documented() -> None:
    """Every allow-list entry names a known case and a row that docs/compat.md really has."""
    compat = (ROOT / "docs" / "compat.md").read_text()
    for case_id, allowed in ALLOWED_DIFFERENCES.items():
        assert case_id in CASE_IDS
        assert allowed.compat_entry and allowed.compat_entry in compat, allowed
