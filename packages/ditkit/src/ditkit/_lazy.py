"""The table of names the umbrella forwards to its components, resolved on first use.

``import ditkit`` imports only ``ditkit_interfaces``; a name such as ``ditkit.steps_mask`` imports
its component the first time it is read. A name whose component is not installed (or is too old
to provide it) raises :class:`~ditkit_interfaces.MissingComponentError` with the pip line.
"""

from __future__ import annotations

from typing import Any

from ditkit_interfaces.capabilities import require

__all__ = ["FORWARDED", "resolve"]

# public name -> (component, attribute in that component's top-level package)
FORWARDED: dict[str, tuple[str, str]] = {
    **{
        name: ("cache", name)
        for name in (
            "disable_cache",
            "refresh_context",
            "steps_mask",
            "summary",
            "strify",
            "supported_pipelines",
            "get_adapter",
            "block_range",
            "load_cache_config",
            "BlockAdapter",
            "BlockAdapterRegister",
            "ParamsModifier",
            "PatchFunctor",
            "CacheStats",
        )
    },
    "enable_parallelism": ("parallel", "enable_parallelism"),
    "quantize": ("svdquant", "quantize"),
    "load": ("svdquant", "load"),
    **{
        name: ("offload", name)
        for name in (
            "layerwise_offload",
            "layerwise_cpu_offload",
            "remove_layerwise_offload",
            "get_layerwise_offload_handles",
            "LayerwiseOffloadHandle",
            "LayerwiseOffloadHandleGroup",
        )
    },
}


def resolve(name: str) -> Any:
    """Import the component that provides ``name`` and return the attribute."""
    component, attribute = FORWARDED[name]
    module = require(component, f"ditkit.{name}", attribute=attribute)
    return getattr(module, attribute)
