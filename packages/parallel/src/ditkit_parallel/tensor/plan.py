"""Tensor-parallel plans as data: module-path patterns mapped to sharding styles.

A :class:`TensorParallelPlan` lists, per kind of transformer block, which linear layers are
split by output rows (:class:`Colwise`), by input columns (:class:`Rowwise`), or split and
gathered back (:class:`Modulation`, for AdaLN linears whose output every rank needs whole).
The styles become ``torch.distributed.tensor.parallel`` ``ColwiseParallel`` /
``RowwiseParallel`` when the plan is applied (:mod:`.shard`); here they only say *what* a
dimension is made of, so a fused layer shards part by part:

* ``"heads"`` parts are ``heads * head_dim`` wide and split in whole heads;
* ``"ffn"`` parts share the rest of the dimension equally and split channel by channel.

``Colwise(("heads", "heads", "heads", "ffn", "ffn"))`` is Flux.2's fused
``[q | k | v | mlp_gate | mlp_up]`` projection; ``Rowwise(("heads", "ffn"))`` the
``[attention | mlp]`` input of Flux's single-block ``proj_out``.

Example:
    >>> plan = BlockPlan("blocks.*", {"attn.to_q": Colwise(), "attn.to_out.0": Rowwise()})
    >>> plan.layers["attn.to_q"].parts, plan.attention
    (('heads',), ('attn',))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from .layout import PART_KINDS

__all__ = [
    "ATTENTION_ATTRS",
    "BlockPlan",
    "Colwise",
    "Modulation",
    "Rowwise",
    "Style",
    "TensorParallelPlan",
    "part_sizes",
]

#: attention attributes rescaled to the local head count whenever an attention module has them
#: (processors reshape with them): ``value // heads * local_heads``.
ATTENTION_ATTRS = ("heads", "inner_dim", "inner_kv_dim", "kv_inner_dim", "sliceable_head_dim")


def _check_parts(parts: tuple[str, ...]) -> None:
    if not parts or any(kind not in PART_KINDS for kind in parts):
        raise ValueError(f"parts={parts!r}: expected a non-empty tuple of {PART_KINDS}")


@dataclasses.dataclass(frozen=True)
class Colwise:
    """Split the output rows (``ColwiseParallel``); the output stays sharded on the last dim."""

    parts: tuple[str, ...] = ("heads",)

    def __post_init__(self) -> None:
        _check_parts(self.parts)


@dataclasses.dataclass(frozen=True)
class Rowwise:
    """Split the input columns (``RowwiseParallel``); the partial outputs are all-reduced."""

    parts: tuple[str, ...] = ("heads",)

    def __post_init__(self) -> None:
        _check_parts(self.parts)


@dataclasses.dataclass(frozen=True)
class Modulation:
    """An AdaLN modulation linear: colwise, then all-gathered so every rank has it whole.

    It is left replicated when its output size does not divide the TP degree (it is small
    beside the attention and MLP, and gathering needs equal shards).
    """


Style = Colwise | Rowwise | Modulation


@dataclasses.dataclass(frozen=True)
class BlockPlan:
    """How every block matching ``blocks`` is sharded.

    Args:
        blocks: a module-path pattern relative to the transformer; ``*`` matches one path
            segment (``"transformer_blocks.*"``).
        layers: relative path of a linear inside the block → its :data:`Style`. Paths missing
            from a block are skipped (blocks of one list can differ, e.g. Wan's image
            cross-attention projections exist only in I2V models).
        attention: relative paths of the block's attention modules. The first defines the
            head count and head size of the ``"heads"`` parts; every listed one gets its
            :data:`ATTENTION_ATTRS` rescaled, and its norms over the full ``heads * head_dim``
            width replaced by a norm that all-reduces its statistics.
        attrs: extra ``"relative.path.attribute"`` → part kind, rescaled to the local size
            (``"ffn"``: the local share of an MLP of that width; ``"heads"``: ``value //
            heads * local_heads``), e.g. Flux.2's ``attn.mlp_hidden_dim`` that its processor
            uses to split the fused projection.
        required: whether ``blocks`` must match at least one module (``False`` for optional
            block lists such as Z-Image's SigLIP refiner).
    """

    blocks: str
    layers: Mapping[str, Style]
    attention: tuple[str, ...] = ("attn",)
    attrs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    required: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", MappingProxyType(dict(self.layers)))
        object.__setattr__(self, "attrs", MappingProxyType(dict(self.attrs)))
        for path, style in self.layers.items():
            if not isinstance(style, Colwise | Rowwise | Modulation):
                raise TypeError(
                    f"BlockPlan({self.blocks!r}).layers[{path!r}]={style!r}: "
                    "expected Colwise, Rowwise or Modulation"
                )
        for path, kind in self.attrs.items():
            if kind not in PART_KINDS:
                raise ValueError(
                    f"BlockPlan({self.blocks!r}).attrs[{path!r}]={kind!r}: "
                    f"expected one of {PART_KINDS}"
                )
        if not self.attention:
            raise ValueError(f"BlockPlan({self.blocks!r}).attention: name at least one module")


@dataclasses.dataclass(frozen=True)
class TensorParallelPlan:
    """Everything tensor parallelism changes in one transformer class.

    Args:
        name: the family, for messages.
        blocks: one :class:`BlockPlan` per kind of block; each must match at least one module.
        head_outputs: module paths (relative to the transformer) whose tensor outputs span all
            heads on their last dimension and are consumed inside the attention, e.g. LTX's
            rotary embedding of width ``heads * head_dim``; each rank keeps its heads' slice.
        notes: what the plan leaves replicated, and why.
    """

    name: str
    blocks: tuple[BlockPlan, ...]
    head_outputs: tuple[str, ...] = ()
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.blocks:
            raise ValueError(f"TensorParallelPlan({self.name!r}): no blocks")


def part_sizes(parts: tuple[str, ...], total: int, inner: int) -> list[tuple[str, int]]:
    """Sizes of ``parts`` along a dimension of ``total``: each ``"heads"`` part is ``inner``
    wide, the ``"ffn"`` parts share the rest equally.

    Example:
        >>> part_sizes(("heads", "heads", "heads", "ffn", "ffn"), 3 * 8 + 2 * 20, 8)
        [('heads', 8), ('heads', 8), ('heads', 8), ('ffn', 20), ('ffn', 20)]
    """
    heads = parts.count("heads")
    ffn = len(parts) - heads
    rest = total - heads * inner
    if rest < 0 or (ffn == 0 and rest) or (ffn and rest % ffn):
        raise ValueError(
            f"a dimension of {total} cannot hold the parts {parts} with heads * head_dim = "
            f"{inner}: the plan does not match this layer"
        )
    each = rest // ffn if ffn else 0
    return [(kind, inner if kind == "heads" else each) for kind in parts]
