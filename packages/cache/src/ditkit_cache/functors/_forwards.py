"""Tools the image functors share: instance-level forward wrappers and named-argument access.

A functor patches ``module.forward`` as an instance attribute (so ``PatchFunctor.restore`` undoes
it by removing the attribute) and often needs one named argument of a call that may arrive by
position or by keyword; :class:`Argument` finds and replaces it by the forward's signature.

Example:
    >>> import torch
    >>> layer = torch.nn.Linear(2, 2)
    >>> wrap_forward(layer, lambda original: lambda x: 2 * original(x))
    >>> "forward" in vars(layer), list(inspect.signature(layer.forward).parameters)
    (True, ['input'])
    >>> argument = Argument(torch.nn.Linear(1, 1).forward, "input")
    >>> argument.get((3,), {}), argument.replace((3,), {}, 4)
    (3, ((4,), {}))
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["Argument", "Forward", "wrap_forward"]

Forward = Callable[..., Any]


def wrap_forward(
    module: torch.nn.Module, make: Callable[[Forward], Forward], *, keep_signature: bool = True
) -> None:
    """Set ``module.forward`` to ``make(current forward)``.

    With ``keep_signature`` the wrapper reports the wrapped forward's signature (the cache reads
    the transformer's to find its ``timestep`` parameter); a wrapper that changes how its module is
    called passes ``False`` and documents its own signature.
    """
    original = module.forward
    patched = make(original)
    if keep_signature:
        functools.update_wrapper(patched, original, updated=())
    module.forward = patched


class Argument:
    """One named parameter of a forward: read or replace it in a call's ``(args, kwargs)``."""

    def __init__(self, forward: Forward, name: str) -> None:
        parameters = inspect.signature(forward).parameters
        if name not in parameters:
            raise TypeError(
                f"{getattr(forward, '__qualname__', forward)} has no parameter {name!r}"
            )
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        order = [n for n, p in parameters.items() if p.kind in positional]
        self.name = name
        self.position = order.index(name) if name in order else None

    def _positional(self, args: tuple[Any, ...]) -> bool:
        return self.position is not None and self.position < len(args)

    def get(self, args: tuple[Any, ...], kwargs: dict[str, Any], default: Any = None) -> Any:
        if self._positional(args):
            return args[self.position]  # type: ignore[index]
        return kwargs.get(self.name, default)

    def replace(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], value: Any
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``(args, kwargs)`` with the parameter set to ``value`` (new containers)."""
        if self._positional(args):
            position: int = self.position  # type: ignore[assignment]
            return (*args[:position], value, *args[position + 1 :]), kwargs
        return args, {**kwargs, self.name: value}
