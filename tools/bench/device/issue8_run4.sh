# issue 8, run 4 (nvidia-h200-x2, carry .whl): 2 GPUs, FLUX 2048^2, compiled, no cache, with
# inductor's sink_waits/raise_comms passes: one GPU, Ulysses-2 plain and in 2 head chunks.
set -e
source tools/bench/device/setup_gpu_env.sh
timeout 190 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 2048 --repeats 1 --modes single ulysses_chunks2 ulysses --phases compiled \
  --cache none --overlap-comms --json $OUT/x2_overlap.json 2>&1 | tee $OUT/x2_overlap.log | filter || true
