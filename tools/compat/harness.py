"""Run cache-dit 1.5.3 and ditkit side by side on the same tiny pipelines and configs.

Each library runs in its own subprocess (``run_cached.py``): cache-dit's sees only cache-dit
(an unpacked ``pip install --no-deps --target`` folder on ``PYTHONPATH``, its dependencies from
this interpreter's environment), ditkit's sees no cache-dit at all. Both run single-threaded, so
their float reductions (and hence the recorded diffs) are computed the same way.

    python tools/compat/harness.py --pipeline flux \\
        --config '{"Fn_compute_blocks": 1, "Bn_compute_blocks": 0,
                   "residual_diff_threshold": 0.2}' --table
    python tools/compat/harness.py --matrix runs.json --workdir build/compat/by-hand

cache-dit is installed once into ``build/compat/cache-dit-1.5.3`` (or ``--cache-dit-path``, or
``$DITKIT_CACHE_DIT_PATH``) with ``pip install --no-deps --target``, never into the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RUNNER = HERE / "run_cached.py"
CACHE_DIT_VERSION = "1.5.3"
DEFAULT_CACHE_DIT_DIR = ROOT / "build" / "compat" / f"cache-dit-{CACHE_DIT_VERSION}"
CACHE_DIT_PATH_ENV = "DITKIT_CACHE_DIT_PATH"


def has_cache_dit(folder: Path) -> bool:
    """Whether ``folder`` holds an unpacked cache-dit of the expected version."""
    dist_info = folder / f"cache_dit-{CACHE_DIT_VERSION}.dist-info"
    return (folder / "cache_dit" / "__init__.py").is_file() and dist_info.is_dir()


def ensure_cache_dit(folder: Path | None = None) -> Path:
    """An unpacked cache-dit 1.5.3 (no dependencies), installed there first if needed.

    ``$DITKIT_CACHE_DIT_PATH`` names an existing unpack; otherwise ``folder`` (default
    ``build/compat/cache-dit-1.5.3``) is filled by ``pip install --no-deps --target`` into a
    temporary sibling that is renamed into place, so concurrent callers never see half a tree.
    """
    given = os.environ.get(CACHE_DIT_PATH_ENV)
    if folder is None and given:
        folder = Path(given)
        if not has_cache_dit(folder):
            raise RuntimeError(f"${CACHE_DIT_PATH_ENV}={given} holds no cache-dit 1.5.3")
    folder = Path(folder or DEFAULT_CACHE_DIT_DIR).resolve()
    if has_cache_dit(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".cache-dit-", dir=folder.parent))
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q"]
    command += ["--target", str(staging), f"cache-dit=={CACHE_DIT_VERSION}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not has_cache_dit(staging):
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(
            f"could not install cache-dit=={CACHE_DIT_VERSION} into {folder} "
            f"(`{' '.join(command)}` exited {done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    try:
        staging.rename(folder)
    except OSError:  # another process got there first
        shutil.rmtree(staging, ignore_errors=True)
    if not has_cache_dit(folder):
        raise RuntimeError(f"{folder} holds no cache-dit {CACHE_DIT_VERSION} after installing")
    return folder


def library_env(library: str, cache_dit_dir: Path) -> dict[str, str]:
    """The subprocess environment: cache-dit on ``PYTHONPATH`` for cache-dit, never for ditkit."""
    env = dict(os.environ)
    entries = [
        e
        for e in env.get("PYTHONPATH", "").split(os.pathsep)
        if e and not (Path(e) / "cache_dit").is_dir()
    ]
    if library == "cache_dit":
        entries.insert(0, str(cache_dit_dir))
    env["PYTHONPATH"] = os.pathsep.join(entries)
    env["HF_HUB_OFFLINE"] = "1"
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def start(
    library: str,
    matrix: Path,
    out: Path,
    cache_dit_dir: Path,
    threads: int = 1,
) -> subprocess.Popen[bytes]:
    """Start ``run_cached.py --matrix`` for one library; its log goes to ``out`` + ``.log``."""
    command = [sys.executable, str(RUNNER), "--library", library, "--matrix", str(matrix)]
    command += ["--out", str(out), "--threads", str(threads)]
    env = library_env(library, cache_dit_dir)
    with out.with_suffix(".log").open("wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def workdir_file(workdir: Path, library: str) -> Path:
    """Where ``run_both`` leaves a library's JSON document (its log: ``.log`` beside it)."""
    return workdir / f"{library}.json"


