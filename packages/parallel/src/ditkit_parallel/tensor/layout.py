"""Index arithmetic that lets a plain even ``Shard`` give every rank a whole share of each part.

A sharded dimension of a linear layer (the output rows of a colwise layer, the input columns of
a rowwise one) is often a concatenation of *parts*: ``[q | k | v | mlp_gate | mlp_up]`` in a
fused projection, ``[attention | mlp]`` at the input of Flux's single-block ``proj_out``. DTensor's
``Shard(dim)`` cuts the whole dimension into ``world`` contiguous, equal chunks, which would hand
rank 0 all of ``q`` and rank 1 all of ``k``. A :class:`ShardLayout` re-orders (and, where a part
does not divide, zero-pads) the dimension so that chunk ``r`` is ``[q_r | k_r | v_r | …]``:

* a part is split in *units* (``head_dim`` for attention heads, 1 for MLP channels), so a rank
  never holds half a head;
* a part whose unit count does not divide ``world`` is padded with zero units up to the next
  multiple (``3`` heads on 2 ranks become ``2 + 2``, the last one all zeros); zero query, key and
  value rows and zero output columns contribute exactly nothing, so outputs stay exact;
* ``align`` rounds every rank's share of an ``"ffn"`` part up to a multiple of ``align``
  elements (``align=16`` keeps each local MLP shard usable by float8 GEMMs); heads are never
  padded for alignment (every supported model has a head size that is a multiple of 16).

The layout is a permutation with holes: :meth:`ShardLayout.index` maps every position of the new
dimension to its source position, or ``-1`` for padding. :func:`relayout` applies it and
:func:`restore` undoes it.

Example:
    >>> layout = ShardLayout.build([("heads", 4), ("ffn", 3)], world=2, unit=2)
    >>> layout.index().tolist()  # rank 0: head 0 + ffn 0-1, rank 1: head 1 + ffn 2 + pad
    [0, 1, 4, 5, 2, 3, 6, -1]
    >>> layout.local_size, layout.padded
    (4, True)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch

__all__ = ["LayoutPart", "ShardLayout", "local_units", "relayout", "restore"]

#: kinds of parts; "heads" parts are split in whole heads, "ffn" parts in single channels.
PART_KINDS = ("heads", "ffn")


def local_units(units: int, world: int, unit: int = 1, align: int = 1) -> int:
    """How many units each rank holds of a part of ``units`` units (padding included).

    The smallest ``n >= ceil(units / world)`` with ``n * unit`` a multiple of ``align``.

    Example:
        >>> local_units(3, 2), local_units(40, 16, unit=1, align=16), local_units(5, 2, 8, 32)
        (2, 16, 4)
    """
    if units < 0 or world < 1 or unit < 1 or align < 1:
        raise ValueError(f"local_units({units}, {world}, {unit}, {align}): sizes must be positive")
    count = math.ceil(units / world)
    step = align // math.gcd(align, unit)  # units per aligned group
    return math.ceil(count / step) * step


@dataclasses.dataclass(frozen=True)
class LayoutPart:
    """One part of a sharded dimension: ``size`` elements made of ``size // unit`` units."""

    kind: str
    size: int
    unit: int
    local: int  # elements of this part on every rank (padding included)


@dataclasses.dataclass(frozen=True)
class ShardLayout:
    """The parts of one dimension and how they are spread over ``world`` ranks.

    Build it with :meth:`build`; :attr:`local_size` is each rank's chunk, :attr:`global_size`
    the padded dimension that DTensor sees (``world * local_size``), :attr:`size` the original.
    """

    parts: tuple[LayoutPart, ...]
    world: int

    @classmethod
    def build(
        cls,
        parts: Sequence[tuple[str, int]],
        world: int,
        unit: int = 1,
        align: int = 1,
    ) -> ShardLayout:
        """Lay out ``parts`` (``(kind, size)`` in order) for ``world`` ranks.

        ``unit`` is the head dimension used by ``"heads"`` parts; ``"ffn"`` parts use 1 and are
        rounded up to ``align`` elements per rank.
        """
        built = []
        for kind, size in parts:
            if kind not in PART_KINDS:
                raise ValueError(f"unknown part kind {kind!r}; expected one of {PART_KINDS}")
            part_unit = unit if kind == "heads" else 1
            if size % part_unit:
                raise ValueError(f"a {kind!r} part of {size} is not a whole number of {part_unit}")
            part_align = align if kind == "ffn" else 1  # heads are never padded for alignment
            count = local_units(size // part_unit, world, part_unit, part_align)
            built.append(LayoutPart(kind, size, part_unit, count * part_unit))
        return cls(tuple(built), world)

    @property
    def size(self) -> int:
        return sum(part.size for part in self.parts)

    @property
    def local_size(self) -> int:
        return sum(part.local for part in self.parts)

    @property
    def global_size(self) -> int:
        return self.local_size * self.world

    @property
    def padded(self) -> bool:
        return self.global_size != self.size

    @property
    def identity(self) -> bool:
        """True when the layout changes nothing (one part, no padding)."""
        return len(self.parts) == 1 and not self.padded

    def index(self, rank: int | None = None) -> torch.Tensor:
        """Source position of every position of the new dimension (``-1`` for padding).

        With ``rank``, only that rank's chunk (``local_size`` entries).
        """
        ranks = range(self.world) if rank is None else [rank]
        pieces = []
        for r in ranks:
            offset = 0
            for part in self.parts:
                local = torch.arange(r * part.local, (r + 1) * part.local)
                pieces.append(torch.where(local < part.size, local + offset, -1))
                offset += part.size
        return torch.cat(pieces) if pieces else torch.empty(0, dtype=torch.long)


def relayout(tensor: torch.Tensor, dim: int, index: torch.Tensor) -> torch.Tensor:
    """Gather ``tensor`` along ``dim`` by ``index``; ``-1`` entries become zeros.

    Example:
        >>> relayout(torch.tensor([1.0, 2.0, 3.0]), 0, torch.tensor([2, -1, 0])).tolist()
        [3.0, 0.0, 1.0]
    """
    index = index.to(tensor.device)
    valid = index >= 0
    shape = list(tensor.shape)
    shape[dim] = index.numel()
    out = tensor.new_zeros(shape)
    out.index_copy_(dim, valid.nonzero().flatten(), tensor.index_select(dim, index[valid]))
    return out


def restore(tensor: torch.Tensor, dim: int, index: torch.Tensor) -> torch.Tensor:
    """Undo :func:`relayout`: the original tensor, padding dropped and order restored.

    Example:
        >>> index = torch.tensor([2, -1, 0, 1])
        >>> restore(relayout(torch.tensor([1.0, 2.0, 3.0]), 0, index), 0, index).tolist()
        [1.0, 2.0, 3.0]
    """
    index = index.to(tensor.device)
    valid = (index >= 0).nonzero().flatten()
    inverse = torch.empty_like(valid)
    inverse[index[valid]] = valid
    return tensor.index_select(dim, inverse)
