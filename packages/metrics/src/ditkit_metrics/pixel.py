"""PSNR, SSIM and MSE on tensors, computed in float64 to match scikit-image.

Images are torch tensors (or numpy arrays, converted) laid out ``[H, W]``, ``[C, H, W]`` or
``[N, C, H, W]``: channels first, as everywhere in ditkit. ``to_nchw`` converts a ``[H, W, C]``
numpy image (what Pillow and OpenCV give) to that layout.

The data range follows scikit-image: 255 for ``uint8``; for floating point images 1.0 when no
value is negative and 2.0 otherwise (scikit-image's PSNR rule; its SSIM insists on an explicit
``data_range`` for floats, here the same rule applies instead). Pass ``data_range`` to override.

SSIM follows ``skimage.metrics.structural_similarity(..., channel_axis=...)`` defaults exactly:
a 7x7 uniform window (or a Gaussian of sigma 1.5 truncated at 3.5 sigma, an 11x11 window, with
``gaussian_weights=True``), K1=0.01, K2=0.03, sample covariance (N/(N-1)), the mean over the
"valid" region (the border of half a window is cropped) of each channel, then over channels.

Example:
    >>> import torch
    >>> from ditkit_metrics.pixel import mse, psnr, ssim
    >>> x = torch.zeros(3, 16, 16, dtype=torch.uint8)
    >>> y = x.clone(); y[0, 0, 0] = 255
    >>> round(mse(x, y), 4)
    84.668
    >>> round(psnr(x, y), 4)
    28.8536
    >>> ssim(x, x)
    1.0
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch.nn import functional

__all__ = ["data_range_of", "mse", "psnr", "ssim", "to_nchw"]

Reduction = Literal["mean", "none"]


def to_nchw(image: np.ndarray | torch.Tensor, channels_last: bool | None = None) -> torch.Tensor:
    """Return ``image`` as a tensor of layout ``[N, C, H, W]`` (dtype kept).

    Args:
        image: ``[H, W]``, ``[C, H, W]``/``[H, W, C]`` or ``[N, C, H, W]``/``[N, H, W, C]``.
        channels_last: whether the channel axis is last. ``None`` means: last for numpy arrays
            (Pillow/OpenCV layout), first for torch tensors.
    """
    if channels_last is None:
        channels_last = isinstance(image, np.ndarray)
    tensor = (
        torch.from_numpy(np.ascontiguousarray(image)) if isinstance(image, np.ndarray) else image
    )
    if tensor.ndim == 2:
        return tensor[None, None]
    if tensor.ndim not in (3, 4):
        raise ValueError(f"expected an image of 2, 3 or 4 dims, got shape {tuple(tensor.shape)}")
    if channels_last:
        tensor = tensor.movedim(-1, -3)
    return tensor if tensor.ndim == 4 else tensor[None]


def data_range_of(image: torch.Tensor) -> float:
    """The data range scikit-image infers for ``image`` (see the module docstring)."""
    if image.dtype == torch.uint8:
        return 255.0
    if image.dtype == torch.bool:
        return 1.0
    if not image.is_floating_point():
        info = torch.iinfo(image.dtype)
        return float(info.max - info.min)
    low, high = float(image.min()), float(image.max())
    if low < -1.0 or high > 1.0:
        raise ValueError(
            f"float image values lie in [{low:.4g}, {high:.4g}], outside [-1, 1]: "
            "pass data_range explicitly (e.g. data_range=255.0 for 0..255 floats)"
        )
    return 1.0 if low >= 0.0 else 2.0


def _pair(
    image_true: np.ndarray | torch.Tensor, image_test: np.ndarray | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = to_nchw(image_true), to_nchw(image_test)
    if x.shape != y.shape:
        raise ValueError(f"image shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    return x, y


def _reduce(values: torch.Tensor, reduction: Reduction) -> float | torch.Tensor:
    if reduction == "none":
        return values
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    return float(values.mean())


def mse(
    image_true: np.ndarray | torch.Tensor,
    image_test: np.ndarray | torch.Tensor,
    reduction: Reduction = "mean",
) -> float | torch.Tensor:
    """Mean squared error, per image over all channels and pixels, in float64.

    ``reduction="none"`` returns a float64 tensor of one value per image; ``"mean"`` their mean.
    """
    x, y = _pair(image_true, image_test)
    diff = x.to(torch.float64) - y.to(torch.float64)
    return _reduce(diff.square().flatten(1).mean(dim=1), reduction)


def psnr(
    image_true: np.ndarray | torch.Tensor,
    image_test: np.ndarray | torch.Tensor,
    data_range: float | None = None,
    reduction: Reduction = "mean",
) -> float | torch.Tensor:
    """Peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` per image (inf when equal).

    ``data_range`` defaults to scikit-image's inference from ``image_true``.
    """
    x, y = _pair(image_true, image_test)
    peak = data_range_of(x) if data_range is None else float(data_range)
    errors = mse(x, y, reduction="none")
    assert isinstance(errors, torch.Tensor)
    values = 10.0 * torch.log10(peak * peak / errors)
    return _reduce(values, reduction)


def _window(win_size: int, gaussian_weights: bool, sigma: float) -> torch.Tensor:
    """The separable 1-D window, normalised to sum to one, in float64."""
    if not gaussian_weights:
        return torch.full((win_size,), 1.0 / win_size, dtype=torch.float64)
    radius = (win_size - 1) // 2
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * offsets.square() / (sigma * sigma))
    return weights / weights.sum()


def _filter_valid(planes: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Filter ``[B, 1, H, W]`` planes with the separable window, keeping the valid region."""
    size = window.numel()
    planes = functional.conv2d(planes, window.view(1, 1, size, 1))
    return functional.conv2d(planes, window.view(1, 1, 1, size))


def ssim(
    image_true: np.ndarray | torch.Tensor,
    image_test: np.ndarray | torch.Tensor,
    data_range: float | None = None,
    *,
    win_size: int | None = None,
    gaussian_weights: bool = False,
    sigma: float = 1.5,
    K1: float = 0.01,
    K2: float = 0.03,
    use_sample_covariance: bool = True,
    reduction: Reduction = "mean",
) -> float | torch.Tensor:
    """Mean structural similarity per image, as scikit-image computes it (module docstring).

    Args:
        image_true, image_test: images of equal shape (``[H, W]``, ``[C, H, W]``, ``[N, C, H, W]``).
        data_range: the value range; defaults to scikit-image's inference from ``image_true``.
        win_size: odd window side (default 7); with ``gaussian_weights`` it is set by ``sigma``.
        gaussian_weights: weight each window by a Gaussian of ``sigma`` instead of uniformly.
        sigma, K1, K2, use_sample_covariance: scikit-image's parameters of the same names.
        reduction: ``"mean"`` (a float) or ``"none"`` (a float64 tensor, one value per image).
    """
    if K1 < 0 or K2 < 0 or sigma < 0:
        raise ValueError(f"K1, K2 and sigma must be >= 0, got {K1}, {K2}, {sigma}")
    x, y = _pair(image_true, image_test)
    peak = data_range_of(x) if data_range is None else float(data_range)
    if gaussian_weights:
        size = 2 * int(3.5 * sigma + 0.5) + 1
        if win_size is not None and win_size != size:
            raise ValueError(
                f"win_size={win_size} with gaussian_weights: the window is set by sigma "
                f"({size} for sigma={sigma}); leave win_size unset"
            )
        win_size = size
    win_size = 7 if win_size is None else win_size
    if win_size % 2 != 1:
        raise ValueError(f"win_size must be odd, got {win_size}")
    if min(x.shape[-2:]) < win_size:
        raise ValueError(
            f"images of {tuple(x.shape[-2:])} are smaller than the {win_size}x{win_size} SSIM "
            "window: use images at least that large, or pass a smaller odd win_size"
        )
    batch, channels, height, width = x.shape
    a = x.to(torch.float64).reshape(batch * channels, 1, height, width)
    b = y.to(torch.float64).reshape(batch * channels, 1, height, width)
    window = _window(win_size, gaussian_weights, sigma)
    stacked = torch.cat([a, b, a * a, b * b, a * b])
    ux, uy, uxx, uyy, uxy = _filter_valid(stacked, window).chunk(5)
    points = win_size**2
    cov_norm = points / (points - 1) if use_sample_covariance else 1.0
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1, c2 = (K1 * peak) ** 2, (K2 * peak) ** 2
    numerator = (2 * ux * uy + c1) * (2 * vxy + c2)
    denominator = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    per_plane = (numerator / denominator).flatten(1).mean(dim=1)
    return _reduce(per_plane.view(batch, channels).mean(dim=1), reduction)
