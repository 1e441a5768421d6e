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


def output_digest(output: Any) -> dict[str, Any]:
    """Shape, dtype, SHA-256 of the bytes and two sums of the pipeline's output tensor."""
    import torch

    tensor = output[0] if not isinstance(output, torch.Tensor) else output
    tensor = tensor.detach().to("cpu").contiguous()
    return {
        "shape": list(tensor.shape),
        "dtype": str(tensor.dtype),
        "sha256": hashlib.sha256(tensor.view(torch.uint8).numpy().tobytes()).hexdigest(),
        "sum": float(tensor.double().sum()),
        "abs_sum": float(tensor.double().abs().sum()),
    }


def run_once(lib: ModuleType, spec: dict[str, Any]) -> dict[str, Any]:
    """Build the pipeline, enable the cache, run once, summarize; errors go into the result."""
    from ditkit_testing import build_tiny_pipeline, tiny_call_kwargs

    pipeline, steps, seed = spec["pipeline"], int(spec.get("steps", 28)), int(spec.get("seed", 0))
    result: dict[str, Any] = {
        "library": lib.__name__,
        "version": getattr(lib, "__version__", None),
        "module_file": getattr(lib, "__file__", None),
        "pipeline": pipeline,
        "steps": steps,
        "seed": seed,
        "config": spec.get("config", {}),
        "calibrator": spec.get("calibrator"),
        "error": None,
    }
    pipe = build_tiny_pipeline(pipeline, seed=seed)
    stage = "build the config"
    try:
        cache_config = build_cache_config(lib, spec.get("config", {}))
        result["steps_computation_mask"] = getattr(cache_config, "steps_computation_mask", None)
        result["config_tag"] = cache_config.strify()
        calibrator_config = build_calibrator_config(lib, spec.get("calibrator"))
        stage = "enable_cache"
        start = time.perf_counter()
        lib.enable_cache(pipe, cache_config=cache_config, calibrator_config=calibrator_config)
        result["enable_s"] = time.perf_counter() - start
        stage = "run the pipeline"
        start = time.perf_counter()
        output = pipe(**tiny_call_kwargs(pipeline, num_inference_steps=steps, seed=seed))
        result["wall_s"] = time.perf_counter() - start
        result["output"] = output_digest(output)
        stage = "summary"
        stats = lib.summary(pipe, details=False, logging=False)
        result["stats"] = [stats_entry(s) for s in stats]
        stage = "disable_cache"
        lib.disable_cache(pipe)
    except Exception as error:  # recorded for the caller, which decides what it means
        result["error"] = {
            "stage": stage,
            "type": type(error).__name__,
            "message": str(error),
            "traceback": traceback.format_exc(),
        }
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", choices=LIBRARIES, required=True)
    parser.add_argument("--pipeline", choices=("flux", "qwen_image", "wan"))
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default="{}", help="JSON of DBCacheConfig kwargs")
    parser.add_argument("--calibrator", default=None, help="JSON: {'type': ..., **kwargs}")
    parser.add_argument("--matrix", type=Path, help="JSON list of runs (instead of --pipeline)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--out", type=Path, required=True)
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
    if args.matrix is not None:
        specs = json.loads(args.matrix.read_text())
        results = {spec["id"]: run_once(lib, spec) for spec in specs}
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
        document = run_once(lib, spec)
        failed = document["error"] is not None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    return RUN_FAILED_EXIT if failed else 0


if __name__ == "__main__":
    sys.exit(main())
