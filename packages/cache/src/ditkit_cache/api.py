"""``enable_cache``, ``disable_cache``, ``refresh_context``: the cache's public verbs.

``enable_cache`` resolves and checks everything first (adapter, forward patterns, every block
list's config, the calibrator implementation) and only then patches: on any error nothing is
left patched. Patching is per instance: each transformer gets an instance-level ``forward``; a
pipeline gets a per-instance subclass whose ``__call__`` marks the start of a request. No class
that other instances share is touched.

Example:
    >>> import torch
    >>> from ditkit_interfaces import DBCacheConfig, ForwardPattern
    >>> from ditkit_cache.adapter import BlockAdapter
    >>> class Model(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.blocks = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(4))
    ...     def forward(self, hidden_states, timestep=None):
    ...         for block in self.blocks:
    ...             hidden_states = block(hidden_states)
    ...         return hidden_states
    >>> model = Model()
    >>> adapter = BlockAdapter(transformer=model, blocks=model.blocks,
    ...                        forward_pattern=ForwardPattern.Pattern_3)
    >>> _ = enable_cache(adapter, DBCacheConfig(Fn_compute_blocks=1, num_inference_steps=4))
    >>> _ = [model(torch.ones(1, 4), timestep=999 - t) for t in range(4)]
    >>> _ = disable_cache(model)
    >>> "forward" in vars(model)
    False
"""

from __future__ import annotations

import importlib.metadata
import warnings
from typing import Any

import torch

from ditkit_interfaces import (
    BasicCacheConfig,
    CacheType,
    CalibratorConfig,
    ConfigError,
    DBCacheConfig,
    DBPruneConfig,
    MissingComponentError,
    TaylorSeerCalibratorConfig,
)

from .adapter import BlockAdapter, ResolvedTransformer
from .params import ParamsModifier
from .patch_functor import PatchFunctor
from .registry import BlockAdapterRegister
from .state import PIPELINE_ATTRIBUTE, BlockList, TransformerCache, get_cache
from .summary import collect_caches

__all__ = ["disable_cache", "enable_cache", "get_adapter", "refresh_context"]

CALIBRATOR_ENTRY_POINTS = "ditkit.calibrators"
_PIPELINE_CACHES = PIPELINE_ATTRIBUTE

_DEPRECATED_CACHE_KWARGS = (
    "Fn_compute_blocks",
    "Bn_compute_blocks",
    "max_warmup_steps",
    "max_cached_steps",
    "max_continuous_cached_steps",
    "residual_diff_threshold",
    "enable_separate_cfg",
    "cfg_compute_first",
    "cfg_diff_compute_separate",
)
_DEPRECATED_TAYLORSEER_KWARGS = {
    "enable_taylorseer": "enable_calibrator",
    "enable_encoder_taylorseer": "enable_encoder_calibrator",
    "taylorseer_cache_type": "calibrator_cache_type",
    "taylorseer_order": "taylorseer_order",
}


