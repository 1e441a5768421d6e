# eager dynamic runs at a high threshold: the residual diffs of this random-weight model
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/diffusers*.whl .whl/importlib_metadata*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site
timeout 560 python3 tools/bench/gpu_cache.py --library ditkit --repeats 1 --threshold 0.99 \
  --variants dynamic_f1b0 dynamic_f8b0 dynamic_f1b0+ts fbcache@0.35 fbcache@0.6 \
  --json $OUT/ditkit_dyn.json 2>&1 | grep -v Warning
