# issue 8, run 1 (nvidia-h200-x2, carry .whl): ditkit-parallel at 1024x1024 (4096+512 tokens):
# one GPU, Ulysses-2, Ring-2, TP-2; eager and regional compile; no cache, DBCache F1B0 static
# "fast" mask, dynamic DBCache F1B0; fp32 NCCL equivalence and the all-to-all floor first.
# Expected wall time: ~6 min (startup 30 s, checks + build 20 s, eager 60 s, compiled ~250 s).
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/diffusers*.whl .whl/importlib_metadata*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
nvidia-smi topo -m | head -3
timeout 560 python3 -m torch.distributed.run --nproc-per-node=2 tools/bench/gpu_parallel.py \
  --modes single ulysses ring tp --sides 1024 --compile --cache none static_fast dynamic \
  --json $OUT/parallel_1024.json 2>&1 | tee $OUT/run1.log | grep -v -i "warn\|kept in float32"
echo "torchrun exit status: ${PIPESTATUS[0]}"
