# issue 8, run 3 (nvidia-h200-x4, carry .whl): Ulysses with the heads in chunks (each chunk's
# all-to-alls overlap another chunk's attention), compiled, no cache:
# (a) 2 GPUs, FLUX 2048^2 and 1024^2: one GPU, Ulysses-2 plain, 2 and 4 head chunks;
# (b) 4 GPUs, FLUX 2048^2: one GPU, Ulysses-4 in 2 head chunks.
set -e
source tools/bench/device/setup_gpu_env.sh
RUN="python3 -m torch.distributed.run --nproc-per-node"
B=tools/bench/gpu_parallel.py
timeout 250 $RUN=2 $B --sizes 2048 1024 --repeats 1 --modes single ulysses ulysses_chunks2 \
  ulysses_chunks4 --phases compiled --cache none --json $OUT/x2_chunks.json 2>&1 | tee $OUT/x2_chunks.log | filter || true
timeout 110 $RUN=4 $B --sizes 2048 --repeats 1 --modes single ulysses_chunks2 \
  --phases compiled --cache none --json $OUT/x4_chunks.json 2>&1 | tee $OUT/x4_chunks.log | filter || true
