"""ditkit-parallel: context (Ulysses, Ring, USP) and tensor parallelism for diffusers DiTs.

- :func:`enable_parallelism` applies a ``ParallelismConfig`` (``ditkit.enable_cache(...,
  parallelism_config=...)`` calls it): context parallelism for Ulysses/Ring sizes
  (:mod:`.context`, attention in :mod:`.attention`, meshes in :mod:`.mesh`), tensor parallelism
  for ``tp_size`` (:mod:`.tensor`), both on a ``(cp, tp)`` mesh;
- :class:`DistributedDecisionReducer` makes every rank take the same cache decision;
- :func:`~ditkit_parallel.launch.run_distributed` runs a function on N local processes (tests,
  CPU checks); on GPUs launch with ``torchrun``.

Example:
    >>> import ditkit_parallel
    >>> ditkit_parallel.__version__ == __import__("ditkit_interfaces").__version__
    True
    >>> "FluxTransformer2DModel" in ditkit_parallel.registered_cp_plans()
    True
"""

from .__about__ import __version__
from .api import disable_parallelism, enable_parallelism, transformers_of
from .attention import context_parallel_attention
from .context import (
    ContextParallelHandle,
    CPPlan,
    Gather,
    ModulePlan,
    Split,
    as_cp_plan,
    disable_context_parallel,
    enable_context_parallel,
    register_cp_plan,
    registered_cp_plans,
    resolve_cp_plan,
)
from .mesh import CPMesh, SeqLenTable, build_cp_mesh
from .reducer import DistributedDecisionReducer
from .tensor import (
    BlockPlan,
    Colwise,
    Modulation,
    Rowwise,
    TensorParallelPlan,
    disable_tensor_parallel,
    enable_tensor_parallel,
    fp8_eligibility,
    gather_full_state_dict,
    local_fp8_eligibility,
    register_tp_plan,
    tp_plan_for,
)

__all__ = [
    "BlockPlan",
    "CPMesh",
    "CPPlan",
    "Colwise",
    "ContextParallelHandle",
    "DistributedDecisionReducer",
    "Gather",
    "Modulation",
    "ModulePlan",
    "Rowwise",
    "SeqLenTable",
    "Split",
    "TensorParallelPlan",
    "__version__",
    "as_cp_plan",
    "build_cp_mesh",
    "context_parallel_attention",
    "disable_context_parallel",
    "disable_parallelism",
    "disable_tensor_parallel",
    "enable_context_parallel",
    "enable_parallelism",
    "enable_tensor_parallel",
    "fp8_eligibility",
    "gather_full_state_dict",
    "local_fp8_eligibility",
    "register_cp_plan",
    "register_tp_plan",
    "registered_cp_plans",
    "resolve_cp_plan",
    "tp_plan_for",
    "transformers_of",
]
