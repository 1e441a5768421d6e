# issue 9, run 3 (nvidia-h200-x4, carry .whl):
# (d) 4 GPUs, FLUX 1024^2, eager: one GPU, Ulysses-4, USP 2x2, Ring-4, TP-2 x Ulysses-2, with no
#     cache and DBCache F1B0 static "fast";
# (e) 2 GPUs, FLUX 2048^2, compiled: one GPU, Ulysses-2, Ulysses-2 async (issue 8's 1.85x target);
# (f) 4 GPUs, FLUX 1024^2, compiled, 28-step requests with the cache: one GPU, Ulysses-4.
# Expected wall time: ~9 min; each part has its own timeout.
set -e
source tools/bench/device/setup_gpu_env.sh
RUN="python3 -m torch.distributed.run --nproc-per-node"
B=tools/bench/gpu_parallel.py
timeout 160 $RUN=4 $B --sizes 1024 --repeats 1 --modes single ulysses usp ring tp_ulysses \
  --phases eager --cache none static_fast --json $OUT/x4_1024_eager.json 2>&1 | tee $OUT/x4_1024_eager.log | filter || true
timeout 200 $RUN=2 $B --sizes 2048 --repeats 1 --modes single ulysses ulysses_async \
  --phases compiled --cache none --json $OUT/x2_2048_compiled.json 2>&1 | tee $OUT/x2_2048.log | filter || true
timeout 170 $RUN=4 $B --sizes 1024 --steps 28 --repeats 1 --modes single ulysses \
  --phases compiled --cache static_fast dynamic --json $OUT/x4_1024_cache.json 2>&1 | tee $OUT/x4_1024_cache.log | filter || true
