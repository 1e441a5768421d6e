# issue 8 follow-up (nvidia-h200-x2, carry .whl): after the copy engine's host-path rework
# (plans, workspace views, barrier arguments and events built once). The gpu-marked tests, the
# host cost per exchange (run 18 before the rework: copy engine 191 µs, NCCL 94 µs), then 1024²
# (compiled with and without the static cache, and with CUDA graphs) and 2048² compiled:
# one GPU / Ulysses / async NCCL / async copy engine, graph order kept.
# Expected wall time: ~6 min after startup.
set -e
source tools/bench/device/setup_gpu_env.sh
export PYTHONPATH=$PYTHONPATH:$(ls -d packages/*/src | tr '\n' ':')
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu -o addopts="" -rA \
  packages/parallel/tests/test_copy_engine_gpu.py packages/ditkit/tests/test_cuda_graphs.py \
  2>&1 | grep -E "PASS|FAIL|Error|assert|passed|failed" | head -30 || true
timeout 120 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/copy_engine_check.py \
  --profile-host --json $OUT/copy_engine_check.json 2>&1 | tee $OUT/copy_engine_check.log | filter
timeout 200 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 1024 --steps 6 --modes single ulysses ulysses_async ulysses_async_ce \
  --keep-graph-order --phases compiled cudagraph --cache none static_fast \
  --json $OUT/x2_1024.json 2>&1 | tee $OUT/x2_1024.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
timeout 200 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 2048 --steps 6 --modes single ulysses_async ulysses_async_ce --keep-graph-order \
  --phases compiled --cache none --json $OUT/x2_2048.json 2>&1 | tee $OUT/x2_2048.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
