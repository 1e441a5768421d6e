"""Check and time the copy-engine Ulysses exchange against NCCL on two GPUs of one host.

Launch: ``torchrun --nproc-per-node=2 tools/bench/copy_engine_check.py [--json F]``.

1. **Equality**: ``all_to_all_seq_to_heads`` and ``all_to_all_heads_to_seq`` through the copy
   engines (``ditkit_parallel.copy_engine``) equal NCCL's results bit for bit (pure copies),
   for uneven sequence lengths and head counts, bf16 and uint8 (float8 rows), eagerly and under
   ``torch.compile`` with three exchanges in flight before the first wait.
2. **Bandwidth**: median time of one exchange of FLUX.1-dev's Q at 2048² (16896 tokens x 24
   heads x 128, half per rank) for each path.
3. **Interference**: a bf16 matmul timed alone, then with an exchange issued before it and
   waited after it; the matmul's own time (CUDA events around it on the main stream) and the
   pair's total, per path. NCCL's kernels take SMs from the matmul; copy engines should not.
4. **Host cost**: host microseconds to issue and wait one 1024² exchange, per path (a compiled
   1024² step is host-bound, so this is what the copy engine costs there).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import torch
import torch.distributed as dist

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "packages" / p / "src") for p in ("interfaces", "parallel")]

from ditkit_parallel import comm, copy_engine  # noqa: E402


def log(message: str) -> None:
    if dist.get_rank() == 0:
        print(message, flush=True)


def exchange(x, lens, group, ce: bool, back: bool = False, heads: int = 0):
    copy_engine.route(group, ce)
    if back:
        return comm.all_to_all_heads_to_seq(x, lens, heads, dist.get_rank(group), group)
    return comm.all_to_all_seq_to_heads(x, lens, dist.get_rank(group), group)


def equality(group, device) -> dict[str, bool]:
    rank, results = dist.get_rank(), {}
    for dtype, lens, heads in (
        (torch.bfloat16, [4097, 4096], 24),
        (torch.bfloat16, [130, 129], 5),
        (torch.uint8, [513, 512], 3),
    ):
        g = torch.Generator(device=device).manual_seed(rank)
        x = torch.randint(0, 255, (1, lens[rank], heads, 132), generator=g, device=device)
        x = x.to(dtype)
        for back in (False, True):
            if back:  # (B, S, H_r, E) for the inverse
                mine = comm.head_split_sizes(heads, 2)[rank]
                x = x.new_empty(1, sum(lens), mine, 132).copy_(
                    torch.randint(0, 255, (1, sum(lens), mine, 132), device=device)
                )
            want = comm.wait(exchange(x, lens, group, False, back, heads))
            got = comm.wait(exchange(x, lens, group, True, back, heads))
            results[f"{dtype}/{lens}/{heads}h/{'back' if back else 'forth'}"] = bool(
                torch.equal(want, got)
            )

    def three(q, k, v, lens):
        pending = [comm.all_to_all_seq_to_heads(t, lens, rank, group) for t in (q, k, v)]
        return [comm.wait(p) * 1.0 for p in pending]

    lens = [2049, 2048]
    q, k, v = (torch.randn(1, lens[rank], 24, 128, device=device, dtype=torch.bfloat16)
               for _ in range(3))  # fmt: skip
    copy_engine.route(group, False)
    want = three(q, k, v, lens)
    copy_engine.route(group, True)
    compiled = torch.compile(three, fullgraph=True)
    for i in range(3):  # the second and third reuse the workspace
        got = compiled(q, k, v, lens)
        same = all(torch.equal(a, b) for a, b in zip(want, got, strict=True))
        results[f"compiled/call{i}"] = same
    copy_engine.route(group, False)
    return results


def timed(fn, iters: int = 20) -> float:
    times = []
    for i in range(iters + 5):
        dist.barrier()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        if i >= 5:
            times.append(start.elapsed_time(end))
    return statistics.median(times)


def bandwidth_and_interference(group, device) -> dict[str, float]:
    rank, results = dist.get_rank(), {}
    lens = [8448, 8448]  # 2048²: 16384 image + 512 text tokens, half per rank
    x = torch.randn(1, lens[rank], 24, 128, device=device, dtype=torch.bfloat16)
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    mm_alone = timed(lambda: a @ a)
    results["matmul_alone_ms"] = mm_alone
    for name, ce in (("nccl", False), ("copy_engine", True)):
        one = lambda ce=ce: comm.wait(exchange(x, lens, group, ce))  # noqa: E731
        results[f"{name}/exchange_ms"] = timed(one)
        mm_times: list = []

        def pair(ce: bool = ce, mm_times: list = mm_times) -> None:
            pending = exchange(x, lens, group, ce)
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            a @ a
            e.record()
            comm.wait(pending)
            mm_times.append((s, e))

        results[f"{name}/pair_ms"] = timed(pair)
        results[f"{name}/matmul_beside_ms"] = statistics.median(
            s.elapsed_time(e) for s, e in mm_times[5:]
        )
    moved = x.numel() * x.element_size() / 2  # bytes each rank receives from its peer
    for name in ("nccl", "copy_engine"):
        results[f"{name}/GB_per_s"] = moved / results[f"{name}/exchange_ms"] / 1e6
    copy_engine.route(group, False)
    return results


def host_cost(group, device, iters: int = 40, profile: bool = False) -> dict[str, float]:
    """Host microseconds to issue and wait one exchange of FLUX's Q at 1024² (no GPU wait).

    At 1024² a compiled Ulysses-2 step is host-bound (docs/benchmarks/parallel.md), so the
    host time of the ~228 exchanges of a step counts in full there.
    """
    import time

    rank, results = dist.get_rank(), {}
    lens = [2304, 2304]  # 1024²: 4096 image + 512 text tokens, half per rank
    x = torch.randn(1, lens[rank], 24, 128, device=device, dtype=torch.bfloat16)
    for name, ce in (("nccl", False), ("copy_engine", True)):
        for _ in range(5):
            comm.wait(exchange(x, lens, group, ce))
        torch.cuda.synchronize()
        dist.barrier()
        start = time.perf_counter()
        for _ in range(iters):
            comm.wait(exchange(x, lens, group, ce))
        results[f"{name}/host_us_per_exchange"] = (time.perf_counter() - start) / iters * 1e6
        torch.cuda.synchronize()
        if profile and rank == 0:  # where the host time goes (functions by own time)
            import cProfile
            import io
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(iters):
                comm.wait(exchange(x, lens, group, ce))
            profiler.disable()
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(14)
            log(f"## host profile, {name}, {iters} exchanges\n{text.getvalue()}")
        else:
            for _ in range(iters):  # the same calls on every rank (the peer waits for them)
                comm.wait(exchange(x, lens, group, ce))
        torch.cuda.synchronize()
    copy_engine.route(group, False)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--profile-host", action="store_true", help="cProfile the host cost")
    args = parser.parse_args()
    dist.init_process_group("nccl")
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    torch.cuda.set_device(device)
    group = dist.group.WORLD
    log(f"# copy-engine exchange vs NCCL, {dist.get_world_size()} x "
        f"{torch.cuda.get_device_name()}, torch {torch.__version__}")  # fmt: skip
    equal = equality(group, device)
    log(f"equal to NCCL (bit for bit): {equal}")
    timing = bandwidth_and_interference(group, device)
    timing.update(host_cost(group, device, profile=args.profile_host))
    for key, value in timing.items():
        log(f"| {key} | {value:.3f} |")
    if args.json is not None and dist.get_rank() == 0:
        args.json.write_text(json.dumps({"equal": equal, "timing": timing}, indent=1))
    dist.barrier()
    dist.destroy_process_group()
    return 0 if all(equal.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
