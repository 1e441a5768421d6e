# issue 8 (nvidia-h200-x2, carry .whl): the copy-engine Ulysses exchange
# (ParallelismConfig(ulysses_copy_engine=True): symmetric memory + peer copies, no NCCL kernels).
# (a) the gpu-marked test and tools/bench/copy_engine_check.py: equal to NCCL bit for bit,
#     exchange time and a matmul's slowdown beside each path;
# (b) FLUX.1-dev-sized 2048², compiled, 6-step requests: one GPU, async QKV over NCCL (the best
#     so far, 1.837x), copy engine, async QKV over the copy engine.
# Expected wall time: ~5 min after startup.
set -e
source tools/bench/device/setup_gpu_env.sh
export PYTHONPATH=$PYTHONPATH:$(ls -d packages/*/src | tr '\n' ':')
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu -o addopts="" -rA \
  packages/parallel/tests/test_copy_engine_gpu.py 2>&1 | grep -E "PASS|FAIL|Error|error|passed|failed" | head -20 || true
timeout 150 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/copy_engine_check.py \
  --json $OUT/ce_check.json 2>&1 | filter | tail -25
echo "check exit status: ${PIPESTATUS[0]}"
timeout 330 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 2048 --steps 6 --modes single ulysses_async ulysses_ce ulysses_async_ce \
  --phases compiled --cache none --json $OUT/x2_2048_ce.json 2>&1 \
  | tee $OUT/x2_2048_ce.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
