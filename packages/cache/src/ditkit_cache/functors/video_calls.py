"""Tools the video functors share: instance-level forward wrappers, per-call state, call sites.

A video functor moves work that a transformer's loop does *between* blocks into the blocks, so a
cached block list (run as one stand-in by the cache) still does it. Three tools do most of it:

* :func:`wrap_forward` sets ``module.forward`` as an instance attribute, which
  :meth:`~ditkit_cache.patch_functor.PatchFunctor.restore` removes again;
* :class:`PerCall` holds what a forward computes once per call (hints, masks, embeddings) for the
  blocks to read, and drops it when the call ends;
* :func:`call_sites` puts, for one call, a small module in front of each entry of a block list,
  so the transformer's loop calls the list (its blocks, or the cache's stand-in) in the order and
  by the names a forward pattern expects.

:func:`bind_arguments` names a call's arguments; :func:`like` gives a tensor back the memory
layout the loop's stream had (the cache hands on contiguous copies).

Example:
    >>> import torch
    >>> layer = torch.nn.Linear(2, 2)
    >>> wrap_forward(layer, lambda original: lambda input: 2 * original(input))
    >>> "forward" in vars(layer), list(inspect.signature(layer.forward).parameters)
    (True, ['input'])
    >>> model = torch.nn.Module()
    >>> model.blocks = torch.nn.ModuleList([torch.nn.Identity()])
    >>> with call_sites(model, "blocks", lambda inner, args, kwargs: inner(*args) + 1):
    ...     float(model.blocks[0](torch.zeros(1)))
    1.0
    >>> type(model.blocks[0]).__name__
    'Identity'
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import torch

__all__ = [
    "CallSite",
    "Forward",
    "PerCall",
    "as_called",
    "bind_arguments",
    "call_sites",
    "like",
    "wrap_forward",
]

Forward = Callable[..., Any]
Convert = Callable[[torch.nn.Module, tuple[Any, ...], dict[str, Any]], Any]


def wrap_forward(module: torch.nn.Module, make: Callable[[Forward], Forward]) -> None:
    """Set ``module.forward`` to ``make(current forward)``, reporting the current signature.

    The cache reads the transformer's forward signature to find its ``timestep`` parameter, so
    the wrapper keeps it (``inspect.signature`` follows ``__wrapped__``).
    """
    original = module.forward
    patched = make(original)
    functools.update_wrapper(patched, original, updated=())
    module.forward = patched


def bind_arguments(forward: Forward, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict:
    """The named arguments of one call of ``forward``, defaults included."""
    bound = inspect.signature(forward).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


class PerCall:
    """Values one transformer call computes for its blocks, cleared when the call returns.

    Example:
        >>> state = PerCall()
        >>> with state.call():
        ...     state["hint"] = 1
        ...     state.get("hint")
        1
        >>> state.get("hint") is None
        True
    """

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    @contextlib.contextmanager
    def call(self) -> Iterator[PerCall]:
        """The scope of one call (values set inside are dropped on exit, even on error)."""
        try:
            yield self
        finally:
            self._values.clear()

    def __setitem__(self, key: str, value: Any) -> None:
        self._values[key] = value

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)


class CallSite(torch.nn.Module):
    """Stands in front of one entry of a block list during a call and converts how it is called.

    The entry (a real block, or the cache's stand-in for the whole list) is kept without being
    registered as a child, so the module tree does not change; ``attributes`` are plain
    attributes the forward may read off a list entry (e.g. a real block's attention module).
    """

    def __init__(self, inner: torch.nn.Module, convert: Convert, **attributes: Any) -> None:
        super().__init__()
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "convert", convert)
        for name, value in attributes.items():
            object.__setattr__(self, name, value)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.convert(self.inner, args, kwargs)


def as_called(entry: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The conversion that changes nothing: call the entry as the loop does."""
    return entry(*args, **kwargs)


def like(reference: torch.Tensor, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` laid out in memory as ``reference`` is (the same tensor when it already is).

    The cache returns a list's hidden states contiguous; when the loop's stream is not (a
    transposed convolution output), the ops after the loop round differently on the other layout.
    """
    if tensor.stride() == reference.stride() or tensor.shape != reference.shape:
        return tensor
    return torch.empty_like(reference).copy_(tensor)


@contextlib.contextmanager
def call_sites(
    transformer: torch.nn.Module,
    attribute: str,
    convert: Convert,
    entries: torch.nn.ModuleList | None = None,
    **attributes: Any,
) -> Iterator[None]:
    """For the ``with`` body, ``transformer.<attribute>`` holds one :class:`CallSite` per entry.

    Args:
        transformer: the module whose forward iterates the list.
        attribute: the list's attribute name (a direct child).
        convert: ``convert(entry, args, kwargs)`` calls the entry the way its pattern wants.
        entries: the list to put call sites in front of; the attribute's current value (the
            cache's stand-in while a cached forward runs) when omitted.
        **attributes: plain attributes every call site carries (see :class:`CallSite`).
    """
    modules = transformer._modules
    current = modules[attribute]
    source = current if entries is None else entries
    sites = [CallSite(entry, convert, **attributes) for entry in source]
    modules[attribute] = torch.nn.ModuleList(sites)
    try:
        yield
    finally:
        modules[attribute] = current
