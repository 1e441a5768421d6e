"""``ditkit.enable_cache``: one call that composes every installed component.

It keeps cache-dit's full signature. Every component a call needs is looked up *before* the
pipeline is touched, so a missing package raises :class:`MissingComponentError` (with the pip
line) and leaves the pipeline exactly as it was.
"""

from __future__ import annotations

from typing import Any

from ditkit_interfaces.capabilities import require

__all__ = ["enable_cache", "required_components"]


def required_components(
    cache_config: Any = None,
    calibrator_config: Any = None,
    parallelism_config: Any = None,
    quantize_config: Any = None,
) -> list[str]:
    """The components an ``enable_cache`` call with these configs needs, in the order applied.

    As in cache-dit, a call with no config at all means "cache with the defaults", while a call
    that only parallelizes or quantizes does not cache.

    Example:
        >>> required_components()
        ['cache']
        >>> required_components(parallelism_config=object(), quantize_config=object())
        ['parallel', 'svdquant']
    """
    others = (parallelism_config, quantize_config)
    needed = []
    if cache_config is not None or calibrator_config is not None or all(o is None for o in others):
        needed.append("cache")
    if parallelism_config is not None:
        needed.append("parallel")
    if quantize_config is not None:
        needed.append("svdquant")
    return needed


def enable_cache(
    pipe_or_adapter: Any = None,
    cache_config: Any = None,
    calibrator_config: Any = None,
    params_modifiers: Any = None,
    parallelism_config: Any = None,
    attention_backend: str | None = None,
    quantize_config: Any = None,
    **kwargs: Any,
) -> Any:
    """Accelerate a diffusers pipeline or transformer: cache, then parallelize, then quantize.

    Args:
        pipe_or_adapter: a ``DiffusionPipeline``, a transformer, or a ``BlockAdapter``.
        cache_config (`DBCacheConfig` | `DBPruneConfig`, *optional*): the cache; the default
            ``DBCacheConfig()`` when no config at all is given.
        calibrator_config (`CalibratorConfig`, *optional*): TaylorSeer, FoCa or DMD.
        params_modifiers (*optional*): per-block-list overrides (``ParamsModifier``).
        parallelism_config (`ParallelismConfig`, *optional*): context/tensor parallelism.
        attention_backend (`str`, *optional*): the attention kernel to use.
        quantize_config (`QuantizeConfig`, *optional*): weight quantization.
        **kwargs: cache-dit's deprecated flat options (``Fn_compute_blocks=…``), forwarded.

    Raises:
        MissingComponentError: a component this call needs is not installed; nothing changed.

    Example:
        >>> import ditkit
        >>> ditkit.enable_cache(None)  # doctest: +SKIP
    """
    needed = required_components(
        cache_config, calibrator_config, parallelism_config, quantize_config
    )
    if calibrator_config is not None and (
        calibrator_config.enable_calibrator or calibrator_config.enable_encoder_calibrator
    ):
        needed.append("calibrators")
    modules = {
        name: require(name, "ditkit.enable_cache", attribute=_ENTRY_POINTS.get(name))
        for name in needed
    }
    if attention_backend is not None:  # a bad name fails before anything is patched
        from .attention_backend import _check_kernel_installed, resolve_attn_backend

        _check_kernel_installed(resolve_attn_backend(attention_backend))
    result = pipe_or_adapter
    if "cache" in modules:
        builder = getattr(modules.get("calibrators"), "build_calibrator", None)
        extra = {"calibrator_builder": builder} if builder is not None else {}
        if "parallel" in modules and "reducer" not in kwargs:
            # every rank must take the same cache decision: the diff is averaged over ranks
            # (and the Fn residual compared on this rank's piece); the reducer finds the
            # context-parallel layout when it needs it, after enable_parallelism below
            reducer_type = modules["parallel"].DistributedDecisionReducer
            extra["reducer"] = reducer_type(owner=pipe_or_adapter)
        result = modules["cache"].enable_cache(
            pipe_or_adapter,
            cache_config=cache_config,
            calibrator_config=calibrator_config,
            params_modifiers=params_modifiers,
            **extra,
            **kwargs,
        )
    if attention_backend is not None:
        from .attention_backend import set_attn_backend

        set_attn_backend(result, attention_backend)  # cache-dit's names, checked first
    if "parallel" in modules:
        modules["parallel"].enable_parallelism(result, parallelism_config)
    if "svdquant" in modules:
        modules["svdquant"].quantize(result, quantize_config)
    return result


# The attribute each component must provide for enable_cache to use it.
_ENTRY_POINTS: dict[str, str] = {
    "cache": "enable_cache",
    "parallel": "enable_parallelism",
    "svdquant": "quantize",
}
