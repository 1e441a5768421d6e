"""The tables of names and modules the umbrella forwards to its components, resolved on use.

``import ditkit`` imports only ``ditkit_interfaces``; a name such as ``ditkit.steps_mask`` imports
its component the first time it is read. cache-dit module paths that user code imports from
(``cache_dit.caching.patch_functors``) exist as umbrella modules (``ditkit.caching.patch_functors``)
re-exporting a component's module (:data:`MODULES`). A name or module whose component is not
installed (or is too old to provide it) raises :class:`~ditkit_interfaces.MissingComponentError`
with the pip line. The umbrella's own torch-importing functions (``ditkit.set_compile_configs``,
``ditkit.set_attn_backend``, …) are resolved the same way from its submodules (:data:`LOCAL`).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from ditkit_interfaces.capabilities import require

__all__ = ["FORWARDED", "LOCAL", "MODULES", "resolve", "resolve_local", "resolve_module"]

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


# public name -> the umbrella's own module defining it (imported on use: it imports torch)
LOCAL: dict[str, str] = {
    "set_compile_configs": "ditkit.compile_recipe",
    "restore_compile_configs": "ditkit.compile_recipe",
    "compile_repeated_blocks": "ditkit.compile_recipe",
    "set_attn_backend": "ditkit.attention_backend",
    "enable_cuda_graphs": "ditkit.cuda_graphs",
    "disable_cuda_graphs": "ditkit.cuda_graphs",
    "reset_cuda_graphs": "ditkit.cuda_graphs",
    "cuda_graph_stats": "ditkit.cuda_graphs",
}


# umbrella module path (cache-dit's, below ``ditkit.``) -> (component, module it re-exports)
MODULES: dict[str, tuple[str, str]] = {
    "caching.patch_functors": ("cache", "ditkit_cache.functors"),
}


def resolve(name: str) -> Any:
    """Import the component that provides ``name`` and return the attribute."""
    component, attribute = FORWARDED[name]
    module = require(component, f"ditkit.{name}", attribute=attribute)
    return getattr(module, attribute)


def resolve_local(name: str) -> Any:
    """Import the umbrella module that defines ``name`` and return the attribute."""
    return getattr(importlib.import_module(LOCAL[name]), name)


def resolve_module(path: str) -> ModuleType:
    """Import the component module that the umbrella module ``ditkit.<path>`` re-exports (a
    component too old to have it raises :class:`~ditkit_interfaces.MissingComponentError`)."""
    component, module = MODULES[path]
    require(component, f"ditkit.{path}", attribute=module.rpartition(".")[2])
    return importlib.import_module(module)
