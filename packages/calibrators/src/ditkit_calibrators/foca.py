"""FoCa: cache-dit's second-order forecast from the last two computed and last two seen values.

The state holds two windows of values (reference §3.6, cache-dit 1.5.3 ``foca.py``):

- the *full anchors* ``F_full`` and ``F_full_prev``: the last two **computed** values;
- the *window* ``F_k`` and ``F_km1``: the last two values the stream **saw**, computed or
  forecast (a forecast is pushed into the window, so consecutive cached steps build on it).

:meth:`FoCaCalibrator.update` (a computed step) shifts both: ``F_full_prev <- F_full``,
``F_full <- Y``, ``F_km1 <- F_k``, ``F_k <- Y``. :meth:`~FoCaCalibrator.approximate` (a cached
step) returns ``F_full`` until both windows hold two values; then, with ``e`` the number of steps
since the last computed one, ``d_full = F_full - F_full_prev`` and ``d_cur = F_k - F_km1``::

    e <= 3:  pred = F_full + (e / 2) (d_full + d_cur)
    e >  3:  pred = w (F_full + 1.5 (d_full + d_cur)) + (1 - w) F_full,   w = 3 / e

and shifts the window with it (``F_km1 <- F_k``, ``F_k <- pred``). Despite cache-dit's comments
there is no BDF2 term in the output. The differences are per *computed step*, not per denoising
step: the forecast does not look at the spacing of the computed steps (cache-dit's formula,
kept as is).

Differences from cache-dit 1.5.3: ``e`` uses the true step index passed by the engine (cache-dit's
own counter lags by one on first use); a second :meth:`~FoCaCalibrator.approximate` at the same
step returns the same forecast instead of shifting the window again; values are kept by
reference, not cloned (nothing here modifies a tensor in place).

Example:
    >>> import torch
    >>> foca = FoCaCalibrator()
    >>> for step, y in ((0, 1.0), (1, 2.0)):
    ...     foca.mark_step_begin(step)
    ...     foca.update(torch.tensor([y]))
    >>> foca.mark_step_begin(2); foca.approximate()   # e = 1: 2 + 0.5 * (1 + 1)
    tensor([3.])
    >>> foca.mark_step_begin(3); foca.approximate()   # e = 2: 2 + 1.0 * (1 + (3 - 2))
    tensor([4.])
"""

from __future__ import annotations

from typing import Any

import torch

from ._common import StepClock, layout, reject_unknown

__all__ = ["FoCaCalibrator", "foca_forecast"]


def foca_forecast(
    full: torch.Tensor,
    full_prev: torch.Tensor,
    current: torch.Tensor,
    current_prev: torch.Tensor,
    elapsed: int,
) -> torch.Tensor:
    """cache-dit's FoCa closed form for ``elapsed`` steps after the last computed one.

    Example:
        >>> import torch
        >>> one = torch.tensor(1.0)
        >>> foca_forecast(one * 4, one * 2, one * 4, one * 2, 6)   # w = 0.5: 0.5 * 10 + 0.5 * 4
        tensor(7.)
    """
    slope = (full - full_prev) + (current - current_prev)
    if elapsed <= 3:
        return full + slope * (elapsed / 2)
    weight = 3.0 / elapsed
    return (full + slope * 1.5) * weight + full * (1.0 - weight)


class FoCaCalibrator(StepClock):
    """cache-dit's FoCa forecaster for one stream (see the module docstring for the formula).

    FoCa has no options; any keyword argument (e.g. from ``calibrator_kwargs``) is a
    :class:`~ditkit_interfaces.ConfigError`.

    Example:
        >>> import torch
        >>> foca = FoCaCalibrator()
        >>> foca.mark_step_begin(0); foca.approximate() is None
        True
        >>> foca.update(torch.tensor([5.0])); foca.mark_step_begin(1); foca.approximate()
        tensor([5.])
    """

    def __init__(self, **kwargs: Any) -> None:
        reject_unknown(type(self).__name__, kwargs, ())
        self._step: int | None = None
        self.reset()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # -- the Calibrator protocol ---------------------------------------------------------------
    def reset(self) -> None:
        """Forget both windows, the last computed step and the current step."""
        self._step = None
        self.full: torch.Tensor | None = None
        self.full_prev: torch.Tensor | None = None
        self.current: torch.Tensor | None = None
        self.current_prev: torch.Tensor | None = None
        self.last_full_step: int | None = None
        self._forecast: tuple[int, torch.Tensor] | None = None

    def mark_step_begin(self, step: int) -> None:
        """Set the denoising step of the current call (the true index, from the engine)."""
        self._step = int(step)

    def update(self, value: torch.Tensor) -> None:
        """A computed step: shift the full anchors and the window."""
        step = self._current_step("update")
        if self.full is not None and layout(value) != layout(self.full):
            self.reset()  # a new shape (resolution): start over
            self._step = step
        self.full_prev, self.full = self.full, value
        self.current_prev, self.current = self.current, value
        self.last_full_step = step
        self._forecast = None

    def approximate(self) -> torch.Tensor | None:
        """A cached step: the forecast (pushed into the window), or ``F_full`` early on."""
        if self.full is None:
            return None
        step = self._current_step("approximate")
        if self.full_prev is None or self.current_prev is None or self.current is None:
            return self.full
        if self._forecast is not None and self._forecast[0] == step:
            return self._forecast[1]  # asked twice in one step: do not shift the window again
        assert self.last_full_step is not None
        elapsed = step - self.last_full_step
        prediction = foca_forecast(
            self.full, self.full_prev, self.current, self.current_prev, elapsed
        )
        self.current_prev, self.current = self.current, prediction
        self._forecast = (step, prediction)
        return prediction

    # -- introspection -------------------------------------------------------------------------