def _fold_deprecated(
    cache_config: BasicCacheConfig | None,
    calibrator_config: CalibratorConfig | None,
    kwargs: dict[str, Any],
) -> tuple[BasicCacheConfig | None, CalibratorConfig | None]:
    unknown = set(kwargs) - set(_DEPRECATED_CACHE_KWARGS) - set(_DEPRECATED_TAYLORSEER_KWARGS)
    if unknown:
        raise ConfigError(
            "enable_cache",
            sorted(unknown),
            "cache_config=..., calibrator_config=... or one of "
            "the deprecated flat options " + ", ".join(_DEPRECATED_CACHE_KWARGS),
            fix="put cache options into DBCacheConfig(...)",
        )
    cache_kwargs = {k: v for k, v in kwargs.items() if k in _DEPRECATED_CACHE_KWARGS}
    seer_kwargs = {k: v for k, v in kwargs.items() if k in _DEPRECATED_TAYLORSEER_KWARGS}
    if cache_kwargs:
        warnings.warn(
            f"enable_cache({', '.join(cache_kwargs)}=...) is deprecated: pass "
            "cache_config=DBCacheConfig(...)",
            DeprecationWarning,
            stacklevel=3,
        )
        cache_config = (cache_config or DBCacheConfig()).copy().update(**cache_kwargs)
    if seer_kwargs:
        warnings.warn(
            f"enable_cache({', '.join(seer_kwargs)}=...) is deprecated: pass "
            "calibrator_config=TaylorSeerCalibratorConfig(...)",
            DeprecationWarning,
            stacklevel=3,
        )
        if seer_kwargs.get("enable_taylorseer", True) or seer_kwargs.get(
            "enable_encoder_taylorseer"
        ):
            renamed = {_DEPRECATED_TAYLORSEER_KWARGS[k]: v for k, v in seer_kwargs.items()}
            renamed.setdefault("enable_encoder_calibrator", False)
            calibrator_config = TaylorSeerCalibratorConfig(**renamed)
    return cache_config, calibrator_config


def _calibrator_builder(calibrator_config: CalibratorConfig | None, given: Any) -> Any:
    if calibrator_config is None or not (
        calibrator_config.enable_calibrator or calibrator_config.enable_encoder_calibrator
    ):
        return None
    if given is not None:
        return given
    for entry in importlib.metadata.entry_points(group=CALIBRATOR_ENTRY_POINTS):
        if entry.name == "build_calibrator":
            return entry.load()
    raise MissingComponentError(
        "calibrator_config",
        "ditkit-calibrators",
        "pip install ditkit-calibrators",
        reason="no calibrator implementation is installed",
    )


def get_adapter(pipe_or_module: Any, **kwargs: Any) -> BlockAdapter:
    """The registered :class:`BlockAdapter` for a pipeline or transformer."""
    return BlockAdapterRegister.get_adapter(pipe_or_module, **kwargs)


def _as_adapter(pipe_or_adapter: Any, params_modifiers: Any) -> BlockAdapter:
    if isinstance(pipe_or_adapter, BlockAdapter):
        adapter = pipe_or_adapter
    else:
        adapter = get_adapter(pipe_or_adapter)
    if params_modifiers is not None:
        adapter.params_modifiers = params_modifiers
    return adapter


def _list_configs(
    adapter: BlockAdapter,
    resolved: ResolvedTransformer,
    cache_config: BasicCacheConfig,
    calibrator_config: CalibratorConfig | None,
) -> list[BlockList]:
    lists = []
    for entry in resolved.lists:
        modifier = entry.params_modifier or ParamsModifier()
        list_cache, list_calibrator = modifier.apply(cache_config, calibrator_config)
        if list_cache.enable_separate_cfg is None:
            separate = adapter.has_separate_cfg or BlockAdapterRegister.has_separate_cfg(
                adapter.pipe if not adapter.is_transformer_only else resolved.transformer
            )
            list_cache.update(enable_separate_cfg=separate)
        list_cache = _fill_unset(list_cache)
        _check_list_config(list_cache, len(entry.blocks), entry.blocks_name)
        lists.append(
            BlockList(
                name=entry.context_name or entry.blocks_name,
                attribute=entry.blocks_name,
                pattern=entry.forward_pattern,
                cache_config=list_cache,
                blocks=entry.blocks,
                dummy_attributes=entry.dummy_blocks_names,
                calibrator_config=list_calibrator,
            )
        )
    return lists


