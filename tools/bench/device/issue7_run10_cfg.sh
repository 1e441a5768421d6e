# issue 7 (nvidia-h100-x1, carry .whl): the cache's GPU memory per CFG branch and per calibrator.
# True CFG (--cfg 4.0: the prompt and a negative prompt, two transformer calls per step; the
# cache with enable_separate_cfg=True keeps its buffers once per branch), FLUX.1-dev-sized,
# 1024², 28 steps, eager: ditkit, then cache-dit 1.5.3 in its own process, same variants.
# Expected wall time: ~6 min after startup.
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader | head -1
for library in ditkit cache_dit; do
  timeout 240 python3 tools/bench/gpu_cache.py --library $library --cfg 4.0 --repeats 1 \
    --threshold 0.6 --variants uncached static_fast dynamic_f1b0 dynamic_f1b0+ts \
    --json $OUT/cfg_$library.json 2>&1 | grep -v -i "warning\|kept in float32\|INFO\|WARN"
done
