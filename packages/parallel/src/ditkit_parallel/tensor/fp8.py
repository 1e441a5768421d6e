"""Which linears stay float8-eligible after tensor-parallel sharding.

torchao's float8 linears need the in- and out-features each rank multiplies with to be
multiples of 16. Sharding divides one of them by the TP degree, so a layer eligible on one
device can stop being eligible under TP (an MLP of 4 * 3072 on 3 ranks, or any layer whose
share is not a multiple of 16). :func:`fp8_eligibility` predicts it from the plan, without any
process group; :func:`local_fp8_eligibility` reads it off a sharded model. With
``enable_tensor_parallel(..., fp8_friendly=True)`` MLP shards are zero-padded to multiples of
16 so they stay eligible (heads are never padded for it; every supported model has a head size
that is a multiple of 16). DTensor keeps each rank's shard as one contiguous tensor, which
float8 conversion also needs; the local report checks it.

Example:
    >>> from torch import nn
    >>> fp8_ok(nn.Linear(32, 48)), fp8_ok(nn.Linear(32, 40))
    (True, False)
"""

from __future__ import annotations

import dataclasses

from torch import nn
from torch.distributed.tensor import DTensor

from .apply import FP8_ALIGN
from .plan import TensorParallelPlan
from .plans import tp_plan_for
from .shard import block_geometry, iter_blocks, plan_linears

__all__ = ["FP8_MULTIPLE", "Fp8Entry", "fp8_eligibility", "fp8_ok", "local_fp8_eligibility"]

#: torchao's float8 GEMMs need both feature counts divisible by this.
FP8_MULTIPLE = 16


def fp8_ok(shape_or_linear: nn.Linear | tuple[int, int]) -> bool:
    """Whether a linear (or an ``(out_features, in_features)`` shape) can run in float8."""
    if isinstance(shape_or_linear, nn.Linear):
        shape_or_linear = (shape_or_linear.out_features, shape_or_linear.in_features)
    return all(size % FP8_MULTIPLE == 0 for size in shape_or_linear)


@dataclasses.dataclass(frozen=True)
class Fp8Entry:
    """One linear: its style, full and per-rank ``(out, in)`` shapes, and fp8 eligibility."""

    name: str
    style: str  # colwise / rowwise / modulation / replicated
    shape: tuple[int, int]
    local_shape: tuple[int, int]
    contiguous: bool = True

    @property
    def eligible(self) -> bool:
        return self.contiguous and fp8_ok(self.local_shape)


def fp8_eligibility(
    transformer: nn.Module,
    tp_size: int,
    *,
    plan: TensorParallelPlan | None = None,
    fp8_friendly: bool = False,
) -> list[Fp8Entry]:
    """Predict every linear's per-rank shape under ``tp_size``-way TP (no process group needed).

    Call it on the unsharded model. Linears the plan does not shard are reported as
    ``"replicated"`` with their full shape.
    """
    plan = plan or tp_plan_for(transformer)
    if plan is None:
        raise ValueError(f"no tensor-parallel plan for {type(transformer).__name__}; pass plan=")
    align = FP8_ALIGN if fp8_friendly else 1
    planned = {}
    for path, block, block_plan in iter_blocks(transformer, plan):
        geometry = block_geometry(block, block_plan, tp_size, align)
        for shard in plan_linears(path, block, block_plan, geometry):
            planned[shard.path] = Fp8Entry(
                shard.path,
                shard.style,
                (shard.module.out_features, shard.module.in_features),
                shard.local_shape(),
            )
    entries = []
    for name, module in transformer.named_modules():
        if isinstance(module, nn.Linear):
            shape = (module.out_features, module.in_features)
            entries.append(planned.get(name, Fp8Entry(name, "replicated", shape, shape)))
    return entries


def local_fp8_eligibility(transformer: nn.Module) -> list[Fp8Entry]:
    """Every linear's actual per-rank weight shape on this rank of a sharded model."""
    styles = {s.path: s.style for s in getattr(transformer, "_tp_shards", None) or []}
    entries = []
    for name, module in transformer.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        weight = module.weight
        local = weight.to_local() if isinstance(weight, DTensor) else weight
        shape = (int(weight.shape[0]), int(weight.shape[1]))
        local_shape = (int(local.shape[0]), int(local.shape[1]))
        style = styles.get(name, "replicated")
        entries.append(Fp8Entry(name, style, shape, local_shape, local.is_contiguous()))
    return entries
