# issue 8 (nvidia-h200-x2, carry .whl): is 1.85x at 2048² met? Run 10's one-GPU step (728 ms)
# was 2 % slower than runs 5-9 (706-713 ms) while Ulysses-2 stayed at 388-393 ms. Here the
# one-GPU row runs twice in one launch, each followed by async QKV over NCCL and over the copy
# engines (each row's speedup is against the one-GPU row measured just before it).
# Expected wall time: ~5 min after startup.
set -e
source tools/bench/device/setup_gpu_env.sh
export PYTHONPATH=$PYTHONPATH:$(ls -d packages/*/src | tr '\n' ':')
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit,temperature.gpu --format=csv,noheader
timeout 420 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 2048 --steps 6 --modes single ulysses_async ulysses_async_ce single ulysses_async \
  ulysses_async_ce --phases compiled --cache none --json $OUT/x2_2048_twice.json 2>&1 \
  | tee $OUT/x2_2048_twice.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu --format=csv,noheader
