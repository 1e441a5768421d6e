"""Fréchet Inception Distance between two image sets (or the frames of two videos).

FID = |mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr(sqrt(S1 S2)), with mu and S the mean and covariance
(``np.cov``, N-1) of the Inception pool features, in float64, the matrix square root by
``scipy.linalg.sqrtm`` (pytorch-fid's formula, including its retry with 1e-6 on the diagonal when
the product is singular and its check that the imaginary part is negligible).

The weights are pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``: pass ``weights=`` (the
file or its folder) or set ``DITKIT_FID_WEIGHTS``. Each set needs at least two images.

Example:
    >>> import numpy as np
    >>> from ditkit_metrics.fid import frechet_distance
    >>> mu, sigma = np.zeros(2), np.eye(2)
    >>> round(frechet_distance(mu, sigma, mu + 1.0, sigma), 6)
    2.0
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy import linalg
from torch.nn import functional

from . import io
from .inception import DIMS, FIDInceptionV3, load_fid_inception

__all__ = [
    "FrechetInceptionDistance",
    "activation_statistics",
    "compute_fid",
    "compute_video_fid",
    "frechet_distance",
]

ImageSet = str | os.PathLike | torch.Tensor | np.ndarray | Sequence


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2), in float64."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1 = np.atleast_2d(sigma1).astype(np.float64)
    sigma2 = np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(
            f"feature statistics differ in size: {mu1.shape}/{sigma1.shape} vs "
            f"{mu2.shape}/{sigma2.shape}"
        )
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():  # a singular product: regularise the diagonal
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imaginary = np.abs(np.diagonal(covmean).imag).max()
        if imaginary > 1e-3:
            raise ValueError(f"sqrt(S1 S2) has an imaginary component of {imaginary:.3g}")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def activation_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (rows are samples, N-1 normalisation) of ``[N, D]`` features."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(
            f"FID needs at least 2 images per set (a covariance), got features {features.shape}"
        )
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class FrechetInceptionDistance:
    """FID with one loaded Inception; reuse it for many comparisons (cache-dit's class name).

    Args:
        device: where Inception runs (default: CUDA when available, else CPU).
        dims: feature size, 2048 (FID's standard), 768, 192 or 64.
        num_workers: accepted for cache-dit compatibility; loading runs in this process.
        batch_size: images per Inception forward pass.
        disable_tqdm: accepted for cache-dit compatibility (no progress bar is drawn).
        weights: checkpoint file or folder; defaults to ``$DITKIT_FID_WEIGHTS``.
        model: an already loaded :class:`~ditkit_metrics.inception.FIDInceptionV3` to use instead.
    """

    def __init__(
        self,
        device: torch.device | str | None = None,
        dims: int = 2048,
        num_workers: int = 1,
        batch_size: int = 8,
        disable_tqdm: bool = True,
        weights: str | os.PathLike | None = None,
        model: FIDInceptionV3 | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        if dims not in DIMS:
            raise ValueError(f"dims must be one of {DIMS}, got {dims}")
        self.device = torch.device(device or _default_device())
        self.dims = dims
        self.batch_size = batch_size
        if model is None:
            model = load_fid_inception(weights, device=self.device)
        self.model = model.to(self.device).eval()

    @torch.no_grad()
    def features(self, images: torch.Tensor | Sequence) -> np.ndarray:
        """``[N, dims]`` float64 features of a ``[N, 3, H, W]`` tensor in [0, 1], or of a
        sequence of image files / ``uint8`` ``[H, W, 3]`` arrays (sizes may differ)."""
        items: Sequence = images if not isinstance(images, torch.Tensor) else list(images)
        out = []
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            batch = torch.cat([_as_299(item, self.device) for item in chunk])
            feats = self.model.features(batch, self.dims, resize=False)
            out.append(feats.double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dims))

    def fid(
        self, images_true: torch.Tensor | Sequence, images_test: torch.Tensor | Sequence
    ) -> float:
        """FID between two image sets (tensors or sequences, as :meth:`features` takes)."""
        mu1, s1 = activation_statistics(self.features(images_true))
        mu2, s2 = activation_statistics(self.features(images_test))
        return frechet_distance(mu1, s1, mu2, s2)

    def compute_fid(self, image_true: ImageSet, image_test: ImageSet) -> tuple[float, int]:
        """FID of two image folders (pairs of same-named files), lists or tensors: ``(fid, n)``."""
        set_true, set_test = _image_sets(image_true, image_test)
        return self.fid(set_true, set_test), len(set_true)

    def compute_video_fid(
        self, video_true: str | os.PathLike, video_test: str | os.PathLike
    ) -> tuple[float, int]:
        """FID between the frames of two videos (files, frame folders, or folders of videos paired
        by name; each pair cut to its shorter length): ``(fid, frames)``."""
        frames_true, frames_test = [], []
        for true_frames, test_frames in io.video_frame_pairs(video_true, video_test):
            frames_true += list(true_frames)
            frames_test += list(test_frames)
        return self.fid(frames_true, frames_test), len(frames_true)


def _as_299(item: object, device: torch.device) -> torch.Tensor:
    """One image as ``[1, 3, 299, 299]`` float32 in [0, 1] on ``device`` (bilinear, as
    pytorch-fid resizes: on the device, after the division by 255)."""
    if isinstance(item, str | os.PathLike):
        item = io.load_image(item)
    if isinstance(item, np.ndarray):
        if item.dtype != np.uint8:
            raise ValueError(f"image arrays must be uint8 [H, W, 3], got {item.dtype}")
        tensor = io.images_to_tensor([item])
    elif isinstance(item, torch.Tensor):
        tensor = item[None] if item.ndim == 3 else item
        tensor = tensor.float() / 255.0 if item.dtype == torch.uint8 else tensor.float()
    else:
        raise TypeError(f"cannot read an image from {type(item).__name__}")
    tensor = tensor.to(device)
    return functional.interpolate(tensor, size=(299, 299), mode="bilinear", align_corners=False)


def _image_sets(image_true: ImageSet, image_test: ImageSet) -> tuple[Sequence, Sequence]:
    if isinstance(image_true, str | os.PathLike) and Path(image_true).is_dir():
        pairs = io.pair_files(image_true, Path(image_test))
        return [p for p, _ in pairs], [q for _, q in pairs]
    return image_true, image_test  # tensors, or sequences of files or arrays


def compute_fid(
    image_true: ImageSet,
    image_test: ImageSet,
    *,
    weights: str | os.PathLike | None = None,
    dims: int = 2048,
    batch_size: int = 8,
    device: torch.device | str | None = None,
) -> tuple[float, int]:
    """FID of two image folders (same-named files paired), sequences or ``[N, 3, H, W]``
    tensors in [0, 1]; returns ``(fid, n)`` like cache-dit. Loads Inception each call: keep a
    :class:`FrechetInceptionDistance` to compare many sets."""
    metric = FrechetInceptionDistance(device, dims, batch_size=batch_size, weights=weights)
    return metric.compute_fid(image_true, image_test)


def compute_video_fid(
    video_true: str | os.PathLike,
    video_test: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = None,
    dims: int = 2048,
    batch_size: int = 8,
    device: torch.device | str | None = None,
) -> tuple[float, int]:
    """FID between the frames of two videos; ``(fid, frames)``. See :func:`compute_fid`."""
    metric = FrechetInceptionDistance(device, dims, batch_size=batch_size, weights=weights)
    return metric.compute_video_fid(video_true, video_test)
