"""How much of the communication a GPU step hides behind compute, from a profiler trace.

``torch.profiler`` exports a Chrome trace whose ``"cat": "kernel"`` events carry the CUDA
stream (``args.stream``), start ``ts`` and duration ``dur`` in microseconds. NCCL kernels
(``nccl`` in the name) are the communication; every other kernel is compute. The summary gives
the wall span of the kernels, the time each kind keeps the GPU busy (the union of its
intervals, so concurrent kernels count once), and how much of the communication ran while a
compute kernel ran too: ``hidden_fraction`` 0 means the all-to-alls and the attention never
overlapped (what issue 8 suspects at 2048²), 1 means the communication was free.

    python tools/bench/trace_overlap.py trace.json [more.json ...]

Example:
    >>> events = [
    ...     {"cat": "kernel", "name": "gemm", "ts": 0, "dur": 10, "args": {"stream": 7}},
    ...     {"cat": "kernel", "name": "ncclDevKernel_AllToAll", "ts": 5, "dur": 10,
    ...      "args": {"stream": 20}},
    ... ]
    >>> s = overlap_summary(events)
    >>> s["span_us"], s["comm_us"], s["compute_us"], s["hidden_us"], s["hidden_fraction"]
    (15.0, 10.0, 10.0, 5.0, 0.5)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "intersection",
    "kernel_intervals",
    "main",
    "overlap_summary",
    "runtime_summary",
    "union",
]

Interval = tuple[float, float]


def kernel_intervals(events: Iterable[dict[str, Any]]) -> tuple[list[Interval], list[Interval]]:
    """``(communication, compute)`` kernel intervals ``(start, end)`` in microseconds."""
    comm: list[Interval] = []
    compute: list[Interval] = []
    for event in events:
        if event.get("cat") != "kernel" or "dur" not in event:
            continue
        start = float(event["ts"])
        interval = (start, start + float(event["dur"]))
        (comm if "nccl" in event.get("name", "").lower() else compute).append(interval)
    return comm, compute


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping intervals covering the same time."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def intersection(a: list[Interval], b: list[Interval]) -> float:
    """Total length of the time covered by both of two :func:`union` results."""
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        low, high = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        total += max(0.0, high - low)
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def _length(intervals: list[Interval]) -> float:
    return sum(end - start for start, end in intervals)


def overlap_summary(events: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Span, busy time of communication and compute, and the hidden communication (µs)."""
    comm, compute = (union(kind) for kind in kernel_intervals(events))
    everything = union([*comm, *compute])
    span = everything[-1][1] - everything[0][0] if everything else 0.0
    comm_us, hidden = _length(comm), intersection(comm, compute)
    return {
        "span_us": span,
        "busy_us": _length(everything),
        "comm_us": comm_us,
        "compute_us": _length(compute),
        "hidden_us": hidden,
        "hidden_fraction": hidden / comm_us if comm_us else 0.0,
    }


def runtime_summary(events: Iterable[dict[str, Any]], top: int = 5) -> list[tuple[str, float]]:
    """The ``top`` CUDA runtime/driver calls by total host time (µs), largest first: when the
    kernels' span exceeds their busy time, the GPU waited for the host, and a blocking call
    (``cudaStreamSynchronize``, ``cudaEventSynchronize``) or the launches themselves show here.

    >>> runtime_summary([
    ...     {"cat": "cuda_runtime", "name": "cudaLaunchKernel", "dur": 4},
    ...     {"cat": "cuda_runtime", "name": "cudaLaunchKernel", "dur": 5},
    ...     {"cat": "cuda_driver", "name": "cuLaunchKernel", "dur": 2},
    ...     {"cat": "kernel", "name": "gemm", "dur": 50},
    ... ])
    [('cudaLaunchKernel', 9.0), ('cuLaunchKernel', 2.0)]
    """
    totals: dict[str, float] = {}
    for event in events:
        if event.get("cat") in ("cuda_runtime", "cuda_driver") and "dur" in event:
            name = event.get("name", "?")
            totals[name] = totals.get(name, 0.0) + float(event["dur"])
    return sorted(totals.items(), key=lambda item: -item[1])[:top]


def main(argv: list[str] | None = None) -> int:
    paths = argv if argv is not None else sys.argv[1:]
    if not paths:
        print("usage: trace_overlap.py TRACE.json [...]", file=sys.stderr)
        return 2
    print("| trace | span ms | busy ms | comm ms | compute ms | hidden ms | hidden |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for path in paths:
        data = json.loads(Path(path).read_text())
        events = data["traceEvents"] if isinstance(data, dict) else data
        s = overlap_summary(events)
        print(
            f"| {Path(path).name} | {s['span_us'] / 1e3:.2f} | {s['busy_us'] / 1e3:.2f} | "
            f"{s['comm_us'] / 1e3:.2f} | {s['compute_us'] / 1e3:.2f} | "
            f"{s['hidden_us'] / 1e3:.2f} | {s['hidden_fraction']:.0%} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
