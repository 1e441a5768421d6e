"""The demo (README command 1) runs uncached and cached and reports numbers that add up."""

import json
import subprocess
import sys


def test_demo_runs_and_writes_consistent_numbers(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ditkit",
            "demo",
            "--steps",
            "12",
            "--repeats",
            "1",
            "--output",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "ditkit demo" in result.stdout
    data = json.loads((tmp_path / "demo.json").read_text())
    assert data["steps"] == 12
    assert data["pipeline"] == "FluxPipeline"
    rows = {row["config"]: row for row in data["rows"]}
    assert list(rows) == ["uncached", "DBCache static fast mask", "DBCache F1B0 dynamic"]
    uncached, static, dynamic = rows.values()
    assert uncached["cached_steps"] == [] and uncached["speedup"] == 1.0
    assert uncached["psnr_db"] == float("inf") and uncached["max_abs_diff"] == 0.0
    assert static["computed"] == 7  # steps_mask("fast", 12): 7 of 12 computed
    assert static["computed"] + len(static["cached_steps"]) == 12
    assert dynamic["cached_steps"]
    for row in (static, dynamic):
        assert 0 < row["psnr_db"] < float("inf")
        assert row["max_abs_diff"] > 0
        assert abs(row["speedup"] - uncached["seconds"] / row["seconds"]) < 0.02