def _check_list_config(config: BasicCacheConfig, count: int, name: str) -> None:
    """What a block list's config must satisfy beyond the config's own checks."""
    if config.Fn_compute_blocks + config.Bn_compute_blocks > count:
        raise ConfigError(
            "Fn_compute_blocks + Bn_compute_blocks",
            config.Fn_compute_blocks + config.Bn_compute_blocks,
            f"at most the {count} blocks of {name!r}",
            fix=f"lower Fn_compute_blocks/Bn_compute_blocks so they sum to <= {count}",
        )
    if (
        isinstance(config, DBPruneConfig)
        and config.enable_separate_cfg
        and not config.cfg_diff_compute_separate
    ):
        raise ConfigError(
            "cfg_diff_compute_separate",
            False,
            "True with DBPrune (each block decides on its own input: no single diff to share)",
            fix="drop cfg_diff_compute_separate=False, or use DBCacheConfig",
        )
    if config.enable_separate_cfg and config.cfg_compute_first and config.cfg_diff_compute_separate:
        raise ConfigError(
            "cfg_compute_first",
            True,
            "False while cfg_diff_compute_separate=True",
            fix="set cfg_diff_compute_separate=False to compute the CFG branch first",
        )


def _fill_unset(config: BasicCacheConfig) -> BasicCacheConfig:
    """Fields left ``None`` by partial configs fall back to the class defaults."""
    defaults = type(config)()
    unset = {k: getattr(defaults, k) for k, v in config.as_dict().items() if v is None}
    unset.pop("enable_separate_cfg", None)
    for key in (
        "max_accumulated_residual_diff_threshold",
        "num_inference_steps",
        "steps_computation_mask",
        "force_refresh_step_hint",
        "max_dynamic_prune_threshold",
    ):
        unset.pop(key, None)
    return config.update(**unset) if unset else config


def enable_cache(
    pipe_or_adapter: Any,
    cache_config: BasicCacheConfig | None = None,
    calibrator_config: CalibratorConfig | None = None,
    params_modifiers: Any = None,
    *,
    calibrator_builder: Any = None,
    reducer: Any = None,
    **kwargs: Any,
) -> Any:
    """Cache a pipeline, a transformer, or whatever a :class:`BlockAdapter` describes.

    Args:
        pipe_or_adapter: a diffusers pipeline, a transformer (transformer-only use: contexts
            persist across calls and new requests are detected), or a ``BlockAdapter``.
        cache_config (`DBCacheConfig` | `DBPruneConfig`, *optional*): ``DBCacheConfig()`` if None.
        calibrator_config (`CalibratorConfig`, *optional*): forecast cached residuals.
        params_modifiers (*optional*): per-block-list overrides.
        calibrator_builder (*optional*): builds calibrators; found through the
            ``ditkit.calibrators`` entry point (``ditkit-calibrators``) when omitted.
        reducer (`DecisionReducer`, *optional*): cross-rank reduction (``ditkit-parallel``).
        **kwargs: cache-dit's deprecated flat options, folded in with a ``DeprecationWarning``.

    Returns:
        ``pipe_or_adapter``, now cached.
    """
    cache_config, calibrator_config = _fold_deprecated(cache_config, calibrator_config, kwargs)
    cache_config = DBCacheConfig() if cache_config is None else cache_config
    if not isinstance(cache_config, BasicCacheConfig):
        raise ConfigError(
            "cache_config",
            type(cache_config).__name__,
            "a DBCacheConfig or DBPruneConfig",
            fix="pass cache_config=DBCacheConfig(...)",
        )
    if calibrator_config is not None and not isinstance(calibrator_config, CalibratorConfig):
        raise ConfigError(
            "calibrator_config",
            type(calibrator_config).__name__,
            "a CalibratorConfig",
            fix="pass calibrator_config=TaylorSeerCalibratorConfig(...) (or FoCa/DMD)",
        )
    if cache_config.cache_type is CacheType.NONE:
        return pipe_or_adapter
    if isinstance(cache_config, DBPruneConfig) or cache_config.cache_type is CacheType.DBPrune:
        from .prune import check_prune_config

        check_prune_config(cache_config)
    builder = _calibrator_builder(calibrator_config, calibrator_builder)
    adapter = _as_adapter(pipe_or_adapter, params_modifiers)
    resolved = adapter.resolve()
    for entry in resolved:
        if get_cache(entry.transformer) is not None:
            raise ConfigError(
                "enable_cache",
                type(entry.transformer).__name__,
                "a transformer not yet cached",
                fix="call disable_cache(...) before enabling the cache again",
            )
    plans = [
        (entry, _list_configs(adapter, entry, cache_config, calibrator_config))
        for entry in resolved
    ]
    installed: list[TransformerCache] = []
    try:
        for entry, lists in plans:
            if adapter.patch_functor is not None:
                adapter.patch_functor.apply(entry.transformer)
            cache = TransformerCache(
                entry.transformer,
                lists,
                persistent=adapter.is_transformer_only,
                calibrator_builder=builder,
                reducer=reducer,
            )
            installed.append(cache.install())
        if not adapter.is_transformer_only:
            _wrap_pipeline(adapter.pipe, installed)
    except BaseException:
        for cache in installed:
            cache.uninstall()
        for entry, _ in plans:
            PatchFunctor.restore(entry.transformer)
        raise
    return pipe_or_adapter


