"""``enable_tensor_parallel``: shard a diffusers transformer over a TP device mesh (DTensor).

Example (on every rank of a ``torchrun --nproc-per-node 2`` launch)::

    from ditkit_interfaces import ParallelismConfig
    from ditkit_parallel.tensor import enable_tensor_parallel

    enable_tensor_parallel(pipe.transformer, ParallelismConfig(tp_size=2))
    image = pipe("a cat").images[0]  # same call; inputs and outputs are ordinary tensors
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.tensor import DTensor

from ditkit_interfaces.errors import CapabilityError, ConfigError, UnsupportedModelError
from ditkit_interfaces.parallel_config import ParallelismConfig

from .layout import restore
from .plan import TensorParallelPlan
from .plans import registered_tp_prefixes, tp_plan_for
from .shard import LinearShard, shard_transformer

__all__ = [
    "FP8_ALIGN",
    "default_tp_mesh",
    "disable_tensor_parallel",
    "enable_tensor_parallel",
    "gather_full_state_dict",
    "sharded_linears",
]

#: elements per rank that MLP shards are padded to with ``fp8_friendly=True`` (torchao float8).
FP8_ALIGN = 16


def _tp_size(config: ParallelismConfig) -> int:
    tp = config.tp_size or 1
    if tp < 2:
        raise ConfigError(
            "ParallelismConfig.tp_size", config.tp_size, "an integer >= 2 for tensor parallelism"
        )
    return tp


def _device_type(model: nn.Module) -> str:
    param = next(iter(model.parameters()), None)
    return param.device.type if param is not None else "cpu"


def default_tp_mesh(config: ParallelismConfig, device_type: str = "cpu") -> DeviceMesh:
    """The TP mesh of this rank: the whole world when it equals ``tp_size``, otherwise the
    innermost ``tp`` dimension of a ``(world // tp, tp)`` mesh (so context parallelism groups
    the other dimension, as in a hybrid ``(ring, ulysses, tp)`` layout)."""
    tp = _tp_size(config)
    if not dist.is_available() or not dist.is_initialized():
        raise CapabilityError(
            "tensor parallelism needs an initialised torch.distributed process group: launch "
            "with torchrun and call torch.distributed.init_process_group() first"
        )
    world = dist.get_world_size()
    if world % tp:
        raise ConfigError(
            "ParallelismConfig.tp_size",
            tp,
            f"a divisor of the world size {world}",
            fix=f"launch a multiple of {tp} processes or choose a tp_size that divides {world}",
        )
    if config.world_size > world:
        raise ConfigError(
            "ParallelismConfig.world_size",
            config.world_size,
            f"at most the {world} launched processes (ulysses_size * ring_size * tp_size)",
            fix="lower the sizes or launch more processes",
        )
    if world == tp:
        return init_device_mesh(device_type, (tp,), mesh_dim_names=("tp",))
    return init_device_mesh(device_type, (world // tp, tp), mesh_dim_names=("outer", "tp"))["tp"]


def _check_mesh(mesh: DeviceMesh, tp: int) -> None:
    if mesh.ndim != 1 or mesh.size() != tp:
        raise ConfigError(
            "mesh",
            f"DeviceMesh(shape={tuple(mesh.shape)})",
            f"a 1-D mesh of tp_size={tp} ranks",
            fix="pass the 'tp' sub-mesh, e.g. mesh['tp']",
        )


def _find_plan(model: nn.Module, plan: TensorParallelPlan | None) -> TensorParallelPlan:
    found = plan or tp_plan_for(model)
    if found is None:
        prefixes = ", ".join(registered_tp_prefixes())
        raise UnsupportedModelError(
            f"no tensor-parallel plan for {type(model).__name__} (plans exist for class names "
            f"starting with: {prefixes}). Pass one: enable_tensor_parallel(transformer, config, "
            "plan=TensorParallelPlan(...)), or register it once with "
            f"register_tp_plan({type(model).__name__!r}, plan)"
        )
    return found


def enable_tensor_parallel(
    transformer: nn.Module,
    config: ParallelismConfig,
    mesh: DeviceMesh | None = None,
    *,
    plan: TensorParallelPlan | None = None,
    fp8_friendly: bool = False,
    src_data_rank: int | None = 0,
) -> nn.Module:
    """Shard ``transformer`` in place over ``config.tp_size`` ranks with DTensor.

    Call it on every rank, after ``init_process_group``, with the same (fully loaded) model on
    each. Attention heads and MLP widths that do not divide ``tp_size`` are padded with zero
    heads/channels (exact outputs, a warning states the cost). Inputs and outputs of the
    transformer and of each block stay ordinary, replicated tensors, so pipelines and the cache
    work unchanged.

    This cannot be undone: the weights are re-laid out and resharded. Reload the model to get
    the single-device version back (:func:`gather_full_state_dict` returns its weights).

    Args:
        transformer: a diffusers transformer with a registered plan (or pass ``plan``).
        config: ``tp_size`` (>= 2) is the TP degree.
        mesh: a 1-D mesh of ``tp_size`` ranks; defaults to :func:`default_tp_mesh`.
        plan: overrides the plan registered for the class.
        fp8_friendly: pad MLP shards to multiples of :data:`FP8_ALIGN`, so torchao float8
            linears can take them (see :func:`~.fp8.fp8_eligibility`).
        src_data_rank: the rank whose weights are scattered (torch's default); ``None`` makes
            every rank keep its own copy's slice (no communication; weights must be identical).

    Returns:
        ``transformer``, marked ``_is_parallelized`` with ``_parallelism_config``,
        ``_tp_mesh`` and ``_tp_shards`` (what was sharded, see :class:`~.shard.LinearShard`).

    Raises:
        ConfigError: ``tp_size`` < 2 or not dividing the world size, or a mesh of another size.
        CapabilityError: no initialised process group.
        UnsupportedModelError: no plan for the transformer's class.
        RuntimeError: tensor parallelism was already applied.
    """
    tp = _tp_size(config)
    if getattr(transformer, "_tp_shards", None) is not None:
        raise RuntimeError(f"{type(transformer).__name__} is already tensor-parallel")
    found = _find_plan(transformer, plan)
    if mesh is None:
        mesh = default_tp_mesh(config, _device_type(transformer))
    _check_mesh(mesh, tp)
    shards = shard_transformer(
        transformer,
        found,
        mesh,
        align=FP8_ALIGN if fp8_friendly else 1,
        src_data_rank=src_data_rank,
    )
    transformer._is_parallelized = True
    transformer._parallelism_config = config
    transformer._tp_mesh = mesh
    transformer._tp_plan_applied = found
    transformer._tp_shards = shards
    return transformer


def disable_tensor_parallel(transformer: nn.Module) -> None:
    """Always raises: tensor parallelism re-lays out and reshards weights in place.

    Raises:
        NotImplementedError: with what to do instead.
    """
    raise NotImplementedError(
        f"tensor parallelism on {type(transformer).__name__} cannot be undone in place (its "
        "weights were re-laid out and sharded across ranks). Reload the model, or build a new "
        "one and load gather_full_state_dict(transformer) into it."
    )


def gather_full_state_dict(transformer: nn.Module) -> dict[str, torch.Tensor]:
    """The single-device state dict of a tensor-parallel transformer (a collective call).

    Sharded parameters are all-gathered and their re-layout (packing, zero padding) undone, so
    the result loads into a fresh, unsharded model of the same config.
    """
    indexes: dict[str, Any] = {}
    for prefix, module in transformer.named_modules():
        for name, (dim, index) in getattr(module, "_ditkit_tp_index", {}).items():
            indexes[f"{prefix}.{name}" if prefix else name] = (dim, index)
    state = {}
    for key, value in transformer.state_dict().items():
        if isinstance(value, DTensor):
            value = value.full_tensor()
        if key in indexes:
            dim, index = indexes[key]
            value = restore(value, dim, index)
        state[key] = value
    return state


def sharded_linears(transformer: nn.Module) -> list[LinearShard]:
    """What :func:`enable_tensor_parallel` did to each planned linear (empty if not applied)."""
    return list(getattr(transformer, "_tp_shards", None) or [])
