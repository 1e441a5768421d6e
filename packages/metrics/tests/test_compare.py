"""cache-dit's compute_* functions: files, folders, arrays, tensors and videos -> (value, n)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from ditkit_metrics import compare


@pytest.fixture
def folders(tmp_path, rng, helpers):
    true = rng.integers(0, 256, (3, 20, 24, 3), dtype=np.uint8)
    test = helpers.noisy_copy(true, rng, 30)
    test[1] = true[1]  # an identical pair (PSNR inf: left out of the PSNR mean, as cache-dit)
    helpers.write_pngs(tmp_path / "ref", true)
    helpers.write_pngs(tmp_path / "test", test)
    helpers.write_pngs(tmp_path / "test", test[:1], ["unpaired.png"])
    return tmp_path / "ref", tmp_path / "test", true, test


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # skimage's inf PSNR
def test_folders_average_over_pairs_like_skimage(folders):
    ref, test, true, noisy = folders
    psnrs = [peak_signal_noise_ratio(a, b) for a, b in zip(true, noisy, strict=True)]
    value, n = compare.compute_psnr(str(ref), str(test))
    assert n == 3
    assert value == pytest.approx(np.mean([v for v in psnrs if math.isfinite(v)]), abs=1e-12)
    ssims = [structural_similarity(a, b, channel_axis=2) for a, b in zip(true, noisy, strict=True)]
    assert compare.compute_ssim(ref, test) == (pytest.approx(np.mean(ssims), abs=1e-12), 3)
    mses = [mean_squared_error(a, b) for a, b in zip(true, noisy, strict=True)]
    assert compare.compute_mse(ref, test) == (pytest.approx(np.mean(mses), abs=1e-9), 3)
    assert compare.compute_psnr(ref, test, psnr_type="skimage")[0] == pytest.approx(value)


def test_single_files_arrays_and_tensors_agree(folders):
    ref, test, true, noisy = folders
    by_file = compare.compute_ssim(ref / "0.png", test / "0.png")
    by_array = compare.compute_ssim(true[0], noisy[0])
    tensors = [torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255 for x in (true, noisy)]
    by_tensor = compare.compute_ssim(tensors[0][:1], tensors[1][:1])
    assert by_file[1] == by_array[1] == by_tensor[1] == 1
    assert by_file[0] == pytest.approx(by_array[0], abs=1e-15)
    assert by_tensor[0] == pytest.approx(by_array[0], abs=1e-6)  # float32 rounding of /255
    assert compare.compute_mse(*tensors)[1] == 3


def test_identical_everywhere_gives_inf_psnr(folders):
    ref, _, _, _ = folders
    assert compare.compute_psnr(ref, ref) == (math.inf, 3)
    with pytest.raises(FileNotFoundError):
        compare.compute_psnr(ref / "0.png", ref / "missing.png")
    with pytest.raises(ValueError, match="psnr_type"):
        compare.compute_psnr(ref, ref, psnr_type="other")


def test_video_metrics_are_frame_wise(tmp_path, rng, helpers):
    frames = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    noisy = helpers.noisy_copy(frames, rng, 20)
    helpers.write_pngs(tmp_path / "v1", frames)
    helpers.write_pngs(tmp_path / "v2", noisy[:4])  # one frame shorter: 4 frames compared
    value, n = compare.compute_video_psnr(tmp_path / "v1", tmp_path / "v2")
    expected = np.mean(
        [peak_signal_noise_ratio(a, b) for a, b in zip(frames[:4], noisy[:4], strict=True)]
    )
    assert (value, n) == (pytest.approx(expected, abs=1e-12), 4)
    ssim_value, _ = compare.compute_video_ssim(tmp_path / "v1", tmp_path / "v2")
    expected = [
        structural_similarity(a, b, channel_axis=2)
        for a, b in zip(frames[:4], noisy[:4], strict=True)
    ]
    assert ssim_value == pytest.approx(np.mean(expected), abs=1e-12)
    assert compare.compute_video_mse(tmp_path / "v1", tmp_path / "v1") == (0.0, 5)


def test_video_chunks_cover_every_frame(tmp_path, rng, helpers, monkeypatch):
    monkeypatch.setattr(compare, "FRAME_CHUNK", 2)
    frames = rng.integers(0, 256, (5, 12, 12, 3), dtype=np.uint8)
    helpers.write_pngs(tmp_path / "a", frames)
    helpers.write_pngs(tmp_path / "b", helpers.noisy_copy(frames, rng, 9))
    chunked = compare.compute_video_ssim(tmp_path / "a", tmp_path / "b")
    monkeypatch.setattr(compare, "FRAME_CHUNK", 8)
    assert compare.compute_video_ssim(tmp_path / "a", tmp_path / "b") == chunked
    assert chunked[1] == 5
