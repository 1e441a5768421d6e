"""Shared fixtures: random images on disk, and random weights in the published checkpoint layouts.

No real weights exist on the test machines: the LPIPS and FID files written here have exactly the
keys and shapes of the published checkpoints (from the committed manifests) and random values,
so the loading path a user takes (folder or file, argument or environment variable, strict
layout check) runs for real. The ImageNet classifier of the LPIPS trunk files, which LPIPS
never runs, is stored as stride-0 tensors of the right shape to keep the files small.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ditkit_metrics.io import save_image
from ditkit_metrics.weights import load_manifest, random_state_dict


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread per test (fast, reproducible), restored afterwards: a module-level
    ``torch.set_num_threads`` would leak into every package tested after this one in the same
    process and change other tests' float reductions."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_pngs(folder: Path, images: np.ndarray, names: list[str] | None = None) -> list[Path]:
    """Save ``uint8`` ``[N, H, W, 3]`` images as PNG files (``0.png`` ... by default)."""
    names = names or [f"{i}.png" for i in range(len(images))]
    return [save_image(image, folder / name) for image, name in zip(images, names, strict=True)]


def noisy_copy(images: np.ndarray, rng: np.random.Generator, amplitude: int) -> np.ndarray:
    """``images`` plus uniform integer noise in [-amplitude, amplitude], clipped to uint8."""
    noise = rng.integers(-amplitude, amplitude + 1, images.shape)
    return np.clip(images.astype(np.int64) + noise, 0, 255).astype(np.uint8)


def _published_trunk(manifest_name: str, seed: int) -> dict[str, torch.Tensor]:
    manifest = load_manifest(manifest_name)
    used = {k: s for k, s in manifest.shapes.items() if not k.startswith("classifier.")}
    state = random_state_dict(used, seed=seed)
    for key, shape in manifest.shapes.items():
        if key.startswith("classifier."):
            state[key] = torch.zeros(1).expand(*shape)
    return state


def write_lpips_folder(folder: Path, net: str, seed: int = 0) -> Path:
    """The two published LPIPS files of ``net`` with random values; heads are >= 0 as trained."""
    trunk = {"alex": "torchvision_alexnet", "vgg": "torchvision_vgg16"}[net]
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(_published_trunk(trunk, seed), folder / load_manifest(trunk).file_name)
    heads = load_manifest(f"lpips_{net}_heads")
    state = {k: v.abs() for k, v in random_state_dict(heads.shapes, seed=seed + 1).items()}
    torch.save(state, folder / heads.file_name)
    return folder


@pytest.fixture(scope="session")
def lpips_alex_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lpips_folder(tmp_path_factory.mktemp("lpips_weights"), "alex")


@pytest.fixture(scope="session")
def fid_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random pt_inception-2015-12-05 file without the optional num_batches_tracked keys."""
    manifest = load_manifest("pt_inception_2015_12_05")
    state = random_state_dict(manifest.shapes, seed=3)
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path_factory.mktemp("fid_weights") / manifest.file_name
    torch.save(state, path)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def helpers() -> SimpleNamespace:
    """The helper functions above, for test modules (conftest is not importable by name)."""
    return SimpleNamespace(
        write_pngs=write_pngs, noisy_copy=noisy_copy, write_lpips_folder=write_lpips_folder
    )
