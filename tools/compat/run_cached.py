"""Run a tiny pipeline once under cache-dit or ditkit and write what the cache decided as JSON.

One process sees one library: run it once per library, each in its own subprocess, and compare
the two JSON files (``tools/compat/compare.py``). Only the import differs between the two sides:

    # cache-dit 1.5.3, unpacked with: pip install --no-deps --target /tmp/cachedit cache-dit==1.5.3
    PYTHONPATH=/tmp/cachedit python tools/compat/run_cached.py --library cache_dit \\
        --pipeline flux --steps 28 \\
        --config '{"Fn_compute_blocks": 1, "Bn_compute_blocks": 0,
                   "residual_diff_threshold": 0.2}' --out cache_dit.json
    # ditkit, from the venv (no cache-dit on the path)
    python tools/compat/run_cached.py --library ditkit --pipeline flux --steps 28 \\
        --config '...same...' --out ditkit.json

``--config`` holds ``DBCacheConfig`` keyword arguments; ``"cache_type": "DBPrune"`` selects
``DBPruneConfig``. ``steps_computation_mask`` may be a list or the keyword arguments of the
library's own ``steps_mask`` (``{"mask_policy": "medium", "total_steps": 28}``).
``--calibrator`` holds ``{"type": "taylorseer" | "foca" | "dmd", ...config kwargs}``.
``--matrix FILE`` runs a JSON list of runs (``{"id", "pipeline", "steps", "seed", "config",
"calibrator"}``) in this one process, on a fresh pipeline each, which saves the 5-10 s import of
torch and diffusers per run; the output then maps each id to its result.

``--pipeline fixture`` is the trained digits ``FluxPipeline`` of ``ditkit_testing.fixture`` (one
32x32 image per digit of the run's ``"digits"``, default 0-9, image ``i`` seeded ``seed + i``).
A run whose ``"config"`` is ``null`` runs uncached (the reference for quality metrics).
``"repeats": N`` times N pipeline calls (``wall_s`` is their median, ``wall_s_runs`` all of
them; ``cpu_s``/``cpu_s_runs`` the same in process CPU time, which a shared machine disturbs
less; the first call's output is the one digested and saved). ``--save-images`` (or
``"save_images": true`` in a run) writes each run's output tensor to ``<out>.images.safetensors``
beside the JSON, keyed by run id (``"output"`` for a single run), for metrics computed outside.

Each result holds, per ``CacheStats`` entry of ``summary()``: the cached steps, the CFG cached
steps, their diffs and the prune stats; plus the output tensor's shape and checksum, and the wall
times. A failure (e.g. ditkit's ``MissingComponentError`` before its cache engine lands) is
recorded under ``"error"`` and the exit status is 3.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.abc
import json
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

LIBRARIES = ("cache_dit", "ditkit")
# top-level modules each side must not import: the other library (ditkit_testing is shared)
HIDDEN: dict[str, Callable[[str], bool]] = {
    "cache_dit": lambda name: name.startswith("ditkit") and name != "ditkit_testing",
    "ditkit": lambda name: name == "cache_dit",
}
CALIBRATORS = {
    "taylorseer": "TaylorSeerCalibratorConfig",
    "foca": "FoCaCalibratorConfig",
    "dmd": "DMDCalibratorConfig",
}
STATS_FIELDS = (
    "cached_steps",
    "cfg_cached_steps",
    "residual_diffs",
    "cfg_residual_diffs",
    "pruned_steps",
    "pruned_blocks",
    "actual_blocks",
    "cfg_pruned_steps",
    "cfg_pruned_blocks",
    "cfg_actual_blocks",
)
PIPELINES = ("flux", "qwen_image", "wan", "fixture")
IMAGES_SUFFIX = ".images.safetensors"
EXPECTED_CACHE_DIT_VERSION = "1.5.3"
MISSING_LIBRARY_EXIT = 2
RUN_FAILED_EXIT = 3


class _Hide(importlib.abc.MetaPathFinder):
    """Makes the other library's modules unimportable in this process."""

    def __init__(self, library: str) -> None:
        self.library = library

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if HIDDEN[self.library](name.split(".")[0]):
            raise ModuleNotFoundError(f"{name} is hidden from the {self.library} side", name=name)


def import_library(library: str) -> ModuleType:
    """Import ``cache_dit`` or ``ditkit``, after making the other one unimportable."""
    sys.meta_path.insert(0, _Hide(library))
    module = importlib.import_module(library)
    if library == "cache_dit" and module.__version__ != EXPECTED_CACHE_DIT_VERSION:
        print(
            f"warning: cache_dit {module.__version__} from {module.__file__}, "
            f"expected {EXPECTED_CACHE_DIT_VERSION}",
            file=sys.stderr,
        )
    return module


