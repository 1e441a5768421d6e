"""DBPrune: skip individual blocks whose input barely changed since they last ran.

Per transformer call, every block outside the first ``Fn``, the last ``Bn`` and
``non_prune_block_ids`` compares its input hidden states with its input at the last step it ran
(relative L1, the same limits as DBCache); below the threshold it is skipped and its stored
residual is added instead. With ``enable_dynamic_prune_threshold`` the threshold rises within a
step to ``relax_ratio`` × the mean of the step's first five positive diffs, capped (cache-dit
1.5.3, reference §3.5).

Unlike cache-dit, the set of never-pruned blocks is computed from the context's current config
(cache-dit memoised it with ``functools.lru_cache`` on a method, so a refresh with a new ``Fn``
kept the old set) — see docs/compat.md.

Example:
    >>> import torch
    >>> from ditkit_interfaces import DBPruneConfig, ForwardPattern
    >>> ctx = PruneContext("b", DBPruneConfig(Fn_compute_blocks=1, max_warmup_steps=1,
    ...                                       residual_diff_threshold=0.5))
    >>> blocks = PrunedBlocks("b", [torch.nn.Identity()] * 4, ForwardPattern.Pattern_3, lambda: ctx)
    >>> _ = [blocks(torch.ones(1, 2)) for _ in range(3)]
    >>> ctx.cond.cached_steps, ctx.pruned_blocks
    ([1, 2], [0, 3, 3])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ditkit_interfaces import BasicCacheConfig, ConfigError, DBPruneConfig, ForwardPattern

from .blocks import pack_output, split_block_output, take_encoder
from .context import CacheContext

__all__ = ["PruneContext", "PrunedBlocks", "check_prune_config"]


def check_prune_config(config: BasicCacheConfig) -> None:
    """DBPrune needs a :class:`DBPruneConfig` (it carries the prune-only fields)."""
    if not isinstance(config, DBPruneConfig):
        raise ConfigError(
            "cache_config",
            type(config).__name__,
            "a DBPruneConfig for cache_type=DBPrune",
            fix="use DBPruneConfig(...) instead of DBCacheConfig(cache_type='DBPrune')",
        )


class PruneContext(CacheContext):
    """A :class:`CacheContext` whose decisions are per block (diffs are lists per step)."""

    shares_cfg_diff = False  # each block decides on its own input: no single diff to share

    def __init__(self, name: str, cache_config: DBPruneConfig, **kwargs: Any) -> None:
        self.calibrator_builder: Callable[[], Any] | None = kwargs.pop("calibrator_builder", None)
        super().__init__(name, cache_config, **kwargs)
        self.pruned_blocks: list[int] = []
        self.actual_blocks: list[int] = []
        self.cfg_pruned_blocks: list[int] = []
        self.cfg_actual_blocks: list[int] = []
        self.step_diffs: dict[tuple[bool, int], list[float]] = {}

    def protected_blocks(self, count: int) -> frozenset[int]:
        """Blocks that always run: the first ``Fn``, the last ``Bn`` and ``non_prune_block_ids``."""
        config = self.config
        first = min(config.Fn_compute_blocks, count)
        last = min(config.Bn_compute_blocks, count)
        extra = config.non_prune_block_ids or []
        return frozenset([*range(first), *range(count - last, count), *extra])

    def mark_step_begin(self) -> None:
        super().mark_step_begin()
        if self.current_transformer_step == 0:
            for stats in (self.pruned_blocks, self.actual_blocks):
                stats.clear()

    def add_residual_diff(self, diff: float) -> None:
        """DBPrune keeps every block's diff, as a list per step; nothing accumulates."""
        key = (self.is_cfg_step(), self.current_step)
        self.step_diffs.setdefault(key, []).append(diff)
        self.branch.residual_diffs[self.current_step] = self.step_diffs[key]

    def step_threshold(self) -> float:
        config = self.config
        if not config.enable_dynamic_prune_threshold:
            return self.threshold
        diffs = self.step_diffs.get((self.is_cfg_step(), self.current_step), [])[:5]
        diffs = [d for d in diffs if d > 0.0]
        if not diffs:
            return self.threshold
        relaxed = sum(diffs) / len(diffs) * config.dynamic_prune_threshold_relax_ratio
        cap = config.max_dynamic_prune_threshold
        cap = 2 * self.threshold if cap is None else cap
        return max(relaxed, self.threshold) if relaxed < cap else self.threshold

    @torch.compiler.disable
    def can_prune(
        self, block: int, hidden: torch.Tensor, encoder: torch.Tensor | None = None
    ) -> bool:
        """Compare ``hidden``, block ``block``'s input, with its input at its last computed step
        (streams of other shapes than then: compute)."""
        shapes = (hidden.shape, None if encoder is None else encoder.shape)
        key = f"input_{block}"
        return self.can_cache(hidden, self.step_threshold(), previous_key=key, shapes=shapes)

    @torch.compiler.disable
    def add_pruned_step(self) -> None:
        if self.current_step not in self.branch.cached_steps:
            self.add_cached_step()

    @torch.compiler.disable
    def record_blocks(self, pruned: int, actual: int) -> None:
        cfg = self.is_cfg_step()
        (self.cfg_pruned_blocks if cfg else self.pruned_blocks).append(pruned)
        (self.cfg_actual_blocks if cfg else self.actual_blocks).append(actual)

    @torch.compiler.disable
    def store_block(self, stream: str, block: int, value: torch.Tensor) -> None:
        key = f"{stream}_{block}"
        calibrators = self.branch.calibrators
        if self.calibrator_builder is not None and key not in calibrators:
            calibrators[key] = self.calibrator_builder()
            calibrators[key].mark_step_begin(self.current_step)
        self.store(key, key, value)

    def stats(self) -> dict[str, Any]:
        stats = super().stats()
        pruned, actual = sum(self.pruned_blocks), sum(self.actual_blocks)
        cfg_pruned, cfg_actual = sum(self.cfg_pruned_blocks), sum(self.cfg_actual_blocks)
        stats.update(
            residual_diffs={str(k): list(v) for k, v in self.cond.residual_diffs.items()},
            cfg_residual_diffs={str(k): list(v) for k, v in self.cfg.residual_diffs.items()},
            pruned_steps=list(self.cond.cached_steps),
            pruned_blocks=list(self.pruned_blocks),
            actual_blocks=list(self.actual_blocks),
            pruned_ratio=pruned / actual if actual else 0.0,
            cfg_pruned_steps=list(self.cfg.cached_steps),
            cfg_pruned_blocks=list(self.cfg_pruned_blocks),
            cfg_actual_blocks=list(self.cfg_actual_blocks),
            cfg_pruned_ratio=cfg_pruned / cfg_actual if cfg_actual else None,
        )
        return stats


