"""CPU benchmark of the cache machinery on the tiny Flux pipeline (docs/benchmarks/cache.md).

Measures, transformer-only (the inputs of one 28-step pipeline run replayed), medians over
repeats, all in one process:

- the uncached 28-step loop, and the cached one with the static "fast" mask (11 of 28 steps
  computed), against the ideal ``(11 full + 17 Fn-only) / 28`` of the uncached time;
- the machinery's own cost per transformer call, on a null model (6 blocks that return their
  inputs, so the blocks cost next to nothing and only ditkit's Python and tensor bookkeeping is
  timed): per call, uncached vs a computed step (diff measured and stored) vs a cached step.

Usage: ``python tools/bench/cpu_cache.py [--repeats 15] [--threads 1] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

import ditkit_cache as dc
from ditkit_testing import build_tiny_pipeline, run_tiny_pipeline

STEPS = 28


def record_calls(pipe) -> list[dict]:
    calls: list[dict] = []
    handle = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(dict(kwargs)), with_kwargs=True
    )
    run_tiny_pipeline(pipe, "flux", num_inference_steps=STEPS)
    handle.remove()
    return calls


def time_loop(transformer, calls, repeats: int) -> tuple[float, list[float]]:
    """Median seconds of one 28-call loop, and the median seconds of each call."""
    loops, per_call = [], [[] for _ in calls]
    with torch.inference_mode():
        for _ in range(2):  # warm-up
            for kwargs in calls:
                transformer(**kwargs)
        for _ in range(repeats):
            start = time.perf_counter()
            for index, kwargs in enumerate(calls):
                t0 = time.perf_counter()
                transformer(**kwargs)
                per_call[index].append(time.perf_counter() - t0)
            loops.append(time.perf_counter() - start)
    return statistics.median(loops), [statistics.median(c) for c in per_call]


def fn_only_time(transformer, calls, repeats: int) -> float:
    """Median seconds of the transformer with only its first block (what a cached step runs)."""
    blocks = transformer.transformer_blocks
    singles = transformer.single_transformer_blocks
    transformer.transformer_blocks = torch.nn.ModuleList([blocks[0]])
    transformer.single_transformer_blocks = torch.nn.ModuleList()
    try:
        return time_loop(transformer, calls, repeats)[0] / len(calls)
    finally:
        transformer.transformer_blocks = blocks
        transformer.single_transformer_blocks = singles


class NullBlock(torch.nn.Module):
    """A Pattern_1 block that costs almost nothing: returns its inputs."""

    def forward(self, hidden_states, encoder_hidden_states, temb=None):
        return encoder_hidden_states, hidden_states


class NullTransformer(torch.nn.Module):
    def __init__(self, blocks: int = 6) -> None:
        super().__init__()
        self.transformer_blocks = torch.nn.ModuleList(NullBlock() for _ in range(blocks))

    def forward(self, hidden_states, encoder_hidden_states, timestep=None):
        for block in self.transformer_blocks:
            encoder_hidden_states, hidden_states = block(hidden_states, encoder_hidden_states)
        return hidden_states


def null_model_costs(calls: int = 4000) -> dict[str, float]:
    """Microseconds per call of the null model: uncached, computed step, cached step."""
    model = NullTransformer()
    hidden, encoder = torch.randn(1, 64, 32), torch.randn(1, 8, 32)

    def per_call(step_kind: str | None) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            for i in range(calls):
                noise = 1.0 + 0.01 * (i % 7) if step_kind == "computed" else 1.0
                model(hidden * noise if step_kind == "computed" else hidden, encoder)
            times.append((time.perf_counter() - start) / calls)
        return 1e6 * statistics.median(times)

    results = {"uncached_us": per_call(None)}
    adapter = dc.BlockAdapter(
        transformer=model,
        blocks=model.transformer_blocks,
        forward_pattern=dc.ForwardPattern.Pattern_1,
    )
    # computed: a threshold below every diff (the diff is measured and the Mn residual stored)
    dc.enable_cache(
        adapter,
        dc.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=1e-9, max_warmup_steps=1),
    )
    results["computed_step_us"] = per_call("computed")
    dc.disable_cache(model)
    adapter = dc.BlockAdapter(
        transformer=model,
        blocks=model.transformer_blocks,
        forward_pattern=dc.ForwardPattern.Pattern_1,
    )
    dc.enable_cache(
        adapter,
        dc.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.5, max_warmup_steps=1),
    )
    results["cached_step_us"] = per_call("cached")
    dc.disable_cache(model)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = build_tiny_pipeline("flux")
    calls = record_calls(pipe)
    transformer = pipe.transformer

    uncached, _ = time_loop(transformer, calls, args.repeats)
    fn_only = fn_only_time(transformer, calls, args.repeats)

    mask = dc.steps_mask(mask_policy="fast", total_steps=STEPS)
    computed = sum(mask)
    dc.enable_cache(
        transformer,
        dc.DBCacheConfig(
            Fn_compute_blocks=1,
            steps_computation_mask=mask,
            steps_computation_policy="static",
            num_inference_steps=STEPS,
        ),
    )
    cached, cached_calls = time_loop(transformer, calls, args.repeats)
    assert dc.summary(transformer, logging=False)[0].cached_steps == [
        i for i, m in enumerate(mask) if m == 0
    ]
    dc.disable_cache(transformer)

    dc.enable_cache(
        transformer,
        dc.DBCacheConfig(Fn_compute_blocks=1, max_warmup_steps=STEPS, num_inference_steps=STEPS),
    )
    all_computed, _ = time_loop(transformer, calls, args.repeats)
    assert dc.summary(transformer, logging=False)[0].cached_steps == []
    dc.disable_cache(transformer)

    null = null_model_costs()
    per_call_uncached = uncached / STEPS
    ideal = computed * per_call_uncached + (STEPS - computed) * fn_only
    cached_step_times = [t for t, m in zip(cached_calls, mask, strict=True) if m == 0]
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {args.threads} thread(s)",
        "torch": torch.__version__,
        "repeats": args.repeats,
        "uncached_s": uncached,
        "cached_fast_mask_s": cached,
        "computed_steps": computed,
        "speedup": uncached / cached,
        "block_count_ideal_speedup": STEPS / computed,
        "fn_floor_s": ideal,
        "fraction_of_floor": ideal / cached,
        "uncached_call_us": 1e6 * per_call_uncached,
        "fn_only_call_us": 1e6 * fn_only,
        "cached_step_call_us": 1e6 * statistics.median(cached_step_times),
        "all_computed_s": all_computed,
        "all_computed_overhead_per_call_us": 1e6 * (all_computed - uncached) / STEPS,
        "null_model": null,
    }
    rows = [
        ("uncached 28 steps", f"{uncached * 1e3:.1f} ms"),
        (f"cached, static fast mask ({computed}/28 computed)", f"{cached * 1e3:.1f} ms"),
        ("speedup (block-count ideal 28/11 = 2.55)", f"{result['speedup']:.2f}x"),
        ("floor: 11 full + 17 Fn-only calls", f"{ideal * 1e3:.1f} ms"),
        ("cached run vs floor", f"{100 * result['fraction_of_floor']:.1f}%"),
        ("uncached call", f"{result['uncached_call_us']:.0f} us"),
        ("Fn-only call (transformer with 1 block)", f"{result['fn_only_call_us']:.0f} us"),
        ("cached step call", f"{result['cached_step_call_us']:.0f} us"),
        ("every step computed through the cache (28/28)", f"{all_computed * 1e3:.1f} ms"),
        ("null model: uncached call", f"{null['uncached_us']:.0f} us"),
        ("null model: computed step (diff + store)", f"{null['computed_step_us']:.0f} us"),
        ("null model: cached step", f"{null['cached_step_us']:.0f} us"),
    ]
    width = max(len(r[0]) for r in rows)
    print("\n".join(f"{k.ljust(width)}  {v}" for k, v in rows))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
