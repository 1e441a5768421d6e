# issue 8 (nvidia-h200-x2, carry .whl): ParallelismConfig(ulysses_overlap_output=True): attend
# the other rank's queries first, send that output while this rank's own queries are attended
# (attention/output_overlap.py), alone and with async QKV. 2048², compiled, 6-step requests.
# Expected wall time: ~2.5 min after startup.
set -e
source tools/bench/device/setup_gpu_env.sh
export PYTHONPATH=$PYTHONPATH:$(ls -d packages/*/src | tr '\n' ':')
timeout 240 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 2048 --steps 6 --modes single ulysses_async ulysses_overlap ulysses_async_overlap \
  --phases compiled --cache none --json $OUT/x2_2048_overlap.json 2>&1 \
  | tee $OUT/x2_2048_overlap.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