class PrunedBlocks(torch.nn.Module):
    """Runs one block list with DBPrune (same calling convention as ``CachedBlocks``)."""

    def __init__(
        self,
        name: str,
        blocks: Sequence[torch.nn.Module],
        pattern: ForwardPattern,
        context: Callable[[], PruneContext],
    ) -> None:
        super().__init__()
        self.name = name
        object.__setattr__(self, "blocks", tuple(blocks))
        self.pattern = pattern
        self.context = context

    @torch.compiler.disable(recursive=False)
    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        encoder, args = take_encoder(self.pattern, args, kwargs)
        ctx = self.context()
        ctx.mark_step_begin()
        protected = ctx.protected_blocks(len(self.blocks))
        pruned = 0
        hidden = hidden_states
        for index, block in enumerate(self.blocks):
            prunable = index not in protected
            hit = prunable and ctx.can_prune(index, hidden, encoder)
            if ctx.request.restart:  # this call starts a new request: fresh state, compute
                ctx = self.context()
                ctx.mark_step_begin()
                hit = False
            if hit:
                ctx.add_pruned_step()
                pruned += 1
                hidden, encoder = self._apply_stored(ctx, index, hidden, encoder)
                continue
            before, encoder_before = hidden, encoder
            if self.pattern.takes_encoder:
                output = block(hidden, encoder, *args, **kwargs)
            else:
                output = block(hidden, *args, **kwargs)
            hidden, encoder = split_block_output(self.pattern, output, encoder)
            if prunable:
                ctx.branch.buffers[f"input_{index}"] = before
                residual = ctx.cache_residual
                ctx.store_block("hidden", index, hidden - before if residual else hidden)
                if encoder is not None and encoder_before is not None:
                    value = encoder - encoder_before if residual else encoder
                    ctx.store_block("encoder", index, value)
        ctx.record_blocks(pruned, len(self.blocks))
        return pack_output(self.pattern, hidden, encoder)

    @staticmethod
    def _apply_stored(
        ctx: PruneContext, index: int, hidden: torch.Tensor, encoder: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        key = f"hidden_{index}"
        stored = ctx.recall(key, key)
        hidden = hidden + stored if ctx.cache_residual else stored
        if encoder is not None:
            key = f"encoder_{index}"
            stored_encoder = ctx.recall(key, key)
            if stored_encoder is not None:
                encoder = encoder + stored_encoder if ctx.cache_residual else stored_encoder
        return hidden, encoder
