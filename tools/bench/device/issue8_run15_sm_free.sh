# issue 8 (nvidia-h200-x2, carry .whl): the copy-engine exchange with SM-free barriers (CUDA
# stream memory operations instead of a barrier kernel, which waited for a free SM while the
# matmuls held them all), with inductor's graph order kept (--keep-graph-order). 2048²,
# compiled, 6 steps, after the gpu-marked equality test.
# Expected wall time: ~3 min after startup.
set -e
source tools/bench/device/setup_gpu_env.sh
export PYTHONPATH=$PYTHONPATH:$(ls -d packages/*/src | tr '\n' ':')
python3 -c "from cuda.bindings import driver; print('cuda.bindings', driver.cuDriverGetVersion())"
timeout 100 python3 -m pytest -q -p no:cacheprovider -m gpu -o addopts="" -rA \
  packages/parallel/tests/test_copy_engine_gpu.py 2>&1 | grep -E "PASS|FAIL|Error|assert|passed|failed" | head -20 || true
timeout 260 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 2048 --steps 6 --modes single ulysses_async ulysses_async_ce --keep-graph-order \
  --phases compiled --cache none --json $OUT/x2_2048_sm_free.json 2>&1 \
  | tee $OUT/x2_2048_sm_free.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
