# issue 7 (nvidia-h100-x1, carry .whl): the cache's GPU memory with each calibrator (TaylorSeer
# o1, FoCa, DMD) beside plain dynamic F1B0, FLUX.1-dev-sized, 1024², 28 steps, eager, one
# branch: ditkit, then cache-dit 1.5.3 in its own process, same variants.
# Expected wall time: ~4 min after startup.
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader | head -1
for library in ditkit cache_dit; do
  timeout 240 python3 tools/bench/gpu_cache.py --library $library --repeats 1 --threshold 0.6 \
    --variants dynamic_f1b0 dynamic_f1b0+ts dynamic_f1b0+foca dynamic_f1b0+dmd \
    --json $OUT/calibrators_$library.json 2>&1 | grep "^|\|^#\|Error\|error" | grep -v "Cache-DiT"
done
