"""GPU benchmark of the cache engine on the FLUX.1-dev-sized transformer (random bf16 weights).

One library per process (``--library ditkit`` or ``cache_dit``; cache-dit 1.5.3 from a
``pip install --no-deps --target`` folder on ``PYTHONPATH``), the transformer-only denoising loop
of FLUX.1-dev at 1024x1024 (4096 image + 512 text tokens, guidance 3.5, FLUX's shifted sigmas,
Euler updates), random prompt embeddings. Variants, each eager and (``--compile``) with
regional compile of the blocks (``block.compile()`` once; a cache enabled later re-wraps block
forwards, which costs one recompile):

- ``uncached``: the plain loop;
- ``static_fast``: DBCache F1B0 under the static "fast" steps mask (11 of 28 steps computed);
- ``floor`` (ditkit process only): computed steps at the uncached step's median, cached steps at
  the median of a forward through the first block alone (embeddings + block 0 + output layer);
- ``dynamic_f1b0`` / ``dynamic_f8b0``: dynamic DBCache at ``--threshold`` (random weights change
  a lot between steps, so the threshold is high), with a calibrator suffix: ``+ts``
  (TaylorSeer order 1), ``+foca`` (FoCa) or ``+dmd`` (DMD, its default history);
- ``fbcache@T`` (either process): diffusers' own FirstBlockCache hook at threshold ``T``
  (computed steps counted by calls of the second block's attention).

``--cfg SCALE`` runs true classifier-free guidance: two transformer calls per step (the
prompt, then random "negative" embeddings; ``v = v_neg + SCALE * (v_pos - v_neg)``) and the
cache with ``enable_separate_cfg=True``, so its buffers exist once per branch.

Every row also has the GPU memory the cache holds after a run (``cache_mib``: allocated after the
run, cache still enabled, minus allocated before enabling) and the run's peak above that start.
A two-step request runs before the first variant, so the process's one-time allocations
(cuBLAS's workspace: 33.5 MiB on an H100) are not charged to the first row.

``--compile-mode reduce-overhead`` compiles the blocks with inductor's CUDA graphs (one graph
replay per block; the cache's Python runs between the blocks, so cached requests are graphed
too); each transformer call then starts with ``torch.compiler.cudagraph_mark_step_begin()``.

Printed as a Markdown table as it goes (an interrupted run leaves a partial table) and written to
``--json``. Per-step times are CUDA-event medians; run totals are wall medians with a final sync.
Host syncs per run are counted with ``torch.cuda.set_sync_debug_mode("warn")``.

    python tools/bench/gpu_cache.py --library ditkit --compile --json ditkit.json
    PYTHONPATH=/tmp/cachedit python tools/bench/gpu_cache.py --library cache_dit --compile
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent.parent
FLUX_DEV = {
    "patch_size": 1,
    "in_channels": 64,
    "out_channels": None,
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 768,
    "guidance_embeds": True,
    "axes_dims_rope": (16, 56, 56),
}
STEPS = 28
CALIBRATORS = ("", "ts", "foca", "dmd")  # variant suffixes: "+ts", "+foca", "+dmd"
CFG_SCALE: float | None = None  # set by --cfg: two transformer calls (branches) per step


def log(message: str) -> None:
    print(message, flush=True)


def build(device: torch.device) -> torch.nn.Module:
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(0)
    with torch.device(device):
        model = FluxTransformer2DModel(**FLUX_DEV).to(torch.bfloat16)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.02)
    return model.eval().requires_grad_(False)


def inputs(device: torch.device, side: int = 1024) -> dict[str, Any]:
    tokens = (side // 16) ** 2
    grid = side // 16
    img_ids = torch.zeros(grid, grid, 3, device=device)
    img_ids[..., 1] = torch.arange(grid, device=device)[:, None]
    img_ids[..., 2] = torch.arange(grid, device=device)[None, :]
    generator = torch.Generator(device=device).manual_seed(1)
    return {
        "latents": torch.randn(1, tokens, 64, device=device, generator=generator).bfloat16(),
        "encoder_hidden_states": torch.randn(
            1, 512, 4096, device=device, generator=generator
        ).bfloat16(),
        "pooled_projections": torch.randn(1, 768, device=device, generator=generator).bfloat16(),
        "guidance": torch.full((1,), 3.5, device=device),
        "img_ids": img_ids.reshape(-1, 3),
        "txt_ids": torch.zeros(512, 3, device=device),
        "negative_encoder_hidden_states": torch.randn(
            1, 512, 4096, device=device, generator=generator
        ).bfloat16(),
        "negative_pooled_projections": torch.randn(
            1, 768, device=device, generator=generator
        ).bfloat16(),
    }


def negative(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the negative prompt's embeddings in place of the prompt's."""
    return {
        **data,
        "encoder_hidden_states": data["negative_encoder_hidden_states"],
        "pooled_projections": data["negative_pooled_projections"],
    }


