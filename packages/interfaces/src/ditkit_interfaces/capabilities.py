"""Capability checks: which ditkit components are installed, and what the machine offers.

Nothing here imports torch at module import; :func:`cuda_device_count` imports it when called.

Example:
    >>> from ditkit_interfaces.capabilities import COMPONENTS, is_installed
    >>> COMPONENTS["cache"].pip_line
    'pip install ditkit-cache'
    >>> is_installed("interfaces")
    True
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
from types import ModuleType

from .errors import MissingComponentError

__all__ = [
    "COMPONENTS",
    "Component",
    "cuda_device_count",
    "distribution_version",
    "installed_components",
    "is_installed",
    "require",
]


@dataclasses.dataclass(frozen=True)
class Component:
    """One installable piece of ditkit."""

    name: str
    import_name: str
    distribution: str
    pip_line: str


def _component(name: str) -> Component:
    distribution = f"ditkit-{name}"
    return Component(
        name, distribution.replace("-", "_"), distribution, f"pip install {distribution}"
    )


COMPONENTS: dict[str, Component] = {
    c.name: c
    for c in (
        _component("interfaces"),
        _component("cache"),
        _component("calibrators"),
        _component("parallel"),
        _component("svdquant"),
        _component("offload"),
        _component("metrics"),
        _component("testing"),
        _component("kernels-cu13"),
    )
}


def _lookup(name: str) -> Component:
    try:
        return COMPONENTS[name]
    except KeyError:
        raise KeyError(
            f"unknown ditkit component {name!r}; known: {', '.join(COMPONENTS)}"
        ) from None


def is_installed(name: str) -> bool:
    """Whether the component's import package can be found (without importing it)."""
    return importlib.util.find_spec(_lookup(name).import_name) is not None


def installed_components() -> list[str]:
    """Names of the installed components, in :data:`COMPONENTS` order."""
    return [name for name in COMPONENTS if is_installed(name)]


def require(name: str, feature: str, attribute: str | None = None) -> ModuleType:
    """Import a component for ``feature``; raise :class:`MissingComponentError` if absent.

    With ``attribute``, the component must also provide that name (a version that predates the
    feature raises the same error, saying so).
    """
    component = _lookup(name)
    try:
        module = importlib.import_module(component.import_name)
    except ModuleNotFoundError as err:
        if err.name is not None and err.name.split(".")[0] != component.import_name:
            raise  # the component is there but one of its own dependencies is missing
        raise MissingComponentError(feature, component.distribution, component.pip_line) from None
    if attribute is not None and not hasattr(module, attribute):
        version = getattr(module, "__version__", "unknown")
        raise MissingComponentError(
            feature,
            component.distribution,
            f"pip install -U {component.distribution}",
            reason=f"the installed {component.distribution} {version} does not provide {attribute}",
        )
    return module


def distribution_version(distribution: str) -> str | None:
    """The installed version of a distribution (e.g. ``"torch"``), or ``None``; imports nothing."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def cuda_device_count() -> int:
    """The number of CUDA devices torch sees (0 without torch or without CUDA)."""
    if importlib.util.find_spec("torch") is None:
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
