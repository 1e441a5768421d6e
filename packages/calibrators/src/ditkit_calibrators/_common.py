"""Helpers shared by the calibrators: argument checks and the "same kind of tensor" test.

Example:
    >>> import torch
    >>> from ditkit_calibrators._common import check_int, layout
    >>> check_int("TaylorSeerCalibrator", "n_derivatives", 2, minimum=0)
    2
    >>> layout(torch.zeros(2, 3)) == layout(torch.ones(2, 3)), layout(torch.zeros(3, 2))[0]
    (True, torch.Size([3, 2]))
"""

from __future__ import annotations

from typing import Any

import torch

from ditkit_interfaces import ConfigError

__all__ = ["StepClock", "check_choice", "check_float", "check_int", "layout", "reject_unknown"]


def check_int(owner: str, name: str, value: Any, minimum: int) -> int:
    """``value`` as an ``int >= minimum`` (``bool`` is refused), else :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{owner}.{name}", value, f"an integer >= {minimum}")
    return value


def check_float(owner: str, name: str, value: Any, minimum: float) -> float:
    """``value`` as a finite ``float >= minimum``, else :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{owner}.{name}", value, f"a number >= {minimum}")
    value = float(value)
    if not value >= minimum or value == float("inf"):
        raise ConfigError(f"{owner}.{name}", value, f"a finite number >= {minimum}")
    return value


def check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else :class:`ConfigError`."""
    if value not in choices:
        raise ConfigError(f"{owner}.{name}", value, "one of " + ", ".join(map(repr, choices)))
    return value


def reject_unknown(owner: str, kwargs: dict[str, Any], known: tuple[str, ...]) -> None:
    """A :class:`ConfigError` naming the first unknown keyword (e.g. from ``calibrator_kwargs``)."""
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        accepted = ", ".join(known) if known else "no options"
        raise ConfigError(
            f"{owner}({unknown[0]}=...)",
            kwargs[unknown[0]],
            f"a known option ({accepted})",
            fix=f"remove {', '.join(unknown)} from calibrator_kwargs",
        )


def layout(value: torch.Tensor) -> tuple[torch.Size, torch.dtype, torch.device]:
    """What must stay the same between the values one calibrator combines."""
    return value.shape, value.dtype, value.device


class StepClock:
    """The denoising step of the current call, as ``mark_step_begin`` last set it."""

    _step: int | None = None

    @property
    def current_step(self) -> int | None:
        return self._step

    def _current_step(self, what: str) -> int:
        if self._step is None:
            raise RuntimeError(
                f"{type(self).__name__}.{what}() before mark_step_begin(step): the calibrator "
                "needs the denoising step index of the call"
            )
        return self._step
