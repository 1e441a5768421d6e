"""Speed/quality Pareto of cache configs on the trained fixture, ditkit vs cache-dit 1.5.3.

Runs a matrix of DBCache configs (F1B0/F4B0/F8B0 x thresholds, static and dynamic steps masks,
TaylorSeer/FoCa/DMD on a few of them) on the fixture ``FluxPipeline`` of ``ditkit_testing``
(one 32x32 image per digit, seeds fixed) at 28 and 50 steps, under each library in its own
single-threaded subprocess (``tools/compat/run_cached.py``, started by ``harness.run_both``;
cache-dit is unpacked into ``build/compat/cache-dit-1.5.3``, never into the environment). Each
run's images come back as safetensors; this process scores them against the same library's
uncached images (PSNR, SSIM) and with the fixture's digit classifier, and writes
``quality.json``, ``quality.png`` and the generated blocks of ``quality.md`` (text outside the
``<!-- begin generated: ... -->`` markers is kept, so the hand-written analysis survives).

    python tools/bench/fixture_quality.py                  # docs/benchmarks/quality.*
    python tools/bench/fixture_quality.py --only ditkit --steps 28 --out-dir /tmp/q
    python tools/bench/fixture_quality.py --render-only    # .md/.png again from quality.json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import platform
import re
import shlex
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixture_quality_report import (  # noqa: E402  (the report half, beside this file)
    CALIBRATED_BASES,
    CALIBRATORS,
    pareto_keys,
    plot,
    write_markdown,
)

sys.path.insert(0, str(ROOT / "tools" / "compat"))
import harness  # noqa: E402  (tools/compat is not a package)

LIBRARIES = ("ditkit", "cache_dit")
THRESHOLDS = (0.05, 0.08, 0.12, 0.2, 0.3)
FN_BN = ((1, 0), (4, 0), (8, 0))
POLICIES = ("slow", "medium", "fast", "ultra")
WARMUP = 4
DYNAMIC_THRESHOLD = 0.12
PSNR_CAP = 100.0  # dB given to a bit-identical image when averaging
WORKDIR = ROOT / "build" / "bench" / "fixture-quality"
OUT_DIR = ROOT / "docs" / "benchmarks"


@dataclasses.dataclass(frozen=True)
class Config:
    """One cache config of the matrix: a key, its family and the JSON ``run_cached`` takes."""

    key: str
    family: str
    cache: dict[str, Any] | None  # DBCacheConfig kwargs; None: uncached
    mask_policy: str | None = None
    calibrator: dict[str, Any] | None = None

    def spec(self, steps: int, digits: Sequence[int], seed: int, repeats: int) -> dict[str, Any]:
        """The run for ``run_cached.py --matrix`` at ``steps`` (images saved)."""
        cache = None if self.cache is None else dict(self.cache)
        if cache is not None and self.mask_policy is not None:
            mask = {"mask_policy": self.mask_policy, "total_steps": steps}
            cache["steps_computation_mask"] = mask
        return {
            "id": run_id(steps, self.key),
            "pipeline": "fixture",
            "steps": steps,
            "seed": seed,
            "digits": list(digits),
            "config": cache,
            "calibrator": self.calibrator,
            "repeats": repeats,
            "save_images": True,
        }


def run_id(steps: int, key: str) -> str:
    """The id of config ``key`` at ``steps`` in the matrix and the image files."""
    return f"{steps}/{key}"


def dbcache(fn: int, bn: int, threshold: float, **extra: Any) -> dict[str, Any]:
    """DBCacheConfig kwargs with the matrix's warmup."""
    config = {"Fn_compute_blocks": fn, "Bn_compute_blocks": bn, "max_warmup_steps": WARMUP}
    return config | {"residual_diff_threshold": threshold} | extra


def default_configs() -> list[Config]:
    """The full matrix: uncached, DBCache grid, steps masks, calibrators on four bases."""
    configs = [Config("uncached", "uncached", None)]
    for fn, bn in FN_BN:
        for rdt in THRESHOLDS:
            configs.append(Config(f"F{fn}B{bn} rdt={rdt}", f"F{fn}B{bn}", dbcache(fn, bn, rdt)))
    for policy in POLICIES:
        static = dbcache(1, 0, DYNAMIC_THRESHOLD, steps_computation_policy="static")
        configs.append(Config(f"SCM static {policy}", "SCM static", static, policy))
    for policy in POLICIES:
        dynamic = dbcache(1, 0, DYNAMIC_THRESHOLD, steps_computation_policy="dynamic")
        configs.append(Config(f"SCM dynamic {policy}", "SCM dynamic", dynamic, policy))
    by_key = {c.key: c for c in configs}
    for base in CALIBRATED_BASES:
        for name, calibrator in CALIBRATORS.items():
            c = by_key[base]
            key = f"{base} + {name}"
            configs.append(Config(key, f"+ {name}", c.cache, c.mask_policy, calibrator))
    return configs


