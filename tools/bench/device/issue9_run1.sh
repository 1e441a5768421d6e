# issue 9, run 1 (nvidia-h200-x4, carry .whl): regional compile after the graph-break fix.
# (a) 2 GPUs, FLUX 1024^2: one GPU, Ulysses-2, Ulysses-2 async (the issue 8 re-check);
# (b) 4 GPUs, FLUX 1024^2, 28-step requests: one GPU, Ulysses-4, USP 2x2, Ring-4, TP-2 x Ulysses-2.
# Compiled only, no cache. GPU clocks and power sampled every 0.5 s into $OUT/smi.csv.
# Expected wall time: ~8 min (startup, a: ~2.5 min, b: ~5 min); rows print as measured.
set -e
source tools/bench/device/setup_gpu_env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit --format=csv,noheader
nvidia-smi topo -m | head -6
nvidia-smi --query-gpu=timestamp,index,clocks.sm,power.draw,temperature.gpu,utilization.gpu --format=csv -lms 500 > $OUT/smi.csv &
SMI=$!
timeout 170 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 1024 --modes single ulysses ulysses_async --compile --no-eager --cache none \
  --json $OUT/x2_1024_compiled.json 2>&1 | tee $OUT/x2_1024.log | filter
echo "torchrun (a) exit status: ${PIPESTATUS[0]}"
timeout 330 python3 -m torch.distributed.run --nproc-per-node=4 tools/bench/gpu_parallel.py \
  --sizes 1024 --steps 28 --modes single ulysses usp ring tp_ulysses --compile --no-eager \
  --cache none --json $OUT/x4_1024_compiled.json 2>&1 | tee $OUT/x4_1024.log | filter
echo "torchrun (b) exit status: ${PIPESTATUS[0]}"
kill $SMI || true
