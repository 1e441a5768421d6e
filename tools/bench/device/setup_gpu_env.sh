# Sourced by the device drivers (issue 9 onward): install the carried wheels (diffusers and
# importlib_metadata from .whl/), keep NVLink multicast off (KINDS.md) and define `filter`,
# which drops torchrun/diffusers noise from the printed tables.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/diffusers*.whl .whl/importlib_metadata*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
filter() { grep -v -i "warn\|kept in float32\|^ *enable_\|^\*\*\*\|^Setting OMP\|fp32 tiny"; }
