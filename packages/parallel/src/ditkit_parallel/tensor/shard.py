"""Apply a :class:`~.plan.TensorParallelPlan` to a transformer on a 1-D TP device mesh.

For every block a plan names, :func:`plan_linears` works out (without any communication) how
each linear is laid out: the :class:`~.layout.ShardLayout` of its sharded dimension and the
``torch.distributed.tensor.parallel`` style. :func:`shard_transformer` then

1. re-lays out and zero-pads the weights that need it (fused projections, head counts or MLP
   widths that do not divide the TP degree), remembering the index on the module so
   :func:`~.apply.gather_full_state_dict` can undo it;
2. calls ``parallelize_module`` with ``ColwiseParallel`` / ``RowwiseParallel`` (AdaLN
   modulations: ``ColwiseParallel(output_layouts=Replicate())``), so every block input and
   output stays a plain, replicated tensor, then gives each sharded linear an eager forward on
   its local shards (:mod:`.local`; the DTensor path still runs under ``torch.compile``);
3. rescales the head-count attributes the attention processors reshape with;
4. swaps RMSNorms over all heads for :class:`~.norms.ShardedRMSNorm`;
5. hooks ``head_outputs`` (e.g. LTX's rotary embedding over all heads) to keep the rank's slice.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.tensor import Replicate
from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

from .layout import ShardLayout, relayout
from .local import hook_keys, localize
from .norms import ShardedRMSNorm, is_rms_norm, norm_width
from .plan import (
    ATTENTION_ATTRS,
    BlockPlan,
    Colwise,
    Modulation,
    Rowwise,
    TensorParallelPlan,
    part_sizes,
)

__all__ = [
    "BlockGeometry",
    "LinearShard",
    "block_geometry",
    "match_modules",
    "plan_linears",
    "shard_transformer",
]


def match_modules(root: nn.Module, pattern: str) -> list[tuple[str, nn.Module]]:
    """Submodules whose dotted path matches ``pattern`` segment by segment (``*`` = one segment).

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2)))
        >>> [name for name, _ in match_modules(net, "*")], [n for n, _ in match_modules(net, "1.*")]
        (['0', '1'], ['1.0'])
    """
    want = pattern.split(".")
    return [
        (name, module)
        for name, module in root.named_modules()
        if name
        and len(parts := name.split(".")) == len(want)
        and all(fnmatch.fnmatchcase(p, w) for p, w in zip(parts, want, strict=True))
    ]


def _get(root: nn.Module, path: str) -> Any:
    try:
        return root.get_submodule(path)
    except AttributeError:
        return None


@dataclasses.dataclass(frozen=True)
class BlockGeometry:
    """Head count and size of a block's attention, and the layout of its heads on ``world``."""

    heads: int
    head_dim: int
    world: int
    align: int = 1

    @property
    def inner(self) -> int:
        return self.heads * self.head_dim

    @property
    def heads_layout(self) -> ShardLayout:
        return ShardLayout.build([("heads", self.inner)], self.world, self.head_dim)

    @property
    def local_heads(self) -> int:
        return self.heads_layout.local_size // self.head_dim

    @property
    def padded_heads(self) -> int:
        return self.local_heads * self.world

    def layout(self, parts: tuple[str, ...], total: int) -> ShardLayout:
        return ShardLayout.build(
            part_sizes(parts, total, self.inner), self.world, self.head_dim, self.align
        )

    def local_attr(self, value: int, kind: str) -> int:
        """The local value of an attribute of ``kind`` (see :class:`~.plan.BlockPlan.attrs`)."""
        if kind == "ffn":
            return ShardLayout.build([("ffn", value)], self.world, align=self.align).local_size
        if value % self.heads:
            raise ValueError(f"{value} is not a multiple of the head count {self.heads}")
        return value // self.heads * self.local_heads


