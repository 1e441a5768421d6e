"""ditkit-cache: DBCache, DBPrune and the steps computation mask for diffusers DiTs.

The cache-dit-compatible cache API. ``enable_cache(pipe)`` caches any registered pipeline;
``BlockAdapter`` describes any other transformer; ``summary`` reports what was cached.

Example:
    >>> import ditkit_cache
    >>> ditkit_cache.DBCacheConfig(Fn_compute_blocks=1).strify()
    'DBCache_F1B0_W8I1M0MC0_R0.08'
    >>> ditkit_cache.BlockAdapterRegister.is_supported("FluxPipeline")
    True
"""

from ditkit_interfaces import (
    BasicCacheConfig,
    CacheType,
    ConfigError,
    DBCacheConfig,
    DBPruneConfig,
    ForwardPattern,
    cache_type,
)

from .__about__ import __version__
from .adapter import BlockAdapter, FakeDiffusionPipeline
from .api import disable_cache, enable_cache, get_adapter, refresh_context
from .config_loading import load_cache_config
from .functors import (
    AceStepPatchFunctor,
    BriaControlNetPatchFunctor,
    BriaFibo2PatchFunctor,
    BriaFiboPatchFunctor,
    ChromaPatchFunctor,
    ControlResidualsPatchFunctor,
    Cosmos3OmniPatchFunctor,
    CosmosControlNetPatchFunctor,
    DiTPatchFunctor,
    ErnieImagePatchFunctor,
    FluxPatchFunctor,
    GlmImagePatchFunctor,
    HiDreamPatchFunctor,
    HunyuanDiTPatchFunctor,
    LattePatchFunctor,
    LTX2PatchFunctor,
    MotifVideoPatchFunctor,
    QwenImage21PatchFunctor,
    QwenImageControlNetPatchFunctor,
    SanaControlNetPatchFunctor,
    SD3ControlNetPatchFunctor,
    WanAnimatePatchFunctor,
    WanVACEPatchFunctor,
    ZImageControlNetPatchFunctor,
)
from .params import ParamsModifier
from .patch_functor import PatchFunctor
from .registry import BlockAdapterRegister
from .steps_mask import block_range, steps_mask
from .summary import CacheStats, strify, summary


def supported_pipelines(**kwargs: object) -> tuple[int, list[str]]:
    """``(count, ["Flux*", ...])``: the registered model-family prefixes."""
    return BlockAdapterRegister.supported_pipelines(**kwargs)


__all__ = [
    "AceStepPatchFunctor",
    "BasicCacheConfig",
    "BlockAdapter",
    "BlockAdapterRegister",
    "BriaControlNetPatchFunctor",
    "BriaFibo2PatchFunctor",
    "BriaFiboPatchFunctor",
    "CacheStats",
    "CacheType",
    "ChromaPatchFunctor",
    "ConfigError",
    "ControlResidualsPatchFunctor",
    "Cosmos3OmniPatchFunctor",
    "CosmosControlNetPatchFunctor",
    "DBCacheConfig",
    "DBPruneConfig",
    "DiTPatchFunctor",
    "ErnieImagePatchFunctor",
    "FakeDiffusionPipeline",
    "FluxPatchFunctor",
    "ForwardPattern",
    "GlmImagePatchFunctor",
    "HiDreamPatchFunctor",
    "HunyuanDiTPatchFunctor",
    "LTX2PatchFunctor",
    "LattePatchFunctor",
    "MotifVideoPatchFunctor",
    "ParamsModifier",
    "PatchFunctor",
    "QwenImage21PatchFunctor",
    "QwenImageControlNetPatchFunctor",
    "SD3ControlNetPatchFunctor",
    "SanaControlNetPatchFunctor",
    "WanAnimatePatchFunctor",
    "WanVACEPatchFunctor",
    "ZImageControlNetPatchFunctor",
    "__version__",
    "block_range",
    "cache_type",
    "disable_cache",
    "enable_cache",
    "get_adapter",
    "load_cache_config",
    "refresh_context",
    "steps_mask",
    "strify",
    "summary",
    "supported_pipelines",
]
