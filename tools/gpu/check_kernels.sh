#!/usr/bin/env bash
# Build ditkit-kernels-cu13 on a GPU machine, install it into a temporary target, run its tests
# (the gpu-marked ones explicitly, then the rest) and a short benchmark.
#
# Needs, already installed (the machine may have no internet): python3 with torch (CUDA 13
# build), scikit-build-core, pybind11, pytest; nvcc 13 and cmake. Usage, from anywhere:
#
#     bash tools/gpu/check_kernels.sh            # full log in $OUT/kernels.log (OUT=. if unset)
#
# Exit status: non-zero if the build or any test fails.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$REPO}"
mkdir -p "$OUT"
WORK="$(mktemp -d /tmp/ditkit-kernels.XXXXXX)"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

if ! command -v nvcc >/dev/null 2>&1; then
  for d in /usr/local/cuda/bin /usr/local/cuda-13*/bin; do
    if [ -x "$d/nvcc" ]; then export PATH="$d:$PATH"; break; fi
  done
fi

run() {
  cd "$REPO"
  echo "== ditkit-kernels-cu13 GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "== commit: ${DITKIT_COMMIT:-$(git rev-parse --verify -q HEAD || echo "unknown: no .git here; pass DITKIT_COMMIT=<sha>")}"
  nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv || true
  "$PY" -c 'import sys, torch; print("python", sys.version.split()[0], "| torch", torch.__version__,
    "| cuda", torch.version.cuda, "| devices", torch.cuda.device_count())' || true
  nvcc --version | tail -n 2
  cmake --version | head -n 1
  "$PY" -m pip list 2>/dev/null | grep -iE '^(scikit.build.core|pybind11|pytest) ' || true

  echo "== build (pip wheel --no-build-isolation --no-deps)"
  local t0=$SECONDS
  "$PY" -m pip wheel --no-build-isolation --no-deps -w "$WORK/dist" ./kernels-cu13
  echo "== build took $((SECONDS - t0)) s"
  "$PY" -m pip install --no-index --no-deps --target "$WORK/site" "$WORK"/dist/*.whl
  export PYTHONPATH="$WORK/site"
  ls -l "$WORK"/dist/
  if command -v cuobjdump >/dev/null 2>&1; then
    cuobjdump --list-elf --list-ptx "$WORK"/site/ditkit_kernels_cu13/_C*.so
  fi
  ldd "$WORK"/site/ditkit_kernels_cu13/_C*.so | grep -i cuda || echo "(no dynamic CUDA libraries)"
  "$PY" -c 'import ditkit_kernels_cu13 as k; print(k.__file__); print(k.diagnostics())'

  # Every step below runs even if an earlier one failed, so one device run shows everything.
  local failed=()
  echo "== gpu tests"
  "$PY" -m pytest kernels-cu13/tests -o addopts='' -ra --strict-markers -p no:cacheprovider \
    -m gpu -v --durations=5 || failed+=("gpu tests")
  echo "== cpu tests (same install)"
  "$PY" -m pytest kernels-cu13/tests -o addopts='' -ra --strict-markers -p no:cacheprovider \
    -m 'not gpu' -q || failed+=("cpu tests")
  echo "== benchmark"
  "$PY" tools/gpu/bench_int4.py || failed+=("benchmark")
  if [ "${#failed[@]}" -gt 0 ]; then
    echo "== FAILED: ${failed[*]}"
    return 1
  fi
  echo "== done: all kernel checks passed"
}

set -o pipefail
run 2>&1 | tee "$OUT/kernels.log"
