"""Image, prompt and video loading, and pairing the files of two folders by name."""

from __future__ import annotations

import sys

import av
import numpy as np
import pytest
from PIL import Image

from ditkit_interfaces.errors import MissingComponentError
from ditkit_metrics import io


def write_video(path, frames: np.ndarray, codec: str = "png", pix_fmt: str = "rgb24") -> None:
    """Encode ``uint8`` ``[T, H, W, 3]`` frames (PNG in .mov is lossless)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=8)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_natural_order_and_pairing(tmp_path, helpers):
    image = np.zeros((4, 4, 3), np.uint8)
    names = ["f10.png", "f2.png", "f1.jpg", "sub/f3.png", "notes.txt"]
    for side in ("a", "b"):
        for name in names[:-1]:
            io.save_image(image, tmp_path / side / name)
        (tmp_path / side / names[-1]).write_text("not an image")
    io.save_image(image, tmp_path / "a" / "only_here.png")
    listed = [p.relative_to(tmp_path / "a").as_posix() for p in io.list_images(tmp_path / "a")]
    assert listed == ["f1.jpg", "f2.png", "f10.png", "only_here.png", "sub/f3.png"]
    pairs = io.pair_files(tmp_path / "a", tmp_path / "b")
    assert [(t.name, u.parent.name) for t, u in pairs] == [
        ("f1.jpg", "b"),
        ("f2.png", "b"),
        ("f10.png", "b"),
        ("f3.png", "sub"),
    ]
    io.save_image(image, tmp_path / "c" / "other.png")
    with pytest.raises(ValueError, match="same file names"):
        io.pair_files(tmp_path / "a", tmp_path / "c")


def test_load_image_is_rgb_uint8(tmp_path, rng):
    rgba = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "x.png")
    Image.fromarray(rgba[..., 0], "L").save(tmp_path / "g.png")
    loaded = io.load_image(tmp_path / "x.png")
    assert loaded.dtype == np.uint8 and loaded.shape == (6, 5, 3)
    assert (loaded == rgba[..., :3]).all()
    assert (io.load_image(tmp_path / "g.png") == rgba[..., :1]).all()
    batch = io.load_images([tmp_path / "x.png", tmp_path / "x.png"])
    assert batch.shape == (2, 3, 6, 5) and batch.dtype.is_floating_point
    assert batch.max() <= 1.0 and abs(float(batch[0, 0, 0, 0]) - rgba[0, 0, 0] / 255) < 1e-7


def test_load_prompts_keeps_lines(tmp_path):
    (tmp_path / "p.txt").write_text(" a cat \nthe digit 7\n\nlast", encoding="utf-8")
    assert io.load_prompts(tmp_path / "p.txt") == ["a cat", "the digit 7", "", "last"]


def test_video_file_and_frame_folder_read_the_same_frames(tmp_path, rng, helpers):
    frames = rng.integers(0, 256, (5, 16, 24, 3), dtype=np.uint8)
    write_video(tmp_path / "clip.mov", frames)
    helpers.write_pngs(tmp_path / "frames", frames, [f"frame_{i}.png" for i in range(5)])
    assert (io.read_video(tmp_path / "clip.mov") == frames).all()
    assert (io.read_video(tmp_path / "frames") == frames).all()
    assert io.is_video_file(tmp_path / "clip.mov") and not io.is_video_file(tmp_path / "frames")


def test_video_pairs(tmp_path, rng):
    frames = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    for side in ("a", "b"):
        for name in ("x.mov", "y.mov"):
            write_video(tmp_path / side / name, frames[: 2 if side == "b" else 3])
    pairs = io.video_pairs(tmp_path / "a", tmp_path / "b")
    assert [(t.name, u.name) for t, u in pairs] == [("x.mov", "x.mov"), ("y.mov", "y.mov")]
    cut = list(io.video_frame_pairs(tmp_path / "a" / "x.mov", tmp_path / "b" / "x.mov"))
    assert [(len(t), len(u)) for t, u in cut] == [(2, 2)]
    with pytest.raises(ValueError, match="folder with a folder"):
        io.video_pairs(tmp_path / "a", tmp_path / "b" / "x.mov")
    with pytest.raises(FileNotFoundError):
        io.video_pairs(tmp_path / "nothing.mp4", tmp_path / "b" / "x.mov")


def test_missing_pyav_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "v.mp4").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "av", None)  # import av now raises ImportError
    with pytest.raises(MissingComponentError, match=r"ditkit-metrics\[video\]"):
        io.read_video(tmp_path / "v.mp4")
