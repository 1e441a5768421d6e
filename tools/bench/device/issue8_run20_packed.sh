# issue 8 follow-up (nvidia-h200-x2, carry .whl): after comm packs each send buffer with one
# torch.cat under compile (inductor had computed it twice, so the copy engine's wait kept a
# duplicate alive) and the copy engine's host-path rework. The gpu-marked tests; then 1024²
# eager and compiled: one GPU / async NCCL / async copy engine with stream-op barriers / with
# the barrier kernel (_kb), to tell host cost from barrier cost; then 2048² compiled.
# Expected wall time: ~6 min after startup.
set -e
source tools/bench/device/setup_gpu_env.sh
export PYTHONPATH=$PYTHONPATH:$(ls -d packages/*/src | tr '\n' ':')
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu -o addopts="" -rA \
  packages/parallel/tests/test_copy_engine_gpu.py packages/ditkit/tests/test_cuda_graphs.py \
  2>&1 | grep -E "PASS|FAIL|Error|assert|passed|failed" | head -30 || true
timeout 200 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 1024 --steps 6 --modes single ulysses_async ulysses_async_ce ulysses_async_ce_kb \
  --keep-graph-order --phases eager compiled --cache none \
  --json $OUT/x2_1024.json 2>&1 | tee $OUT/x2_1024.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
timeout 200 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 2048 --steps 6 --modes single ulysses_async ulysses_async_ce --keep-graph-order \
  --phases compiled --cache none --json $OUT/x2_2048.json 2>&1 | tee $OUT/x2_2048.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
