"""The demo behind README command 1: one tiny pipeline, uncached and cached, side by side.

It builds a tiny random-weight diffusers pipeline offline (``ditkit-testing``), runs it
uncached, then with DBCache under a static steps mask (the "fast" policy: 11 of 28 steps
computed) and with dynamic DBCache (F1B0), and prints wall time, speedup, cached steps and the
output's difference from the uncached run (PSNR, max abs). The trained fixture model and its
quality metrics replace the random model when the fixture issue lands.

Example:
    >>> from ditkit.demo import run_demo
    >>> result = run_demo(pipeline="flux", steps=8, repeats=1, quiet=True)  # doctest: +SKIP
    >>> [row["config"] for row in result["rows"]]  # doctest: +SKIP
    ['uncached', 'DBCache static fast mask', 'DBCache F1B0 dynamic']
"""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

from ditkit_interfaces.capabilities import require

__all__ = ["run_demo"]

# Random weights change a lot between steps (diff 0.13-0.4 on the tiny Flux): a threshold
# that caches there would be far too loose for a trained model (cache-dit suggests 0.08-0.12).
DYNAMIC_THRESHOLD = {"flux": 0.3, "qwen_image": 0.3, "wan": 0.08}


def _timed(testing: Any, pipe: Any, name: str, steps: int, seed: int, repeats: int) -> tuple:
    testing.run_tiny_pipeline(pipe, name, num_inference_steps=steps, seed=seed)  # warm-up
    runs, output = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        output = testing.run_tiny_pipeline(pipe, name, num_inference_steps=steps, seed=seed)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), output


def _psnr(reference: Any, test: Any) -> float:
    mse = float(((reference.float() - test.float()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def run_demo(
    pipeline: str = "flux",
    steps: int = 28,
    repeats: int = 3,
    seed: int = 0,
    output_dir: str | Path | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Run the tiny ``pipeline`` uncached and cached; return (and print) the comparison.

    With ``output_dir``, the result is also written there as ``demo.json``.
    """
    testing = require("testing", "the ditkit demo")
    cache = require("cache", "the ditkit demo", attribute="enable_cache")
    import torch

    pipe = testing.build_tiny_pipeline(pipeline, seed=seed)
    configs = [
        ("uncached", None),
        (
            "DBCache static fast mask",
            cache.DBCacheConfig(
                Fn_compute_blocks=1,
                steps_computation_mask=cache.steps_mask(mask_policy="fast", total_steps=steps),
                steps_computation_policy="static",
            )
            if steps >= 8
            else None,
        ),
        (
            "DBCache F1B0 dynamic",
            cache.DBCacheConfig(
                Fn_compute_blocks=1,
                residual_diff_threshold=DYNAMIC_THRESHOLD[pipeline],
                max_warmup_steps=min(4, steps),
            ),
        ),
    ]
    rows: list[dict[str, Any]] = []
    reference = None
    baseline = 0.0
    for label, config in configs:
        if config is None and label != "uncached":
            continue
        if config is not None:
            cache.enable_cache(pipe, config)
        seconds, output = _timed(testing, pipe, pipeline, steps, seed, repeats)
        stats = cache.summary(pipe, logging=False) if config is not None else []
        cached = stats[0].cached_steps if stats else []
        if config is not None:
            cache.disable_cache(pipe)
        if reference is None:
            reference, baseline = output, seconds
        rows.append(
            {
                "config": label,
                "tag": config.strify() if config is not None else "-",
                "seconds": round(seconds, 4),
                "speedup": round(baseline / seconds, 2),
                "cached_steps": cached,
                "computed": steps - len(cached),
                "psnr_db": round(_psnr(reference, output), 2),
                "max_abs_diff": round(float((reference - output).abs().max()), 5),
            }
        )
    result = {
        "pipeline": type(pipe).__name__,
        "transformer": type(pipe.transformer).__name__,
        "steps": steps,
        "repeats": repeats,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "rows": rows,
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
    header = ("config", "wall (s)", "speedup", "computed", "PSNR vs uncached", "max abs diff")
    lines = [
        f"ditkit demo: {result['pipeline']} ({result['transformer']}, tiny random weights), "
        f"{result['steps']} steps, median of {result['repeats']}, torch {result['torch']}, "
        f"{result['threads']} threads",
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
            f"{row['max_abs_diff']:.4f}",
        )
        lines.append("| " + " | ".join(cells) + " |")
    for row in result["rows"][1:]:
        lines.append(f"{row['config']}: cached steps {row['cached_steps']}")
    return "\n".join(lines)