def _wrap_pipeline(pipe: Any, caches: list[TransformerCache]) -> None:
    """Give ``pipe`` a per-instance subclass whose ``__call__`` starts a new request."""
    cls = type(pipe)
    if getattr(cls, "_ditkit_original_class", None) is not None:
        vars(pipe)[_PIPELINE_CACHES].extend(caches)
        return

    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N807
        for cache in vars(self).get(_PIPELINE_CACHES, ()):
            cache.new_request_pending = True
        return cls.__call__(self, *args, **kwargs)

    namespace = {
        "__call__": __call__,
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "_ditkit_original_class": cls,
    }
    object.__setattr__(pipe, _PIPELINE_CACHES, list(caches))
    pipe.__class__ = type(cls.__name__, (cls,), namespace)


def disable_cache(pipe_or_adapter: Any) -> Any:
    """Remove the cache: the pipeline/transformer behaves exactly as before ``enable_cache``."""
    targets = pipe_or_adapter.pipe if isinstance(pipe_or_adapter, BlockAdapter) else pipe_or_adapter
    caches = collect_caches(pipe_or_adapter)
    if not isinstance(pipe_or_adapter, BlockAdapter) and get_cache(pipe_or_adapter) is None:
        caches += [c for c in vars(targets).get(_PIPELINE_CACHES, []) if c not in caches]
    for cache in caches:
        transformer = cache.transformer
        cache.uninstall()
        PatchFunctor.restore(transformer)
    original = getattr(type(targets), "_ditkit_original_class", None)
    if original is not None:
        vars(targets).pop(_PIPELINE_CACHES, None)
        targets.__class__ = original
    return pipe_or_adapter


def refresh_context(transformer: torch.nn.Module, **kwargs: Any) -> None:
    """Start a new request on a cached transformer, optionally with new options.

    ``refresh_context(tr, num_inference_steps=50)`` changes only that field;
    ``refresh_context(tr, cache_config=DBCacheConfig(...))`` replaces the cache config.
    """
    caches = collect_caches(transformer)
    if not caches:
        warnings.warn("refresh_context: this module has no ditkit cache", stacklevel=2)
        return
    kwargs.pop("verbose", None)
    cache_config = kwargs.pop("cache_config", None)
    calibrator_config = kwargs.pop("calibrator_config", None)
    updates = (
        {k: v for k, v in cache_config.as_dict().items() if k != "cache_type"}
        if cache_config is not None
        else kwargs
    )
    plans = []
    for cache in caches:  # check everything first: a bad refresh changes nothing
        for block_list in cache.block_lists:
            merged = block_list.cache_config.copy().update(**updates)
            _check_list_config(merged, len(cache.wrappers[block_list.name].blocks), block_list.name)
            plans.append((block_list, merged))
    for block_list, merged in plans:
        block_list.cache_config = merged
        if calibrator_config is not None:
            block_list.calibrator_config = calibrator_config
    for cache in caches:
        cache.refresh()
