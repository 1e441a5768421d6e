"""``summary`` and ``strify``: what the cache did in the last request, and a run tag.

``summary(x)`` returns one :class:`CacheStats` per cached block list (every transformer that
``enable_cache`` cached: Wan 2.2's second expert, Ideogram 4's unconditional transformer), then
one transformer-level entry per transformer, and logs cache-dit's percentile table of the
residual diffs. Diffs are only real measurements: cache-dit mixed the sentinels -0.0/-1.0/-2.0
(threshold off, always cache, shape change) into them; ditkit records no diff in those cases, so
the percentiles describe the model (docs/compat.md).

Example:
    >>> _percentile([0.1, 0.2, 0.3, 0.4], 50)
    0.25
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import torch

from .state import get_cache, pipeline_caches

__all__ = ["CacheStats", "collect_caches", "strify", "summary"]

logger = logging.getLogger("ditkit_cache")


@dataclasses.dataclass
class CacheStats:
    """Statistics of one block list (or of a transformer), with cache-dit's field names."""

    cache_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    cached_steps: list[int] = dataclasses.field(default_factory=list)
    residual_diffs: dict[str, Any] = dataclasses.field(default_factory=dict)
    cfg_cached_steps: list[int] = dataclasses.field(default_factory=list)
    cfg_residual_diffs: dict[str, Any] = dataclasses.field(default_factory=dict)
    accumulated_cached_steps: int = 0
    cfg_accumulated_cached_steps: int = 0
    accumulated_executed_steps: int = 0
    accumulated_transformer_executed_steps: int = 0
    pruned_steps: list[int] = dataclasses.field(default_factory=list)
    pruned_blocks: list[int] = dataclasses.field(default_factory=list)
    actual_blocks: list[int] = dataclasses.field(default_factory=list)
    pruned_ratio: float | None = None
    cfg_pruned_steps: list[int] = dataclasses.field(default_factory=list)
    cfg_pruned_blocks: list[int] = dataclasses.field(default_factory=list)
    cfg_actual_blocks: list[int] = dataclasses.field(default_factory=list)
    cfg_pruned_ratio: float | None = None
    parallelism_config: Any = None
    quantize_config: Any = None
    name: str = ""


def collect_caches(obj: Any) -> list[Any]:
    """The :class:`~ditkit_cache.state.TransformerCache` objects reachable from ``obj``.

    For a pipeline: the caches ``enable_cache(pipe)`` installed, in order (every transformer it
    cached), then those of any other cached module the pipeline holds (a transformer cached on
    its own).
    """
    from .adapter import BlockAdapter

    if obj is None:
        return []
    if isinstance(obj, BlockAdapter):
        candidates = obj.transformers()
    elif get_cache(obj) is not None:
        candidates = [obj]
    else:
        caches = pipeline_caches(obj)
        held = [getattr(obj, "transformer", None), getattr(obj, "transformer_2", None)]
        held += list(vars(obj).values()) if hasattr(obj, "__dict__") else []
        for module in held:
            cache = get_cache(module) if isinstance(module, torch.nn.Module) else None
            if cache is not None and cache not in caches:
                caches.append(cache)
        return caches
    return [cache for cache in map(get_cache, candidates) if cache is not None]


def _stats_of(context: Any, options: dict[str, Any]) -> CacheStats:
    stats = CacheStats(cache_options=options, name=context.name)
    for key, value in context.stats().items():
        setattr(stats, key, value)
    return stats


def summary(
    obj: Any, details: bool = False, logging: bool = True, **kwargs: Any
) -> list[CacheStats]:
    """Statistics of the last request for every cached block list of ``obj``.

    Args:
        obj: a pipeline, a transformer, or a ``BlockAdapter``.
        details (`bool`, defaults to `False`): also log every cached step and diff.
        logging (`bool`, defaults to `True`): log the options and the percentile tables.
    """
    result: list[CacheStats] = []
    transformer_level: list[CacheStats] = []
    for cache in collect_caches(obj):
        first = None
        for block_list in cache.block_lists:
            context = cache.contexts.get(block_list.name)
            if context is None:
                continue
            options = {"cache_config": block_list.cache_config}
            if block_list.calibrator_config is not None:
                options["calibrator_config"] = block_list.calibrator_config
            stats = _stats_of(context, options)
            result.append(stats)
            first = first or stats
        if first is not None:
            transformer_level.append(
                dataclasses.replace(first, name=type(cache.transformer).__name__)
            )
    result.extend(transformer_level)
    if logging:
        for stats in result[: len(result) - len(transformer_level)] or result:
            _log(stats, details)
    return result


def strify(obj: Any) -> str:
    """A run tag: the cache config's tag (plus the calibrator's), e.g. ``DBCache_F1B0_..._T1O1``."""
    stats = summary(obj, logging=False)
    if not stats:
        return "NONE"
    options = stats[-1].cache_options
    tag = options["cache_config"].strify()
    calibrator = options.get("calibrator_config")
    if calibrator is not None:
        tag += f"_{calibrator.strify()}"
    if stats[-1].pruned_ratio is not None:
        tag += f"_P{round(100 * stats[-1].pruned_ratio, 2)}"
    return tag


def _percentile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default method)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


_COLUMNS = ("P00", "P25", "P50", "P75", "P95", "Min", "Max")


def _table(cached: int, diffs: list[float], title: str) -> str:
    header = "| Cache Steps | " + " | ".join(f"Diffs {c}" for c in _COLUMNS) + " |"
    row = [str(cached)]
    for q in (0, 25, 50, 75, 95):
        row.append(f"{round(_percentile(diffs, q), 3)}" if diffs else "-")
    row += [f"{round(min(diffs), 3)}", f"{round(max(diffs), 3)}"] if diffs else ["-", "-"]
    return f"{title}\n{header}\n|{'|'.join(['---'] * 8)}|\n| {' | '.join(row)} |"


def _flat(diffs: dict[str, Any]) -> list[float]:
    values: list[float] = []
    for value in diffs.values():
        values.extend(value if isinstance(value, list) else [value])
    return values


def _log(stats: CacheStats, details: bool) -> None:
    config = stats.cache_options.get("cache_config")
    logger.info("Cache context options (%s): %s", stats.name, config)
    logger.info("\n%s", _table(len(stats.cached_steps), _flat(stats.residual_diffs), stats.name))
    if stats.cfg_cached_steps or stats.cfg_residual_diffs:
        cfg = _table(
            len(stats.cfg_cached_steps), _flat(stats.cfg_residual_diffs), "CFG " + stats.name
        )
        logger.info("\n%s", cfg)
    if stats.pruned_ratio is not None:
        logger.info(
            "Dynamic Block Prune Ratio: %.2f%% (%d/%d)",
            100 * stats.pruned_ratio,
            sum(stats.pruned_blocks),
            sum(stats.actual_blocks),
        )
    if details:
        logger.info(
            "cached steps: %s\nresidual diffs: %s", stats.cached_steps, stats.residual_diffs
        )
