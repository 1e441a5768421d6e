# issue 8 follow-up (nvidia-h200-x2, carry .whl): the cached rows with the copy engine after the
# packed send (7ce4c59): DBCache F1B0 with the static "fast" mask, compiled, graph order kept;
# 1024² (with the uncached rows beside them) and 2048²: one GPU / async NCCL / async copy engine.
# Expected wall time: ~4 min after startup.
set -e
source tools/bench/device/setup_gpu_env.sh
export PYTHONPATH=$PYTHONPATH:$(ls -d packages/*/src | tr '\n' ':')
timeout 170 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 1024 --steps 6 --modes single ulysses_async ulysses_async_ce --keep-graph-order \
  --phases compiled --cache none static_fast --json $OUT/x2_1024_cached.json 2>&1 \
  | tee $OUT/x2_1024_cached.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
timeout 170 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 2048 --steps 6 --modes single ulysses_async ulysses_async_ce --keep-graph-order \
  --phases compiled --cache static_fast --json $OUT/x2_2048_cached.json 2>&1 \
  | tee $OUT/x2_2048_cached.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
