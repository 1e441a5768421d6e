# the uncached step: SDPA backends, regional compile, time split (one H100 or H200)
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/diffusers*.whl .whl/importlib_metadata*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site
timeout 560 python3 tools/bench/gpu_profile.py --steps 6 --repeats 2 \
  --recipes eager eager+flash eager+cudnn eager+efficient regional regional+flash regional+cudnn \
  --json $OUT/profile.json 2>&1 | grep -v -i "warning\|kept in float32"
