"""``ParamsModifier``: per-block-list overrides of the cache and calibrator configs.

A modifier holds partial configs (build them with ``DBCacheConfig().reset(...)`` so that only
the fields you give are set). Each block list's config is the enable-time config with its
modifier merged in through ``update``, which skips ``None`` fields.

Example:
    >>> from ditkit_interfaces import DBCacheConfig
    >>> modifier = ParamsModifier(cache_config=DBCacheConfig().reset(max_warmup_steps=2))
    >>> base = DBCacheConfig(Fn_compute_blocks=1)
    >>> merged = modifier.apply(base, None)[0]
    >>> merged.Fn_compute_blocks, merged.max_warmup_steps, base.max_warmup_steps
    (1, 2, 8)
"""

from __future__ import annotations

import warnings
from typing import Any

from ditkit_interfaces import BasicCacheConfig, CalibratorConfig, ConfigError, DBCacheConfig

__all__ = ["ParamsModifier"]


class ParamsModifier:
    """Overrides for one block list.

    Args:
        cache_config (`DBCacheConfig`, *optional*): fields to override (``None`` fields keep the
            enable-time value).
        calibrator_config (`CalibratorConfig`, *optional*): a calibrator for this list only, or
            overrides of the enable-time one.
        **kwargs: deprecated flat cache fields (``Fn_compute_blocks=1``), folded into
            ``cache_config`` with a ``DeprecationWarning``.
    """

    def __init__(
        self,
        cache_config: BasicCacheConfig | None = None,
        calibrator_config: CalibratorConfig | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            warnings.warn(
                "ParamsModifier(**flat_fields) is deprecated: pass "
                "cache_config=DBCacheConfig().reset(...) instead",
                DeprecationWarning,
                stacklevel=2,
            )
            partial = DBCacheConfig().reset()
            unknown = set(kwargs) - set(partial.field_names())
            if unknown:
                raise ConfigError(
                    "ParamsModifier",
                    sorted(unknown),
                    "DBCacheConfig field names",
                    fix="check the spelling, or pass cache_config=DBCacheConfig().reset(...)",
                )
            partial.update(**kwargs)
            if cache_config is not None:
                partial.update(**cache_config.as_dict())
            cache_config = partial
        if cache_config is not None and not isinstance(cache_config, BasicCacheConfig):
            raise ConfigError("ParamsModifier.cache_config", cache_config, "a DBCacheConfig")
        if calibrator_config is not None and not isinstance(calibrator_config, CalibratorConfig):
            raise ConfigError(
                "ParamsModifier.calibrator_config", calibrator_config, "a CalibratorConfig"
            )
        self.cache_config = cache_config
        self.calibrator_config = calibrator_config

    @property
    def _context_kwargs(self) -> dict[str, Any]:  # cache-dit's attribute name
        return {"cache_config": self.cache_config, "calibrator_config": self.calibrator_config}

    def apply(
        self, cache_config: BasicCacheConfig, calibrator_config: CalibratorConfig | None
    ) -> tuple[BasicCacheConfig, CalibratorConfig | None]:
        """The configs of one block list: copies of the given ones with this modifier merged."""
        merged_cache = cache_config.copy()
        if self.cache_config is not None:
            overrides = {k: v for k, v in self.cache_config.as_dict().items() if k != "cache_type"}
            merged_cache.update(**overrides)
        merged_calibrator = calibrator_config
        if self.calibrator_config is not None:
            if calibrator_config is None or (
                type(self.calibrator_config) is not type(calibrator_config)
            ):
                merged_calibrator = self.calibrator_config.copy()
            else:
                merged_calibrator = calibrator_config.copy()
                merged_calibrator.update(**self.calibrator_config.as_dict())
        return merged_cache, merged_calibrator

    def __repr__(self) -> str:
        return (
            f"ParamsModifier(cache_config={self.cache_config!r}, "
            f"calibrator_config={self.calibrator_config!r})"
        )