def run_matrix(
    configs: Sequence[Config],
    steps_list: Sequence[int],
    digits: Sequence[int],
    workdir: Path,
    libraries: Sequence[str] = LIBRARIES,
    seed: int = 0,
    repeats: int = 3,
    cache_dit_path: Path | None = None,
    timeout: float = 3600.0,
) -> dict[str, dict[str, Any]]:
    """Run every config at every step count under each library (in parallel); the documents.

    Each subprocess first runs a short untimed warm-up (``"warmup"``) so one-time costs do not
    land on the first timed run.
    """
    specs: list[dict[str, Any]] = [
        {"id": "warmup", "pipeline": "fixture", "steps": 4, "digits": list(digits), "config": None}
    ]
    specs += [c.spec(s, digits, seed, repeats) for s in steps_list for c in configs]
    if "cache_dit" in libraries:
        cache_dit_dir = harness.ensure_cache_dit(cache_dit_path)
    else:
        cache_dit_dir = Path(cache_dit_path or harness.DEFAULT_CACHE_DIT_DIR)
    return harness.run_both(specs, workdir, cache_dit_dir, tuple(libraries), timeout=timeout)


def _mean_psnr(reference: Any, images: Any) -> tuple[float, float]:
    """Mean (identical images counted as ``PSNR_CAP``) and minimum per-image PSNR in dB."""
    from ditkit_metrics import psnr

    values = psnr(reference, images, data_range=1.0, reduction="none")
    capped = [min(float(v), PSNR_CAP) for v in values]
    return statistics.mean(capped), min(capped)


def evaluate(
    documents: dict[str, dict[str, Any]],
    configs: Sequence[Config],
    steps_list: Sequence[int],
    digits: Sequence[int],
) -> list[dict[str, Any]]:
    """One row per library, step count and config: steps, wall time, PSNR/SSIM, accuracy."""
    import torch
    from safetensors.torch import load_file

    from ditkit_metrics import compute_prompt_accuracy, ssim
    from ditkit_testing.fixture import load_digit_classifier

    classifier = load_digit_classifier()
    rows = []
    for lib, document in documents.items():
        images = load_file(document["images"]) if document.get("images") else {}
        for steps in steps_list:
            reference = images.get(run_id(steps, "uncached"))
            base_run = document["runs"].get(run_id(steps, "uncached"), {})
            for config in configs:
                run = document["runs"].get(run_id(steps, config.key))
                row: dict[str, Any] = {"library": lib, "steps": steps, "key": config.key}
                row |= {"family": config.family, "error": None}
                if run is None or run["error"] or reference is None:
                    problem = "missing" if run is None else run["error"] or "no uncached reference"
                    rows.append(row | {"error": problem})
                    continue
                image = images[run_id(steps, config.key)]
                cached = [int(s) for s in run["stats"][-1]["cached_steps"]] if run["stats"] else []
                mean_db, min_db = _mean_psnr(reference, image)
                row |= {
                    "computed": steps - len(cached),
                    "cached": len(cached),
                    "cached_steps": sorted(cached),
                    "wall_s": round(run["wall_s"], 4),
                    "wall_s_runs": [round(t, 4) for t in run["wall_s_runs"]],
                    "cpu_s": round(run["cpu_s"], 4),
                    "cpu_s_runs": [round(t, 4) for t in run["cpu_s_runs"]],
                    "speedup": round(base_run.get("cpu_s", math.nan) / run["cpu_s"], 3),
                    "wall_speedup": round(base_run.get("wall_s", math.nan) / run["wall_s"], 3),
                    "psnr_db": round(mean_db, 3),
                    "psnr_min_db": round(min_db, 3),
                    "ssim": round(float(ssim(reference, image, data_range=1.0)), 5),
                    "accuracy": compute_prompt_accuracy(image, list(digits), classifier),
                    "identical": bool(torch.equal(reference, image)),
                    "sha256": run["output"]["sha256"],
                    "repeats_identical": run["repeats_identical"],
                }
                rows.append(row)
    return rows


