"""The error types every ditkit package raises.

Each error is also the built-in exception a caller would expect (``ConfigError`` is a
``ValueError``, ``MissingComponentError`` an ``ImportError``), so code written against
cache-dit's ``ValueError``/``AssertionError``-style failures keeps catching them.

Example:
    >>> from ditkit_interfaces.errors import ConfigError
    >>> try:
    ...     raise ConfigError("Fn_compute_blocks", 0, "an integer >= 1", fix="use 1")
    ... except ValueError as err:
    ...     print(err)
    Fn_compute_blocks=0 is invalid: expected an integer >= 1. Fix: use 1.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AdapterError",
    "CapabilityError",
    "ConfigError",
    "DitkitError",
    "MissingComponentError",
    "UnsupportedModelError",
]


class DitkitError(Exception):
    """Base class of every error ditkit raises on purpose."""


class ConfigError(DitkitError, ValueError):
    """A configuration value is invalid; the message names the field and the fix.

    Args:
        field (`str`): the offending field, as the user spells it.
        value (`Any`): the value that was given.
        expected (`str`): what would have been valid, in words.
        fix (`str`, *optional*): one sentence telling the user what to change.
    """

    def __init__(self, field: str, value: Any, expected: str, fix: str | None = None) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        self.fix = fix
        message = f"{field}={value!r} is invalid: expected {expected}."
        if fix:
            message += f" Fix: {fix.rstrip('.')}."
        super().__init__(message)


class MissingComponentError(DitkitError, ImportError):
    """A feature needs a ditkit package (or a third-party one) that is not installed.

    Args:
        feature (`str`): what the user asked for, e.g. ``"enable_cache"``.
        distribution (`str`): the distribution that provides it, e.g. ``"ditkit-cache"``.
        pip_line (`str`, *optional*): the exact command that installs it.
        reason (`str`, *optional*): extra context (e.g. the installed version lacks the feature).
    """

    def __init__(
        self,
        feature: str,
        distribution: str,
        pip_line: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.feature = feature
        self.distribution = distribution
        self.pip_line = pip_line or f"pip install {distribution}"
        message = f"{feature} needs the {distribution} package"
        if reason:
            message += f" ({reason})"
        message += f". Install it with: {self.pip_line}"
        super().__init__(message, name=distribution)


class AdapterError(DitkitError, ValueError):
    """A block adapter does not match the model it is applied to."""


class UnsupportedModelError(AdapterError):
    """No registered adapter matches this pipeline or transformer class."""


class CapabilityError(DitkitError, RuntimeError):
    """The machine lacks something a feature needs (a GPU, a backend, a torch version)."""
