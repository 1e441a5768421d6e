# issue 8 (nvidia-h200-x2, carry .whl): eager parallel speed after the direct torch.distributed
# collectives (5feea7c) and the eager TP local path (8961f8d), with the compiled and
# CUDA-graph phases (ditkit.enable_cuda_graphs) beside them in the same launch.
# FLUX.1-dev-sized 1024², 6-step requests: one GPU, Ulysses-2, Ring-2, TP-2 (TP last: permanent).
# Then 2048² compiled Ulysses-2 again (the 1.85x target) in a second launch, with a profiler
# trace of one more request per row: how much NCCL time runs beside compute kernels
# (tools/bench/trace_overlap.py; traces in $OUT/traces).
# Expected wall time: ~8 min after startup.
set -e
source tools/bench/device/setup_gpu_env.sh
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader
export PYTHONPATH=$PYTHONPATH:$(ls -d packages/*/src | tr '\n' ':')
timeout 300 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 1024 --steps 6 --modes single ulysses ring tp --phases eager compiled cudagraph \
  --cache none --json $OUT/x2_1024.json 2>&1 | tee $OUT/x2_1024.log | filter
echo "torchrun (a) exit status: ${PIPESTATUS[0]}"
timeout 200 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 2048 --steps 6 --modes single ulysses --phases compiled --cache none \
  --trace $OUT/traces --json $OUT/x2_2048.json 2>&1 | tee $OUT/x2_2048.log | filter
echo "torchrun (b) exit status: ${PIPESTATUS[0]}"
