# issue 8 follow-up (nvidia-h200-x2, carry .whl): after the capture fix (the copy engine's side
# stream joins the captured stream; a failed capture ends its pool routing). The gpu-marked
# tests (copy engine captured and replayed; a real failed capture exits cleanly), the copy
# engine's host cost per exchange with a host profile, then 1024² compiled and with one CUDA
# graph per call: one GPU / async NCCL / async copy engine.
# Expected wall time: ~5 min after startup.
set -e
source tools/bench/device/setup_gpu_env.sh
export PYTHONPATH=$PYTHONPATH:$(ls -d packages/*/src | tr '\n' ':')
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu -o addopts="" -rA \
  packages/parallel/tests/test_copy_engine_gpu.py packages/ditkit/tests/test_cuda_graphs.py \
  2>&1 | grep -E "PASS|FAIL|Error|assert|passed|failed" | head -30 || true
timeout 120 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/copy_engine_check.py \
  --profile-host --json $OUT/copy_engine_check.json 2>&1 | tee $OUT/copy_engine_check.log | filter
timeout 240 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 1024 --steps 6 --modes single ulysses_async ulysses_async_ce \
  --keep-graph-order --phases compiled cudagraph --cache none \
  --json $OUT/x2_1024_graphs.json 2>&1 | tee $OUT/x2_1024_graphs.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
