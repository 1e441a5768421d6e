"""ditkit: make diffusion transformers faster and cheaper with one line.

``import ditkit`` is cheap: it loads the configs and enums from ``ditkit_interfaces`` and
nothing else. Functions that live in a component (``ditkit.steps_mask`` in ``ditkit-cache``,
``ditkit.quantize`` in ``ditkit-svdquant``, …) import it on first use; a component that is not
installed raises :class:`MissingComponentError` naming the pip line. A cache-dit user changes
only the import: ``import ditkit as cache_dit``.

Example:
    >>> import ditkit
    >>> cfg = ditkit.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.12)
    >>> cfg.strify()
    'DBCache_F1B0_W8I1M0MC0_R0.12'
    >>> ditkit.Pattern_1 is ditkit.ForwardPattern.Pattern_1
    True
"""

from __future__ import annotations

from typing import Any

from ditkit_interfaces import (
    BasicCacheConfig,
    CacheType,
    CalibratorConfig,
    ConfigError,
    DBCacheConfig,
    DBPruneConfig,
    DitkitError,
    DMDCalibratorConfig,
    FoCaCalibratorConfig,
    ForwardPattern,
    MissingComponentError,
    ParallelismBackend,
    ParallelismConfig,
    QuantizeBackend,
    QuantizeConfig,
    TaylorSeerCalibratorConfig,
    cache_type,
)

from . import _lazy
from .__about__ import __version__
from .api import enable_cache
from .configs import (
    load_attn_backend_config,
    load_configs,
    load_parallelism_config,
    load_quantize_config,
)

version_tuple = tuple(int(part) for part in __version__.split(".")[:3])

# cache-dit's module-level aliases
NONE = CacheType.NONE
DBCache = CacheType.DBCache
DBPrune = CacheType.DBPrune
Pattern_0 = ForwardPattern.Pattern_0
Pattern_1 = ForwardPattern.Pattern_1
Pattern_2 = ForwardPattern.Pattern_2
Pattern_3 = ForwardPattern.Pattern_3
Pattern_4 = ForwardPattern.Pattern_4
Pattern_5 = ForwardPattern.Pattern_5

__all__ = [
    "DBCache",
    "DBPrune",
    "NONE",
    "BasicCacheConfig",
    "CacheType",
    "CalibratorConfig",
    "ConfigError",
    "DBCacheConfig",
    "DBPruneConfig",
    "DMDCalibratorConfig",
    "DitkitError",
    "FoCaCalibratorConfig",
    "ForwardPattern",
    "MissingComponentError",
    "ParallelismBackend",
    "ParallelismConfig",
    "Pattern_0",
    "Pattern_1",
    "Pattern_2",
    "Pattern_3",
    "Pattern_4",
    "Pattern_5",
    "QuantizeBackend",
    "QuantizeConfig",
    "TaylorSeerCalibratorConfig",
    "__version__",
    "cache_type",
    "enable_cache",
    "load_attn_backend_config",
    "load_configs",
    "load_parallelism_config",
    "load_quantize_config",
    "version_tuple",
    *_lazy.FORWARDED,
    *_lazy.LOCAL,
]


def __getattr__(name: str) -> Any:
    if name in _lazy.FORWARDED:
        return _lazy.resolve(name)
    if name in _lazy.LOCAL:
        return _lazy.resolve_local(name)
    if name == "caching":  # cache-dit's module path: cache_dit.caching.patch_functors.X
        import importlib

        return importlib.import_module("ditkit.caching")
    raise AttributeError(f"module 'ditkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_lazy.FORWARDED) | set(_lazy.LOCAL))
