"""GPU benchmark of ditkit-parallel on FLUX.1-dev- and Wan-14B-sized transformers (random bf16).

One process per GPU (torchrun, NCCL); "single" runs on rank 0 alone (the others wait at a
barrier), so one launch gives the one-GPU baseline beside the parallel rows:

    torchrun --nproc-per-node=2 tools/bench/gpu_parallel.py --modes single ulysses ring tp \
        --sizes 1024 2048 --compile --cache none static_fast --json parallel.json
    torchrun --nproc-per-node=4 tools/bench/gpu_parallel.py --model wan --sizes 81x480x832 \
        --modes single ulysses usp tp_ulysses --compile --no-eager --steps 3

Each (phase, mode, size, cache) row: a warm-up request, then ``--repeats`` requests of
``--steps`` steps of the transformer-only loop (``bench_models.denoise``). ms/step is the mean of
the per-step CUDA-event medians, ``request_s`` the median wall time of a whole request; speedup
is against "single" at the same size/cache/phase; memory is the
per-rank ``max_memory_allocated`` over the timed requests (the other model left out).
``err1``/``errN``: ``max|x - ref| / max|ref|`` of the first step's velocity against the one-GPU
eager uncached one, and of the final latents against "single". First: the weights are checked
identical on every rank (else rank 0's are broadcast), an fp32 tiny Flux must equal one process
within 1e-5 in each mode (TF32 off), and an ``all_to_all_single`` microbenchmark gives the
Ulysses floor ``single/2 + 4 * attentions * t_a2a(S*H*D/N)`` (unhidden; "floor frac" is floor /
measured). Phases (``--phases``, or ``--compile`` / ``--no-eager``): eager; compiled
(``block.compile()`` on each block); cudagraph (compiled blocks, and each transformer call
replayed as one CUDA graph through ``ditkit.enable_cuda_graphs``; cache "none" only).
``--overlap-comms`` turns on inductor's sink_waits/raise_comms passes.

Modes (N = world size): single, ulysses (N), ring (N), tp (N), ulysses_async, ulysses_fp8, usp
(Ulysses 2 x Ring N/2), tp_ulysses (TP 2 x Ulysses N/2), ring_allgather / usp_allgather (K/V
gathered instead of rotated), ulysses_chunks2 / ulysses_chunks4 (heads in 2 or 4 chunks),
ulysses_ce / ulysses_async_ce (all-to-alls over the copy engines; ``_kb``: with the barrier
kernel instead of stream memory operations), ulysses_*_overlap (the output overlap).
Caches: none, static_fast (DBCache F1B0, static "fast" mask), dynamic (F1B0 at
``--threshold``). For CP modes the cache is enabled before ``enable_parallelism`` with a
``DistributedDecisionReducer`` (as ``ditkit.enable_cache`` does), and both are undone after each
row; the TP models (tp, tp_ulysses) are built and parallelized once (TP cannot be undone) and
cached per row. ``--tiny``: tiny fp32 models on the CPU with gloo
(perf_counter for CUDA events).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGES = ("interfaces", "cache", "parallel", "ditkit", "testing")
sys.path[:0] = [str(ROOT / "packages" / p / "src") for p in PACKAGES]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_models import MODELS, ModelSpec, denoise, first_velocity  # noqa: E402
from parallel_checks import (  # noqa: E402
    FP32_TOL,
    all_to_all_ms,
    comm_per_step,
    fp32_equivalence,
    rel_err,
)

MODES = {  # world size -> ParallelismConfig options
    "single": lambda n: {},
    "ulysses": lambda n: {"ulysses_size": n},
    "ring": lambda n: {"ring_size": n},
    "tp": lambda n: {"tp_size": n},
    "ulysses_async": lambda n: {"ulysses_size": n, "ulysses_async": True},
    "ulysses_fp8": lambda n: {"ulysses_size": n, "ulysses_float8": True},
    "ulysses_overlap": lambda n: {"ulysses_size": n, "ulysses_overlap_output": True},
    "ulysses_async_overlap": lambda n: {
        "ulysses_size": n,
        "ulysses_async": True,
        "ulysses_overlap_output": True,
    },
    "ulysses_ce": lambda n: {"ulysses_size": n, "ulysses_copy_engine": True},
    "ulysses_async_ce": lambda n: {
        "ulysses_size": n,
        "ulysses_async": True,
        "ulysses_copy_engine": True,
    },
    "ulysses_async_ce_kb": lambda n: {  # the copy engine with the barrier kernel (run 20)
        "ulysses_size": n,
        "ulysses_async": True,
        "ulysses_copy_engine": True,
    },
    "ulysses_ce_overlap": lambda n: {
        "ulysses_size": n,
        "ulysses_copy_engine": True,
        "ulysses_overlap_output": True,
    },
    "ulysses_async_ce_overlap": lambda n: {
        "ulysses_size": n,
        "ulysses_async": True,
        "ulysses_copy_engine": True,
        "ulysses_overlap_output": True,
    },
    "usp": lambda n: {"ulysses_size": 2, "ring_size": n // 2},
    "ulysses_chunks2": lambda n: {"ulysses_size": n, "ulysses_head_chunks": 2},
    "ulysses_chunks4": lambda n: {"ulysses_size": n, "ulysses_head_chunks": 4},
    "ring_allgather": lambda n: {"ring_size": n, "ring_rotate_method": "allgather"},
    "usp_allgather": lambda n: {
        "ulysses_size": 2,
        "ring_size": n // 2,
        "ring_rotate_method": "allgather",
    },
    "tp_ulysses": lambda n: {"tp_size": 2, "ulysses_size": n // 2},
}
PERMANENT = ("tp", "tp_ulysses")  # built once per launch: tensor parallelism cannot be undone


def log(message: str) -> None:
    if dist.get_rank() == 0:
        print(message, flush=True)


class WallEvent:
    """``torch.cuda.Event`` stand-in on the CPU: ``perf_counter`` at ``record()``."""

    def __init__(self, enable_timing: bool = True) -> None:
        self.t = 0.0

    def record(self, stream: Any = None) -> None:
        self.t = time.perf_counter()

    def elapsed_time(self, end: WallEvent) -> float:
        return (end.t - self.t) * 1000.0


class Bench:
    """The process's device, dtype and model builder (full size on CUDA, or ``--tiny``)."""

    def __init__(self, spec: ModelSpec, tiny: bool) -> None:
        self.spec = spec
        self.tiny = tiny
        self.cuda = not tiny
        if self.cuda:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            self.device = torch.device("cuda", local)
        else:
            self.device = torch.device("cpu")
            torch.cuda.Event = WallEvent  # bench_models.denoise times steps with CUDA events
        dist.init_process_group(
            "nccl" if self.cuda else "gloo",
            timeout=timedelta(minutes=20),
            device_id=self.device if self.cuda else None,
        )
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.config = spec.tiny_config if tiny else spec.config
        self.models: list[torch.nn.Module] = []  # built so far (the peak leaves the others out)

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def build(self) -> torch.nn.Module:
        model = self.spec.build(self.device, self.tiny)
        self.models.append(model)
        return model

    def inputs(self, size: str) -> dict[str, Any]:
        return self.spec.inputs(self.device, size, self.tiny)

    def compile_blocks(self, model: torch.nn.Module) -> None:
        for block in self.spec.blocks(model):
            block.compile()

    def barrier(self) -> None:
        dist.barrier(device_ids=[self.device.index] if self.cuda else None)

    def gather(self, value: Any) -> list[Any]:
        values: list[Any] = [None] * self.world
        dist.all_gather_object(values, value)
        return values


