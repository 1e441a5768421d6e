# issue 8 follow-up (nvidia-h200-x2, carry .whl), call 1 of 2: repeat run 15 exactly (2048²,
# compiled, graph order kept, one GPU vs async QKV over NCCL vs over the copy engines), after the
# gpu-marked equality test; then, on one GPU of the same machine, whether cache-dit 1.5.3's DMD
# fits at FLUX size on CUDA (tools/bench/dmd_cuda_check.py, ditkit's DMD beside it).
# Expected wall time: ~5 min after startup.
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
source tools/bench/device/setup_gpu_env.sh
export PYTHONPATH=$PYTHONPATH:$(ls -d packages/*/src | tr '\n' ':')
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader
timeout 100 python3 -m pytest -q -p no:cacheprovider -m gpu -o addopts="" -rA \
  packages/parallel/tests/test_copy_engine_gpu.py 2>&1 | grep -E "PASS|FAIL|Error|assert|passed|failed" | head -20 || true
timeout 260 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 2048 --steps 6 --modes single ulysses_async ulysses_async_ce --keep-graph-order \
  --phases compiled --cache none --json $OUT/x2_2048_repeat.json 2>&1 \
  | tee $OUT/x2_2048_repeat.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
CUDA_VISIBLE_DEVICES=0 timeout 150 python3 tools/bench/dmd_cuda_check.py 2>&1 | tee $OUT/dmd_cuda_check.md
