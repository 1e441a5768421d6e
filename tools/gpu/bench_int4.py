"""Time the int4 pack/unpack kernels against the pure-torch reference on one CUDA GPU.

Usage (after installing a built ditkit-kernels-cu13 wheel)::

    python3 tools/gpu/bench_int4.py

Prints a markdown table: median milliseconds over CUDA-event-timed repeats of the whole op call
(host-side custom-op dispatch included, so small shapes are not kernel-only), and the effective
bandwidth counting the bytes read and written (int8 values + packed bytes), to compare with the
device's copy bandwidth (about 3.0 TB/s read+write on an H100 80GB HBM3).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch

import ditkit_kernels_cu13 as k
from ditkit_kernels_cu13.reference import pack_int4_reference, unpack_int4_reference

SHAPES = [(3072, 3072), (12288, 3072), (8192, 8192)]  # FLUX-sized linear weights and a square


def _median_ms(fn: Callable[[], object], reps: int = 50, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main() -> None:
    assert k.available(), k.device_status()
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, {k.diagnostics()}")
    print("| op | shape | kernel ms | kernel GB/s | reference ms | speedup |")
    print("| --- | --- | --- | --- | --- | --- |")
    for rows, cols in SHAPES:
        x = torch.randint(-8, 8, (rows, cols), dtype=torch.int8, device="cuda")
        packed = k.pack_int4(x)
        assert packed.equal(pack_int4_reference(x))
        moved = rows * cols * 3 // 2  # int8 in + packed out (or the reverse)
        cases = [
            ("pack_int4", lambda x=x: k.pack_int4(x), lambda x=x: pack_int4_reference(x)),
            (
                "unpack_int4",
                lambda p=packed: k.unpack_int4(p),
                lambda p=packed: unpack_int4_reference(p),
            ),
        ]
        for name, kernel, reference in cases:
            ms = _median_ms(kernel)
            ref_ms = _median_ms(reference, reps=10)
            gbps = moved / (ms * 1e-3) / 1e9
            row = [name, f"{rows}x{cols}", f"{ms:.4f}", f"{gbps:.0f}", f"{ref_ms:.3f}"]
            print("| " + " | ".join([*row, f"{ref_ms / ms:.0f}x"]) + " |")


if __name__ == "__main__":
    main()