def same_weights(bench: Bench, model: torch.nn.Module) -> bool:
    """Whether every rank built identical weights; if not, rank 0's are broadcast."""
    params = list(model.parameters())
    sums = torch.stack([p.detach().double().sum() for p in params])
    reference = sums.clone()
    dist.broadcast(reference, 0)
    same = torch.tensor([float(torch.equal(sums, reference))], device=sums.device)
    dist.all_reduce(same, op=dist.ReduceOp.MIN)
    if same.item() < 1:
        for p in params:
            dist.broadcast(p.data, 0)
    return bool(same.item() == 1)


def param_bytes(model: torch.nn.Module) -> int:
    """Bytes of ``model``'s parameters on this rank (a DTensor counts its local shard)."""
    total = 0
    for p in model.parameters():
        local = p.to_local() if hasattr(p, "to_local") else p
        total += local.numel() * local.element_size()
    return total


def parallel_config(mode: str, world: int) -> Any:
    from ditkit_interfaces import ParallelismConfig

    return ParallelismConfig(**MODES[mode](world))


def cache_config(name: str, args: argparse.Namespace) -> Any:
    import ditkit_cache

    if name == "none":
        return None
    # one transformer call per step (no CFG branches), for every family
    options: dict[str, Any] = {
        "Fn_compute_blocks": 1,
        "Bn_compute_blocks": 0,
        "enable_separate_cfg": False,
    }
    if name == "static_fast":
        mask = ditkit_cache.steps_mask(mask_policy="fast", total_steps=args.steps)
        options.update(steps_computation_mask=mask, steps_computation_policy="static")
    elif name == "dynamic":
        options.update(residual_diff_threshold=args.threshold, max_warmup_steps=args.warmup)
    else:
        raise SystemExit(f"unknown cache {name!r}")
    return ditkit_cache.DBCacheConfig(num_inference_steps=args.steps, **options)