def fronts(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """``{library: {steps: front keys}}`` over the cached configs without errors."""
    out: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        out.setdefault(row["library"], {}).setdefault(str(row["steps"]), [])
    for lib, by_steps in out.items():
        for steps in by_steps:
            points = [
                (r["key"], r["computed"], r["psnr_db"])
                for r in rows
                if r["library"] == lib and str(r["steps"]) == steps
                if not r["error"] and r["key"] != "uncached"
            ]
            by_steps[steps] = pareto_keys(points)
    return out


def compare_libraries(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per config: ditkit vs cache-dit; and per step count: their fronts at equal steps."""
    table = {(r["library"], r["steps"], r["key"]): r for r in rows if not r["error"]}
    pairs = []
    for (lib, steps, key), dk in table.items():
        cd = table.get(("cache_dit", steps, key))
        if lib != "ditkit" or cd is None or key == "uncached":
            continue
        same = dk["computed"] == cd["computed"]
        delta = round(dk["psnr_db"] - cd["psnr_db"], 3)
        pairs.append(
            {
                "steps": steps,
                "key": key,
                "computed": [dk["computed"], cd["computed"]],
                "same_cached_steps": dk["cached_steps"] == cd["cached_steps"],
                "bit_identical": dk["sha256"] == cd["sha256"],
                "psnr_db": [dk["psnr_db"], cd["psnr_db"]],
                "delta_db": delta,
                "holds": (dk["psnr_db"] >= cd["psnr_db"]) if same else None,
            }
        )
    envelope = []
    for steps in sorted({r["steps"] for r in rows}):
        best: dict[str, dict[int, float]] = {}
        for r in rows:
            if r["steps"] == steps and not r["error"] and r["key"] != "uncached":
                lib_best = best.setdefault(r["library"], {})
                lib_best[r["computed"]] = max(lib_best.get(r["computed"], -math.inf), r["psnr_db"])
        if len(best) < 2:
            continue
        for c in sorted(set(best["ditkit"]) | set(best["cache_dit"])):
            dk = max((v for k, v in best["ditkit"].items() if k <= c), default=None)
            cd = max((v for k, v in best["cache_dit"].items() if k <= c), default=None)
            holds = None if dk is None or cd is None else dk >= cd
            envelope.append({"steps": steps, "computed": c, "psnr_db": [dk, cd], "holds": holds})
    return {"pairs": pairs, "envelope": envelope}


def forecast_check(
    steps_list: Sequence[int], digits: Sequence[int], seed: int = 0
) -> list[dict[str, Any]]:
    """Open-loop forecast error of the F1B0 calibrated residual under each static mask.

    The uncached run's residual of blocks 1-11 (what F1B0 caches and a calibrator forecasts) is
    recorded at every step; at each step a mask leaves to the cache, the forecast from the
    masked-in steps before it is compared with the true residual (relative L2, averaged over
    the cached steps): reuse (no calibrator), TaylorSeer order 1 (the same in both libraries),
    order 2 as ditkit computes it (Newton divided differences, "trusted", told the static
    schedule as the cache tells it) and as cache-dit does.
    """
    import torch

    import ditkit
    from ditkit_calibrators.taylorseer import TaylorSeerCalibrator, cache_dit_taylor_forecast
    from ditkit_testing.fixture import build_fixture_pipeline, fixture_call_kwargs

    schedule: dict[str, int] = {}  # the request length of the mask being scored

    def newton(values: list, at: list[int], step: int, order: int) -> Any:
        seer = TaylorSeerCalibrator(n_derivatives=order)
        seer.set_static_schedule(schedule["steps"])  # every mask here is static
        for value, when in zip(values, at, strict=True):
            seer.mark_step_begin(when)
            seer.update(value)
        seer.mark_step_begin(step)
        return seer.approximate()

    forecasts = {
        "reuse": lambda v, at, t: v[-1],
        "TaylorSeer o1": lambda v, at, t: newton(v, at, t, 1),
        "o2 ditkit": lambda v, at, t: newton(v, at, t, 2),
        "o2 cache-dit": lambda v, at, t: cache_dit_taylor_forecast(v, at, t, 2),
    }
    pipe = build_fixture_pipeline()
    first: list[Any] = []
    last: list[Any] = []
    blocks = (
        pipe.transformer.transformer_blocks[0],
        pipe.transformer.single_transformer_blocks[-1],
    )
    hooks = [
        block.register_forward_hook(lambda m, i, out, keep=keep: keep.append(out[1]))
        for block, keep in zip(blocks, (first, last), strict=True)
    ]
    rows = []
    try:
        for steps in steps_list:
            schedule["steps"] = steps
            first.clear()
            last.clear()
            with torch.no_grad():
                pipe(**fixture_call_kwargs(list(digits), num_inference_steps=steps, seed=seed))
            truth = [b - a for a, b in zip(first, last, strict=True)]
            for policy in POLICIES:
                mask = ditkit.steps_mask(mask_policy=policy, total_steps=steps)
                computed = [i for i, bit in enumerate(mask) if bit]
                errors: dict[str, list[float]] = {name: [] for name in forecasts}
                for step in (i for i, bit in enumerate(mask) if not bit):
                    at = [c for c in computed if c < step]
                    values = [truth[c] for c in at]
                    for name, forecast in forecasts.items():
                        miss = forecast(values, at, step) - truth[step]
                        errors[name].append(float(miss.norm() / truth[step].norm()))
                means = {name: round(statistics.mean(v), 4) for name, v in errors.items()}
                mask_text = "".join(map(str, mask))
                rows.append({"steps": steps, "policy": policy, "mask": mask_text, "error": means})
    finally:
        for hook in hooks:
            hook.remove()
    return rows


def uncached_check(documents: dict[str, dict[str, Any]], steps_list: Sequence[int]) -> list[dict]:
    """Per step count: each library's uncached output hash, and whether they are equal."""
    out = []
    for steps in steps_list:
        hashes = {}
        for lib, document in documents.items():
            run = document["runs"].get(run_id(steps, "uncached")) or {}
            hashes[lib] = (run.get("output") or {}).get("sha256")
        values = set(hashes.values())
        out.append({"steps": steps, "sha256": hashes, "identical": len(values) == 1})
    return out


def machine() -> dict[str, Any]:
    """Device, software, date and commit, for the page's header."""
    import diffusers
    import torch

    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        text = cpuinfo.read_text()
        names = re.findall(r"^model name\s*:\s*(.+)$", text, flags=re.M)
        cpu = f"{len(names)} x {names[0].strip()}" if names else cpu
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout
    return {
        "cpu": cpu,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit.strip() or "unknown",
        "working_tree_modified": bool(dirty.strip()),
    }


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Run the matrix, score it and return the whole result (what ``quality.json`` holds)."""
    configs = default_configs()
    if args.configs:
        wanted = set(args.configs) | {"uncached"}
        configs = [c for c in configs if c.key in wanted]
    digits = [d for _ in range(args.digits_per_class) for d in range(10)]
    libraries = (args.only,) if args.only else LIBRARIES
    documents = run_matrix(
        configs,
        args.steps,
        digits,
        args.workdir,
        libraries,
        seed=args.seed,
        repeats=args.repeats,
        cache_dit_path=args.cache_dit_path,
    )
    rows = evaluate(documents, configs, args.steps, digits)
    forecasts = forecast_check(args.steps, digits, args.seed) if args.forecast_check else []
    return {
        "meta": machine() | {"command": shlex.join(["python", *sys.argv]), "threads": 1},
        "setup": {
            "steps": list(args.steps),
            "digits": digits,
            "seed": args.seed,
            "repeats": args.repeats,
            "warmup": WARMUP,
            "psnr_cap_db": PSNR_CAP,
            "libraries": list(libraries),
            "versions": {
                lib: doc["runs"]["warmup"].get("version") for lib, doc in documents.items()
            },
        },
        "configs": [dataclasses.asdict(c) for c in configs],
        "uncached": uncached_check(documents, args.steps),
        "rows": rows,
        "fronts": fronts(rows),
        "comparison": compare_libraries(rows),
        "forecast_check": forecasts,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[28, 50])
    parser.add_argument("--digits-per-class", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="image i uses seed + i")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per run (median)")
    parser.add_argument("--only", choices=LIBRARIES, help="run one library only")
    parser.add_argument("--configs", nargs="+", help="config keys to run (default: all)")
    parser.add_argument("--workdir", type=Path, default=WORKDIR)
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    parser.add_argument("--cache-dit-path", type=Path, default=None)
    parser.add_argument(
        "--no-forecast-check",
        dest="forecast_check",
        action="store_false",
        help="skip the open-loop calibrator forecast check (forecast_check)",
    )
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite .md/.png from --out-dir/quality.json"
    )
    parser.add_argument(
        "--forecast-only",
        action="store_true",
        help="recompute only the open-loop forecast check into --out-dir/quality.json (after a "
        "calibrator change that the matrix run predates), then rewrite .md/.png",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run, score, write ``quality.{json,md,png}`` into ``--out-dir``."""
    args = parse_args(argv)
    data = args.out_dir / "quality.json"
    if args.render_only:
        result = json.loads(data.read_text())
    elif args.forecast_only:
        result = json.loads(data.read_text())
        setup = result["setup"]
        result["forecast_check"] = forecast_check(setup["steps"], setup["digits"], setup["seed"])
        result["meta"]["forecast_check"] = {
            key: machine()[key] for key in ("date", "commit", "working_tree_modified")
        }
        data.write_text(json.dumps(result, indent=1) + "\n")
    else:
        result = run_all(args)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        data.write_text(json.dumps(result, indent=1) + "\n")
    write_markdown(result, args.out_dir / "quality.md")
    plot(result, args.out_dir / "quality.png")
    failed = [r for r in result["rows"] if r["error"]]
    print(f"wrote quality.json, quality.md, quality.png to {args.out_dir}; {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
