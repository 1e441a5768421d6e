"""The demo behind README command 1: the trained fixture, uncached and cached, side by side.

It loads the fixture that ships in ``ditkit-testing`` (a real ``FluxPipeline`` trained on
handwritten digits; see its model card), draws one image per digit uncached, then with DBCache
(F1B0, dynamic) and with DBCache + TaylorSeer, and reports for each: wall time, speedup, cached
steps, PSNR and SSIM against the uncached images, and prompt accuracy (the share of images the
fixture's digit classifier reads as the prompted digit). It writes ``demo.json``, ``demo.md``,
``samples.png`` (one row per config) and ``residual_diffs.png`` (the per-step residual diff
with cached steps marked).

Example:
    >>> from ditkit.demo import run_demo
    >>> result = run_demo(steps=8, repeats=1, quiet=True)  # doctest: +SKIP
    >>> [row["config"] for row in result["rows"]]  # doctest: +SKIP
    ['uncached', 'DBCache F1B0', 'DBCache F1B0 + TaylorSeer']
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ditkit_interfaces.capabilities import require

__all__ = ["DEMO_CONFIGS", "recommended_config", "run_demo"]

THRESHOLD = 0.12
WARMUP = 4


def recommended_config(steps: int = 28) -> tuple[Any, Any]:
    """ditkit's recommended start on a FLUX-like model: DBCache F1B0 (residual diff threshold
    0.12, 4 warm-up steps) with a second-order TaylorSeer; the CI quality gate holds it.

    Example:
        >>> cache, calibrator = recommended_config()
        >>> cache.Fn_compute_blocks, cache.residual_diff_threshold, calibrator.taylorseer_order
        (1, 0.12, 2)
    """
    import ditkit

    cache = ditkit.DBCacheConfig(
        Fn_compute_blocks=1,
        Bn_compute_blocks=0,
        residual_diff_threshold=THRESHOLD,
        max_warmup_steps=min(WARMUP, steps),
    )
    return cache, ditkit.TaylorSeerCalibratorConfig(taylorseer_order=2)


def _plain(steps: int) -> tuple[Any, Any]:
    return recommended_config(steps)[0], None


#: (label, steps -> (cache config, calibrator config)); ``None`` configs run uncached.
DEMO_CONFIGS: tuple[tuple[str, Callable[[int], tuple[Any, Any]] | None], ...] = (
    ("uncached", None),
    ("DBCache F1B0", _plain),
    ("DBCache F1B0 + TaylorSeer", recommended_config),
)


class _Progress:
    """A progress bar over every denoising step of the demo (tqdm, on stderr)."""

    def __init__(self, total: int, quiet: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=total, unit="step", disable=quiet, file=sys.stderr, leave=False, mininterval=1.0
        )

    def callback(self, pipe: Any, step: int, timestep: Any, kwargs: dict) -> dict:
        self.bar.update(1)
        return {}


def _images(pipe: Any, fixture: Any, digits: list[int], steps: int, seed: int, bar: _Progress):
    kwargs = fixture.fixture_call_kwargs(digits, num_inference_steps=steps, seed=seed)
    return pipe(**kwargs, callback_on_step_end=bar.callback).images


def _diffs(stats: Any) -> dict[int, float]:
    return {int(step): float(value) for step, value in (stats.residual_diffs or {}).items()}


def run_demo(
    steps: int = 28,
    repeats: int = 3,
    seed: int = 0,
    output_dir: str | Path | None = None,
    quiet: bool = False,
    digits: list[int] | None = None,
) -> dict[str, Any]:
    """Run the fixture uncached and cached; return (and print, and write) the comparison.

    Each config runs once to warm up, then ``repeats`` times; the wall time is the median.
    """
    import torch

    import ditkit

    require("testing", "the ditkit demo")
    from ditkit_testing import fixture

    metrics = require("metrics", "the ditkit demo")
    digits = list(range(10)) if digits is None else list(digits)
    pipe = fixture.build_fixture_pipeline()
    classifier = fixture.load_digit_classifier()
    bar = _Progress(len(DEMO_CONFIGS) * (repeats + 1) * steps, quiet)
    rows: list[dict[str, Any]] = []
    grid, series = [], []
    reference, baseline = None, 0.0
    for label, make in DEMO_CONFIGS:
        cache_config, calibrator_config = make(steps) if make is not None else (None, None)
        if cache_config is not None:
            ditkit.enable_cache(
                pipe, cache_config=cache_config, calibrator_config=calibrator_config
            )
        seconds, images = [], None
        with torch.no_grad():
            for run in range(repeats + 1):
                start = time.perf_counter()
                images = _images(pipe, fixture, digits, steps, seed, bar)
                if run:
                    seconds.append(time.perf_counter() - start)
        stats = ditkit.summary(pipe, logging=False)[0] if cache_config is not None else None
        if cache_config is not None:
            ditkit.disable_cache(pipe)
        wall = statistics.median(seconds)
        if reference is None:
            reference, baseline = images, wall
        cached = list(stats.cached_steps) if stats is not None else []
        psnr = metrics.psnr(reference, images, data_range=1.0, reduction="none")
        finite = [float(v) for v in psnr if math.isfinite(float(v))]
        rows.append(
            {
                "config": label,
                "tag": cache_config.strify() if cache_config is not None else "-",
                "calibrator": type(calibrator_config).__name__ if calibrator_config else None,
                "seconds": round(wall, 4),
                "speedup": round(baseline / wall, 3),
                "cached_steps": cached,
                "computed": steps - len(cached),
                "psnr_db": round(statistics.mean(finite), 3) if finite else math.inf,
                "ssim": round(float(metrics.ssim(reference, images, data_range=1.0)), 5),
                "prompt_accuracy": metrics.compute_prompt_accuracy(images, digits, classifier),
            }
        )
        grid.append((label, images))
        if stats is not None:
            series.append((label, _diffs(stats), cached, cache_config.residual_diff_threshold))
    bar.bar.close()
    result = {
        "model": "ditkit fixture (FluxPipeline trained on digits, 32x32)",
        "digits": digits,
        "steps": steps,
        "repeats": repeats,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "rows": rows,
    }
    table = _table(result)
    if not quiet:
        print(table)
    if output_dir is not None:
        _write(Path(output_dir), result, table, grid, series, steps, quiet)
    return result


def _write(path: Path, result: dict, table: str, grid: list, series: list, steps: int, quiet: bool):
    from .plots import residual_diff_plot, sample_grid

    path.mkdir(parents=True, exist_ok=True)
    (path / "demo.json").write_text(json.dumps(result, indent=2) + "\n")
    (path / "demo.md").write_text(table + "\n")
    sample_grid(grid, path / "samples.png")
    residual_diff_plot(series, steps, path / "residual_diffs.png")
    if not quiet:
        names = ", ".join(("demo.json", "demo.md", "samples.png", "residual_diffs.png"))
        print(f"wrote {names} to {path}")


def _table(result: dict[str, Any]) -> str:
    header = (
        "config",
        "wall (s)",
        "speedup",
        "computed steps",
        "PSNR vs uncached",
        "SSIM",
        "prompt accuracy",
    )
    lines = [
        f"ditkit demo: {result['model']}, {len(result['digits'])} images, {result['steps']} "
        f"steps, median of {result['repeats']}, torch {result['torch']}, "
        f"{result['threads']} threads",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in result["rows"]:
        psnr = "identical" if row["psnr_db"] == math.inf else f"{row['psnr_db']:.1f} dB"
        cells = (
            row["config"],
            f"{row['seconds']:.3f}",
            f"{row['speedup']:.2f}x",
            f"{row['computed']}/{result['steps']}",
            psnr,
            f"{row['ssim']:.4f}",
            f"{row['prompt_accuracy']:.0%}",
        )
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for row in result["rows"][1:]:
        calibrator = f" + {row['calibrator']}" if row["calibrator"] else ""
        tag = f"{row['tag']}{calibrator}"
        lines.append(f"{row['config']} ({tag}): cached steps {row['cached_steps']}")
    return "\n".join(lines)
