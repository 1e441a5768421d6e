"""Loading the compiled extension and reporting on the CUDA devices it sees. Imports no torch."""

from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import Any

#: The extension's ABI_VERSION this Python code was written against (csrc/bindings.cpp).
EXPECTED_ABI_VERSION = 1

_REBUILD_HINT = (
    "install a built wheel of ditkit-kernels-cu13 (pip install ditkit-kernels-cu13), or build "
    "one where nvcc 13 is on PATH: pip wheel ./kernels-cu13 --no-deps -w dist"
)


class ExtensionMissingError(ImportError):
    """The compiled extension ``ditkit_kernels_cu13._C`` is missing or from another build."""


@functools.cache
def _load() -> tuple[ModuleType | None, str | None]:
    try:
        module = importlib.import_module("ditkit_kernels_cu13._C")
    except ImportError as exc:
        return None, (
            f"the compiled extension ditkit_kernels_cu13._C is missing or failed to import "
            f"({exc}); {_REBUILD_HINT}"
        )
    abi = getattr(module, "ABI_VERSION", None)
    if abi != EXPECTED_ABI_VERSION:
        return None, (
            f"ditkit_kernels_cu13._C has ABI version {abi}, this Python code expects "
            f"{EXPECTED_ABI_VERSION}: the build is stale; {_REBUILD_HINT}"
        )
    return module, None


def extension_error() -> str | None:
    """Why the compiled extension cannot be used, or ``None`` when it loaded.

    Example:
        >>> import ditkit_kernels_cu13 as k
        >>> k.extension_error() is None or "ditkit_kernels_cu13._C" in k.extension_error()
        True
    """
    return _load()[1]


def load_extension() -> Any:
    """Return the compiled module ``ditkit_kernels_cu13._C``.

    Raises:
        ExtensionMissingError: the extension is not built/installed, or is a stale build.
    """
    module, error = _load()
    if module is None:
        raise ExtensionMissingError(error)
    return module


def device_count() -> int:
    """Number of CUDA devices the kernels can use (0 without the extension, a driver or a GPU)."""
    module, _ = _load()
    if module is None:
        return 0
    count, _error = module.device_count()
    return int(count)


def available() -> bool:
    """``True`` when the extension loaded and at least one CUDA device is visible.

    Example:
        >>> import ditkit_kernels_cu13 as k
        >>> isinstance(k.available(), bool)
        True
    """
    return device_count() > 0


def device_status() -> str:
    """One line for logs: ``"ok: N device(s)"``, ``"no device"`` or ``"no extension: <why>"``.

    Example:
        >>> import ditkit_kernels_cu13 as k
        >>> k.device_status().startswith(("ok: ", "no device", "no extension: "))
        True
    """
    module, error = _load()
    if module is None:
        return f"no extension: {error}"
    count = device_count()
    return f"ok: {count} device(s)" if count > 0 else "no device"


def compiled_archs() -> tuple[str, ...]:
    """CUDA architectures compiled into the extension, e.g. ``("80-real", "89-real", "90")``.

    ``"NN-real"`` is SASS only, ``"NN"`` SASS plus PTX that newer GPUs JIT-compile. Empty
    without the extension.
    """
    module, _ = _load()
    if module is None:
        return ()
    return tuple(a for a in str(module.CUDA_ARCHS).split(",") if a)


def diagnostics() -> dict[str, object]:
    """Everything known about the build and the machine, for bug reports.

    Example:
        >>> import ditkit_kernels_cu13 as k
        >>> sorted(k.diagnostics())[:3]
        ['compiled_archs', 'cuda_driver_version', 'cuda_runtime_version']
    """
    module, error = _load()
    info: dict[str, object] = {
        "status": device_status(),
        "extension_error": error,
        "compiled_archs": compiled_archs(),
        "cuda_runtime_version": None,
        "cuda_driver_version": None,
        "device_count": 0,
        "device_error": None,
    }
    if module is not None:
        count, device_error = module.device_count()
        info.update(
            cuda_runtime_version=module.runtime_version(),
            cuda_driver_version=module.driver_version(),
            device_count=count,
            device_error=device_error or None,
        )
    return info
