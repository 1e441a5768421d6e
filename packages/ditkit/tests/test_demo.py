"""The demo (README command 1) runs a tiny pipeline and reports numbers that add up."""

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
            "3",
            "--repeats",
            "2",
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
    assert data["steps"] == 3
    assert data["pipeline"] == "FluxPipeline"
    assert len(data["runs_s"]) == 2
    assert all(r > 0 for r in data["runs_s"])
    assert min(data["runs_s"]) <= data["median_s"] <= max(data["runs_s"])
    assert abs(data["ms_per_step"] - 1000 * data["median_s"] / 3) < 0.05
    assert data["output_shape"][0] == 1
