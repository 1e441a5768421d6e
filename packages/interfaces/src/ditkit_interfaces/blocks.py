"""Block specs: per-model knowledge as data.

A :class:`BlockSpec` says where one list of transformer blocks lives and how its blocks are
called; a :class:`TransformerSpec` groups the block lists of one transformer class with the
facts the cache needs (whether CFG runs as a separate call, which attributes become empty while
the cached forward runs). Specs are plain, reviewable data: a model family is added by writing
one, not by branching code.

Example:
    >>> from ditkit_interfaces.blocks import BlockSpec, TransformerSpec
    >>> from ditkit_interfaces.patterns import ForwardPattern
    >>> flux = TransformerSpec(
    ...     transformer_class="FluxTransformer2DModel",
    ...     blocks=(
    ...         BlockSpec("transformer_blocks", ForwardPattern.Pattern_1),
    ...         BlockSpec("single_transformer_blocks", ForwardPattern.Pattern_1),
    ...     ),
    ... )
    >>> flux.block_names()
    ('transformer_blocks', 'single_transformer_blocks')
"""

from __future__ import annotations

import dataclasses

from .errors import ConfigError
from .patterns import ForwardPattern

__all__ = ["BlockSpec", "TransformerSpec"]


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One list of blocks inside a transformer.

    Args:
        attribute (`str`): dotted path from the transformer to the ``nn.ModuleList``.
        forward_pattern (`ForwardPattern`): how each block is called and what it returns.
        dummy (`bool`, defaults to `False`): the list is emptied while the cached forward runs
            (its blocks were merged into another list by a patch functor).
    """

    attribute: str
    forward_pattern: ForwardPattern
    dummy: bool = False

    def __post_init__(self) -> None:
        if not self.attribute or not all(part.isidentifier() for part in self.attribute.split(".")):
            raise ConfigError(
                "BlockSpec.attribute",
                self.attribute,
                "a dotted attribute path such as 'transformer_blocks'",
            )
        object.__setattr__(self, "forward_pattern", ForwardPattern.coerce(self.forward_pattern))


@dataclasses.dataclass(frozen=True)
class TransformerSpec:
    """What the cache needs to know about one transformer class.

    Args:
        transformer_class (`str`): the class name (or class-name prefix) it applies to.
        blocks (`tuple[BlockSpec, ...]`): the cached block lists, in call order.
        has_separate_cfg (`bool`, defaults to `False`): the pipeline calls the transformer
            twice per step (conditional, then unconditional), so each branch needs its own cache.
        patch_functor (`str`, *optional*): name of a forward rewrite the cache applies first.
        check_forward_pattern (`bool`, defaults to `True`): check the blocks' forward signatures
            against their patterns; off for models whose blocks name their inputs differently
            (the spec's author has checked the calling convention by hand).
    """

    transformer_class: str
    blocks: tuple[BlockSpec, ...]
    has_separate_cfg: bool = False
    patch_functor: str | None = None
    check_forward_pattern: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.blocks))
        if not self.blocks:
            raise ConfigError("TransformerSpec.blocks", (), "at least one BlockSpec")
        names = [b.attribute for b in self.blocks]
        if len(set(names)) != len(names):
            raise ConfigError("TransformerSpec.blocks", names, "distinct block attributes")

    def block_names(self, include_dummy: bool = True) -> tuple[str, ...]:
        return tuple(b.attribute for b in self.blocks if include_dummy or not b.dummy)

    def forward_patterns(self) -> tuple[ForwardPattern, ...]:
        return tuple(b.forward_pattern for b in self.blocks if not b.dummy)