def block_geometry(block: nn.Module, plan: BlockPlan, world: int, align: int = 1) -> BlockGeometry:
    """Read the head count and size from the block's first attention module."""
    attn = _get(block, plan.attention[0])
    heads = getattr(attn, "heads", None)
    inner = getattr(attn, "inner_dim", None)
    if not isinstance(heads, int) or not isinstance(inner, int) or heads < 1 or inner % heads:
        raise ValueError(
            f"{type(block).__name__}.{plan.attention[0]} has no integer `heads` and `inner_dim` "
            "(a multiple of heads): the tensor-parallel plan does not match this block"
        )
    for name in ("inner_kv_dim", "kv_inner_dim"):
        kv = getattr(attn, name, None)
        if isinstance(kv, int) and kv != inner:
            raise ValueError(
                f"{type(block).__name__}.{plan.attention[0]}.{name}={kv} differs from "
                f"inner_dim={inner} (grouped-query attention or another key/value head size): "
                "tensor parallelism shards query and key/value heads alike and cannot split it"
            )
    return BlockGeometry(heads, inner // heads, world, align)


@dataclasses.dataclass(frozen=True)
class LinearShard:
    """How one linear layer of a block is sharded (or why it stays replicated)."""

    path: str  # relative to the transformer
    module: nn.Linear
    style: str  # "colwise", "rowwise", "modulation" or "replicated"
    layout: ShardLayout | None  # layout of the sharded dimension; None when replicated
    reason: str = ""

    @property
    def dim(self) -> int:
        """The weight dimension that is split (0: output rows, 1: input columns)."""
        return 1 if self.style == "rowwise" else 0

    def local_shape(self) -> tuple[int, int]:
        """``(out_features, in_features)`` of each rank's shard."""
        out, inp = self.module.out_features, self.module.in_features
        if self.layout is None:
            return out, inp
        return (out, self.layout.local_size) if self.dim == 1 else (self.layout.local_size, inp)

    def torch_style(self) -> ColwiseParallel | RowwiseParallel:
        if self.style == "rowwise":
            return RowwiseParallel()
        if self.style == "modulation":
            return ColwiseParallel(output_layouts=Replicate())
        return ColwiseParallel()


def plan_linears(
    block_path: str, block: nn.Module, plan: BlockPlan, geometry: BlockGeometry
) -> list[LinearShard]:
    """The :class:`LinearShard` of every layer ``plan`` names that exists in ``block``."""
    shards = []
    for rel, style in plan.layers.items():
        module = _get(block, rel)
        if module is None:
            continue
        path = f"{block_path}.{rel}"
        if not isinstance(module, nn.Linear):
            raise TypeError(
                f"{path} is a {type(module).__name__}; a tensor-parallel plan "
                "shards nn.Linear layers only"
            )
        if isinstance(style, Modulation):
            out = module.out_features
            if out % geometry.world:
                reason = f"out_features={out} does not divide tp={geometry.world}"
                shards.append(LinearShard(path, module, "replicated", None, reason))
            else:
                layout = ShardLayout.build([("ffn", out)], geometry.world)
                shards.append(LinearShard(path, module, "modulation", layout))
            continue
        rowwise = isinstance(style, Rowwise)
        assert isinstance(style, Colwise | Rowwise)
        total = module.in_features if rowwise else module.out_features
        try:
            layout = geometry.layout(style.parts, total)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        shards.append(LinearShard(path, module, "rowwise" if rowwise else "colwise", layout))
    return shards


def iter_blocks(
    model: nn.Module, plan: TensorParallelPlan
) -> Iterator[tuple[str, nn.Module, BlockPlan]]:
    """Every ``(path, block, block_plan)`` of ``model``; a required pattern must match."""
    for block_plan in plan.blocks:
        matches = match_modules(model, block_plan.blocks)
        if not matches and block_plan.required:
            raise ValueError(
                f"tensor-parallel plan {plan.name!r}: no module of {type(model).__name__} "
                f"matches {block_plan.blocks!r}; pass a plan that fits this model"
            )
        for path, block in matches:
            yield path, block, block_plan


def _relayout_param(module: nn.Module, name: str, dim: int, layout: ShardLayout) -> None:
    param = getattr(module, name, None)
    if param is None or layout.identity:
        return
    index = layout.index()
    new = relayout(param.detach(), dim, index)
    setattr(module, name, nn.Parameter(new, requires_grad=param.requires_grad))
    module._ditkit_tp_index = {**getattr(module, "_ditkit_tp_index", {}), name: (dim, index)}


def _prepare(shard: LinearShard) -> None:
    """Re-lay out the weight (and a colwise bias) so an even ``Shard`` is the right split."""
    if shard.layout is None:
        return
    _relayout_param(shard.module, "weight", shard.dim, shard.layout)
    if shard.dim == 0:
        _relayout_param(shard.module, "bias", 0, shard.layout)
        shard.module.out_features = shard.layout.global_size
    else:
        shard.module.in_features = shard.layout.global_size


def _rescale_attrs(block: nn.Module, plan: BlockPlan, geometry: BlockGeometry) -> None:
    targets = [(f"{attn}.{name}", "heads") for attn in plan.attention for name in ATTENTION_ATTRS]
    for dotted, kind in [*targets, *plan.attrs.items()]:
        owner_path, _, name = dotted.rpartition(".")
        owner = _get(block, owner_path) if owner_path else block
        value = getattr(owner, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            setattr(owner, name, geometry.local_attr(value, kind))


def _shard_norms(
    block: nn.Module, plan: BlockPlan, geometry: BlockGeometry, mesh: DeviceMesh, src: int | None
) -> None:
    if geometry.heads == 1:
        return  # per-head and full-width norms coincide
    for attn_path in plan.attention:
        attn = _get(block, attn_path)
        for name, child in list(attn.named_children()) if attn is not None else []:
            if norm_width(child) != geometry.inner:
                continue
            if not is_rms_norm(child):
                raise ValueError(
                    f"{type(block).__name__}.{attn_path}.{name} is a {type(child).__name__} over "
                    "all heads; tensor parallelism supports only RMSNorm there"
                )
            setattr(attn, name, ShardedRMSNorm.from_norm(child, geometry.heads_layout, mesh, src))


def _slice_head_outputs(module: nn.Module, layout: ShardLayout, rank: int) -> None:
    index = layout.index(rank)

    def hook(_module: nn.Module, _args: Any, output: Any) -> Any:
        def local(value: Any) -> Any:
            if isinstance(value, torch.Tensor) and value.shape[-1] == layout.size:
                return relayout(value, value.dim() - 1, index)
            return value

        if isinstance(output, tuple | list):
            return type(output)(local(v) for v in output)
        return local(output)

    module.register_forward_hook(hook)


def shard_transformer(
    model: nn.Module,
    plan: TensorParallelPlan,
    mesh: DeviceMesh,
    *,
    align: int = 1,
    src_data_rank: int | None = 0,
) -> list[LinearShard]:
    """Shard ``model`` in place by ``plan`` on the 1-D ``mesh``; returns what was done."""
    world = mesh.size()
    shards: list[LinearShard] = []
    first: BlockGeometry | None = None
    padded: set[tuple[int, int]] = set()
    for path, block, block_plan in iter_blocks(model, plan):
        geometry = block_geometry(block, block_plan, world, align)
        first = first or geometry
        if geometry.padded_heads != geometry.heads:
            padded.add((geometry.heads, geometry.padded_heads))
        block_shards = plan_linears(path, block, block_plan, geometry)
        for shard in block_shards:
            _prepare(shard)
        styles = {s.path[len(path) + 1 :]: s.torch_style() for s in block_shards if s.layout}
        before = {id(s.module): hook_keys(s.module) for s in block_shards if s.layout}
        parallelize_module(block, mesh, styles, src_data_rank=src_data_rank)
        for shard in block_shards:
            if shard.layout is not None:
                localize(shard.module, shard.style, mesh, before[id(shard.module)])
        _rescale_attrs(block, block_plan, geometry)
        _shard_norms(block, block_plan, geometry, mesh, src_data_rank)
        shards.extend(block_shards)
    for heads, padded_heads in sorted(padded):
        warnings.warn(
            f"{type(model).__name__}: {heads} attention heads do not divide tp={world}; padded "
            f"with zero heads to {padded_heads} ({padded_heads // world} per rank). Outputs are "
            f"exact; attention and its projections cost {padded_heads}/{heads} of an even split.",
            stacklevel=3,
        )
    if plan.head_outputs and first is not None:
        rank = mesh.get_local_rank()
        for module_path in plan.head_outputs:
            target = _get(model, module_path)
            if target is None:
                raise ValueError(
                    f"plan {plan.name!r}: head_outputs module {module_path!r} "
                    f"not found in {type(model).__name__}"
                )
            _slice_head_outputs(target, first.heads_layout, rank)
    return shards
