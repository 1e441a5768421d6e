# issue 9, run 4 (nvidia-h200-x4, carry .whl), 4 GPUs, no cache:
# (h) FLUX 2048^2 compiled: Ring-4 and USP 2x2 with the all-gather K/V rotation (functional
#     collectives, traced into the graph) instead of P2P;
# (g) FLUX 1024^2, 28-step requests, one CUDA graph per call: one GPU, USP 2x2 (all-gather),
#     TP-2 x Ulysses-2, Ring-4 (all-gather).
set -e
source tools/bench/device/setup_gpu_env.sh
B="python3 -m torch.distributed.run --nproc-per-node=4 tools/bench/gpu_parallel.py"
timeout 200 $B --sizes 2048 --repeats 1 --modes single ring_allgather usp_allgather \
  --phases compiled --cache none --json $OUT/x4_2048_allgather.json 2>&1 | tee $OUT/x4_2048_ag.log | filter || true
timeout 200 $B --sizes 1024 --steps 28 --modes single usp_allgather tp_ulysses ring_allgather \
  --phases cudagraph --cache none --json $OUT/x4_1024_cudagraph2.json 2>&1 | tee $OUT/x4_1024_cg2.log | filter || true
