# issue 8 (nvidia-h200-x2, carry .whl): the copy-engine exchange (own piece now copied on a
# second side stream) and, since copy engines leave the SMs to the compute, the output overlap
# again (ulysses_overlap_output: the O exchange beside the own queries' attention). 2048²,
# compiled, 6-step requests, after the gpu-marked equality test.
# Expected wall time: ~4.5 min after startup.
set -e
source tools/bench/device/setup_gpu_env.sh
export PYTHONPATH=$PYTHONPATH:$(ls -d packages/*/src | tr '\n' ':')
timeout 120 python3 -m pytest -q -p no:cacheprovider -m gpu -o addopts="" -rA \
  packages/parallel/tests/test_copy_engine_gpu.py 2>&1 | grep -E "PASS|FAIL|Error|passed|failed" | head -20 || true
timeout 400 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 2048 --steps 6 --modes single ulysses_async ulysses_async_ce ulysses_ce_overlap \
  ulysses_async_ce_overlap --phases compiled --cache none --json $OUT/x2_2048_ce_overlap.json \
  2>&1 | tee $OUT/x2_2048_ce_overlap.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
