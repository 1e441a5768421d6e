"""``tools/bench/gpu_parallel.py`` stays runnable: its ``--tiny`` CPU mode on 4 gloo ranks.

GPU time is scarce and every device session starts from these scripts, so a bench that broke on
the CPU would cost a session's device minutes to find out. One torchrun launch per model runs
the modes the 4-GPU drivers use (tiny fp32 Flux and Wan, eager, no cache and the static-mask
cache) and the JSON it writes must say what the docs rely on: the fp32 equivalence check passed,
every row ran on every rank, the parallel outputs equal one process's to 1e-5 relative, and all
ranks computed the same steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "tools" / "bench" / "gpu_parallel.py"
MODES = ["single", "ulysses", "usp", "ring_allgather", "tp_ulysses"]

pytestmark = pytest.mark.slow


def _launch(tmp_path: Path, model: str, size: str, ranks: int = 4, modes=MODES) -> dict:
    out = tmp_path / f"{model}.json"
    command = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={ranks}", str(BENCH),
        "--tiny", "--model", model, "--sizes", size, "--modes", *modes,
        "--cache", "none", "static_fast", "--steps", "4", "--repeats", "1", "--json", str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize(("model", "size"), [("flux", "128"), ("wan", "9x64x64")])
def test_tiny_bench_rows_are_complete_and_exact(tmp_path: Path, model: str, size: str) -> None:
    result = _launch(tmp_path, model, size)
    assert result["model"] == model and result["world"] == 4
    assert result["fp32_ok"], result["fp32_equivalence"]
    rows = result["rows"]
    assert {(r["mode"], r["cache"]) for r in rows} == {
        (mode, cache) for mode in MODES for cache in ("none", "static_fast")
    }
    assert not [r for r in rows if "failed_ranks" in r]
    for row in rows:
        if row["mode"] == "single":
            continue
        assert row["errN"] < 1e-5, row
        assert len(set(row["computed_per_rank"])) == 1, row
        assert row["computed"] == (3 if row["cache"] == "static_fast" else 4), row
        assert row["request_s"] > 0


def test_one_process_launch_runs_the_single_rows(tmp_path: Path) -> None:
    # the one-GPU drivers launch it with one process: no equivalence to check, rows still run
    result = _launch(tmp_path, "flux", "64", ranks=1, modes=["single"])
    assert result["world"] == 1 and result["fp32_equivalence"] == {}
    assert {(r["mode"], r["cache"]) for r in result["rows"]} == {
        ("single", "none"),
        ("single", "static_fast"),
    }
