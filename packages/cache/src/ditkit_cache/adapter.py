"""``BlockAdapter``: which blocks of which transformer(s) to cache, and how they are called.

The fields are cache-dit's. A pipeline, one transformer or several (Wan 2.2's two experts),
each with one or several block lists (Flux's double and single blocks, HiDream's two streams),
each list with its own :class:`~ditkit_interfaces.ForwardPattern` and, optionally, its own
:class:`~ditkit_cache.params.ParamsModifier`. ``auto=True`` finds the block list by name.

Everything is checked by :meth:`BlockAdapter.resolve` before anything is patched; a mismatch
raises :class:`~ditkit_interfaces.AdapterError` saying what to change.

Example:
    >>> import torch
    >>> from ditkit_interfaces import ForwardPattern
    >>> class Block(torch.nn.Module):
    ...     def forward(self, hidden_states, encoder_hidden_states, temb=None):
    ...         return encoder_hidden_states, hidden_states
    >>> class Model(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.transformer_blocks = torch.nn.ModuleList(Block() for _ in range(4))
    >>> model = Model()
    >>> adapter = BlockAdapter(transformer=model, blocks=model.transformer_blocks,
    ...                        forward_pattern=ForwardPattern.Pattern_1)
    >>> [(t.blocks_name, len(t.blocks)) for t in adapter.resolve()[0].lists]
    [('transformer_blocks', 4)]
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import torch

from ditkit_interfaces import AdapterError, ConfigError, ForwardPattern

__all__ = ["BlockAdapter", "FakeDiffusionPipeline", "ResolvedList", "ResolvedTransformer"]

DEFAULT_PREFIXES = [
    "transformer",
    "single_transformer",
    "blocks",
    "layers",
    "single_stream_blocks",
    "double_stream_blocks",
]


class FakeDiffusionPipeline:
    """Stands in for a pipeline when only a transformer is given (transformer-only use)."""

    def __init__(self, transformer: torch.nn.Module | None = None) -> None:
        self.transformer = transformer


@dataclasses.dataclass
class ResolvedList:
    """One block list after resolution: what the cache installs."""

    blocks_name: str
    blocks: list[torch.nn.Module]
    forward_pattern: ForwardPattern
    dummy_blocks_names: tuple[str, ...] = ()
    params_modifier: Any = None
    context_name: str = ""


@dataclasses.dataclass
class ResolvedTransformer:
    """One transformer and its resolved block lists."""

    transformer: torch.nn.Module
    lists: list[ResolvedList]


@dataclasses.dataclass
class BlockAdapter:
    """How to cache a pipeline or transformer (cache-dit's fields and defaults).

    Args:
        pipe: the pipeline (``None`` for transformer-only use).
        transformer: a transformer, or a list of them (one per expert).
        blocks: an ``nn.ModuleList``, a list of them, or (several transformers) a list of lists.
        blocks_name: the attribute name(s) of the lists; found by identity when omitted.
        unique_blocks_name: filled by :meth:`resolve` (context names).
        dummy_blocks_names: lists emptied during the forward (their blocks are merged into a
            cached list, e.g. Flux's ``single_transformer_blocks``).
        forward_pattern: one per block list (a single pattern applies to all).
        params_modifiers: one ``ParamsModifier`` per block list, in flattened order.
        check_forward_pattern: check each block's forward signature; ``None`` means "for
            transformers from diffusers".
        check_num_outputs: also check the number of ``torch.Tensor`` in the return annotation.
        patch_functor: a :class:`~ditkit_cache.patch_functor.PatchFunctor` applied first.
        has_separate_cfg: the pipeline runs CFG as a second transformer call per step.
        auto: find the block list automatically (by ``allow_prefixes``/``allow_suffixes``).
        blocks_policy: with ``auto``, take the ``"max"`` (longest) or ``"min"`` list.
        skip_post_init: accepted for compatibility (resolution is lazy in ditkit).
    """

    pipe: Any = None
    transformer: Any = None
    blocks: Any = None
    blocks_name: Any = None
    unique_blocks_name: list[str] = dataclasses.field(default_factory=list)
    dummy_blocks_names: list[str] = dataclasses.field(default_factory=list)
    forward_pattern: Any = None
    params_modifiers: Any = None
    check_forward_pattern: bool | None = None
    check_num_outputs: bool = False
    patch_functor: Any = None
    has_separate_cfg: bool = False
    auto: bool = False
    allow_prefixes: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_PREFIXES))
    check_prefixes: bool = True
    allow_suffixes: list[str] = dataclasses.field(default_factory=lambda: ["TransformerBlock"])
    check_suffixes: bool = False
    blocks_policy: str = "max"
    skip_post_init: bool = False

    def __post_init__(self) -> None:
        if self.pipe is None:
            first = self.transformer[0] if isinstance(self.transformer, list) else self.transformer
            self.pipe = FakeDiffusionPipeline(first)
        if self.blocks_policy not in ("max", "min"):
            raise AdapterError(
                f"BlockAdapter.blocks_policy={self.blocks_policy!r}: use 'max' or 'min'"
            )

    @property
    def is_transformer_only(self) -> bool:
        return isinstance(self.pipe, FakeDiffusionPipeline)

    def transformers(self) -> list[torch.nn.Module]:
        found = self.transformer
        if found is None:
            found = getattr(self.pipe, "transformer", None)
        if found is None:
            raise AdapterError(
                "BlockAdapter has no transformer: pass transformer=... (or a pipe that has one)"
            )
        return list(found) if isinstance(found, list | tuple) else [found]

    # -- resolution -----------------------------------------------------------------------------
    def resolve(self) -> list[ResolvedTransformer]:
        """Check everything and return the transformers with their block lists."""
        transformers = self.transformers()
        count = len(transformers)
        if self.auto:
            if self.forward_pattern is None:
                raise AdapterError("BlockAdapter(auto=True) needs forward_pattern=ForwardPattern.X")
            found = [self._find_blocks(t) for t in transformers]
            blocks = [[b] for b, _ in found]
            names = [[n] for _, n in found]
        else:
            if self.blocks is None:
                raise AdapterError("BlockAdapter needs blocks=... (or auto=True)")
            blocks = _per_transformer(self.blocks, count, "blocks")
            names = (
                [[None] * len(b) for b in blocks]
                if self.blocks_name is None
                else _per_transformer(self.blocks_name, count, "blocks_name")
            )
        patterns = _per_transformer(self.forward_pattern, count, "forward_pattern", broadcast=True)
        modifiers = self._modifiers(sum(len(b) for b in blocks))
        resolved, index = [], 0
        self.unique_blocks_name = []
        for t_index, transformer in enumerate(transformers):
            lists = []
            t_blocks, t_names = blocks[t_index], names[t_index]
            t_patterns = _broadcast(patterns[t_index], len(t_blocks), "forward_pattern")
            if len(t_names) != len(t_blocks):
                raise AdapterError(
                    f"BlockAdapter: {len(t_blocks)} block lists but {len(t_names)} blocks_name "
                    "entries; give one name per list"
                )
            for list_index, block_list in enumerate(t_blocks):
                pattern = _pattern(t_patterns[list_index])
                name = t_names[list_index] or _attribute_of(transformer, block_list)
                modules = _as_blocks(block_list, name)
                _check_blocks_name(transformer, name, modules)
                self._check_pattern(transformer, modules, pattern, name)
                dummies = tuple(self.dummy_blocks_names) if list_index == 0 else ()
                for dummy in dummies:
                    if not isinstance(_get_path(transformer, dummy), torch.nn.ModuleList):
                        raise AdapterError(
                            f"BlockAdapter.dummy_blocks_names: {dummy!r} is not a "
                            f"ModuleList of {type(transformer).__name__}; pass the name of "
                            "the attribute whose blocks were merged into the cached list"
                        )
                unique = name if count == 1 else f"{name}_{t_index}"
                lists.append(
                    ResolvedList(name, modules, pattern, dummies, modifiers[index], unique)
                )
                self.unique_blocks_name.append(unique)
                index += 1
            resolved.append(ResolvedTransformer(transformer, lists))
        return resolved

    def _modifiers(self, total: int) -> list[Any]:
        modifiers = self.params_modifiers
        if modifiers is None:
            return [None] * total
        if not isinstance(modifiers, list | tuple):
            modifiers = [modifiers]
        modifiers = list(modifiers)
        if len(modifiers) == 1 and total > 1:
            modifiers = modifiers * total
        for modifier in modifiers:
            if modifier is not None and not callable(getattr(modifier, "apply", None)):
                raise ConfigError(
                    "BlockAdapter.params_modifiers",
                    type(modifier).__name__,
                    "ParamsModifier entries",
                    fix="wrap configs as ParamsModifier(cache_config=DBCacheConfig().reset(...))",
                )
        if len(modifiers) != total:
            raise AdapterError(
                f"BlockAdapter.params_modifiers has {len(modifiers)} entries for {total} block "
                "lists; give one ParamsModifier per list (flattened order) or a single one"
            )
        return modifiers

    def _find_blocks(self, transformer: torch.nn.Module) -> tuple[torch.nn.ModuleList, str]:
        pattern = _pattern(
            self.forward_pattern
            if not isinstance(self.forward_pattern, list)
            else self.forward_pattern[0]
        )
        candidates = []
        for name, child in transformer.named_children():
            if not isinstance(child, torch.nn.ModuleList) or len(child) == 0:
                continue
            if self.check_prefixes and not any(name.startswith(p) for p in self.allow_prefixes):
                continue
            cls_name = type(child[0]).__name__
            if self.check_suffixes and not any(cls_name.endswith(s) for s in self.allow_suffixes):
                continue
            if _signature_problems(child[0], pattern, self.check_num_outputs):
                continue
            candidates.append((len(child), name, child))
        if not candidates:
            raise AdapterError(
                f"BlockAdapter(auto=True) found no block list in {type(transformer).__name__} "
                f"matching {pattern.name} with prefixes {self.allow_prefixes}; pass blocks= and "
                "blocks_name= explicitly"
            )
        pick = max if self.blocks_policy == "max" else min
        _, name, blocks = pick(candidates, key=lambda c: c[0])
        return blocks, name

    def _check_pattern(
        self,
        transformer: torch.nn.Module,
        blocks: list[torch.nn.Module],
        pattern: ForwardPattern,
        name: str,
    ) -> None:
        check = self.check_forward_pattern
        if check is None:
            check = type(transformer).__module__.startswith("diffusers")
        if not check:
            return
        for position, block in enumerate(blocks):
            problems = _signature_problems(block, pattern, self.check_num_outputs)
            if problems:
                raise AdapterError(
                    f"block {position} of {name!r} ({type(block).__name__}) does not fit "
                    f"{pattern.name}: {problems}. Pick the pattern whose inputs and outputs match "
                    "the block's forward, or pass check_forward_pattern=False"
                )


# -- helpers ---------------------------------------------------------------------------------
def _pattern(value: Any) -> ForwardPattern:
    try:
        return ForwardPattern.coerce(value)
    except ValueError as err:
        raise AdapterError(str(err)) from None


def _real_forward(block: torch.nn.Module) -> Any:
    inner = getattr(block, "block", None)  # wrappers such as checkpointing keep the block here
    if isinstance(inner, torch.nn.Module):
        block = inner
    return getattr(block, "_old_forward", block.forward)  # accelerate hooks keep the original


def _signature_problems(
    block: torch.nn.Module, pattern: ForwardPattern, check_outputs: bool
) -> str:
    try:
        signature = inspect.signature(_real_forward(block))
    except (TypeError, ValueError):
        return ""
    problems = []
    missing = pattern.missing_inputs(signature.parameters)
    if missing:
        problems.append(f"its forward lacks {', '.join(missing)}")
    annotation = signature.return_annotation
    outputs = str(annotation).count("torch.Tensor")
    single = annotation is torch.Tensor or annotation == "torch.Tensor"
    if (check_outputs and outputs and outputs != len(pattern.Out)) or (
        single and len(pattern.Out) == 2
    ):
        problems.append(f"it returns {outputs} tensor(s), the pattern {len(pattern.Out)}")
    return "; ".join(problems)


def _depth(value: Any) -> int:
    if isinstance(value, list | tuple) and not isinstance(value, torch.nn.ModuleList):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _per_transformer(
    value: Any, count: int, field: str, broadcast: bool = False
) -> list[list[Any]]:
    """Shape ``value`` as one list of entries per transformer."""
    depth = _depth(value)
    if depth == 0:
        if broadcast:
            return [[value] for _ in range(count)]
        if count != 1:
            raise AdapterError(f"BlockAdapter.{field}: give one entry per transformer ({count})")
        return [[value]]
    if depth == 1:
        return [list(value)] if count == 1 else [[v] for v in _check_len(value, count, field)]
    return [
        list(v) if isinstance(v, list | tuple) else [v] for v in _check_len(value, count, field)
    ]


def _check_len(value: Any, count: int, field: str) -> Any:
    if len(value) != count:
        raise AdapterError(
            f"BlockAdapter.{field} has {len(value)} entries for {count} transformers; "
            "give one per transformer"
        )
    return value


def _broadcast(values: list[Any], count: int, field: str) -> list[Any]:
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise AdapterError(
            f"BlockAdapter.{field}: {len(values)} entries for {count} block lists; one per list"
        )
    return values


def _as_blocks(value: Any, name: str) -> list[torch.nn.Module]:
    if isinstance(value, torch.nn.ModuleList | list | tuple):
        blocks = list(value)
        if blocks and all(isinstance(b, torch.nn.Module) for b in blocks):
            return blocks
    raise AdapterError(f"BlockAdapter.blocks for {name!r} must be a non-empty nn.ModuleList")


def _attribute_of(transformer: torch.nn.Module, blocks: Any) -> str:
    for name, module in transformer.named_modules():
        if module is blocks and name:
            return name
    raise AdapterError(
        f"BlockAdapter: the given blocks are not an attribute of {type(transformer).__name__}; "
        "pass blocks_name= (the attribute the transformer's forward iterates)"
    )


def _check_blocks_name(
    transformer: torch.nn.Module, name: str, blocks: list[torch.nn.Module]
) -> None:
    """``name`` must be a ModuleList of the transformer whose blocks are among ``blocks``."""
    attribute = _get_path(transformer, name)
    if not isinstance(attribute, torch.nn.ModuleList):
        raise AdapterError(
            f"BlockAdapter.blocks_name={name!r} is not a ModuleList of "
            f"{type(transformer).__name__}; name the attribute its forward iterates"
        )
    given = {id(block) for block in blocks}
    if not all(id(block) in given for block in attribute):
        raise AdapterError(
            f"BlockAdapter.blocks_name={name!r} names a list whose blocks are not the given "
            "blocks; pass the name of the list the blocks come from"
        )


def _get_path(root: torch.nn.Module, path: str) -> Any:
    value: Any = root
    for part in path.split("."):
        value = getattr(value, part, None)
    return value
