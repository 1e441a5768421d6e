# issue 8 follow-up (nvidia-h200-x2, carry .whl), call 2 of 2: the copy-engine exchange beyond
# run 15's one row. 2048² again in a second launch with the mode order reversed and the eager
# phase added; then 1024² compiled and with one CUDA graph per call (the copy engine's barriers
# fall back to a barrier kernel under capture), plain / async NCCL / async copy engine, with and
# without the static cache, graph order kept.
# Expected wall time: ~7 min after startup.
set -e
source tools/bench/device/setup_gpu_env.sh
export PYTHONPATH=$PYTHONPATH:$(ls -d packages/*/src | tr '\n' ':')
timeout 270 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 2048 --steps 6 --modes ulysses_async_ce ulysses_async single --keep-graph-order \
  --phases eager compiled --cache none --json $OUT/x2_2048_reversed.json 2>&1 \
  | tee $OUT/x2_2048_reversed.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
timeout 270 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 1024 --steps 6 --modes single ulysses ulysses_async ulysses_async_ce \
  --keep-graph-order --phases compiled cudagraph --cache none static_fast \
  --json $OUT/x2_1024.json 2>&1 | tee $OUT/x2_1024.log | filter
echo "torchrun exit status: ${PIPESTATUS[0]}"
