# issue 8, run 2 (nvidia-h200-x2, carry .whl): ditkit-parallel at 2048x2048 (16384+512 tokens):
# one GPU, Ulysses-2, Ring-2, TP-2; eager and regional compile; no cache and DBCache F1B0 static
# "fast" mask. Expected wall time: ~8 min (startup 30 s, checks + builds 30 s, eager ~130 s,
# compiled ~280 s); rows print as measured, so a timeout leaves the finished ones. If it runs
# out, split: `--no-eager` (compiled only) in one call and no `--compile` in another.
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/diffusers*.whl .whl/importlib_metadata*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
timeout 560 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --modes single ulysses ring tp --sides 2048 --compile --cache none static_fast \
  --json $OUT/parallel_2048.json 2>&1 | tee $OUT/run2.log | grep -v -i "warn\|kept in float32"
echo "torchrun exit status: ${PIPESTATUS[0]}"
