"""Context parallelism (Ulysses, Ring, USP) applied to diffusers transformers.

- :mod:`.plan`: plans as data (:class:`CPPlan`, :class:`ModulePlan`, :class:`Split`,
  :class:`Gather`); :mod:`.plans`: the built-in plans; :mod:`.registry`: lookup by class name;
- :mod:`.hooks`: the forward hooks that split and gather; :mod:`.sharding`: the split helpers;
- :mod:`.routing`: attention calls of a parallelized transformer go to
  :func:`ditkit_parallel.attention.context_parallel_attention`; :mod:`.processors`: replacements
  for processors that call SDPA directly; :mod:`.async_qkv`: Ulysses with overlapped QKV;
- :mod:`.apply`: :func:`enable_context_parallel` / :func:`disable_context_parallel`.
"""

from .apply import ContextParallelHandle, disable_context_parallel, enable_context_parallel
from .plan import CPPlan, Gather, ModulePlan, Split, as_cp_plan
from .registry import register_cp_plan, registered_cp_plans, resolve_cp_plan

__all__ = [
    "CPPlan",
    "ContextParallelHandle",
    "Gather",
    "ModulePlan",
    "Split",
    "as_cp_plan",
    "disable_context_parallel",
    "enable_context_parallel",
    "register_cp_plan",
    "registered_cp_plans",
    "resolve_cp_plan",
]