def sigmas(steps: int, tokens: int) -> list[float]:
    """FLUX.1-dev's schedule: linear sigmas, time-shifted with mu for ``tokens`` image tokens."""
    mu = 0.5 + (1.15 - 0.5) * (tokens - 256) / (4096 - 256)
    linear = [1.0 - i * (1.0 - 1.0 / steps) / (steps - 1) for i in range(steps)]
    shifted = [math.exp(mu) / (math.exp(mu) + (1 / s - 1)) for s in linear]
    return [*shifted, 0.0]


def flux_call(
    model: torch.nn.Module, latents: torch.Tensor, sigma: torch.Tensor, data: dict[str, Any]
) -> torch.Tensor:
    """The transformer's velocity at ``sigma`` (a ``(1,)`` tensor; FLUX takes it as timestep)."""
    return model(
        hidden_states=latents,
        timestep=sigma.to(latents.dtype),
        guidance=data["guidance"],
        pooled_projections=data["pooled_projections"],
        encoder_hidden_states=data["encoder_hidden_states"],
        txt_ids=data["txt_ids"],
        img_ids=data["img_ids"],
        return_dict=False,
    )[0]


def denoise(model: torch.nn.Module, data: dict[str, Any], steps: int = STEPS) -> tuple:
    """One request: ``steps`` transformer calls with Euler updates; per-step CUDA events."""
    latents = data["latents"].clone()
    schedule = sigmas(steps, latents.shape[1])
    events = []
    # diffusers' cache hooks need a named cache context (its pipelines open one per branch)
    hooked = getattr(model, "is_cache_enabled", False)

    def branch(name: str) -> Any:
        return model.cache_context(name) if hooked else contextlib.nullcontext()

    def call(latents: torch.Tensor, sigma: torch.Tensor, inputs: dict[str, Any], name: str):
        if MARK_STEPS:
            torch.compiler.cudagraph_mark_step_begin()
        # one branch: one context around the whole loop (below), as before --cfg existed
        with branch(name) if CFG_SCALE is not None else contextlib.nullcontext():
            return flux_call(model, latents, sigma, inputs)

    whole = branch("cond") if CFG_SCALE is None else contextlib.nullcontext()
    with torch.inference_mode(), whole:
        for i in range(steps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            sigma = torch.full((1,), schedule[i], device=latents.device)
            velocity = call(latents, sigma, data, "cond")
            if CFG_SCALE is not None:  # the negative branch, right after the prompt's
                uncond = call(latents, sigma, negative(data), "uncond")
                velocity = uncond + CFG_SCALE * (velocity - uncond)
            latents = latents + (schedule[i + 1] - schedule[i]) * velocity
            end.record()
            events.append((start, end))
    return latents, events


def timed(model: torch.nn.Module, data: dict[str, Any], repeats: int, before=None) -> dict:
    walls, steps_ms, output = [], [], None
    for run in range(repeats + 1):  # the first run warms up (and compiles)
        if before is not None:
            before()
        torch.cuda.synchronize()
        start = time.perf_counter()
        output, events = denoise(model, data)
        torch.cuda.synchronize()
        if run:
            walls.append(time.perf_counter() - start)
            steps_ms.append([s.elapsed_time(e) for s, e in events])
    per_step = [statistics.median(column) for column in zip(*steps_ms, strict=True)]
    return {"seconds": statistics.median(walls), "step_ms": per_step, "output": output}


def count_syncs(model: torch.nn.Module, data: dict[str, Any], before=None) -> int:
    if before is not None:
        before()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            denoise(model, data)
            torch.cuda.set_sync_debug_mode("default")
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


class Library:
    """The few calls the benchmark needs, for ditkit or cache-dit 1.5.3."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "ditkit":
            sys.path[:0] = [str(ROOT / "packages" / p / "src") for p in ("interfaces", "cache")]
            sys.path[:0] = [str(ROOT / "packages" / "calibrators" / "src")]
            import ditkit_cache as module
        else:
            import cache_dit as module
        self.module = module

    def mask(self, policy: str) -> list[int]:
        return self.module.steps_mask(mask_policy=policy, total_steps=STEPS)

    def enable(self, model: torch.nn.Module, calibrator: str | None = None, **config: Any) -> None:
        m = self.module
        if CFG_SCALE is not None:
            config = {**config, "enable_separate_cfg": True}
        cache_config = m.DBCacheConfig(num_inference_steps=STEPS, **config)
        extra = {}
        if calibrator:
            configs = m if self.name == "cache_dit" else __import__("ditkit_interfaces")
            extra["calibrator_config"] = {
                "ts": lambda: configs.TaylorSeerCalibratorConfig(taylorseer_order=1),
                "foca": lambda: configs.FoCaCalibratorConfig(),
                "dmd": lambda: configs.DMDCalibratorConfig(),
            }[calibrator]()
        if self.name == "ditkit":
            if calibrator:  # from the source tree: not an installed distribution here
                from ditkit_calibrators import build_calibrator

                extra["calibrator_builder"] = build_calibrator
            m.enable_cache(model, cache_config, **extra)
        else:
            adapter = m.BlockAdapter(
                transformer=model,
                blocks=[model.transformer_blocks, model.single_transformer_blocks],
                forward_pattern=[m.ForwardPattern.Pattern_1, m.ForwardPattern.Pattern_1],
                params_modifiers=None,
            )
            m.enable_cache(adapter, cache_config=cache_config, **extra)

    def disable(self, model: torch.nn.Module) -> None:
        self.module.disable_cache(model)

    def enable_fbcache(self, model: torch.nn.Module, threshold: float) -> None:
        from diffusers import FirstBlockCacheConfig

        model.enable_cache(FirstBlockCacheConfig(threshold=threshold))

    def refresh(self, model: torch.nn.Module) -> None:
        refresh = getattr(self.module, "refresh_context", None)
        if refresh is not None:
            refresh(model)

    def stats(self, model: torch.nn.Module) -> Any:
        stats = self.module.summary(model, logging=False) if self.name == "ditkit" else None
        if stats is None:
            stats = self.module.summary(model)
        return stats[0] if stats else None

    def cached_steps(self, model: torch.nn.Module) -> list[int]:
        stats = self.stats(model)
        return list(stats.cached_steps) if stats is not None else []

    def residual_diffs(self, model: torch.nn.Module) -> dict[str, float]:
        stats = self.stats(model)
        diffs = getattr(stats, "residual_diffs", None) or {}
        return {str(k): round(float(v), 4) for k, v in diffs.items()}


def first_block_only(model: torch.nn.Module) -> torch.nn.Module:
    """The same model object with only its first double block (for the floor); undo after."""
    model._bench_lists = (model.transformer_blocks, model.single_transformer_blocks)
    model.transformer_blocks = torch.nn.ModuleList([model._bench_lists[0][0]])
    model.single_transformer_blocks = torch.nn.ModuleList()
    return model


def restore_blocks(model: torch.nn.Module) -> None:
    model.transformer_blocks, model.single_transformer_blocks = model._bench_lists
    del model._bench_lists


MARK_STEPS = False  # set by --compile-mode reduce-overhead


def compile_blocks(model: torch.nn.Module, mode: str | None = None) -> None:
    global MARK_STEPS
    MARK_STEPS = mode == "reduce-overhead"
    for block in [*model.transformer_blocks, *model.single_transformer_blocks]:
        block.compile(**({"mode": mode} if mode else {}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--library", choices=("ditkit", "cache_dit"), default="ditkit")
    parser.add_argument("--variants", nargs="+", default=["uncached", "static_fast", "floor"])
    parser.add_argument("--compile", action="store_true", help="also regional compile")
    parser.add_argument(
        "--compile-mode", default=None, help="torch.compile mode of the blocks (reduce-overhead)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.35, help="dynamic F1B0")
    parser.add_argument("--threshold-f8", type=float, default=None, help="dynamic F8B0")
    parser.add_argument(
        "--cfg", type=float, default=None, metavar="SCALE", help="true CFG: two branches per step"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    global CFG_SCALE
    CFG_SCALE = args.cfg
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    library = Library(args.library)
    log(f"# {args.library} on {torch.cuda.get_device_name()}, torch {torch.__version__}")
    model, data = build(device), inputs(device)
    log(f"model built: {sum(p.numel() for p in model.parameters()) / 1e9:.2f} B parameters")
    with torch.inference_mode():  # one-time buffers (cuBLAS's workspace) before any "start"
        denoise(model, data, steps=2)
    torch.cuda.synchronize()
    rows: list[dict[str, Any]] = []
    log(
        "| library | variant | mode | total (s) | per-step median (ms) | computed | syncs "
        "| cache MiB | peak MiB |"
    )
    log("|---|---|---|---|---|---|---|---|---|")
    reference = None
    modes = ["eager", "compiled"] if args.compile else ["eager"]
    for mode in modes:
        if mode == "compiled":  # once: the blocks stay compiled for every variant after this
            compile_blocks(model, args.compile_mode)
        for variant in args.variants:
            row = run_variant(library, model, data, variant, mode, args)
            if row is None:
                continue
            if variant == "uncached" and reference is None:
                reference = row.pop("output")
            output = row.pop("output", None)
            if output is not None and reference is not None:
                diff = (output.float() - reference.float()).abs().max().item()
                row["max_abs_diff_vs_uncached"] = diff
            row["compile_mode"] = args.compile_mode if mode == "compiled" else None
            row["cfg"] = args.cfg
            rows.append(row)
            log(
                f"| {args.library} | {variant} | {mode} | {row['seconds']:.3f} | "
                f"{statistics.median(row['step_ms']):.2f} | {row.get('computed', '-')} | "
                f"{row.get('syncs', '-')} | {row.get('cache_mib', 0):.0f} | "
                f"{row.get('peak_above_start_mib', 0):.0f} |"
            )
            if args.json is not None:
                args.json.write_text(json.dumps(rows, indent=1))
    return 0


def run_variant(library: Library, model, data, variant: str, mode: str, args) -> dict | None:
    if variant == "floor":
        if library.name != "ditkit":
            return None
        full = timed(model, data, args.repeats)
        first_block_only(model)
        try:
            one = timed(model, data, args.repeats)
        finally:
            restore_blocks(model)
        computed = len([m for m in library.mask("fast") if m])
        t_full, t_one = statistics.median(full["step_ms"]), statistics.median(one["step_ms"])
        floor_s = (computed * t_full + (STEPS - computed) * t_one) / 1000
        return {
            "variant": variant,
            "mode": mode,
            "seconds": floor_s,
            "step_ms": [t_one],
            "full_step_ms": t_full,
            "first_block_step_ms": t_one,
            "computed": computed,
        }
    if variant.startswith("fbcache@"):
        return run_fbcache(library, model, data, variant, mode, args)
    config: dict[str, Any] = {"Fn_compute_blocks": 1, "Bn_compute_blocks": 0}
    name, _, calibrator = variant.partition("+")
    if calibrator not in CALIBRATORS:
        raise SystemExit(f"unknown calibrator suffix in {variant!r}: use one of {CALIBRATORS}")
    if name == "uncached":
        config = {}
    elif name == "static_fast":
        config.update(
            steps_computation_mask=library.mask("fast"), steps_computation_policy="static"
        )
    elif name in ("dynamic_f1b0", "dynamic_f8b0"):
        config.update(residual_diff_threshold=args.threshold, max_warmup_steps=4)
        if name == "dynamic_f8b0":
            config["Fn_compute_blocks"] = 8
            config["residual_diff_threshold"] = args.threshold_f8 or args.threshold
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    start = torch.cuda.memory_allocated()
    if config:
        library.enable(model, calibrator=calibrator or None, **config)
    before = (lambda: library.refresh(model)) if config else None
    try:
        result = timed(model, data, args.repeats, before)
        syncs = count_syncs(model, data, before)
        memory = held_memory(model, data, start, before)
        cached = library.cached_steps(model) if config else []
        diffs = library.residual_diffs(model) if config else {}
        if diffs:
            log(f"residual diffs ({variant}, {mode}): {diffs}")
    finally:
        if config:
            library.disable(model)
    return {
        "variant": variant,
        "mode": mode,
        "seconds": result["seconds"],
        "step_ms": result["step_ms"],
        "computed": STEPS - len(cached),
        "cached_steps": cached,
        "syncs": syncs,
        **memory,
        "residual_diffs": diffs,
        "output": result["output"],
    }


def held_memory(model, data, start: int, before=None) -> dict[str, float]:
    """MiB the cache holds after a run (vs ``start``) and the run's peak above ``start``."""
    if before is not None:
        before()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    output, _ = denoise(model, data)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    del output
    held = torch.cuda.memory_allocated()
    return {"cache_mib": (held - start) / 2**20, "peak_above_start_mib": (peak - start) / 2**20}


def run_fbcache(library: Library, model, data, variant: str, mode: str, args) -> dict:
    """diffusers' FirstBlockCache at the threshold in the variant's name."""
    threshold = float(variant.partition("@")[2])
    calls: list[int] = []
    # the hook skips a block's body on a cached step, but the block's __call__ still runs: count
    # calls of a module inside the body
    hook = model.transformer_blocks[1].attn.register_forward_pre_hook(lambda *a: calls.append(1))
    start = torch.cuda.memory_allocated()
    library.enable_fbcache(model, threshold)
    reset = model._reset_stateful_cache
    try:
        result = timed(model, data, args.repeats, reset)
        syncs = count_syncs(model, data, reset)
        calls.clear()
        memory = held_memory(model, data, start, reset)
        computed = len(calls)
    finally:
        model.disable_cache()
        hook.remove()
    return {
        "variant": variant,
        "mode": mode,
        "seconds": result["seconds"],
        "step_ms": result["step_ms"],
        "computed": computed,
        "syncs": syncs,
        **memory,
        "output": result["output"],
    }


if __name__ == "__main__":
    raise SystemExit(main())
