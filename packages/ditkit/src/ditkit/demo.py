"""The demo behind README command 1: run a tiny pipeline end to end and time it.

It builds a tiny random-weight diffusers pipeline offline (``ditkit-testing``), runs it once to
warm up and then ``--repeats`` times, and prints the per-run and per-step wall time. It grows
with the project: the cache core adds the cached run beside the uncached one, the fixture issue
swaps in the trained model and image quality.

Example:
    >>> from ditkit.demo import run_demo
    >>> result = run_demo(pipeline="flux", steps=4, repeats=1, quiet=True)  # doctest: +SKIP
    >>> result["steps"]  # doctest: +SKIP
    4
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from ditkit_interfaces.capabilities import require

__all__ = ["run_demo"]


def _time_call(pipe: Any, kwargs: dict[str, Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    output = pipe(**kwargs)
    return time.perf_counter() - start, output


def run_demo(
    pipeline: str = "flux",
    steps: int = 28,
    repeats: int = 3,
    seed: int = 0,
    output_dir: str | Path | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Run the tiny ``pipeline`` for ``steps`` denoising steps and report its timing.

    Returns a dict with the pipeline name, steps, per-run seconds, the median, ms per step and
    the output's shape; with ``output_dir`` it is also written there as ``demo.json``.
    """
    testing = require("testing", "the ditkit demo")
    import torch

    torch.manual_seed(seed)
    pipe = testing.build_tiny_pipeline(pipeline, seed=seed)
    pipe.set_progress_bar_config(disable=True)
    kwargs = testing.tiny_call_kwargs(pipeline, num_inference_steps=steps, seed=seed)
    _time_call(pipe, kwargs)  # warm-up: first-call allocations and lazy initialisation
    runs = []
    for _ in range(repeats):
        seconds, output = _time_call(pipe, testing.tiny_call_kwargs(pipeline, steps, seed))
        runs.append(seconds)
    images = getattr(output, "images", None)
    if images is None:
        images = output.frames
    median = statistics.median(runs)
    result = {
        "pipeline": type(pipe).__name__,
        "transformer": type(pipe.transformer).__name__,
        "steps": steps,
        "runs_s": [round(r, 4) for r in runs],
        "median_s": round(median, 4),
        "ms_per_step": round(1000 * median / steps, 2),
        "output_shape": list(getattr(images, "shape", ())),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    if not quiet:
        print(_table(result))
    if output_dir is not None:
        path = Path(output_dir)
        path.mkdir(parents=True, exist_ok=True)
        (path / "demo.json").write_text(json.dumps(result, indent=2) + "\n")
        if not quiet:
            print(f"wrote {path / 'demo.json'}")
    return result


def _table(result: dict[str, Any]) -> str:
    rows = [
        ("pipeline", f"{result['pipeline']} ({result['transformer']}, tiny random weights)"),
        ("steps", str(result["steps"])),
        ("runs (s)", ", ".join(f"{r:.3f}" for r in result["runs_s"])),
        ("median (s)", f"{result['median_s']:.3f}"),
        ("per step (ms)", f"{result['ms_per_step']:.2f}"),
        ("output shape", "x".join(map(str, result["output_shape"]))),
        ("torch / threads", f"{result['torch']} / {result['threads']}"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = ["ditkit demo: uncached baseline", "-" * 60]
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)
