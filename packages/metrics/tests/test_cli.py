"""``ditkit-metrics`` takes cache-dit-metrics' arguments: round trips on generated PNG files."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import av
import numpy as np
import pytest

from ditkit_metrics import cli, compare, prompt_metrics


@pytest.fixture
def runs(tmp_path, rng, helpers):
    """outputs/C0_NONE (reference) and two cached runs of 3 images each, plus a perf log."""
    ref = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    root = tmp_path / "outputs"
    helpers.write_pngs(root / "C0_NONE", ref)
    helpers.write_pngs(root / "C0_DBCACHE_F1B0", helpers.noisy_copy(ref, rng, 40))
    helpers.write_pngs(root / "C0_DBCACHE_F8B0", helpers.noisy_copy(ref, rng, 10))
    (tmp_path / "perf.log").write_text(
        "C0_NONE Mean Time: 6.0s\n"
        "C0_DBCACHE_F1B0 Mean Time: 2.0s\n"
        "C0_DBCACHE_F8B0 Mean Time: 3.0s\n"
    )
    return root


def _lines(capsys) -> tuple[list[str], str]:
    captured = capsys.readouterr()
    return captured.out.strip().splitlines(), captured.err


def test_pair_of_folders(runs, capsys):
    ref, test = runs / "C0_NONE", runs / "C0_DBCACHE_F1B0"
    assert cli.main(["psnr", "ssim", "mse", "-i1", str(ref), "-i2", str(test)]) == 0
    out, _ = _lines(capsys)
    psnr, n = compare.compute_psnr(ref, test)
    ssim, _ = compare.compute_ssim(ref, test)
    assert out == [
        f"C0_NONE vs C0_DBCACHE_F1B0, Num: {n}, PSNR: {psnr:.5f}",
        f"C0_NONE vs C0_DBCACHE_F1B0, Num: {n}, SSIM: {ssim:.5f}",
        f"C0_NONE vs C0_DBCACHE_F1B0, Num: 3, MSE: {compare.compute_mse(ref, test)[0]:.5f}",
    ]


def test_one_vs_n_summary_and_markdown_table(runs, capsys, tmp_path):
    argv = ["psnr", "-d", str(runs), "-r", str(runs / "C0_NONE"), "--summary", "-table"]
    argv += ["-plog", str(tmp_path / "perf.log"), "-ptags", "Mean Time", "--cal-speedup"]
    assert cli.main(argv) == 0
    out, _ = _lines(capsys)
    assert [line.split(",")[0] for line in out[:2]] == [
        "C0_NONE vs C0_DBCACHE_F1B0",
        "C0_NONE vs C0_DBCACHE_F8B0",
    ]
    assert any("Summary: PSNR" in line for line in out)
    table = out[out.index("| Config | PSNR | Latency(s) | SpeedUp(↑) |") :]
    assert table[2].startswith("| F8B0 | ") and table[2].endswith(" | 3.00 | 2.00 |")
    assert table[3].startswith("| F1B0 | ") and table[3].endswith(" | 2.00 | 3.00 |")


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # 3 images, 64 features
def test_networks_from_weight_arguments(runs, capsys, lpips_alex_dir, fid_weights):
    argv = ["all", "-i1", str(runs / "C0_NONE"), "-i2", str(runs / "C0_DBCACHE_F8B0")]
    argv += ["--lpips-weights", str(lpips_alex_dir), "--fid-weights", str(fid_weights)]
    assert cli.main([*argv, "--fid-dims", "64", "-b", "2"]) == 0
    out, _ = _lines(capsys)
    assert [line.rsplit(":", 1)[0].split(", ")[-1] for line in out] == [
        "LPIPS",
        "PSNR",
        "SSIM",
        "MSE",
        "FID",
    ]
    lpips = compare.compute_lpips(
        runs / "C0_NONE", runs / "C0_DBCACHE_F8B0", weights=lpips_alex_dir
    )[0]
    assert out[0].endswith(f"LPIPS: {lpips:.5f}")


def test_missing_weights_fail_clearly_but_other_metrics_run(runs, capsys, monkeypatch):
    monkeypatch.delenv("DITKIT_LPIPS_WEIGHTS", raising=False)
    argv = ["lpips", "psnr", "-d", str(runs), "-r", str(runs / "C0_NONE")]
    assert cli.main(argv) == 1
    out, err = _lines(capsys)
    assert len(out) == 2 and all("PSNR" in line for line in out)
    assert err.count("Download:") == 1 and "alexnet-owt-7be5be79.pth" in err
    assert "error: lpips of C0_DBCACHE_F8B0 vs C0_NONE: (as above)" in err
    assert "DITKIT_LPIPS_WEIGHTS" in err


def test_videos(tmp_path, rng, helpers, capsys):
    frames = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    helpers.write_pngs(tmp_path / "f1", frames)
    helpers.write_pngs(tmp_path / "f2", helpers.noisy_copy(frames, rng, 20))
    assert cli.main(["ssim", "-v1", str(tmp_path / "f1"), "-v2", str(tmp_path / "f2")]) == 0
    out, _ = _lines(capsys)
    value, n = compare.compute_video_ssim(tmp_path / "f1", tmp_path / "f2")
    assert out == [f"f1 vs f2, Frames: 4, SSIM: {value:.5f}"] and n == 4
    for name, data in [("ref.mov", frames), ("a.mov", frames[::-1]), ("b.mov", frames)]:
        with av.open(str(tmp_path / name), "w") as container:
            stream = container.add_stream("png", rate=4)
            stream.width, stream.height, stream.pix_fmt = 16, 16, "rgb24"
            for frame in data:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    argv = ["mse", "-vd", str(tmp_path), "-rv", str(tmp_path / "ref.mov"), "-s"]
    assert cli.main(argv) == 0
    out, _ = _lines(capsys)
    assert out[0].startswith("ref.mov vs a.mov, Frames: 4, MSE: ")
    assert out[1] == "ref.mov vs b.mov, Frames: 4, MSE: 0.00000"
    assert "Summary: MSE" in "\n".join(out)


def test_prompt_metrics_are_wired(tmp_path, rng, helpers, capsys, monkeypatch):
    images = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    helpers.write_pngs(tmp_path / "runs" / "A", images)
    helpers.write_pngs(tmp_path / "runs" / "B", images[:2])
    (tmp_path / "prompts.txt").write_text("one\nthree\nfive\nseven\n")
    seen = []

    def fake_scorer(metric, model_dir, device):
        seen.append((metric, model_dir))
        return lambda batch, prompts: float(len(prompts[0])) + float(batch.shape[0] - 1)

    monkeypatch.setattr(prompt_metrics, "make_scorer", fake_scorer)
    argv = ["clip_score", "image_reward", "-p", str(tmp_path / "prompts.txt")]
    argv += ["-i2", str(tmp_path / "runs" / "A"), "--clip-model-dir", "/models/clip"]
    assert cli.main(argv) == 0
    out, _ = _lines(capsys)
    mean_length = (3 + 5 + 4) / 3  # len of "one", "three", "five": the first 3 prompts
    assert out == [
        f"prompts.txt vs A, Num: 3, CLIP_SCORE: {mean_length:.5f}",
        f"prompts.txt vs A, Num: 3, IMAGE_REWARD: {mean_length:.5f}",
    ]
    assert seen == [("clip_score", "/models/clip"), ("image_reward", None)]
    argv = ["clip_score", "-d", str(tmp_path / "runs"), "-rp", str(tmp_path / "prompts.txt")]
    assert cli.main([*argv, "-s"]) == 0
    out, _ = _lines(capsys)
    assert out[:2] == [
        f"prompts.txt vs A, Num: 3, CLIP_SCORE: {mean_length:.5f}",
        "prompts.txt vs B, Num: 2, CLIP_SCORE: 4.00000",
    ]


def test_bad_arguments_exit_2(capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        cli.main(["psnr"])
    assert info.value.code == 2 and "nothing to compare" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["psnr", "-d", str(tmp_path / "absent"), "-r", str(tmp_path)])
    with pytest.raises(SystemExit):
        cli.main(["sharpness", "-i1", "a", "-i2", "b"])
    (tmp_path / "p.txt").write_text("a prompt\n")
    assert cli.main(["psnr", "-p", str(tmp_path / "p.txt"), "-i2", str(tmp_path)]) == 1
    assert "none of ['psnr'] applies to ['prompt']" in capsys.readouterr().err


def test_module_and_console_script(tmp_path, rng, helpers):
    image = rng.integers(0, 256, (1, 16, 16, 3), dtype=np.uint8)
    (a,) = helpers.write_pngs(tmp_path / "a", image)
    (b,) = helpers.write_pngs(tmp_path / "b", helpers.noisy_copy(image, rng, 5))
    done = subprocess.run(
        [sys.executable, "-m", "ditkit_metrics", "mse", "-i1", str(a), "-i2", str(b)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("0.png vs 0.png, Num: 1, MSE: ")
    scripts = importlib.metadata.entry_points(group="console_scripts", name="ditkit-metrics")
    assert [s.value for s in scripts] == ["ditkit_metrics.cli:main"]