def run_both(
    specs: Sequence[dict[str, Any]],
    workdir: Path,
    cache_dit_dir: Path,
    libraries: Sequence[str] = ("cache_dit", "ditkit"),
    timeout: float = 600.0,
) -> dict[str, dict[str, Any]]:
    """Run every spec under each library (the libraries in parallel); the JSON documents.

    A library that could not even be imported (exit status 2) raises with its log; run
    failures (exit status 3) are left in the documents' ``"error"`` fields.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    matrix = workdir / "matrix.json"
    matrix.write_text(json.dumps(list(specs), indent=1) + "\n")
    outs = {lib: workdir_file(workdir, lib) for lib in libraries}
    processes = {lib: start(lib, matrix, outs[lib], cache_dit_dir) for lib in libraries}
    deadline = time.monotonic() + timeout
    documents = {}
    try:
        for lib, process in processes.items():
            try:
                code = process.wait(timeout=max(deadline - time.monotonic(), 1.0))
            except subprocess.TimeoutExpired:
                code = None
            log = outs[lib].with_suffix(".log")
            if code not in (0, 3) or not outs[lib].exists():
                tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
                status = f"ran past {timeout:.0f} s" if code is None else f"exited {code}"
                raise RuntimeError(f"the {lib} side {status}; log {log}:\n{tail}")
            documents[lib] = json.loads(outs[lib].read_text())
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return documents


def main(argv: list[str] | None = None) -> int:
    """Run one config or a matrix under both libraries and print the comparison."""
    parser = argparse.ArgumentParser(description="cache-dit 1.5.3 vs ditkit, side by side.")
    parser.add_argument("--pipeline", choices=("flux", "qwen_image", "wan"))
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default="{}", help="JSON of DBCacheConfig kwargs")
    parser.add_argument("--calibrator", default=None, help="JSON: {'type': ..., **kwargs}")
    parser.add_argument("--matrix", type=Path, help="JSON list of runs, as run_cached.py takes")
    parser.add_argument("--workdir", type=Path, default=ROOT / "build" / "compat" / "by-hand")
    parser.add_argument("--cache-dit-path", type=Path, default=None)
    parser.add_argument("--only", choices=("cache_dit", "ditkit"), help="run one side only")
    parser.add_argument("--table", action="store_true", help="print the per-step table")
    args = parser.parse_args(argv)
    if args.matrix is not None:
        specs = json.loads(args.matrix.read_text())
    elif args.pipeline is not None:
        spec = {"id": args.pipeline, "pipeline": args.pipeline, "steps": args.steps}
        spec |= {"seed": args.seed, "config": json.loads(args.config)}
        spec["calibrator"] = json.loads(args.calibrator) if args.calibrator else None
        specs = [spec]
    else:
        parser.error("give --pipeline or --matrix")
    cache_dit_dir = ensure_cache_dit(args.cache_dit_path)
    libraries = (args.only,) if args.only else ("cache_dit", "ditkit")
    documents = run_both(specs, args.workdir, cache_dit_dir, libraries)
    for lib, document in documents.items():
        print(f"{lib}: {workdir_file(args.workdir, lib)}")
        for run_id, result in document["runs"].items():
            if result["error"]:
                print(f"  {run_id}: {result['error']['type']}: {result['error']['message']}")
            else:
                stats = result["stats"][-1]
                print(
                    f"  {run_id}: cached {stats['cached_steps']} cfg {stats['cfg_cached_steps']}"
                    f" ({result['wall_s']:.2f} s)"
                )
    if len(documents) < 2:
        return 0
    sys.path.insert(0, str(HERE))
    import compare

    reference, candidate = (workdir_file(args.workdir, lib) for lib in ("cache_dit", "ditkit"))
    compare_args = [str(reference), str(candidate)] + (["--table"] if args.table else [])
    return compare.main(compare_args)


if __name__ == "__main__":
    sys.exit(main())
