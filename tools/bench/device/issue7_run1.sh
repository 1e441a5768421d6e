set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/diffusers*.whl .whl/importlib_metadata*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch, diffusers; print(torch.__version__, diffusers.__version__)"
timeout 560 python3 tools/bench/gpu_cache.py --library ditkit --compile --repeats 2 \
  --variants uncached floor static_fast dynamic_f1b0 dynamic_f1b0+ts dynamic_f8b0 fbcache@0.35 \
  --json $OUT/ditkit.json 2>&1 | grep -v Warning
