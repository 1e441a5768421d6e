# issue 8 (nvidia-h200-x2, carry .whl): at 2048² async QKV now hides 10-11 ms of the all-to-alls
# (run 6's trace: 28-30 % hidden, 7-9 % for plain Ulysses) but the compute it overlaps gets
# 6-8 ms slower: the NCCL kernels take SMs from the attention and GEMMs. Fewer NCCL CTAs
# (channels) leave more SMs to the compute; the exchange gets slower but is now partly hidden.
# One launch with NCCL limited to ${CTAS:-8} CTAs: one GPU, plain Ulysses-2, async QKV, 2 head chunks.
set -e
source tools/bench/device/setup_gpu_env.sh
export PYTHONPATH=$PYTHONPATH:$(ls -d packages/*/src | tr '\n' ':')
export NCCL_MAX_CTAS=${CTAS:-8} NCCL_MAX_P2P_NCHANNELS=${CTAS:-8}
echo "NCCL_MAX_CTAS=$NCCL_MAX_CTAS NCCL_MAX_P2P_NCHANNELS=$NCCL_MAX_P2P_NCHANNELS"
timeout 300 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 2048 --steps 6 --modes single ulysses ulysses_async ulysses_chunks2 --phases compiled \
  --cache none --json $OUT/x2_2048_ctas$NCCL_MAX_CTAS.json 2>&1 \
  | tee $OUT/x2_2048_ctas$NCCL_MAX_CTAS.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
