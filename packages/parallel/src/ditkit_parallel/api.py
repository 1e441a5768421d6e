"""``enable_parallelism``: apply a ``ParallelismConfig`` to a transformer or a pipeline.

Dispatch (cache-dit's §4.1, in ditkit's packages): Ulysses/Ring/USP sizes go to context
parallelism (:mod:`ditkit_parallel.context`), ``tp_size`` to tensor parallelism
(:mod:`ditkit_parallel.tensor`), both to a ``(cp, tp)`` device mesh: context parallelism over the
``cp`` sub-groups, then tensor parallelism over the ``tp`` ones (TP innermost, so a TP group sits
on neighbouring GPUs). Every rank calls it, after ``torch.distributed.init_process_group``
(``torchrun`` sets the environment). Sizes that cannot work fail before anything changes.

Example (one process: nothing to spread, the call says so):
    >>> import torch
    >>> from ditkit_interfaces import ParallelismConfig
    >>> from ditkit_parallel import enable_parallelism
    >>> try:
    ...     enable_parallelism(torch.nn.Linear(2, 2), ParallelismConfig(ulysses_size=2))
    ... except RuntimeError as error:
    ...     print(str(error).split(":")[0])
    enable_parallelism needs an initialised torch.distributed process group
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from ditkit_interfaces import ConfigError, ParallelismConfig

from .context import disable_context_parallel, enable_context_parallel
from .mesh import build_cp_mesh
from .tensor import enable_tensor_parallel

__all__ = ["disable_parallelism", "enable_parallelism", "transformers_of"]

TRANSFORMER_NAMES = ("transformer", "transformer_2")


def transformers_of(target: Any) -> list[torch.nn.Module]:
    """The transformers of a pipeline (``transformer``, ``transformer_2``), of an adapter
    (``.transformer``) or the module itself."""
    pipe = getattr(target, "pipe", None) or target
    found = [getattr(pipe, name, None) for name in TRANSFORMER_NAMES]
    found = [module for module in found if isinstance(module, torch.nn.Module)]
    own = getattr(target, "transformer", None)
    if isinstance(own, torch.nn.Module) and own not in found:
        found.insert(0, own)
    if not found and isinstance(target, torch.nn.Module):
        found = [target]
    return found


def _check_world(config: ParallelismConfig) -> int:
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(
            "enable_parallelism needs an initialised torch.distributed process group: launch "
            "with `torchrun --nproc-per-node=N script.py` and call "
            "torch.distributed.init_process_group() before enable_cache/enable_parallelism"
        )
    world = dist.get_world_size()
    if config.world_size != world:
        raise ConfigError(
            "ParallelismConfig (ulysses_size * ring_size * tp_size)",
            config.world_size,
            f"the number of launched processes ({world})",
            fix=f"choose sizes whose product is {world}, or launch {config.world_size} "
            "processes (torchrun --nproc-per-node)",
        )
    return world


def _device_type(module: torch.nn.Module) -> str:
    parameter = next(module.parameters(), None)
    return parameter.device.type if parameter is not None else "cpu"


def enable_parallelism(
    target: Any, config: ParallelismConfig, attention_backend: str | None = None
) -> Any:
    """Spread every transformer of ``target`` over the launched ranks as ``config`` says.

    Args:
        target: a diffusers pipeline, a ``BlockAdapter`` or a transformer.
        config: the sizes and options; ``cp_plan`` overrides the registered CP plan.
        attention_backend: a diffusers attention backend name set on each transformer first
            (``transformer.set_attention_backend``); the CP attention then runs on the ranks.

    Returns:
        ``target`` (changed in place).

    Raises:
        RuntimeError: no initialised process group.
        ConfigError: sizes whose product is not the number of processes, no size above 1.
        UnsupportedModelError: a transformer class with no plan (the message names how to
            pass ``cp_plan`` or register a TP plan).
    """
    if not isinstance(config, ParallelismConfig):
        raise ConfigError(
            "parallelism_config",
            type(config).__name__,
            "a ParallelismConfig",
            fix="pass ParallelismConfig(ulysses_size=..., ring_size=..., tp_size=...)",
        )
    if not (config.cp_enabled() or config.tp_enabled()):
        raise ConfigError(
            "ParallelismConfig", config.strify(), "a ulysses_size, ring_size or tp_size above 1"
        )
    _check_world(config)
    transformers = transformers_of(target)
    if not transformers:
        raise ConfigError(
            "enable_parallelism(target)",
            type(target).__name__,
            "a pipeline with a `transformer`, a BlockAdapter or a transformer module",
        )
    cp_group, tp_mesh = None, None
    if config.cp_enabled() and config.tp_enabled():
        from torch.distributed.device_mesh import init_device_mesh

        cp = (config.ulysses_size or 1) * (config.ring_size or 1)
        mesh = init_device_mesh(
            _device_type(transformers[0]), (cp, config.tp_size), mesh_dim_names=("cp", "tp")
        )
        cp_group, tp_mesh = mesh["cp"].get_group(), mesh["tp"]
    cp_mesh = build_cp_mesh(config, group=cp_group) if config.cp_enabled() else None
    for transformer in transformers:
        if attention_backend is not None and hasattr(transformer, "set_attention_backend"):
            transformer.set_attention_backend(attention_backend)
        if cp_mesh is not None:
            enable_context_parallel(transformer, config, mesh=cp_mesh)
        if config.tp_enabled():
            enable_tensor_parallel(transformer, config, mesh=tp_mesh)
    return target


def disable_parallelism(target: Any) -> bool:
    """Undo context parallelism on every transformer of ``target`` (``True`` if any was).

    Tensor parallelism cannot be undone (the weights are resharded); reload the model.
    """
    undone = [disable_context_parallel(t) for t in transformers_of(target)]  # undo every one
    return any(undone)