def build_cache_config(lib: ModuleType, config: dict[str, Any]) -> Any:
    """``DBCacheConfig`` or (``cache_type`` DBPrune) ``DBPruneConfig`` from JSON kwargs."""
    kwargs = dict(config)
    kind = str(kwargs.pop("cache_type", "DBCache"))
    mask = kwargs.get("steps_computation_mask")
    if isinstance(mask, dict):
        kwargs["steps_computation_mask"] = list(lib.steps_mask(**mask))
    if kind.upper() in ("DBPRUNE", "DB_PRUNE", "DBP", "DYNAMIC_BLOCK_PRUNE"):
        return lib.DBPruneConfig(**kwargs)
    return lib.DBCacheConfig(**kwargs)


def build_calibrator_config(lib: ModuleType, spec: dict[str, Any] | None) -> Any:
    """A calibrator config from ``{"type": ..., **kwargs}``, or None."""
    if not spec:
        return None
    kwargs = dict(spec)
    kind = str(kwargs.pop("type", "taylorseer")).lower()
    if kind not in CALIBRATORS:
        raise ValueError(f"unknown calibrator type {kind!r}; use one of {sorted(CALIBRATORS)}")
    return getattr(lib, CALIBRATORS[kind])(**kwargs)


def _jsonable(value: Any) -> Any:
    """Plain JSON values from stats fields (tensors, numpy scalars, defaultdicts)."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def stats_entry(stats: Any) -> dict[str, Any]:
    """The decision-relevant fields of one ``CacheStats`` (missing fields are left out)."""
    entry = {name: _jsonable(getattr(stats, name)) for name in STATS_FIELDS if hasattr(stats, name)}
    options = getattr(stats, "cache_options", None) or {}
    entry["context_name"] = options.get("name") if isinstance(options, dict) else None
    cache_config = options.get("cache_config") if isinstance(options, dict) else None
    entry["enable_separate_cfg"] = getattr(cache_config, "enable_separate_cfg", None)
    entry["config_tag"] = cache_config.strify() if hasattr(cache_config, "strify") else None
    return entry


def output_tensor(output: Any) -> Any:
    """The pipeline output's image/video tensor, detached, on the CPU."""
    import torch

    tensor = output[0] if not isinstance(output, torch.Tensor) else output
    return tensor.detach().to("cpu").contiguous()


def output_digest(output: Any) -> dict[str, Any]:
    """Shape, dtype, SHA-256 of the bytes and two sums of the pipeline's output tensor."""
    import torch

    tensor = output_tensor(output)
    return {
        "shape": list(tensor.shape),
        "dtype": str(tensor.dtype),
        "sha256": hashlib.sha256(tensor.view(torch.uint8).numpy().tobytes()).hexdigest(),
        "sum": float(tensor.double().sum()),
        "abs_sum": float(tensor.double().abs().sum()),
    }


def build_pipeline(spec: dict[str, Any]) -> tuple[Any, Callable[[], Any]]:
    """The run's fresh pipeline and a zero-argument call that runs it once, as the spec says."""
    pipeline, steps, seed = spec["pipeline"], int(spec.get("steps", 28)), int(spec.get("seed", 0))
    if pipeline == "fixture":
        from ditkit_testing.fixture import build_fixture_pipeline, fixture_call_kwargs

        pipe = build_fixture_pipeline()
        digits = [int(d) for d in spec.get("digits", range(10))]

        def call() -> Any:
            return pipe(**fixture_call_kwargs(digits, num_inference_steps=steps, seed=seed))

        return pipe, call
    from ditkit_testing import build_tiny_pipeline, tiny_call_kwargs

    pipe = build_tiny_pipeline(pipeline, seed=seed)
    return pipe, lambda: pipe(**tiny_call_kwargs(pipeline, num_inference_steps=steps, seed=seed))


