# issue 8 (nvidia-h200-x2, carry .whl): compiled all-to-alls that overlap. Until now the compiled
# path traced fc.all_to_all_single, whose wait dynamo places right after the collective, so the
# async-QKV and head-chunk variants could not overlap anything under compile (run 5's trace:
# 34-40 ms of NCCL per 2048² step, 2.8 ms of it hidden). comm.py now traces the raw
# _c10d_functional op and waits where the code asks for the result.
# (a) 2048², compiled: one GPU, Ulysses-2 plain, async QKV, 2 head chunks, FP8, each traced
#     (NCCL time hidden behind compute, tools/bench/trace_overlap.py);
# (b) 1024², compiled and CUDA graphs: one GPU, Ulysses-2 plain, async QKV, 2 head chunks.
# Expected wall time: ~7 min after startup.
set -e
source tools/bench/device/setup_gpu_env.sh
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader
export PYTHONPATH=$PYTHONPATH:$(ls -d packages/*/src | tr '\n' ':')
timeout 330 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 2048 --steps 6 --modes single ulysses ulysses_async ulysses_chunks2 ulysses_fp8 \
  --phases compiled --cache none --trace $OUT/traces --json $OUT/x2_2048.json 2>&1 \
  | tee $OUT/x2_2048.log | filter
echo "torchrun (a) exit status: ${PIPESTATUS[0]}"
rm -rf $OUT/traces  # too large to bring back; the summary lines are in the log
timeout 220 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --sizes 1024 --steps 6 --modes single ulysses ulysses_async ulysses_chunks2 \
  --phases compiled cudagraph --cache none --json $OUT/x2_1024.json 2>&1 \
  | tee $OUT/x2_1024.log | filter
echo "torchrun (b) exit status: ${PIPESTATUS[0]}"
