"""Does DMD forecast on CUDA at FLUX size? cache-dit 1.5.3's ``DMDState`` beside ditkit's.

Feeds both calibrators the same exactly-linear trajectory ``x(t) = c + a 0.9^t + b 0.7^t`` (three
exponential modes, so a rank-3 DMD fit is exact), shaped like FLUX.1-dev's hidden states at 1024²
(``[1, 4096, 3072]``, ``d = 12.6 M`` per item) and at two smaller sizes, computed at steps 0-4
and forecast at step 6. Prints, per library, size and SVD precision: whether the fit failed
(cache-dit swallows the exception and returns the newest snapshot; the error is printed here by
calling its SVD helper directly), the forecast's error relative to the exact ``x(6)``, the peak
CUDA memory above the snapshots, and the wall time of the fitting call.

    python tools/bench/dmd_cuda_check.py                      # on a CUDA machine
    python tools/bench/dmd_cuda_check.py --sizes 4096 --device cpu   # smoke test

Needs ``cache_dit`` 1.5.3 importable (``pip install cache-dit==1.5.3`` or the ``.whl`` carried to
the device) for its rows; ditkit's rows need ``packages/*/src`` on the path.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
for src in sorted((ROOT / "packages").glob("*/src")):
    sys.path.insert(0, str(src))
sys.path.append(str(ROOT / "build" / "compat" / "cache-dit-1.5.3"))  # harness.py unpacks it here

FLUX_1024 = (1, 4096, 3072)
COMPUTED = (0, 1, 2, 3, 4)
TARGET = 6


def trajectory(shape: tuple[int, ...], device: str) -> Callable[[int], torch.Tensor]:
    """``x(t) = c + a 0.9^t + b 0.7^t`` with fixed random vectors (float32, exact in float64)."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    c, a, b = (torch.randn(shape, generator=gen).to(device) for _ in range(3))
    return lambda t: c + a * 0.9**t + b * 0.7**t


def run(library: str, precision: str, x: Callable[[int], torch.Tensor], device: str) -> str:
    """Feed steps 0-4, forecast step 6; return one Markdown row's cells after the first two."""
    if library == "cache_dit":
        from cache_dit.caching.cache_contexts.calibrators.dmd import DMDState

        state = DMDState(svd_precision=precision)
        begin = lambda step: state.mark_step_begin()  # noqa: E731  (counts from -1 itself)
    else:
        from ditkit_calibrators import DMDCalibrator

        state = DMDCalibrator(svd_precision=precision)
        begin = state.mark_step_begin
    for step in range(TARGET):
        begin(step)
        if step in COMPUTED:
            state.update(x(step))
    begin(TARGET)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    start = time.perf_counter()
    forecast = state.approximate()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if device == "cuda" else 0.0
    exact, newest = x(TARGET), x(COMPUTED[-1])
    rel = float((forecast.double() - exact.double()).norm() / exact.double().norm())
    reused = bool(torch.equal(forecast, newest))
    if library == "cache_dit":
        fit = state._fit
        failed = fit is None or any(item is None for item in fit[0])
    else:
        failed = state.last_method != "dmd"
    flags = f"{'yes' if failed else 'no'} | {'yes' if reused else 'no'}"
    return f"{flags} | {rel:.2e} | {peak:.0f} | {seconds * 1e3:.0f}"


def svd_error(precision: str, x: Callable[[int], torch.Tensor]) -> str:
    """cache-dit's SVD helper on the snapshot matrix, to print the error its fit swallows."""
    from cache_dit.caching.cache_contexts.calibrators.dmd import _dmd_svd

    matrix = torch.stack([x(step).reshape(-1) for step in COMPUTED[:-1]], dim=-1).double()
    try:
        _dmd_svd(matrix, precision)
    except Exception as error:  # reported, not handled
        return f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
    return "ok"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=int,
        default=[256, 1024, 4096],
        help="tokens per item (3072 channels each); 4096 is FLUX at 1024²",
    )
    parser.add_argument("--precisions", nargs="+", default=["low", "medium", "high"])
    parser.add_argument("--libraries", nargs="+", default=["cache_dit", "ditkit"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(
        f"# DMD fit on {name}, torch {torch.__version__}; x(t) = c + a 0.9^t + b 0.7^t, "
        f"computed at {list(COMPUTED)}, forecast at {TARGET}\n"
    )
    print(
        "| library | d | svd_precision | fit failed | = newest snapshot | rel. error | "
        "peak MiB | ms |"
    )
    print("|---|---:|---|---|---|---:|---:|---:|")
    errors = []
    for tokens in args.sizes:
        shape = (FLUX_1024[0], tokens, FLUX_1024[2])
        x = trajectory(shape, args.device)
        d = tokens * FLUX_1024[2]
        for library in args.libraries:
            for precision in args.precisions:
                cells = run(library, precision, x, args.device)
                print(f"| {library} | {d:,} | {precision} | {cells} |", flush=True)
                if library == "cache_dit":
                    errors.append(
                        f"cache-dit svd ({precision}, d={d:,}): {svd_error(precision, x)}"
                    )
        del x
        if args.device == "cuda":
            torch.cuda.empty_cache()
    print()
    for line in errors:
        print("-", line)


if __name__ == "__main__":
    main()
