"""ditkit's CUDA 13 kernels behind a pointer-only ABI (no libtorch link, no torch at build time).

Importing this package imports neither torch nor CUDA; the ops and the reference load torch on
first use. The status functions work on any machine:

Example:
    >>> import ditkit_kernels_cu13 as k
    >>> k.device_status()  # doctest: +SKIP
    'no device'
    >>> import torch
    >>> x = torch.tensor([[1, -2, 7, -8]], dtype=torch.int8)
    >>> k.unpack_int4(k.pack_int4(x)).equal(x)
    True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .__about__ import __version__
from ._ext import (
    ExtensionMissingError,
    available,
    compiled_archs,
    device_count,
    device_status,
    diagnostics,
    extension_error,
    load_extension,
)

if TYPE_CHECKING:
    from .ops import pack_int4, unpack_int4
    from .reference import pack_int4_reference, unpack_int4_reference

__all__ = [
    "ExtensionMissingError",
    "__version__",
    "available",
    "compiled_archs",
    "device_count",
    "device_status",
    "diagnostics",
    "extension_error",
    "load_extension",
    "pack_int4",
    "pack_int4_reference",
    "unpack_int4",
    "unpack_int4_reference",
]

# Names that need torch, loaded on first access so that `import ditkit_kernels_cu13` stays light.
_LAZY = {
    "pack_int4": "ops",
    "unpack_int4": "ops",
    "pack_int4_reference": "reference",
    "unpack_int4_reference": "reference",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
