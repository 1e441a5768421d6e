# issue 8 (nvidia-h200-x2, carry .whl): async QKV now also runs each Flux single block's MLP
# beside its all-to-alls (context/single_blocks.py: proj_mlp + GELU while Q/K/V travel, the
# MLP's share of proj_out while the output travels; 38 of 57 blocks). 2048², compiled, 6-step
# requests: one GPU, plain Ulysses-2, async over NCCL, async over the copy engines; then the
# same at 1024² with CUDA graphs.
# Expected wall time: ~5 min after startup.
set -e
source tools/bench/device/setup_gpu_env.sh
export PYTHONPATH=$PYTHONPATH:$(ls -d packages/*/src | tr '\n' ':')
timeout 330 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 2048 --steps 6 --modes single ulysses ulysses_async ulysses_async_ce \
  --phases compiled --cache none --json $OUT/x2_2048_single_blocks.json 2>&1 \
  | tee $OUT/x2_2048_single_blocks.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
timeout 200 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 1024 --steps 6 --modes single ulysses ulysses_async --phases cudagraph --cache none \
  --json $OUT/x2_1024_single_blocks.json 2>&1 | tee $OUT/x2_1024_single_blocks.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