def run_once(lib: ModuleType, spec: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Build the pipeline, enable the cache, run, summarize; the result and the output tensor.

    Errors go into the result (the tensor is then None). ``"config": null`` runs uncached.
    """
    steps, seed = int(spec.get("steps", 28)), int(spec.get("seed", 0))
    config = spec.get("config", {})
    repeats = max(int(spec.get("repeats", 1)), 1)
    result: dict[str, Any] = {
        "library": lib.__name__,
        "version": getattr(lib, "__version__", None),
        "module_file": getattr(lib, "__file__", None),
        "pipeline": spec["pipeline"],
        "steps": steps,
        "seed": seed,
        "config": config,
        "calibrator": spec.get("calibrator"),
        "error": None,
    }
    if "digits" in spec:
        result["digits"] = list(spec["digits"])
    pipe, call = build_pipeline(spec)
    tensor = None
    stage = "build the config"
    try:
        if config is not None:
            cache_config = build_cache_config(lib, config)
            result["steps_computation_mask"] = getattr(cache_config, "steps_computation_mask", None)
            result["config_tag"] = cache_config.strify()
            calibrator_config = build_calibrator_config(lib, spec.get("calibrator"))
            stage = "enable_cache"
            start = time.perf_counter()
            lib.enable_cache(pipe, cache_config=cache_config, calibrator_config=calibrator_config)
            result["enable_s"] = time.perf_counter() - start
        stage = "run the pipeline"
        seconds, cpu_seconds, digests = [], [], []
        for _ in range(repeats):
            start, cpu_start = time.perf_counter(), time.process_time()
            output = call()
            seconds.append(time.perf_counter() - start)
            cpu_seconds.append(time.process_time() - cpu_start)
            digests.append(output_digest(output))
            if tensor is None:
                tensor = output_tensor(output)
        result["wall_s"] = statistics.median(seconds)
        result["wall_s_runs"] = seconds
        result["cpu_s"] = statistics.median(cpu_seconds)  # this process's CPU time
        result["cpu_s_runs"] = cpu_seconds
        result["output"] = digests[0]
        result["repeats_identical"] = all(d["sha256"] == digests[0]["sha256"] for d in digests)
        if config is not None:
            stage = "summary"
            stats = lib.summary(pipe, details=False, logging=False)
            result["stats"] = [stats_entry(s) for s in stats]
            stage = "disable_cache"
            lib.disable_cache(pipe)
        else:
            result["stats"] = []
    except Exception as error:  # recorded for the caller, which decides what it means
        tensor = None
        result["error"] = {
            "stage": stage,
            "type": type(error).__name__,
            "message": str(error),
            "traceback": traceback.format_exc(),
        }
    return result, tensor


def images_path(out: Path) -> Path:
    """Where the output tensors of ``--out out.json`` go: ``out.images.safetensors``."""
    return out.with_name(out.stem + IMAGES_SUFFIX)


def save_images(tensors: dict[str, Any], out: Path) -> Path:
    """Write ``{run id: output tensor}`` beside the JSON (safetensors); the path."""
    from safetensors.torch import save_file

    path = images_path(out)
    save_file({key: value.contiguous() for key, value in tensors.items()}, str(path))
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", choices=LIBRARIES, required=True)
    parser.add_argument("--pipeline", choices=PIPELINES)
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default="{}", help="JSON of DBCacheConfig kwargs")
    parser.add_argument("--calibrator", default=None, help="JSON: {'type': ..., **kwargs}")
    parser.add_argument("--matrix", type=Path, help="JSON list of runs (instead of --pipeline)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--save-images",
        action="store_true",
        help="write the output tensors to <out>.images.safetensors (per run id)",
    )
    args = parser.parse_args(argv)
    if (args.matrix is None) == (args.pipeline is None):
        parser.error("give exactly one of --pipeline and --matrix")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run one config (or a matrix of them) and write the JSON result."""
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        lib = import_library(args.library)
    except ImportError as error:
        print(f"cannot import {args.library}: {error}", file=sys.stderr)
        return MISSING_LIBRARY_EXIT
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    tensors: dict[str, Any] = {}
    if args.matrix is not None:
        specs = json.loads(args.matrix.read_text())
        results = {}
        for spec in specs:
            results[spec["id"]], tensor = run_once(lib, spec)
            if tensor is not None and (args.save_images or spec.get("save_images")):
                tensors[spec["id"]] = tensor
        document: dict[str, Any] = {"library": args.library, "runs": results}
        failed = any(r["error"] for r in results.values())
    else:
        spec = {
            "pipeline": args.pipeline,
            "steps": args.steps,
            "seed": args.seed,
            "config": json.loads(args.config),
            "calibrator": json.loads(args.calibrator) if args.calibrator else None,
        }
        document, tensor = run_once(lib, spec)
        if tensor is not None and args.save_images:
            tensors["output"] = tensor
        failed = document["error"] is not None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if tensors:
        document["images"] = str(save_images(tensors, args.out))
    args.out.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    return RUN_FAILED_EXIT if failed else 0


if __name__ == "__main__":
    sys.exit(main())
