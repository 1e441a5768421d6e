"""The config base: validated dataclasses with dict round trips, partial updates and run tags.

Every config that crosses package lines derives from :class:`ConfigBase`. Subclasses are plain
``@dataclass`` classes that validate themselves in :meth:`ConfigBase.validate` (called from
``__post_init__`` and after every :meth:`ConfigBase.update`). ``None`` always means "not set":
validation skips ``None`` fields, which is what lets an all-``None`` config (see
:meth:`ConfigBase.reset`) act as a partial override.

Example:
    >>> import dataclasses
    >>> from ditkit_interfaces.config import ConfigBase, check_int
    >>> @dataclasses.dataclass
    ... class ToyConfig(ConfigBase):
    ...     blocks: int = 8
    ...     def validate(self) -> None:
    ...         check_int(self, "blocks", minimum=1)
    ...     def strify(self) -> str:
    ...         return f"Toy_B{self.blocks}"
    >>> ToyConfig().update(blocks=2).strify()
    'Toy_B2'
    >>> ToyConfig.from_dict({"blocks": 3})
    ToyConfig(blocks=3)
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from .errors import ConfigError

__all__ = [
    "ConfigBase",
    "check_choice",
    "check_float",
    "check_int",
]

_C = TypeVar("_C", bound="ConfigBase")


@dataclasses.dataclass
class ConfigBase:
    """Base class of ditkit's configuration dataclasses."""

    def __post_init__(self) -> None:
        self.validate()

    # -- subclass hooks -------------------------------------------------------------------
    def validate(self) -> None:
        """Check every set field; raise :class:`ConfigError` naming the field and the fix."""

    def strify(self) -> str:
        """A short, stable run tag for logs and file names."""
        return type(self).__name__

    # -- field helpers -------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of the public init fields, in declaration order."""
        return tuple(
            f.name for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")
        )

    @classmethod
    def _reject_unknown(cls, keys: Iterable[str], where: str) -> None:
        known = cls.field_names()
        for key in keys:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = (
                    f"did you mean {close[0]!r}?" if close else f"valid fields: {', '.join(known)}"
                )
                raise ConfigError(
                    f"{cls.__name__}.{key}",
                    "<unknown field>",
                    f"a field of {cls.__name__}",
                    fix=f"{hint} (given to {where})",
                )

    # -- dict round trips ---------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        """The public fields as a shallow dict (values as stored; enums stay enums)."""
        return {name: getattr(self, name) for name in self.field_names()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON/YAML-friendly dict: enums become their values, tuples become lists."""
        return {name: _plain(value) for name, value in self.as_dict().items()}

    @classmethod
    def from_dict(cls: type[_C], data: Mapping[str, Any]) -> _C:
        """Build a config from a dict; unknown keys raise a :class:`ConfigError`."""
        cls._reject_unknown(data.keys(), f"{cls.__name__}.from_dict")
        return cls(**dict(data))

    # -- partial updates ----------------------------------------------------------------
    def update(self: _C, **kwargs: Any) -> _C:
        """Set every given field that is not ``None``, then re-validate. Returns ``self``.

        Unknown names raise (a typo must not silently do nothing).
        """
        self._reject_unknown(kwargs.keys(), f"{type(self).__name__}.update")
        for name, value in kwargs.items():
            if value is not None:
                setattr(self, name, value)
        self._normalize()
        self.validate()
        return self

    def reset(self: _C, **kwargs: Any) -> _C:
        """Set every field to ``None`` (keeping :attr:`_constant_fields`), then apply ``kwargs``.

        The result is a partial config: only the fields given here are set, so merging it
        into a full config with :meth:`update` changes only those.
        """
        for name in self.field_names():
            if name not in self._constant_fields():
                setattr(self, name, None)
        return self.update(**kwargs)

    empty = reset  # cache-dit's name for the same operation

    def copy(self: _C, **changes: Any) -> _C:
        """A new config with ``changes`` applied (validated)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def _constant_fields(cls) -> frozenset[str]:
        """Fields that :meth:`reset` keeps (they identify the config's kind)."""
        return frozenset()

    def _normalize(self) -> None:
        """Coerce convenient spellings (e.g. strings to enums) after an update."""


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, ConfigBase):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _name(config: ConfigBase, field: str) -> str:
    return f"{type(config).__name__}.{field}"


def check_int(
    config: ConfigBase,
    field: str,
    *,
    minimum: int | None = None,
    fix: str | None = None,
) -> None:
    """Raise unless ``config.<field>`` is ``None`` or an ``int`` (not ``bool``) ``>= minimum``."""
    value = getattr(config, field)
    if value is None:
        return
    expected = "an integer" + (f" >= {minimum}" if minimum is not None else "")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(_name(config, field), value, expected, fix)
    if minimum is not None and value < minimum:
        raise ConfigError(_name(config, field), value, expected, fix or f"use a value >= {minimum}")


def check_float(
    config: ConfigBase,
    field: str,
    *,
    minimum: float | None = None,
    strictly_positive: bool = False,
    fix: str | None = None,
) -> float | None:
    """Raise unless ``config.<field>`` is ``None`` or a finite number in range; return it as float.

    Objects with ``.item()`` (0-d tensors) are accepted and read once, at validation time.
    """
    value = getattr(config, field)
    if value is None:
        return None
    try:
        number = float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        raise ConfigError(_name(config, field), value, "a number", fix) from None
    if isinstance(value, bool) or number != number or number in (float("inf"), float("-inf")):
        raise ConfigError(_name(config, field), value, "a finite number", fix)
    if strictly_positive and number <= 0:
        raise ConfigError(_name(config, field), value, "a number > 0", fix)
    if minimum is not None and number < minimum:
        raise ConfigError(
            _name(config, field),
            value,
            f"a number >= {minimum}",
            fix or f"use a value >= {minimum}",
        )
    return number


def check_choice(
    config: ConfigBase, field: str, choices: Iterable[str], *, fix: str | None = None
) -> None:
    """Raise unless ``config.<field>`` is ``None`` or one of ``choices`` (case-sensitive)."""
    value = getattr(config, field)
    options = tuple(choices)
    if value is not None and value not in options:
        expected = "one of " + ", ".join(repr(c) for c in options)
        raise ConfigError(_name(config, field), value, expected, fix or f"pick {expected}")
