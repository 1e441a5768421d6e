"""Two small PNG figures for the demo, drawn with Pillow (no matplotlib needed).

- :func:`sample_grid`: rows of images (one row per config) with a label on the left;
- :func:`residual_diff_plot`: the per-step residual diff of one or more cached runs, the
  threshold as a dashed line, cached steps as filled markers and computed ones as hollow.

Example:
    >>> import torch, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> sample_grid([("a", torch.rand(3, 3, 8, 8))], d / "grid.png").size
    (272, 40)
    >>> series = [("F1B0", {2: 0.3, 3: 0.1}, [3], 0.12)]
    >>> residual_diff_plot(series, total_steps=5, path=d / "diffs.png").size
    (720, 360)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = ["residual_diff_plot", "sample_grid"]

#: distinguishable line colours (RGB), cycled per series
COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14))


def sample_grid(
    rows: Sequence[tuple[str, torch.Tensor]],
    path: str | Path,
    scale: int = 3,
    label_width: int = 176,
) -> Image.Image:
    """Save a grid: one row per ``(label, images [N, C, H, W] in [0, 1])``; return the image."""
    from PIL import Image, ImageDraw

    if not rows:
        raise ValueError("rows must hold at least one (label, images) pair")
    _, channels, height, width = rows[0][1].shape
    cell_h, cell_w = height * scale + 4, width * scale + 4
    columns = max(len(images) for _, images in rows)
    canvas = Image.new("RGB", (label_width + columns * cell_w, len(rows) * cell_h), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (label, images) in enumerate(rows):
        draw.text((4, r * cell_h + cell_h // 2 - 6), label, fill="black")
        pixels = (images.detach().float().clamp(0, 1) * 255).round().to("cpu").byte()
        for c, image in enumerate(pixels):
            array = image.permute(1, 2, 0).numpy()
            tile = Image.fromarray(array[..., 0] if channels == 1 else array)
            tile = tile.convert("RGB").resize((width * scale, height * scale), Image.NEAREST)
            canvas.paste(tile, (label_width + c * cell_w + 2, r * cell_h + 2))
    canvas.save(path)
    return canvas


def _dashed(draw, start: tuple[float, float], end: tuple[float, float], colour) -> None:
    (x0, y), (x1, _) = start, end
    x = x0
    while x < x1:
        draw.line([(x, y), (min(x + 6, x1), y)], fill=colour, width=1)
        x += 10


def residual_diff_plot(
    series: Sequence[tuple[str, Mapping[int, float], Sequence[int], float | None]],
    total_steps: int,
    path: str | Path,
    size: tuple[int, int] = (720, 360),
) -> Image.Image:
    """Plot ``(label, {step: diff}, cached_steps, threshold)`` series over ``total_steps``.

    Cached steps are drawn as filled markers, computed steps as hollow ones; each series'
    threshold (if any) is a dashed line in its colour.
    """
    from PIL import Image, ImageDraw

    width, height = size
    left, right, top, bottom = 56, 16, 28, 40
    values = [v for _, diffs, _, _ in series for v in diffs.values()]
    values += [t for *_, t in series if t is not None]
    y_max = max(values, default=1.0) * 1.1 or 1.0
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)

    def x_of(step: float) -> float:
        return left + (width - left - right) * step / max(total_steps - 1, 1)

    def y_of(value: float) -> float:
        return height - bottom - (height - top - bottom) * value / y_max

    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for k in range(5):
        value = y_max * k / 4
        draw.text((4, y_of(value) - 6), f"{value:.3f}", fill="black")
        draw.line([(left - 3, y_of(value)), (left, y_of(value))], fill="black")
    for step in range(0, total_steps, max(1, total_steps // 14)):
        draw.text((x_of(step) - 4, height - bottom + 6), str(step), fill="black")
    draw.text((width // 2 - 16, height - 16), "step", fill="black")
    draw.text((left, 8), "residual diff of the first block's output (filled: cached)", fill="black")
    for index, (label, diffs, cached, threshold) in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        points = [(x_of(s), y_of(v)) for s, v in sorted(diffs.items())]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        cached_set = set(cached)
        for (x, y), step in zip(points, sorted(diffs), strict=True):
            box = [x - 4, y - 4, x + 4, y + 4]
            draw.ellipse(box, fill=colour if step in cached_set else "white", outline=colour)
        if threshold is not None:
            _dashed(draw, (left, y_of(threshold)), (width - right, y_of(threshold)), colour)
        draw.text((width - right - 220, top + 6 + 14 * index), f"-o- {label}", fill=colour)
    image.save(path)
    return image
