# the ditkit matrix, eager and regional compile, on one H100
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/diffusers*.whl .whl/importlib_metadata*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site
timeout 580 python3 tools/bench/gpu_cache.py --library ditkit --compile --repeats 2 \
  --threshold 0.6 --threshold-f8 0.7 \
  --variants uncached floor static_fast dynamic_f1b0 dynamic_f1b0+ts dynamic_f8b0 dynamic_f8b0+ts fbcache@0.5 \
  --json $OUT/ditkit.json 2>&1 | grep -v -i "warning\|kept in float32"
