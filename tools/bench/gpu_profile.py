"""The uncached FLUX.1-dev step on the GPU: attention backends, compile recipes, time split.

Same model and inputs as ``gpu_cache.py`` (FLUX.1-dev config, random bf16 weights, 1024x1024,
transformer-only). For each recipe it times denoising steps (per-step CUDA-event medians over
``--repeats`` runs of ``--steps`` steps after a warm-up run) and profiles one step with
``torch.profiler``, splitting the GPU kernel time into attention, GEMMs and the rest (by kernel
name). Recipes:

- ``eager`` / ``eager+<backend>``: no compile; SDPA restricted to one backend
  (``flash``, ``cudnn``, ``efficient``) with ``torch.nn.attention.sdpa_kernel``;
- ``regional`` / ``regional+<backend>``: ``block.compile()`` on every block (default options);
- ``regional-autotune``: ``block.compile(mode="max-autotune-no-cudagraphs")``;
- ``regional-coord``: regional with inductor's ``coordinate_descent_tuning``;
- ``...@<backend>``: diffusers' attention backend set on the model *before* compiling
  (``model.set_attention_backend``, e.g. ``regional@_native_cudnn``), so the compiled blocks
  call that kernel (an ``sdpa_kernel`` context active only at run time does not reach code
  compiled earlier).

A row is printed as soon as it is measured (an interrupted run leaves a partial table), and all
rows go to ``--json``. Compiling changes the blocks for every later recipe, so recipes run in
the order given and the eager ones must come first.

    python tools/bench/gpu_profile.py --recipes eager eager+cudnn regional regional+cudnn
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_cache import build, denoise, inputs, log

BACKENDS = {
    "flash": "FLASH_ATTENTION",
    "cudnn": "CUDNN_ATTENTION",
    "efficient": "EFFICIENT_ATTENTION",
}
ATTENTION = ("flash", "fmha", "attention", "attn", "sdpa", "cudnn")
GEMM = ("gemm", "cutlass", "xmma", "nvjet", "matmul", "sm90", "cublas")


def kind(kernel: str) -> str:
    """attention, gemm or other, from a CUDA kernel's name."""
    name = kernel.lower()
    if any(key in name for key in ATTENTION):
        return "attention"
    if any(key in name for key in GEMM):
        return "gemm"
    return "other"


def sdpa_backend(recipe: str) -> contextlib.AbstractContextManager:
    backend = recipe.partition("+")[2]
    if not backend:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(getattr(SDPBackend, BACKENDS[backend]))


def split(
    model: torch.nn.Module, data: dict[str, Any], recipe: str, top: int = 0
) -> dict[str, float]:
    """GPU kernel milliseconds per step, by kind (a two-step run, halved); with ``top``, also
    print the ``top`` most expensive kernels with their kind."""
    from torch.profiler import ProfilerActivity, profile

    with sdpa_backend(recipe), profile(activities=[ProfilerActivity.CUDA]) as prof:
        denoise(model, data, steps=2)  # two steps (the schedule needs two); halved below
        torch.cuda.synchronize()
    totals = {"attention": 0.0, "gemm": 0.0, "other": 0.0}
    kernels = []
    for event in prof.key_averages():
        device_us = getattr(event, "device_time_total", None)
        if device_us is None:
            device_us = getattr(event, "cuda_time_total", 0.0)
        if device_us and event.device_type == torch.autograd.DeviceType.CUDA:
            totals[kind(event.key)] += device_us / 2000.0  # per step of the two
            kernels.append((device_us / 2000.0, event.count // 2, event.key))
    for ms, calls, name in sorted(kernels, reverse=True)[:top]:
        log(f"  {recipe}: {ms:7.2f} ms/step {calls:4d} calls [{kind(name)}] {name[:110]}")
    return {key: round(value, 2) for key, value in totals.items()}


def time_steps(model, data, recipe: str, steps: int, repeats: int) -> float:
    """Median per-step milliseconds over ``repeats`` runs (after one warm-up run)."""
    per_step = []
    with sdpa_backend(recipe):
        for run in range(repeats + 1):
            _, events = denoise(model, data, steps=steps)
            torch.cuda.synchronize()
            if run:
                per_step += [s.elapsed_time(e) for s, e in events]
    return statistics.median(per_step)


def apply_recipe(model: torch.nn.Module, recipe: str, compiled: list[str]) -> None:
    base, _, backend = recipe.partition("+")[0].partition("@")
    if backend:
        model.set_attention_backend(backend)
    if base == "eager" or base in compiled:
        return
    if compiled:
        raise SystemExit(f"recipe {recipe}: blocks already compiled as {compiled[0]}")
    options: dict[str, Any] = {}
    if base == "regional-autotune":
        options = {"mode": "max-autotune-no-cudagraphs"}
    elif base == "regional-coord":
        options = {"options": {"coordinate_descent_tuning": True}}
    for block in [*model.transformer_blocks, *model.single_transformer_blocks]:
        block.compile(**options)
    compiled.append(base)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", nargs="+", default=["eager", "eager+cudnn", "regional"])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--top", type=int, default=0, help="print the N costliest kernels")
    args = parser.parse_args(argv)
    torch.backends.cuda.matmul.allow_tf32 = True
    device = torch.device("cuda")
    model, data = build(device), inputs(device)
    log(f"# uncached step on {torch.cuda.get_device_name()}, torch {torch.__version__}")
    log("| recipe | step (ms) | attention (ms) | GEMM (ms) | other (ms) | kernels sum (ms) |")
    log("|---|---|---|---|---|---|")
    rows, compiled = [], []
    for recipe in args.recipes:
        apply_recipe(model, recipe, compiled)
        step_ms = time_steps(model, data, recipe, args.steps, args.repeats)
        parts = split(model, data, recipe, args.top)
        row = {"recipe": recipe, "step_ms": round(step_ms, 2), **parts}
        rows.append(row)
        log(
            f"| {recipe} | {step_ms:.2f} | {parts['attention']:.2f} | {parts['gemm']:.2f} | "
            f"{parts['other']:.2f} | {sum(parts.values()):.2f} |"
        )
        if args.json is not None:
            args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
