"""Turn context parallelism on for a diffusers transformer, and off again, exactly.

:func:`enable_context_parallel` resolves the plan (refusing early when there is none), builds
the :class:`~ditkit_parallel.mesh.CPMesh` unless one is given, registers the plan's hooks,
routes the attention processors (a :class:`~.routing.ContextParallelRoute` as their
``_parallel_config``, or a replacement processor) and marks the transformer
(``_is_parallelized``, ``_parallelism_config``). :func:`disable_context_parallel` undoes every
step: same hooks dicts, same processor objects, same module attributes, original
``dispatch_attention_fn``.

Example (on every rank of an initialised process group)::

    handle = enable_context_parallel(pipe.transformer, ParallelismConfig(ulysses_size=2))
    image = pipe(prompt).images[0]
    disable_context_parallel(pipe.transformer)  # or handle.remove()
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.hooks import RemovableHandle

from ditkit_interfaces import ConfigError, ParallelismConfig

from . import processors as _processors  # noqa: F401  (registers the replacements)
from .async_qkv import ASYNC_PROCESSORS
from .hooks import ForwardState, install_plan_hooks, site_label
from .plan import CPPlan, matches_path
from .registry import resolve_cp_plan
from .routing import (
    PROCESSOR_REPLACEMENTS,
    ContextParallelRoute,
    install_router,
    processor_module,
    uninstall_router,
)
from .sharding import split_piece
from .single_blocks import FluxSingleBlockOverlap, overlappable_single_blocks
from .warmup import EagerFirstForward, install_eager_first_forward

if TYPE_CHECKING:
    from types import ModuleType

    from ..mesh import CPMesh

__all__ = ["ContextParallelHandle", "disable_context_parallel", "enable_context_parallel"]

_HANDLE = "_ditkit_cp_handle"
_MISSING = object()


class ContextParallelHandle:
    """What :func:`enable_context_parallel` changed on one transformer; ``remove()`` undoes it."""

    def __init__(self, transformer: torch.nn.Module, plan: CPPlan, mesh: CPMesh, config: Any):
        self.transformer = transformer
        self.plan = plan
        self.mesh = mesh
        self.config = config
        self.state = ForwardState(mesh)
        self.hooks: list[RemovableHandle] = []
        self.marked: list[tuple[Any, Any]] = []  # (processor, previous instance value)
        self.replaced: list[tuple[torch.nn.Module, Any]] = []  # (attention module, processor)
        # (block, its previous instance forward or _MISSING): Flux single blocks whose MLP runs
        # beside the all-to-alls (single_blocks.py)
        self.block_forwards: list[tuple[torch.nn.Module, Any]] = []
        self.routers: list[ModuleType] = []
        self.eager_first: EagerFirstForward | None = None
        self.saved_attrs: dict[str, Any] = {}
        self.active = False

    @property
    def async_processors(self) -> int:
        """How many processors run the async-QKV Ulysses path."""
        return sum(
            1 for module, _ in self.replaced if getattr(module.processor, "is_async_qkv", False)
        )

    @property
    def overlapped_single_blocks(self) -> int:
        """How many Flux single blocks run their MLP beside the all-to-alls."""
        return len(self.block_forwards)

    def shard(self, x: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """This rank's piece of a full-length tensor, cut as the plan's splits cut.

        For code that holds a block's full-length input while the block returns this rank's
        piece (a cache computing the first blocks' residual, when the plan splits at block 0).
        """
        return split_piece(x, dim, self.mesh.cp_size, self.mesh.cp_rank)

    def remove(self) -> None:
        """Undo everything; idempotent."""
        if not self.active:
            return
        for handle in reversed(self.hooks):
            handle.remove()
        for block, previous in reversed(self.block_forwards):
            if previous is _MISSING:
                block.__dict__.pop("forward", None)
            else:
                block.__dict__["forward"] = previous
        for module, original in reversed(self.replaced):
            module.processor = original
        for processor, previous in reversed(self.marked):
            if previous is _MISSING:
                processor.__dict__.pop("_parallel_config", None)
            else:
                processor.__dict__["_parallel_config"] = previous
        owner = id(self)
        for module in self.routers:
            uninstall_router(module, owner)
        for name, value in self.saved_attrs.items():
            if value is _MISSING:
                self.transformer.__dict__.pop(name, None)
            else:
                self.transformer.__dict__[name] = value
        self.hooks, self.replaced, self.marked, self.routers = [], [], [], []
        self.block_forwards = []
        self.active = False


def _set_attr(handle: ContextParallelHandle, name: str, value: Any) -> None:
    module = handle.transformer
    if name not in handle.saved_attrs:
        handle.saved_attrs[name] = module.__dict__.get(name, _MISSING)
    module.__dict__[name] = value


def _use_async(config: Any, mesh: CPMesh) -> bool:
    if not getattr(config, "ulysses_async", False):
        return False
    if mesh.ring_size > 1 or mesh.ulysses_size < 2:
        warnings.warn(
            "ParallelismConfig.ulysses_async overlaps the Ulysses all-to-all only; with "
            f"ulysses_size={mesh.ulysses_size}, ring_size={mesh.ring_size} the synchronous "
            "path is used",
            stacklevel=3,
        )
        return False
    return True


def _route_processors(handle: ContextParallelHandle, use_async: bool) -> None:
    """Mark, replace or reject every attention processor the plan routes.

    Routes are shared by site label (block indices as ``*``): the blocks of one kind see the
    same layout, so they share one length-table entry, and ``torch.compile`` (regional) traces
    one graph per block kind instead of one per block.
    """
    patterns = handle.plan.attention
    routes: dict[str, ContextParallelRoute] = {}  # one per site label
    marked: set[int] = set()  # processor objects already given their route
    owner = id(handle)

    def route_for(path: str) -> ContextParallelRoute:
        label = site_label(path)
        if label not in routes:
            routes[label] = ContextParallelRoute(handle.mesh, handle.state, label)
        return routes[label]

    for path, module in handle.transformer.named_modules():
        processor = getattr(module, "processor", None)
        if processor is None or not callable(processor):
            continue
        if patterns is not None and not any(matches_path(p, path) for p in patterns):
            continue
        factory = ASYNC_PROCESSORS.get(processor) if use_async else None
        factory = factory or PROCESSOR_REPLACEMENTS.get(processor)
        if factory is not None:
            handle.replaced.append((module, processor))
            module.processor = factory(processor, route_for(path))
            continue
        target = processor_module(processor)
        if not hasattr(processor, "_parallel_config") or target is None:
            raise ConfigError(
                f"{type(handle.transformer).__name__}.{path}.processor",
                type(processor).__name__,
                "a processor that calls diffusers' dispatch_attention_fn with parallel_config, "
                "or one registered in PROCESSOR_REPLACEMENTS",
                fix="list the attention modules to route in CPPlan(attention=...) or set a "
                "diffusers attention processor",
            )
        if id(processor) not in marked:
            marked.add(id(processor))
            handle.marked.append((processor, processor.__dict__.get("_parallel_config", _MISSING)))
            processor.__dict__["_parallel_config"] = route_for(path)
        if target not in handle.routers:
            install_router(target, owner)
            handle.routers.append(target)


def enable_context_parallel(
    transformer: torch.nn.Module,
    config: ParallelismConfig,
    mesh: CPMesh | None = None,
) -> ContextParallelHandle:
    """Spread ``transformer``'s sequence over the context-parallel ranks (Ulysses/Ring/USP).

    Call it on every rank. Inputs stay full-size on every rank; the output is gathered, so the
    model's callers (pipelines, the cache) see the same shapes as without parallelism.

    Args:
        transformer: a diffusers transformer with a registered plan (or ``config.cp_plan``).
        config: ``ulysses_size``/``ring_size`` (and the Ulysses options) are used.
        mesh: a prebuilt mesh (e.g. the CP sub-mesh of hybrid CP x TP); built from ``config``
            over the world group when omitted.

    Returns:
        A :class:`ContextParallelHandle`; ``handle.remove()`` or
        :func:`disable_context_parallel` undoes everything.

    Raises:
        ConfigError: already parallelized, or no context parallelism in ``config``.
        UnsupportedModelError: no plan for this transformer class and no ``cp_plan``.
    """
    name = type(transformer).__name__
    if getattr(transformer, _HANDLE, None) is not None or getattr(
        transformer, "_is_parallelized", False
    ):
        raise ConfigError(
            "transformer",
            name,
            "a transformer that is not parallelized yet",
            fix="call disable_context_parallel(transformer) first, or parallelize a fresh copy",
        )
    if mesh is None and not config.cp_enabled():
        raise ConfigError(
            "ParallelismConfig.ulysses_size / ring_size",
            (config.ulysses_size, config.ring_size),
            "a size above 1 for context parallelism",
        )
    plan = resolve_cp_plan(transformer, getattr(config, "cp_plan", None))
    list(plan.resolve(transformer))  # every pattern must match before anything changes
    if mesh is None:
        from ..mesh import build_cp_mesh

        mesh = build_cp_mesh(config)

    handle = ContextParallelHandle(transformer, plan, mesh, config)
    handle.active = True
    try:
        use_async = _use_async(config, mesh)
        _route_processors(handle, use_async)
        if use_async:
            for block in overlappable_single_blocks(transformer):
                handle.block_forwards.append((block, block.__dict__.get("forward", _MISSING)))
                block.forward = FluxSingleBlockOverlap(block)
        handle.hooks = install_plan_hooks(transformer, plan, handle.state)
        handle.eager_first, eager_hooks = install_eager_first_forward(transformer, handle.state)
        handle.hooks += eager_hooks
    except BaseException:
        handle.remove()
        raise
    _set_attr(handle, _HANDLE, handle)
    _set_attr(handle, "_is_parallelized", True)
    _set_attr(handle, "_parallelism_config", config)
    return handle


def disable_context_parallel(transformer: torch.nn.Module) -> bool:
    """Undo :func:`enable_context_parallel`; ``False`` when the transformer was not parallel."""
    handle = transformer.__dict__.get(_HANDLE)
    if handle is None:
        return False
    handle.remove()
    return True
