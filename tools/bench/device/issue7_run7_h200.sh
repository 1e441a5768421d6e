# H200 (GPU 0 of whatever machine): the uncached step and its split under eager and regional
# compile (+ the costliest kernels), then the cache matrix's core rows
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site CUDA_VISIBLE_DEVICES=0
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1
timeout 200 python3 tools/bench/gpu_profile.py --steps 6 --repeats 2 --top 8 \
  --recipes eager regional --json $OUT/profile_h200.json 2>&1 | grep -v -i "warning\|kept in float32\|_warn_once"
timeout 330 python3 tools/bench/gpu_cache.py --library ditkit --compile --repeats 2 \
  --variants uncached floor static_fast --json $OUT/ditkit_h200.json 2>&1 | grep -v -i "warning\|kept in float32"