def measure(
    bench: Bench, model: torch.nn.Module, data: dict[str, Any], args, cached: bool, graphed: bool
):
    """Warm-up request, then ``args.repeats`` timed ones: per-step medians, output, peak.
    ``graphed``: every transformer call replays one CUDA graph (captured in the warm-up)."""
    from ditkit.cuda_graphs import cuda_graph_stats, disable_cuda_graphs, enable_cuda_graphs

    if graphed:  # the warm-up request's first two calls run eagerly, the third captures
        enable_cuda_graphs(model, warmup_calls=2)
    try:
        result = _timed_requests(bench, model, data, args, cached)
        if getattr(args, "trace_path", None) is not None and bench.cuda:
            _traced_request(bench, model, data, args, cached)
        if graphed:
            stats = cuda_graph_stats(model)
            if not stats["replays"] or stats["eager_calls"]:
                raise RuntimeError(f"the CUDA-graph phase ran eagerly: {stats}")
    finally:
        if graphed:
            disable_cuda_graphs(model)
    return result


def _traced_request(bench: Bench, model: torch.nn.Module, data: dict[str, Any], args, cached):
    """One more request under ``torch.profiler`` (CUDA kernels only): the Chrome trace goes to
    ``args.trace_path`` and this rank prints how much NCCL time ran beside compute kernels."""
    from torch.profiler import ProfilerActivity, profile
    from trace_overlap import overlap_summary, runtime_summary

    import ditkit_cache

    if cached:
        ditkit_cache.refresh_context(model)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        denoise(bench.spec, model, data, args.steps)
        bench.sync()
    path = Path(args.trace_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prof.export_chrome_trace(str(path))
    events = json.loads(path.read_text())["traceEvents"]
    s = overlap_summary(events)
    per_step = {k: v / 1e3 / args.steps for k, v in s.items() if k.endswith("_us")}
    calls = ", ".join(f"{n} {t / 1e3 / args.steps:.2f}" for n, t in runtime_summary(events))
    print(
        f"rank {bench.rank} trace {path.name} (ms per step): span {per_step['span_us']:.2f}, "
        f"busy {per_step['busy_us']:.2f}, comm {per_step['comm_us']:.2f}, compute "
        f"{per_step['compute_us']:.2f}, comm hidden {per_step['hidden_us']:.2f} "
        f"({s['hidden_fraction']:.0%}); host calls: {calls}",
        flush=True,
    )


def _timed_requests(bench: Bench, model: torch.nn.Module, data: dict[str, Any], args, cached):
    import ditkit_cache

    runs, walls, output = [], [], None
    for run in range(args.repeats + 1):
        if cached:
            ditkit_cache.refresh_context(model)
        bench.sync()
        if run == 1 and bench.cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        output, events = denoise(bench.spec, model, data, args.steps)
        bench.sync()
        if run:
            walls.append(time.perf_counter() - start)
            runs.append([s.elapsed_time(e) for s, e in events])
    per_step = [statistics.median(column) for column in zip(*runs, strict=True)]
    peak = torch.cuda.max_memory_allocated() / 2**30 if bench.cuda else 0.0
    computed = args.steps
    if cached:
        stats = ditkit_cache.summary(model, logging=False)
        computed -= len(stats[0].cached_steps) if stats else 0
    return per_step, statistics.median(walls), output, peak, computed


def run_row(
    bench: Bench, model, mode: str, cache: str, data, args, graphed: bool = False
) -> dict[str, Any]:
    """One row on this rank: cache, then parallelism (CP modes), measure, undo. The peak is
    ``max_memory_allocated`` less the parameters of the other model kept on the GPU."""
    import ditkit_cache
    from ditkit_parallel import (
        DistributedDecisionReducer,
        copy_engine,
        disable_parallelism,
        enable_parallelism,
    )

    config = cache_config(cache, args)
    parallel = mode not in ("single", *PERMANENT)  # TP models are parallelized once
    copy_engine.STREAM_OP_BARRIERS = not mode.endswith("_kb")
    if config is not None:
        reducer = None if mode == "single" else DistributedDecisionReducer(owner=model)
        ditkit_cache.enable_cache(model, config, reducer=reducer)
    try:
        if parallel:
            enable_parallelism(model, parallel_config(mode, bench.world))
        velocity = first_velocity(bench.spec, model, data, args.steps)
        per_step, request_s, output, peak, computed = measure(
            bench, model, data, args, config is not None, graphed
        )
    finally:
        if parallel:
            disable_parallelism(model)
        if config is not None:
            ditkit_cache.disable_cache(model)
    others = sum(param_bytes(m) for m in bench.models if m is not model)
    return {
        "step_ms": per_step,
        "ms": statistics.fmean(per_step),
        "median_ms": statistics.median(per_step),
        "request_s": request_s,
        "computed": computed,
        "peak_gib": peak - others / 2**30 if bench.cuda else 0.0,
        "velocity": velocity,
        "output": output,
    }


class Table:
    """Rows printed as measured (rank 0) and rewritten to ``--json`` after each one."""

    HEADER = (
        "| size | mode | cache | phase | ms/step | median | request s | computed | speedup "
        "| floor ms | floor frac | err1 | errN | peak GiB/rank |"
    )

    def __init__(self, args: argparse.Namespace, meta: dict[str, Any]) -> None:
        self.path, self.meta, self.rows = args.json, meta, []
        self.singles: dict[tuple, dict[str, Any]] = {}

    def add(self, row: dict[str, Any], output: torch.Tensor | None) -> None:
        key = (row["size"], row["cache"], row["phase"])
        single = self.singles.get(key)
        if row["mode"] == "single":
            self.singles[key] = {"ms": row["ms"], "output": output}
        elif single is not None:
            row["speedup"] = single["ms"] / row["ms"]
            row["ideal_fraction"] = single["ms"] / row["world"] / row["ms"]
            if output is not None:
                row["errN"] = rel_err(output, single["output"])
            if row["mode"].startswith("ulysses") and "comm_ms" in row:
                row["floor_ms"] = single["ms"] / row["world"] + row["comm_ms"]
                row["floor_fraction"] = row["floor_ms"] / row["ms"]
        self.rows.append(row)
        peaks = "/".join(f"{p:.1f}" for p in row["peak_gib"])

        def fmt(name: str, spec: str) -> str:
            return format(row[name], spec) if name in row else "-"

        log(
            f"| {row['size']} | {row['mode']} | {row['cache']} | {row['phase']} | "
            f"{row['ms']:.2f} | {row['median_ms']:.2f} | {row['request_s']:.3f} | "
            f"{row['computed']}/{row['steps']} | "
            f"{fmt('speedup', '.3f')} | {fmt('floor_ms', '.2f')} | {fmt('floor_fraction', '.3f')} "
            f"| {fmt('err1', '.2e')} | {fmt('errN', '.2e')} | {peaks} |"
        )
        self.write()

    def failed(self, key: dict[str, Any], ranks: list[int]) -> None:
        cells = " | ".join(str(key[k]) for k in ("size", "mode", "cache", "phase"))
        log(f"| {cells} | failed on ranks {ranks} |")
        self.rows.append({**key, "failed_ranks": ranks})
        self.write()

    def write(self) -> None:
        if self.path is not None:
            self.path.write_text(json.dumps({**self.meta, "rows": self.rows}, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", nargs="+", default=["single", "ulysses", "ring", "tp"])
    parser.add_argument("--model", choices=sorted(MODELS), default="flux")
    parser.add_argument(
        "--sizes", "--sides", nargs="+", default=None, help="flux: 1024; wan: 81x480x832"
    )
    parser.add_argument("--cache", nargs="+", default=["none", "static_fast"])
    parser.add_argument("--compile", action="store_true", help="also regional compile")
    parser.add_argument("--no-eager", action="store_true", help="only the compiled phase")
    parser.add_argument(
        "--phases",
        nargs="+",
        choices=("eager", "compiled", "cudagraph"),
        default=None,
        help="instead of --compile/--no-eager; cudagraph = compiled blocks + one CUDA graph "
        "per transformer call (cache none only)",
    )
    parser.add_argument(
        "--overlap-comms",
        action="store_true",
        help="inductor's sink_waits and raise_comms passes (waits as late, collectives as early "
        "as the graph allows)",
    )
    parser.add_argument(
        "--keep-graph-order",
        action="store_true",
        help="inductor's reorder_for_peak_memory and reorder_for_locality off: they move each "
        "collective's wait next to it and the independent compute after it",
    )
    parser.add_argument(
        "--trace",
        default=None,
        help="folder: profile one more request per row (CUDA kernels), write a Chrome trace per "
        "rank and print the NCCL time hidden behind compute (tools/bench/trace_overlap.py)",
    )
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=0.6, help="dynamic cache")
    parser.add_argument("--warmup", type=int, default=2, help="dynamic cache warm-up steps")
    parser.add_argument("--tiny", action="store_true", help="tiny fp32 model on CPU/gloo")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    for mode in args.modes:
        if mode not in MODES:
            raise SystemExit(f"unknown mode {mode!r}; choose from {sorted(MODES)}")
    spec = MODELS[args.model]
    sizes = args.sizes or list(spec.tiny_sizes if args.tiny else spec.default_sizes)
    phases = args.phases or (
        ([] if args.no_eager else ["eager"]) + (["compiled"] if args.compile else [])
    )
    bench = Bench(spec, args.tiny)
    try:
        run(bench, args, sizes, phases)
    finally:
        dist.destroy_process_group()
    return 0


def run(bench: Bench, args: argparse.Namespace, sizes: list[str], phases: list[str]) -> None:
    from ditkit_parallel import enable_parallelism

    torch.backends.cuda.matmul.allow_tf32 = True
    if args.overlap_comms:
        import torch._inductor.config as inductor

        inductor.reorder_for_compute_comm_overlap = True
        inductor.reorder_for_compute_comm_overlap_passes = ["sink_waits", "raise_comms"]
    if args.keep_graph_order:
        import torch._inductor.config as inductor

        inductor.reorder_for_peak_memory = False
        inductor.reorder_for_locality = False
    for name in ("recompile_limit", "cache_size_limit"):  # one entry per mode x cache wrapper
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 64)
    name = torch.cuda.get_device_name() if bench.cuda else "cpu"
    log(f"# ditkit-parallel, {args.model}, on {bench.world} x {name}, torch {torch.__version__}")
    fp32 = fp32_equivalence(bench, lambda mode: parallel_config(mode, bench.world))
    log(f"fp32 tiny Flux vs one process (max rel err over ranks, tol {FP32_TOL}): {fp32}")
    start = time.perf_counter()
    model = bench.build()
    identical = same_weights(bench, model)
    log(
        f"model built in {time.perf_counter() - start:.1f} s: "
        f"{sum(p.numel() for p in model.parameters()) / 1e9:.3f} B parameters, "
        f"identical on every rank: {identical}"
    )
    attentions = bench.spec.cp_attentions(bench.config)
    data, reference, comm = {}, {}, {}
    for size in sizes:
        data[size] = bench.inputs(size)
        if bench.rank == 0:
            reference[size] = first_velocity(bench.spec, model, data[size], args.steps)
        a2a = all_to_all_ms(bench, size)
        comm[size] = 4 * attentions * a2a
        log(f"size {size}: all_to_all {a2a:.3f} ms -> comm floor {comm[size]:.2f} ms/step")
    meta = {
        "device": name,
        "model": args.model,
        "world": bench.world,
        "torch": torch.__version__,
        "steps": args.steps,
        "repeats": args.repeats,
        "fp32_equivalence": fp32,
        "fp32_ok": all(v < FP32_TOL for v in fp32.values()),
        "weights_identical": identical,
        "comm_ms": comm,
        "overlap_comms": args.overlap_comms,
    }
    table = Table(args, meta)
    log(Table.HEADER)
    log("|" + "---|" * 14)
    shared = {"data": data, "reference": reference, "comm": comm, "attentions": attentions}
    tp_models: dict[str, torch.nn.Module] = {}
    compiled = False
    for phase in phases:
        if phase in ("compiled", "cudagraph") and not compiled:
            compiled = True
            for target in (model, *tp_models.values()):
                bench.compile_blocks(target)
        for mode in args.modes:
            if mode in PERMANENT and mode not in tp_models:
                tp_models[mode] = bench.build()
                same_weights(bench, tp_models[mode])
                enable_parallelism(tp_models[mode], parallel_config(mode, bench.world))
                if compiled:
                    bench.compile_blocks(tp_models[mode])
            target = tp_models.get(mode, model)
            for size in sizes:
                for cache in args.cache if phase != "cudagraph" else ["none"]:
                    key = {"size": size, "mode": mode, "cache": cache, "phase": phase}
                    one_row(bench, target, key, shared, table, args)


def one_row(bench: Bench, model, key: dict[str, Any], shared: dict, table: Table, args) -> None:
    """Measure one row on every rank taking part; rank 0 adds it to the table. A row that
    raises (on every rank alike) is printed as failed and the next row runs."""
    size, mode = key["size"], key["mode"]
    if mode == "single" and bench.rank != 0:
        bench.barrier()  # rank 0 measures the one-GPU baseline alone
        return
    if args.trace:
        name = f"{size}-{mode}-{key['cache']}-{key['phase']}-rank{bench.rank}.json"
        args.trace_path = Path(args.trace) / name
    try:
        graphed = key["phase"] == "cudagraph"
        data = shared["data"][size]
        result = run_row(bench, model, mode, key["cache"], data, args, graphed)
    except Exception:
        print(f"rank {bench.rank}: row {key} failed:", file=sys.stderr, flush=True)
        traceback.print_exc()
        result = None
    mine = None if result is None else (result["peak_gib"], result["computed"])
    gathered = [mine] if mode == "single" else bench.gather(mine)
    if mode == "single":
        bench.barrier()
    if bench.rank != 0:
        return
    if result is None or None in gathered:
        table.failed(key, [r for r, g in enumerate(gathered) if g is None])
        return
    row = {
        **key,
        "world": bench.world,
        "steps": args.steps,
        **{k: result[k] for k in ("ms", "median_ms", "request_s", "step_ms", "computed")},
        "computed_per_rank": [g[1] for g in gathered],  # the same cache decisions on every rank
        "peak_gib": [g[0] for g in gathered],
        "err1": rel_err(result["velocity"], shared["reference"][size]),
    }
    if mode.startswith("ulysses"):
        computed, attentions = result["computed"], shared["attentions"]
        row["comm_ms"] = comm_per_step(shared["comm"][size], computed, args.steps, attentions)
    table.add(row, result["output"])


if __name__ == "__main__":
    raise SystemExit(main())
