"""cache-dit's metric functions: compare two images, image folders or videos; get ``(value, n)``.

``compute_psnr(true, test)`` and its siblings take two image files, two folders (files paired by
relative path), two ``uint8`` ``[H, W, 3]`` arrays or two ``[N, 3, H, W]`` tensors in [0, 1], and
return ``(mean over pairs, number of pairs)``. The video variants compare frame by frame (video
files, frame folders, or folders of videos paired by name; a pair is cut to its shorter video) and
return ``(mean over frames, frames)``. As in cache-dit, a PSNR of infinity (identical images:
nothing was cached) is left out of the mean; if every pair is identical the mean is ``inf``.

Example:
    >>> import numpy as np
    >>> from ditkit_metrics.compare import compute_mse, compute_psnr
    >>> a = np.zeros((8, 8, 3), np.uint8); b = a.copy(); b[0, 0, 0] = 16
    >>> compute_mse(a, b)
    (1.3333333333333333, 1)
    >>> compute_psnr(a, a)
    (inf, 1)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from . import io, pixel
from .lpips import LPIPS, load_lpips

__all__ = [
    "compute_lpips",
    "compute_mse",
    "compute_psnr",
    "compute_ssim",
    "compute_video_lpips",
    "compute_video_mse",
    "compute_video_psnr",
    "compute_video_ssim",
    "finite_mean",
]

Source = str | os.PathLike | np.ndarray | torch.Tensor
BatchMetric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # [N,C,H,W] x2 -> [N]
FRAME_CHUNK = 8  # frames per batched call in the video metrics (bounds float64 memory)


def finite_mean(values: list[float]) -> float:
    """Mean of the finite values; ``inf`` when there is none (cache-dit skips inf PSNRs)."""
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.inf


def _batch(source: Source) -> torch.Tensor:
    """A source as ``[N, C, H, W]``: files and arrays stay ``uint8``, tensors keep their dtype."""
    if isinstance(source, str | os.PathLike):
        source = io.load_image(source)
    return pixel.to_nchw(source)


def _pairs(image_true: Source, image_test: Source) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    if isinstance(image_true, str | os.PathLike) and Path(image_true).is_dir():
        for true, test in io.pair_files(image_true, Path(image_test)):
            yield _batch(true), _batch(test)
        return
    for path in (image_true, image_test):
        if isinstance(path, str | os.PathLike) and not Path(path).is_file():
            raise FileNotFoundError(f"{path} does not exist")
    yield _batch(image_true), _batch(image_test)


def _compare_images(
    image_true: Source, image_test: Source, metric: BatchMetric
) -> tuple[float, int]:
    values: list[float] = []
    for true, test in _pairs(image_true, image_test):
        values += metric(true, test).tolist()
    return finite_mean(values), len(values)


def _compare_videos(video_true, video_test, metric: BatchMetric) -> tuple[float, int]:
    values: list[float] = []
    for frames_true, frames_test in io.video_frame_pairs(video_true, video_test):
        for start in range(0, len(frames_true), FRAME_CHUNK):
            chunk = slice(start, start + FRAME_CHUNK)
            true = pixel.to_nchw(frames_true[chunk])
            values += metric(true, pixel.to_nchw(frames_test[chunk])).tolist()
    if not values:
        raise ValueError(f"no frames to compare in {video_true} and {video_test}")
    return finite_mean(values), len(values)


def _psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return pixel.psnr(x, y, reduction="none")  # type: ignore[return-value]


def _ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return pixel.ssim(x, y, reduction="none")  # type: ignore[return-value]


def _mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return pixel.mse(x, y, reduction="none")  # type: ignore[return-value]


def compute_psnr(
    image_true: Source, image_test: Source, psnr_type: str = "custom"
) -> tuple[float, int]:
    """PSNR (data range 255 for image files): ``(mean over pairs, pairs)``.

    ``psnr_type`` (``"custom"`` or ``"skimage"``, cache-dit's ``--psnr-type``) is accepted for
    compatibility: both give scikit-image's value here. (cache-dit's ``custom`` subtracted the
    ``uint8`` arrays before squaring, which wraps around; this computes in float64.)
    """
    if psnr_type not in ("custom", "skimage"):
        raise ValueError(f"psnr_type must be 'custom' or 'skimage', got {psnr_type!r}")
    return _compare_images(image_true, image_test, _psnr)


def compute_ssim(image_true: Source, image_test: Source) -> tuple[float, int]:
    """SSIM as ``skimage.metrics.structural_similarity(..., channel_axis=2)``: ``(mean, pairs)``."""
    return _compare_images(image_true, image_test, _ssim)


def compute_mse(image_true: Source, image_test: Source) -> tuple[float, int]:
    """Mean squared error on the 0..255 scale for image files: ``(mean over pairs, pairs)``."""
    return _compare_images(image_true, image_test, _mse)


def _lpips_metric(
    net: str, weights: str | os.PathLike | None, model: LPIPS | None, device
) -> BatchMetric:
    model = model if model is not None else load_lpips(net, weights, device=device)
    where = next(model.parameters()).device

    @torch.no_grad()
    def metric(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x01 = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        y01 = y.float() / 255.0 if y.dtype == torch.uint8 else y.float()
        out = model(x01.to(where), y01.to(where), normalize=True)
        return out.flatten().double().cpu()

    return metric


def compute_lpips(
    image_true: Source,
    image_test: Source,
    net: str = "alex",
    *,
    weights: str | os.PathLike | None = None,
    model: LPIPS | None = None,
    device: torch.device | str | None = None,
) -> tuple[float, int]:
    """LPIPS distance (AlexNet trunk by default, as cache-dit): ``(mean over pairs, pairs)``.

    Weights: ``model`` (already loaded), else ``weights`` / ``$DITKIT_LPIPS_WEIGHTS``.
    """
    return _compare_images(image_true, image_test, _lpips_metric(net, weights, model, device))


def compute_video_psnr(video_true, video_test) -> tuple[float, int]:
    """Frame-wise PSNR of two videos: ``(mean over frames, frames)``."""
    return _compare_videos(video_true, video_test, _psnr)


def compute_video_ssim(video_true, video_test) -> tuple[float, int]:
    """Frame-wise SSIM of two videos: ``(mean over frames, frames)``."""
    return _compare_videos(video_true, video_test, _ssim)


def compute_video_mse(video_true, video_test) -> tuple[float, int]:
    """Frame-wise MSE of two videos: ``(mean over frames, frames)``."""
    return _compare_videos(video_true, video_test, _mse)


def compute_video_lpips(
    video_true,
    video_test,
    net: str = "alex",
    *,
    weights: str | os.PathLike | None = None,
    model: LPIPS | None = None,
    device: torch.device | str | None = None,
) -> tuple[float, int]:
    """Frame-wise LPIPS of two videos: ``(mean over frames, frames)``."""
    return _compare_videos(video_true, video_test, _lpips_metric(net, weights, model, device))
