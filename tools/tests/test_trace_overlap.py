"""tools/bench/trace_overlap.py: interval unions and hidden communication against brute force."""

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import trace_overlap


def _random_trace(seed: int) -> list[dict]:
    rng = random.Random(seed)
    events = [{"cat": "cpu_op", "name": "aten::mm", "ts": 0, "dur": 500}]  # not a kernel
    for _ in range(40):
        name = rng.choice(["ncclDevKernel_AllToAll_RING", "sm90_gemm", "flash_fwd", "triton_"])
        events.append(
            {
                "cat": "kernel",
                "name": name,
                "ts": rng.randrange(0, 300),
                "dur": rng.randrange(1, 40),
                "args": {"stream": rng.choice([7, 20, 24])},
            }
        )
    return events


def _brute_force(events: list[dict]) -> dict[str, float]:
    comm, compute = [False] * 400, [False] * 400
    for e in events:
        if e["cat"] != "kernel":
            continue
        target = comm if "nccl" in e["name"].lower() else compute
        for t in range(e["ts"], e["ts"] + e["dur"]):
            target[t] = True
    busy = [a or b for a, b in zip(comm, compute, strict=True)]
    first, last = busy.index(True), len(busy) - busy[::-1].index(True)
    return {
        "span_us": float(last - first),
        "busy_us": float(sum(busy)),
        "comm_us": float(sum(comm)),
        "compute_us": float(sum(compute)),
        "hidden_us": float(sum(a and b for a, b in zip(comm, compute, strict=True))),
    }


def test_summary_equals_a_brute_force_count_on_random_traces():
    for seed in range(20):
        events = _random_trace(seed)
        summary = trace_overlap.overlap_summary(events)
        expect = _brute_force(events)
        for key, value in expect.items():
            assert summary[key] == value, (seed, key)
        assert summary["hidden_fraction"] == expect["hidden_us"] / expect["comm_us"]


def test_serial_communication_is_not_hidden_and_the_cli_prints_a_row(tmp_path, capsys):
    events = [
        {"cat": "kernel", "name": "gemm", "ts": 0, "dur": 10, "args": {"stream": 7}},
        {"cat": "kernel", "name": "ncclKernel", "ts": 10, "dur": 5, "args": {"stream": 20}},
    ]
    assert trace_overlap.overlap_summary(events)["hidden_fraction"] == 0.0
    path = tmp_path / "rank0.json"
    path.write_text(json.dumps({"traceEvents": events}))
    assert trace_overlap.main([str(path)]) == 0
    assert "| rank0.json | 0.01 | 0.01 | 0.01 | 0.01 | 0.00 | 0% |" in capsys.readouterr().out


def test_runtime_summary_totals_host_calls_largest_first() -> None:
    events = [
        {"cat": "cuda_runtime", "name": "cudaLaunchKernel", "dur": 3},
        {"cat": "cuda_runtime", "name": "cudaStreamSynchronize", "dur": 40},
        {"cat": "cuda_runtime", "name": "cudaLaunchKernel", "dur": 4},
        {"cat": "cuda_driver", "name": "cuLaunchKernel", "dur": 1},
        {"cat": "kernel", "name": "gemm", "dur": 99},  # GPU time, not a host call
        {"cat": "cuda_runtime", "name": "cudaEventRecord"},  # no duration: skipped
    ]
    assert trace_overlap.runtime_summary(events) == [
        ("cudaStreamSynchronize", 40.0),
        ("cudaLaunchKernel", 7.0),
        ("cuLaunchKernel", 1.0),
    ]
    assert trace_overlap.runtime_summary(events, top=1) == [("cudaStreamSynchronize", 40.0)]
