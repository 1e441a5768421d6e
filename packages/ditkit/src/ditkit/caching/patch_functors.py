"""``cache_dit.caching.patch_functors`` under ditkit: every patch functor of ``ditkit-cache``.

The names are ``ditkit_cache.functors``' (cache-dit's class names where cache-dit has the same
functor, plus ditkit's own), bound to the very same classes. Importing this module needs
``ditkit-cache``; without it the import raises
:class:`~ditkit_interfaces.MissingComponentError` with the pip line.

Example:
    >>> from ditkit.caching.patch_functors import HiDreamPatchFunctor, PatchFunctor
    >>> import ditkit_cache
    >>> HiDreamPatchFunctor is ditkit_cache.HiDreamPatchFunctor
    True
    >>> isinstance(HiDreamPatchFunctor(), PatchFunctor)
    True
"""

from __future__ import annotations

from typing import Any

from .._lazy import resolve_module

_FUNCTORS = resolve_module("caching.patch_functors")

__all__ = list(_FUNCTORS.__all__)


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(_FUNCTORS, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
