"""PSNR, SSIM and MSE agree with scikit-image (the reference) to ~1e-12, for every layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from ditkit_metrics.pixel import data_range_of, mse, psnr, ssim, to_nchw


@pytest.fixture
def pair(rng, helpers):
    a = rng.integers(0, 256, (37, 29, 3), dtype=np.uint8)
    return a, helpers.noisy_copy(a, rng, 40)


def _chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)


def test_uint8_rgb_matches_skimage(pair):
    a, b = pair
    assert ssim(a, b) == pytest.approx(structural_similarity(a, b, channel_axis=2), abs=1e-12)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b), abs=1e-12)
    assert mse(a, b) == pytest.approx(mean_squared_error(a, b), abs=1e-9)
    # a torch [C, H, W] tensor is the same image
    assert ssim(_chw(a), _chw(b)) == pytest.approx(ssim(a, b), abs=1e-15)


@pytest.mark.parametrize(
    "options",
    [
        dict(gaussian_weights=True),
        dict(gaussian_weights=True, sigma=1.0, use_sample_covariance=False),
        dict(win_size=3),
        dict(win_size=11, K1=0.02, K2=0.05),
    ],
)
def test_ssim_options_match_skimage(pair, options):
    a, b = pair
    expected = structural_similarity(a, b, channel_axis=2, **options)
    assert ssim(a, b, **options) == pytest.approx(expected, abs=1e-12)


def test_float_images_use_skimage_data_range(pair):
    a, b = (x.astype(np.float64) / 255.0 for x in pair)
    assert ssim(a, b) == pytest.approx(structural_similarity(a, b, channel_axis=2, data_range=1.0))
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b), abs=1e-12)
    signed_a, signed_b = 2 * a - 1, 2 * b - 1  # negative values: range 2, as scikit-image
    assert psnr(signed_a, signed_b) == pytest.approx(peak_signal_noise_ratio(signed_a, signed_b))
    expected = structural_similarity(a * 255, b * 255, channel_axis=2, data_range=255.0)
    assert ssim(a * 255, b * 255, data_range=255.0) == pytest.approx(expected, abs=1e-12)


def test_grayscale_2d_matches_skimage(pair):
    a, b = pair[0][..., 0], pair[1][..., 0]
    assert ssim(a, b) == pytest.approx(structural_similarity(a, b), abs=1e-12)


def test_batch_reduction_is_per_image(rng, helpers):
    a = rng.integers(0, 256, (4, 16, 20, 3), dtype=np.uint8)
    b = helpers.noisy_copy(a, rng, 25)
    b[2] = a[2]  # one identical pair: its PSNR is inf, its SSIM 1
    per_image = ssim(a, b, reduction="none")
    expected = [structural_similarity(x, y, channel_axis=2) for x, y in zip(a, b, strict=True)]
    assert per_image.tolist() == pytest.approx(expected, abs=1e-12)
    assert ssim(a, b) == pytest.approx(float(np.mean(expected)), abs=1e-12)
    values = psnr(a, b, reduction="none")
    assert math.isinf(values[2]) and math.isfinite(values[0])
    assert mse(a, b, reduction="none")[2] == 0.0


def test_layouts_and_data_range():
    assert to_nchw(np.zeros((5, 6, 3))).shape == (1, 3, 5, 6)
    assert to_nchw(np.zeros((2, 5, 6, 3))).shape == (2, 3, 5, 6)
    assert to_nchw(torch.zeros(3, 5, 6)).shape == (1, 3, 5, 6)
    assert to_nchw(torch.zeros(5, 6)).shape == (1, 1, 5, 6)
    assert data_range_of(torch.zeros(2, dtype=torch.uint8)) == 255.0
    assert data_range_of(torch.tensor([0.0, 0.5])) == 1.0
    assert data_range_of(torch.tensor([-0.5, 0.5])) == 2.0
    assert data_range_of(torch.zeros(2, dtype=torch.int16)) == 65535.0


def test_errors_name_the_fix():
    x = torch.rand(3, 16, 16)
    with pytest.raises(ValueError, match="data_range"):
        psnr(x * 255, x * 255)  # floats outside [-1, 1] need an explicit range
    with pytest.raises(ValueError, match="smaller than the 7x7"):
        ssim(torch.rand(3, 5, 16), torch.rand(3, 5, 16))
    with pytest.raises(ValueError, match="odd"):
        ssim(x, x, win_size=4)
    with pytest.raises(ValueError, match="set by sigma"):
        ssim(x, x, win_size=7, gaussian_weights=True)
    with pytest.raises(ValueError, match="shapes differ"):
        mse(x, x[:, :8])
    with pytest.raises(ValueError, match="reduction"):
        mse(x, x, reduction="sum")
