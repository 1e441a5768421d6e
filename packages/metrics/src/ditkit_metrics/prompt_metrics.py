"""Image-vs-prompt metrics over files: CLIP score and ImageReward of a folder and a prompt file.

The models live in ``clip_score`` and ``image_reward`` (weights from ``CLIP_MODEL_DIR`` and
``IMAGEREWARD_MODEL_DIR`` or a ``model_dir`` argument); this module only pairs files with prompts,
as cache-dit does: the images of a folder in natural name order against the lines of a prompt
file, cut to the shorter of the two, each scored on its own (image sizes may differ).

Example:
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> from ditkit_metrics.io import save_image
    >>> from ditkit_metrics.prompt_metrics import score_files
    >>> root = Path(tempfile.mkdtemp())
    >>> for i in range(3):
    ...     _ = save_image(torch.full((3, 8, 8), i / 2), root / "imgs" / f"{i}.png")
    >>> _ = (root / "prompts.txt").write_text("dark\\nmid\\n")
    >>> brightness = lambda images, prompts: float(images.mean())  # a stand-in scorer
    >>> value, n = score_files(brightness, root / "imgs", root / "prompts.txt")
    >>> n, round(value, 3)
    (2, 0.251)
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ditkit_interfaces.errors import MissingComponentError

from . import io

__all__ = [
    "PROMPT_METRICS",
    "compute_clip_score_files",
    "compute_reward_score",
    "make_scorer",
    "score_files",
]

Scorer = Callable[[torch.Tensor, Sequence[str]], float]

# metric -> (module, scorer class, function), the other helper's public names
PROMPT_METRICS = {
    "clip_score": ("clip_score", "CLIPScorer", "compute_clip_score"),
    "image_reward": ("image_reward", "ImageRewardScorer", "compute_image_reward"),
}


def make_scorer(
    metric: str,
    model_dir: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
) -> Scorer:
    """A loaded scorer for ``metric`` (``"clip_score"`` or ``"image_reward"``): call it as
    ``scorer(images [N, 3, H, W] in [0, 1], prompts) -> float``."""
    if metric not in PROMPT_METRICS:
        raise ValueError(f"prompt metric must be one of {sorted(PROMPT_METRICS)}, got {metric!r}")
    module_name, class_name, function_name = PROMPT_METRICS[metric]
    try:
        module = importlib.import_module(f".{module_name}", __package__)
    except ImportError as err:
        if (err.name or "").endswith(module_name):
            raise MissingComponentError(
                metric, "ditkit-metrics", "pip install -U ditkit-metrics", reason="too old"
            ) from err
        raise MissingComponentError(metric, err.name or "transformers", reason=str(err)) from err
    scorer_class = getattr(module, class_name, None)
    if scorer_class is not None:
        return scorer_class(model_dir, device=device)
    function = getattr(module, function_name)
    return lambda images, prompts: function(images, prompts, model_dir)


def score_files(
    scorer: Scorer, images: str | os.PathLike, prompts: str | os.PathLike | Sequence[str]
) -> tuple[float, int]:
    """Mean score of an image folder (or one image) against a prompt file (or list):
    ``(mean, pairs)``."""
    prompt_list = (
        io.load_prompts(prompts) if isinstance(prompts, str | os.PathLike) else list(prompts)
    )
    source = Path(images)
    files = io.list_images(source) if source.is_dir() else [source]
    count = min(len(files), len(prompt_list))
    if count == 0:
        raise ValueError(
            f"nothing to score: {len(files)} images in {source}, {len(prompt_list)} prompts"
        )
    values = [
        scorer(io.load_images([f]), [p])
        for f, p in zip(files[:count], prompt_list[:count], strict=True)
    ]
    return sum(values) / count, count


def compute_clip_score_files(
    images: str | os.PathLike,
    prompts: str | os.PathLike | Sequence[str],
    model_dir: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
) -> tuple[float, int]:
    """CLIP score of an image folder against a prompt file, as cache-dit's ``compute_clip_score``
    (which takes paths): ``(mean, pairs)``."""
    return score_files(make_scorer("clip_score", model_dir, device), images, prompts)


def compute_reward_score(
    images: str | os.PathLike,
    prompts: str | os.PathLike | Sequence[str],
    model_dir: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
) -> tuple[float, int]:
    """ImageReward of an image folder against a prompt file: ``(mean, pairs)`` (cache-dit's
    name for it)."""
    return score_files(make_scorer("image_reward", model_dir, device), images, prompts)
