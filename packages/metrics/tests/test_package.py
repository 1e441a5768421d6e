"""The package surface: lazy cache-dit names, runnable docstring examples, no torchvision/OpenCV."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys
import textwrap

import pytest

import ditkit_metrics

DOCUMENTED = [
    "ditkit_metrics",
    "ditkit_metrics.compare",
    "ditkit_metrics.fid",
    "ditkit_metrics.inception",
    "ditkit_metrics.io",
    "ditkit_metrics.lpips",
    "ditkit_metrics.pixel",
    "ditkit_metrics.prompt_accuracy",
    "ditkit_metrics.prompt_metrics",
    "ditkit_metrics.summary",
    "ditkit_metrics.weights",
]


@pytest.mark.parametrize("name", DOCUMENTED)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_cache_dit_names_resolve_lazily():
    cache_dit_names = [
        "compute_psnr",
        "compute_ssim",
        "compute_mse",
        "compute_video_psnr",
        "compute_video_ssim",
        "compute_video_mse",
        "compute_fid",
        "compute_video_fid",
        "FrechetInceptionDistance",
        "compute_lpips",
        "compute_reward_score",
        "entrypoint",
    ]
    for name in cache_dit_names:
        assert callable(getattr(ditkit_metrics, name)), name
        assert name in ditkit_metrics.__all__ and name in dir(ditkit_metrics)
    assert ditkit_metrics.compute_fid is importlib.import_module("ditkit_metrics.fid").compute_fid
    with pytest.raises(AttributeError, match="no attribute 'compute_sharpness'"):
        _ = ditkit_metrics.compute_sharpness


PROBE = textwrap.dedent(
    """
    import importlib.abc, sys

    class Forbid(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"torchvision", "cv2", "skimage", "lpips", "pytorch_fid"}:
                raise ImportError(f"{name} must not be imported")
            return None

    sys.meta_path.insert(0, Forbid())
    import ditkit_metrics
    assert "torch" not in sys.modules, "import ditkit_metrics must stay cheap"
    import numpy as np
    for module in ("cli", "compare", "fid", "inception", "io", "lpips", "pixel",
                   "prompt_accuracy", "prompt_metrics", "summary", "weights"):
        importlib.import_module("ditkit_metrics." + module)
    a = np.zeros((32, 32, 3), np.uint8)
    print(ditkit_metrics.compute_psnr(a, a + 1)[0] > 40, ditkit_metrics.LPIPS("vgg") is not None)
    """
)


def test_cpu_path_needs_no_torchvision_or_opencv():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]
