"""Which context-parallel plan a transformer gets: the user's, else the registered one.

Plans are registered by transformer class-name prefix (the longest matching prefix wins) as a
:class:`~.plan.CPPlan` or a ``factory(transformer) -> CPPlan`` for plans that depend on the
model's config. ``ParallelismConfig.cp_plan`` overrides the registry.

Example:
    >>> "FluxTransformer2DModel" in registered_cp_plans()
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ditkit_interfaces import NameRegistry, UnsupportedModelError

from .plan import CPPlan, as_cp_plan
from .plans import BUILTIN_PLANS

__all__ = ["register_cp_plan", "registered_cp_plans", "resolve_cp_plan"]

PlanSource = CPPlan | Callable[[Any], CPPlan]

_PLANS: NameRegistry[PlanSource] = NameRegistry("context-parallel plans")
for _prefix, _source in BUILTIN_PLANS.items():
    _PLANS.add(_prefix, _source)


def register_cp_plan(prefix: str, plan: PlanSource | dict, *, replace: bool = False) -> None:
    """Register a plan (or plan factory) for classes whose name starts with ``prefix``."""
    source = plan if callable(plan) and not isinstance(plan, CPPlan) else as_cp_plan(plan, prefix)
    _PLANS.add(prefix, source, replace=replace)


def registered_cp_plans() -> list[str]:
    """The registered class-name prefixes."""
    return _PLANS.prefixes()


def resolve_cp_plan(transformer: Any, override: Any = None) -> CPPlan:
    """The plan for ``transformer``: ``override`` (``ParallelismConfig.cp_plan``) or registered.

    Raises:
        UnsupportedModelError: no plan is registered for the class and none was given.
    """
    name = type(transformer).__name__
    if override is not None:
        source: Any = override
    else:
        source = _PLANS.match(name)
        if source is None:
            raise UnsupportedModelError(
                f"no context-parallel plan is registered for {name}; pass one as "
                "ParallelismConfig(cp_plan={module_path: ModulePlan(...)}) (see "
                "ditkit_parallel.context.plan) or register it with register_cp_plan(); "
                f"registered: {', '.join(registered_cp_plans())}"
            )
    if callable(source) and not isinstance(source, CPPlan):
        source = source(transformer)
    return as_cp_plan(source, name)
