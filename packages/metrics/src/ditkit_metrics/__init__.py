"""ditkit-metrics: PSNR, SSIM, MSE, LPIPS, FID, CLIP score, ImageReward and prompt accuracy.

cache-dit's metric names keep their signatures (``compute_psnr(true, test) -> (value, n)`` on
image files, folders or arrays; ``compute_video_*``; ``FrechetInceptionDistance``,
``compute_fid``), beside tensor-level functions (``psnr``, ``ssim``, ``mse``) and the networks
(``LPIPS``, ``FIDInceptionV3``). Network weights are never downloaded: they load from a local path
given as an argument or by ``DITKIT_LPIPS_WEIGHTS``, ``DITKIT_FID_WEIGHTS``, ``CLIP_MODEL_DIR``,
``IMAGEREWARD_MODEL_DIR``. The names resolve on first use, so ``import ditkit_metrics`` is cheap.

Example:
    >>> import numpy as np
    >>> import ditkit_metrics
    >>> a = np.zeros((8, 8, 3), np.uint8)
    >>> ditkit_metrics.compute_ssim(a, a)
    (1.0, 1)
    >>> ditkit_metrics.__version__ == __import__("ditkit_interfaces").__version__
    True
"""

from __future__ import annotations

import importlib
from typing import Any

from .__about__ import __version__

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["psnr", "ssim", "mse"], "pixel"),
    **dict.fromkeys(
        [
            *("compute_psnr", "compute_ssim", "compute_mse", "compute_lpips"),
            *("compute_video_psnr", "compute_video_ssim", "compute_video_mse"),
            "compute_video_lpips",
        ],
        "compare",
    ),
    **dict.fromkeys(
        ["FrechetInceptionDistance", "compute_fid", "compute_video_fid", "frechet_distance"], "fid"
    ),
    **dict.fromkeys(["LPIPS", "load_lpips"], "lpips"),
    **dict.fromkeys(["FIDInceptionV3", "load_fid_inception"], "inception"),
    **dict.fromkeys(["compute_prompt_accuracy", "labels_from_prompts"], "prompt_accuracy"),
    **dict.fromkeys(["MissingWeightsError", "WeightsLayoutError"], "weights"),
    **dict.fromkeys(
        ["compute_clip_score_files", "compute_reward_score", "make_scorer"], "prompt_metrics"
    ),
    "compute_clip_score": "clip_score",
    "compute_image_reward": "image_reward",
    **dict.fromkeys(["main", "entrypoint"], "cli"),
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ditkit_metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
