# issue 8 (nvidia-h200-x2, carry .whl): inductor's default reorder_for_peak_memory (and
# reorder_for_locality) move each all-to-all's wait right after it and the single blocks' MLP
# after the waits (seen in the generated code on CPU), so the overlap the graph asks for never
# happens. Here both are off (--keep-graph-order) for every row. 2048², compiled, 6 steps.
# Expected wall time: ~3 min after startup.
set -e
source tools/bench/device/setup_gpu_env.sh
export PYTHONPATH=$PYTHONPATH:$(ls -d packages/*/src | tr '\n' ':')
timeout 400 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 2048 --steps 6 --modes single ulysses ulysses_async ulysses_async_ce --keep-graph-order \
  --phases compiled --cache none --json $OUT/x2_2048_graph_order.json 2>&1 \
  | tee $OUT/x2_2048_graph_order.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
