"""Type-keyed registries: dispatch on a config's (or a module's) type, not on isinstance ladders.

A :class:`TypeRegistry` maps a type to a handler. Lookup walks the key's method resolution order,
so a handler registered for a base class serves its subclasses unless a subclass registers its
own. A registry maps types (or names) to functions and specs only; runtime state never lives
in one.

Example:
    >>> from ditkit_interfaces.registry import TypeRegistry
    >>> appliers = TypeRegistry("cache appliers")
    >>> @appliers.register(int)
    ... def apply_int(value):
    ...     return value + 1
    >>> appliers.lookup(True)(1)   # bool is a subclass of int
    2
    >>> int in appliers
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from .errors import DitkitError

__all__ = ["NameRegistry", "TypeRegistry"]

_H = TypeVar("_H")


class TypeRegistry(Generic[_H]):
    """A mapping from types to handlers with MRO-aware lookup.

    Args:
        name (`str`): what the registry holds, used in error messages.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: dict[type, _H] = {}

    def register(self, key: type, *, replace: bool = False) -> Callable[[_H], _H]:
        """Decorator registering a handler for ``key``; double registration raises."""

        def decorator(handler: _H) -> _H:
            if key in self._handlers and not replace:
                raise DitkitError(
                    f"{self.name}: {key.__qualname__} is already registered; "
                    "pass replace=True to override it on purpose"
                )
            self._handlers[key] = handler
            return handler

        return decorator

    def lookup(self, obj_or_type: Any) -> _H:
        """The handler for ``obj_or_type``'s type (or the type itself); raises if none."""
        handler = self.get(obj_or_type)
        if handler is None:
            typ = obj_or_type if isinstance(obj_or_type, type) else type(obj_or_type)
            known = ", ".join(sorted(t.__qualname__ for t in self._handlers)) or "none"
            raise DitkitError(
                f"{self.name}: nothing registered for {typ.__qualname__} (known: {known})"
            )
        return handler

    def get(self, obj_or_type: Any) -> _H | None:
        """The handler for ``obj_or_type``, or ``None``."""
        typ = obj_or_type if isinstance(obj_or_type, type) else type(obj_or_type)
        for base in typ.__mro__:
            if base in self._handlers:
                return self._handlers[base]
        return None

    def __contains__(self, key: type) -> bool:
        return key in self._handlers

    def __iter__(self) -> Iterator[type]:
        return iter(self._handlers)

    def __len__(self) -> int:
        return len(self._handlers)


class NameRegistry(Generic[_H]):
    """A mapping from class-name prefixes to handlers (how model families are matched).

    The longest registered prefix of the class name wins, so ``"QwenImageEdit"`` can override
    ``"QwenImage"``.

    Example:
        >>> families = NameRegistry("adapters")
        >>> families.add("Flux", "flux-adapter")
        >>> families.add("Flux2", "flux2-adapter")
        >>> families.match("Flux2Pipeline"), families.match("FluxPipeline"), families.match("Sana")
        ('flux2-adapter', 'flux-adapter', None)
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: dict[str, _H] = {}

    def add(self, prefix: str, handler: _H, *, replace: bool = False) -> None:
        if prefix in self._handlers and not replace:
            raise DitkitError(f"{self.name}: prefix {prefix!r} is already registered")
        self._handlers[prefix] = handler

    def match(self, class_name: str) -> _H | None:
        best = max((p for p in self._handlers if class_name.startswith(p)), key=len, default=None)
        return None if best is None else self._handlers[best]

    def prefixes(self) -> list[str]:
        return sorted(self._handlers)

    def __contains__(self, prefix: str) -> bool:
        return prefix in self._handlers

    def __len__(self) -> int:
        return len(self._handlers)
