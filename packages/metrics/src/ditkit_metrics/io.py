"""Loading images, prompts and videos, and pairing files of two directories by name.

Images load with Pillow as ``uint8`` arrays ``[H, W, 3]`` in RGB. Videos are either video files,
decoded with PyAV (the optional extra ``pip install 'ditkit-metrics[video]'``), or *frame
directories*: a folder of images, one frame each, in natural name order. Nothing here needs
torchvision or OpenCV.

Example:
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from ditkit_metrics.io import load_image, pair_files, save_image
    >>> root = Path(tempfile.mkdtemp())
    >>> for side in ("a", "b"):
    ...     for name in ("img_2.png", "img_10.png"):
    ...         _ = save_image(np.zeros((8, 8, 3), np.uint8), root / side / name)
    >>> [(t.name, u.name) for t, u in pair_files(root / "a", root / "b")]
    [('img_2.png', 'img_2.png'), ('img_10.png', 'img_10.png')]
    >>> load_image(root / "a" / "img_2.png").shape
    (8, 8, 3)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from ditkit_interfaces.errors import MissingComponentError

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "images_to_tensor",
    "is_video_file",
    "list_images",
    "list_videos",
    "load_image",
    "load_images",
    "load_prompts",
    "natural_key",
    "pair_files",
    "read_video",
    "save_image",
    "video_frame_pairs",
    "video_pairs",
]

IMAGE_EXTENSIONS = ("bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp")
VIDEO_EXTENSIONS = ("mp4", "mov", "mkv", "webm", "avi", "gif")

PathLike = str | os.PathLike


def natural_key(path: PathLike) -> tuple:
    """Sort key that orders ``img_2`` before ``img_10`` (digit runs compare as numbers)."""
    parts = re.split(r"(\d+)", Path(path).as_posix())
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def _list(directory: PathLike, extensions: Sequence[str]) -> list[Path]:
    root = Path(directory)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory")
    wanted = {f".{e}" for e in extensions}
    found = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in wanted]
    return sorted(found, key=lambda p: natural_key(p.relative_to(root)))


def list_images(directory: PathLike) -> list[Path]:
    """Image files under ``directory`` (recursively), in natural order of their relative paths."""
    return _list(directory, IMAGE_EXTENSIONS)


def list_videos(directory: PathLike) -> list[Path]:
    """Video files under ``directory`` (recursively), in natural order of their relative paths."""
    return _list(directory, VIDEO_EXTENSIONS)


def is_video_file(path: PathLike) -> bool:
    """Whether ``path`` is a file with a video extension."""
    return Path(path).is_file() and Path(path).suffix.lower().lstrip(".") in VIDEO_EXTENSIONS


def pair_files(
    dir_true: PathLike, dir_test: PathLike, videos: bool = False
) -> list[tuple[Path, Path]]:
    """Pair the files of two directories that have the same relative path.

    Files present on one side only are left out. Raises ``ValueError`` when no pair is found.
    """
    lister = list_videos if videos else list_images
    root_true, root_test = Path(dir_true), Path(dir_test)
    tests = {p.relative_to(root_test).as_posix(): p for p in lister(root_test)}
    pairs = [
        (path, tests[key])
        for path in lister(root_true)
        if (key := path.relative_to(root_true).as_posix()) in tests
    ]
    if not pairs:
        kind = "video" if videos else "image"
        raise ValueError(
            f"no {kind} pairs between {root_true} and {root_test}: "
            "files are paired by their relative path, so both sides need the same file names"
        )
    return pairs


def load_image(path: PathLike) -> np.ndarray:
    """Load an image file as a ``uint8`` RGB array ``[H, W, 3]`` (Pillow)."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def save_image(image: np.ndarray | torch.Tensor, path: PathLike) -> Path:
    """Save a ``uint8`` ``[H, W, 3]`` array (or a ``[3, H, W]`` float tensor in [0, 1])."""
    from PIL import Image

    if isinstance(image, torch.Tensor):
        image = (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)
        image = image.cpu().numpy()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(target)
    return target


def images_to_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    """Stack ``uint8`` ``[H, W, 3]`` arrays into a float32 tensor ``[N, 3, H, W]`` in [0, 1]."""
    stacked = torch.from_numpy(np.stack([np.asarray(i) for i in images]))
    return stacked.permute(0, 3, 1, 2).to(torch.float32) / 255.0


def load_images(paths: Sequence[PathLike]) -> torch.Tensor:
    """Load image files (all of one size) into a float32 tensor ``[N, 3, H, W]`` in [0, 1]."""
    return images_to_tensor([load_image(p) for p in paths])


def load_prompts(path: PathLike) -> list[str]:
    """One prompt per line of a UTF-8 text file, stripped (cache-dit's prompt file format)."""
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle]


def _decode_video(path: Path) -> np.ndarray:
    try:
        import av
    except ImportError as err:
        raise MissingComponentError(
            f"reading the video file {path.name}",
            "av",
            pip_line="pip install 'ditkit-metrics[video]'",
            reason="PyAV decodes video files; a directory of frame images needs nothing",
        ) from err
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if not frames:
        raise ValueError(f"{path} has no video frames")
    return np.stack(frames)


def read_video(path: PathLike) -> np.ndarray:
    """Frames of a video file or of a frame directory as ``uint8`` ``[T, H, W, 3]`` RGB."""
    source = Path(path)
    if source.is_dir():
        frames = list_images(source)
        if not frames:
            raise ValueError(f"{source} holds no frame images ({', '.join(IMAGE_EXTENSIONS)})")
        return np.stack([load_image(f) for f in frames])
    if not source.is_file():
        raise FileNotFoundError(f"{source} does not exist")
    return _decode_video(source)


def video_pairs(video_true: PathLike, video_test: PathLike) -> list[tuple[Path, Path]]:
    """The videos to compare: two video files or frame folders as one pair, or two folders of
    video files paired by relative path."""
    true, test = Path(video_true), Path(video_test)
    for path in (true, test):
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
    if true.is_dir() and test.is_dir() and list_videos(true):
        return pair_files(true, test, videos=True)
    if true.is_dir() != test.is_dir():
        raise ValueError(f"compare a video with a video, or a folder with a folder: {true}, {test}")
    return [(true, test)]


def video_frame_pairs(
    video_true: PathLike, video_test: PathLike
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """For each pair of :func:`video_pairs`, both videos' frames cut to the shorter length."""
    for true, test in video_pairs(video_true, video_test):
        frames_true, frames_test = read_video(true), read_video(test)
        count = min(len(frames_true), len(frames_test))
        yield frames_true[:count], frames_test[:count]
