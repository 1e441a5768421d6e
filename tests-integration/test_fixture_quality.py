"""``tools/bench/fixture_quality.py`` stays honest and runnable: a few configs, 8 steps, ditkit.

The script's own functions run a small matrix on the trained fixture (through
``tools/compat/run_cached.py`` in a subprocess, as the full benchmark does) and score it; the
checks are what ``docs/benchmarks/quality.md`` relies on: the step counts add up, the uncached
reference is the uncached output, a static mask caches exactly its zeros, and a higher threshold
caches no fewer steps and loses no less PSNR. The report writers run on the result too.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
STEPS = 8
THRESHOLDS = (0.1, 0.3, 0.6)
DIGITS = list(range(10))

pytestmark = pytest.mark.slow


def _load() -> ModuleType:
    path = ROOT / "tools" / "bench" / "fixture_quality.py"
    spec = importlib.util.spec_from_file_location("_ditkit_fixture_quality", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fq = _load()


def _configs() -> list[Any]:
    configs = [fq.Config("uncached", "uncached", None)]
    for rdt in THRESHOLDS:
        cache = fq.dbcache(1, 0, rdt, max_warmup_steps=2)
        configs.append(fq.Config(f"F1B0 rdt={rdt}", "F1B0", cache))
    static = fq.dbcache(1, 0, 0.1, max_warmup_steps=2, steps_computation_policy="static")
    configs.append(fq.Config("SCM static fast", "SCM static", static, "fast"))
    return configs


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("fixture-quality")
    configs = _configs()
    documents = fq.run_matrix(
        configs, [STEPS], DIGITS, workdir, libraries=("ditkit",), repeats=1, timeout=600
    )
    rows = fq.evaluate(documents, configs, [STEPS], DIGITS)
    return {
        "documents": documents,
        "rows": {row["key"]: row for row in rows},
        "fronts": fq.fronts(rows),
        "all_rows": rows,
    }


def test_every_run_succeeds_and_steps_add_up(result: dict[str, Any]) -> None:
    rows = result["rows"]
    assert set(rows) == {c.key for c in _configs()}
    for key, row in rows.items():
        assert row["error"] is None, (key, row["error"])
        assert row["computed"] + row["cached"] == STEPS, key
        assert row["computed"] >= 2, key  # the two warmup steps are always computed
        assert row["wall_s"] > 0 and len(row["wall_s_runs"]) == 1
        assert 0.0 <= row["accuracy"] <= 1.0
    images = Path(result["documents"]["ditkit"]["images"])
    assert images.name == "ditkit.images.safetensors" and images.is_file()


def test_uncached_is_its_own_reference(result: dict[str, Any]) -> None:
    row = result["rows"]["uncached"]
    assert row["identical"] and row["cached"] == 0
    assert row["psnr_db"] == fq.PSNR_CAP and row["ssim"] == pytest.approx(1.0)
    assert row["accuracy"] >= 0.9  # the model card's bar for 28 steps holds at 8 here too


def test_static_mask_caches_exactly_its_zeros(result: dict[str, Any]) -> None:
    import ditkit

    mask = ditkit.steps_mask(mask_policy="fast", total_steps=STEPS)
    zeros = [step for step, bit in enumerate(mask) if bit == 0]
    row = result["rows"]["SCM static fast"]
    assert zeros and row["cached_steps"] == zeros
    assert not row["identical"] and row["psnr_db"] < fq.PSNR_CAP


def test_higher_threshold_caches_more_and_loses_psnr(result: dict[str, Any]) -> None:
    rows = [result["rows"][f"F1B0 rdt={rdt}"] for rdt in THRESHOLDS]
    computed = [row["computed"] for row in rows]
    psnr = [row["psnr_db"] for row in rows]
    assert computed == sorted(computed, reverse=True), computed
    assert computed[0] > computed[-1], computed  # the sweep is not flat
    assert psnr == sorted(psnr, reverse=True), psnr
    assert psnr[-1] < psnr[0]
    for lower, higher in itertools.pairwise(rows):
        assert set(lower["cached_steps"]) <= set(higher["cached_steps"])


def test_front_is_non_dominated(result: dict[str, Any]) -> None:
    front = result["fronts"]["ditkit"][str(STEPS)]
    rows = result["rows"]
    assert front and "uncached" not in front
    points = [(rows[k]["computed"], rows[k]["psnr_db"]) for k in front]
    assert points == sorted(points) and len({c for c, _ in points}) == len(points)
    for key, row in rows.items():
        if key in front or key == "uncached":
            continue
        assert any(c <= row["computed"] and p >= row["psnr_db"] for c, p in points), key


def test_reports_render_and_keep_hand_written_text(result: dict[str, Any], tmp_path: Path) -> None:
    full = {
        "meta": {
            "cpu": "test CPU",
            "machine": "x86_64",
            "python": "3",
            "torch": "t",
            "diffusers": "d",
            "date": "today",
            "commit": "abc",
            "working_tree_modified": False,
            "command": "python x",
        },
        "setup": {
            "steps": [STEPS],
            "digits": DIGITS,
            "seed": 0,
            "repeats": 1,
            "warmup": 2,
            "psnr_cap_db": fq.PSNR_CAP,
            "libraries": ["ditkit"],
        },
        "rows": result["all_rows"],
        "fronts": result["fronts"],
        "uncached": [],
        "comparison": {"pairs": [], "envelope": []},
    }
    page = tmp_path / "quality.md"
    text = fq.write_markdown(full, page)
    assert "| F1B0 rdt=0.3 |" in text and "test CPU" in text
    page.write_text(text.replace("(written by hand", "MY ANALYSIS (written by hand"))
    again = fq.write_markdown(full, page)
    assert "MY ANALYSIS" in again  # kept, and the generated blocks replaced, not appended
    assert again.count("| F1B0 rdt=0.3 |") == text.count("| F1B0 rdt=0.3 |")
    assert again.count("<!-- begin generated: tables -->") == 1
    image = fq.plot(full, tmp_path / "quality.png")
    assert image.size[0] > 300 and (tmp_path / "quality.png").stat().st_size > 1000


def test_pareto_and_library_comparison_rules() -> None:
    assert fq.pareto_keys([("a", 10, 30.0), ("b", 12, 29.0), ("c", 12, 35.0)]) == ["a", "c"]
    assert fq.pareto_keys([("a", 5, math.inf), ("b", 3, 20.0)]) == ["b", "a"]

    def row(lib: str, key: str, computed: int, db: float, sha: str) -> dict[str, Any]:
        cached = list(range(STEPS - computed))
        return dict(library=lib, steps=STEPS, key=key, error=None, computed=computed,
                    cached_steps=cached, psnr_db=db, sha256=sha)  # fmt: skip

    rows = [
        row("ditkit", "x", 5, 40.0, "s1"),
        row("cache_dit", "x", 5, 40.0, "s1"),
        row("ditkit", "y", 4, 35.0, "s2"),
        row("cache_dit", "y", 4, 36.0, "s3"),
        row("ditkit", "z", 3, 30.0, "s4"),
        row("cache_dit", "z", 2, 25.0, "s5"),
    ]
    comparison = fq.compare_libraries(rows)
    pairs = {p["key"]: p for p in comparison["pairs"]}
    assert pairs["x"]["holds"] and pairs["x"]["bit_identical"]
    assert pairs["y"]["holds"] is False and pairs["y"]["delta_db"] == -1.0
    assert pairs["z"]["holds"] is None  # different computed steps: not comparable
    envelope = {e["computed"]: e["holds"] for e in comparison["envelope"]}
    assert envelope == {2: None, 3: True, 4: False, 5: True}


def test_forecast_check_scores_every_static_mask() -> None:
    rows = fq.forecast_check([STEPS], DIGITS[:2])
    assert [row["policy"] for row in rows] == list(fq.POLICIES)
    for row in rows:
        assert row["mask"].count("0") > 0 and len(row["mask"]) == STEPS
        assert set(row["error"]) == {"reuse", "TaylorSeer o1", "o2 ditkit", "o2 cache-dit"}
        assert all(0.0 < value < 10.0 for value in row["error"].values()), row


def test_forecast_only_refresh_is_named_in_the_table() -> None:
    import fixture_quality_report as report  # beside the script, on its path once loaded

    row = {"steps": 8, "policy": "fast", "mask": "11110100", "error": {"reuse": 0.5}}
    plain = "\n".join(report.forecast_lines({"forecast_check": [row], "meta": {}}))
    assert "recomputed" not in plain and "| 8 | fast `11110100` | 0.500 |" in plain
    at = {"date": "d", "commit": "0123456789abcdef", "working_tree_modified": False}
    meta = {"forecast_check": at}
    refreshed = "\n".join(report.forecast_lines({"forecast_check": [row], "meta": meta}))
    assert "recomputed on d at `0123456789ab` (`--forecast-only`)" in refreshed
