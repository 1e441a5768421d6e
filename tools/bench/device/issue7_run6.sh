# compile recipes for the uncached step, one process each (compiling is once per process)
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/diffusers*.whl .whl/importlib_metadata*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site
for r in "eager@_native_cudnn regional@_native_cudnn" "regional-coord@_native_cudnn" "regional-autotune@_native_cudnn"; do
  name=$(echo $r | tr ' @' '__')
  timeout 240 python3 tools/bench/gpu_profile.py --steps 6 --repeats 2 --recipes $r \
    --json $OUT/profile_$name.json 2>&1 | grep "^|" | grep -v "recipe\|---" || echo "($r did not finish)"
done
