"""Tensor parallelism for diffusers transformers with DTensor (``torch.distributed.tensor``).

Per-family plans (:mod:`.plans`) map module-path patterns to colwise / rowwise styles;
:func:`enable_tensor_parallel` applies them with ``parallelize_module`` on a 1-D ``"tp"`` mesh.
Head counts and MLP widths that do not divide the TP degree are zero-padded (exact, with a
warning); fused projections are re-laid out by an index permutation (:mod:`.layout`).

Modules: ``layout`` (padding/permutation arithmetic), ``plan`` (plan data types), ``plans``
(the families and the registry), ``norms`` (RMSNorm over sharded heads), ``shard`` (applying a
plan), ``apply`` (the entry point), ``fp8`` (float8 eligibility after sharding).
"""

from .apply import (
    FP8_ALIGN,
    default_tp_mesh,
    disable_tensor_parallel,
    enable_tensor_parallel,
    gather_full_state_dict,
    sharded_linears,
)
from .fp8 import FP8_MULTIPLE, Fp8Entry, fp8_eligibility, fp8_ok, local_fp8_eligibility
from .layout import ShardLayout, relayout, restore
from .norms import ShardedRMSNorm
from .plan import BlockPlan, Colwise, Modulation, Rowwise, TensorParallelPlan
from .plans import TP_PLANS, register_tp_plan, registered_tp_prefixes, tp_plan_for
from .shard import LinearShard

__all__ = [
    "FP8_ALIGN",
    "FP8_MULTIPLE",
    "TP_PLANS",
    "BlockPlan",
    "Colwise",
    "Fp8Entry",
    "LinearShard",
    "Modulation",
    "Rowwise",
    "ShardLayout",
    "ShardedRMSNorm",
    "TensorParallelPlan",
    "default_tp_mesh",
    "disable_tensor_parallel",
    "enable_tensor_parallel",
    "fp8_eligibility",
    "fp8_ok",
    "gather_full_state_dict",
    "local_fp8_eligibility",
    "register_tp_plan",
    "registered_tp_prefixes",
    "relayout",
    "restore",
    "sharded_linears",
    "tp_plan_for",
]
