# issue 7 (nvidia-h100-x1, carry .whl): run 8 again after its one-process fix (the fp32 check
# asked for a 1-rank Ulysses), with the default compile mode beside reduce-overhead.
# (a) the gpu-marked unit test (real torch.cuda.CUDAGraph capture == eager, 4 replays);
# (b) FLUX.1-dev-sized 1024², one GPU, 8-step requests: compiled vs compiled + CUDA graphs
#     through ditkit.enable_cuda_graphs (the bench raises if any call ran eagerly);
# (c) the cache, regional compile in the default mode, then with inductor's CUDA graphs per
#     block (mode reduce-overhead): uncached, static fast mask, dynamic F1B0.
# Expected wall time: ~7 min after startup.
set -e
source tools/bench/device/setup_gpu_env.sh
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader | head -1
export PYTHONPATH=$PYTHONPATH:$(ls -d packages/*/src | tr '\n' ':')
timeout 90 python3 -m pytest -q -p no:cacheprovider -m gpu -o addopts="" -rA \
  packages/ditkit/tests/test_cuda_graphs.py 2>&1 | grep -E "PASS|FAIL|ERROR|passed|failed|Error" || true
timeout 170 python3 -m torch.distributed.run --nproc-per-node=1 tools/bench/gpu_parallel.py \
  --sizes 1024 --steps 8 --repeats 2 --modes single --phases compiled cudagraph --cache none \
  --json $OUT/graphs_1024.json 2>&1 | tee $OUT/graphs_1024.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
for mode in default reduce-overhead; do
  timeout 200 python3 tools/bench/gpu_cache.py --library ditkit --compile --compile-mode $mode \
    --repeats 2 --threshold 0.6 --variants uncached static_fast dynamic_f1b0 \
    --json $OUT/cache_$mode.json 2>&1 | filter
done
