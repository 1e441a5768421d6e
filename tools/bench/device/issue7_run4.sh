# cache-dit 1.5.3 side by side (its own process), then diffusers' FirstBlockCache, on one H100
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site
timeout 400 python3 tools/bench/gpu_cache.py --library cache_dit --compile --repeats 2 \
  --threshold 0.6 --threshold-f8 0.7 \
  --variants uncached static_fast dynamic_f1b0 dynamic_f1b0+ts dynamic_f8b0 \
  --json $OUT/cache_dit.json 2>&1 | grep -v -i "warning\|kept in float32\|INFO\|WARN"
timeout 170 python3 tools/bench/gpu_cache.py --library ditkit --repeats 2 \
  --variants fbcache@0.5 fbcache@0.35 --json $OUT/fbcache.json 2>&1 | grep -v -i "warning\|kept in float32"
