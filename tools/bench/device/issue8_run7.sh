# issue 8 (nvidia-h200-x2, carry .whl): why plain Ulysses-2 at 1024² went from 83 to 119 ms/step
# compiled in run 6 (CUDA-graph phase 83.7 ms: the GPU work did not grow; async QKV stayed at 84)
# after the compiled all-to-alls began to wait where their results are needed.
# A/B in one session: the 1024² compiled rows with the new comm.py, then with comm.py of
# 8310fa0 (waits right after each all-to-all), each traced: span vs busy (GPU waiting for the
# host) and the top CUDA runtime calls per step.
# First, here: git show 8310fa0:packages/parallel/src/ditkit_parallel/comm.py \
#   > tools/bench/device/_comm_8310fa0.py   (untracked files travel to the device)
set -e
source tools/bench/device/setup_gpu_env.sh
export PYTHONPATH=$PYTHONPATH:$(ls -d packages/*/src | tr '\n' ':')
args="--sizes 1024 --steps 6 --modes single ulysses ulysses_async --phases compiled --cache none"
timeout 200 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  $args --trace /tmp/tr_new --json $OUT/new.json 2>&1 | tee $OUT/new.log | filter
echo "torchrun (new) exit status: ${PIPESTATUS[0]}"
rm -rf /tmp/oldrepo && mkdir /tmp/oldrepo && cp -r packages tools /tmp/oldrepo/
cp tools/bench/device/_comm_8310fa0.py /tmp/oldrepo/packages/parallel/src/ditkit_parallel/comm.py
(cd /tmp/oldrepo && timeout 200 python3 -m torch.distributed.run --nproc-per-node=2 \
  tools/bench/gpu_parallel.py $args --trace /tmp/tr_old --json $OUT/old.json 2>&1 \
  | tee $OUT/old.log | filter; echo "status ${PIPESTATUS[0]}")
