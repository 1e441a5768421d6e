"""cache-dit's ``cache_dit.caching`` module paths, for code that imports from them.

``from cache_dit.caching.patch_functors import HiDreamPatchFunctor`` becomes
``from ditkit.caching.patch_functors import HiDreamPatchFunctor``. The submodules re-export a
component's module (:data:`ditkit._lazy.MODULES`) and are imported on first use.

Example:
    >>> import ditkit.caching
    >>> ditkit.caching.patch_functors.HiDreamPatchFunctor.__name__
    'HiDreamPatchFunctor'
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .._lazy import MODULES

__all__ = ["patch_functors"]

_SUBMODULES = {path.partition(".")[2] for path in MODULES if path.startswith("caching.")}


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES)
