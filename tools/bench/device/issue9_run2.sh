# issue 9, run 2 (nvidia-h200-x4, carry .whl), compiled (regional), no cache, 4 GPUs:
# (b) FLUX 2048^2: one GPU, Ulysses-4, USP 2x2, Ring-4, TP-2 x Ulysses-2 (6-step requests);
# (a) FLUX 1024^2, 28-step requests, each transformer call one CUDA graph: one GPU, Ulysses-4;
# (c) Wan-2.1-14B-sized, 81x480x832 (32760 video tokens), 2-step requests: one GPU, Ulysses-4,
#     USP 2x2, TP-2 x Ulysses-2.
# Expected wall time: ~9 min; rows print as measured; each part has its own timeout.
set -e
source tools/bench/device/setup_gpu_env.sh
nvidia-smi --query-gpu=timestamp,index,clocks.sm,power.draw,temperature.gpu,utilization.gpu --format=csv -lms 500 > $OUT/smi.csv &
SMI=$!
BENCH="python3 -m torch.distributed.run --nproc-per-node=4 tools/bench/gpu_parallel.py"
timeout 230 $BENCH --sizes 2048 --repeats 1 --modes single ulysses usp ring tp_ulysses \
  --phases compiled --cache none --json $OUT/x4_2048_compiled.json 2>&1 | tee $OUT/x4_2048.log | filter || true
timeout 140 $BENCH --sizes 1024 --steps 28 --modes single ulysses --phases cudagraph \
  --cache none --json $OUT/x4_1024_cudagraph.json 2>&1 | tee $OUT/x4_1024_cg.log | filter || true
timeout 180 $BENCH --model wan --sizes 81x480x832 --steps 2 --repeats 1 \
  --modes single ulysses usp tp_ulysses --phases compiled --cache none \
  --json $OUT/x4_wan_compiled.json 2>&1 | tee $OUT/x4_wan.log | filter || true
kill $SMI || true
