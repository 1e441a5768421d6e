"""The demo (README command 1): the trained fixture, uncached and cached, numbers that add up."""

import json
import subprocess
import sys

import pytest
import torch


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    command = [sys.executable, "-m", "ditkit", "demo", "--steps", "28", "--repeats", "1"]
    result = subprocess.run(
        [*command, "--output", str(out)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    return out, result.stdout, json.loads((out / "demo.json").read_text())


def test_demo_writes_its_files(demo):
    out, stdout, _ = demo
    assert "ditkit demo" in stdout and "prompt accuracy" in stdout
    from PIL import Image

    for name in ("samples.png", "residual_diffs.png"):
        with Image.open(out / name) as image:
            assert image.size[0] > 200 and image.size[1] > 90
    assert (out / "demo.md").read_text().startswith("ditkit demo")


def test_demo_numbers_are_the_measured_ones(demo):
    from ditkit.demo import recommended_config
    from ditkit_metrics import psnr
    from ditkit_testing.fixture import build_fixture_pipeline, fixture_call_kwargs

    _, _, data = demo
    assert data["steps"] == 28 and data["digits"] == list(range(10))
    rows = {row["config"]: row for row in data["rows"]}
    assert list(rows) == ["uncached", "DBCache F1B0", "DBCache F1B0 + TaylorSeer"]
    uncached, plain, calibrated = rows.values()
    assert uncached["cached_steps"] == [] and uncached["speedup"] == 1.0
    assert uncached["psnr_db"] == float("inf") and uncached["ssim"] == 1.0
    for row in (plain, calibrated):
        assert row["cached_steps"], "the demo config must cache on the trained model"
        assert row["computed"] + len(row["cached_steps"]) == 28
        assert 30 < row["psnr_db"] < float("inf") and 0.99 < row["ssim"] < 1.0
        assert row["prompt_accuracy"] >= 0.9
        assert abs(row["speedup"] - uncached["seconds"] / row["seconds"]) < 0.01
    assert calibrated["calibrator"] == "TaylorSeerCalibratorConfig"
    assert calibrated["psnr_db"] > plain["psnr_db"], "TaylorSeer should recover quality"

    # recompute one row independently: the recommended config's PSNR is what the demo printed
    import ditkit

    pipe = build_fixture_pipeline()
    with torch.no_grad():
        reference = pipe(**fixture_call_kwargs(list(range(10)), 28)).images
        cache, calibrator = recommended_config(28)
        ditkit.enable_cache(pipe, cache_config=cache, calibrator_config=calibrator)
        images = pipe(**fixture_call_kwargs(list(range(10)), 28)).images
    assert ditkit.summary(pipe, logging=False)[0].cached_steps == calibrated["cached_steps"]
    value = psnr(reference, images, data_range=1.0)
    assert abs(value - calibrated["psnr_db"]) < 0.01
