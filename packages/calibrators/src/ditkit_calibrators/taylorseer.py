"""TaylorSeer: extrapolate a cached value with the Newton polynomial through the computed steps.

On every computed step the cache hands the freshly computed value ``Y(t)`` (a residual or the
hidden states) to :meth:`TaylorSeerCalibrator.update`; on a cached step
:meth:`~TaylorSeerCalibrator.approximate` returns the value of the interpolating polynomial of
degree ``<= n_derivatives`` through the last ``n_derivatives + 1`` computed steps, evaluated at
the current step ``t``. With the newest computed step first, ``z_0 > z_1 > ... > z_n``::

    P(t) = f[z_0] + f[z_0, z_1] (t - z_0) + f[z_0, z_1, z_2] (t - z_0)(t - z_1) + ...

where ``f[z_0..z_i]`` are Newton's divided differences, kept incrementally: when a value ``Y``
arrives at step ``s``, ``D'_0 = Y`` and ``D'_{i+1} = (D'_i - D_i) / (s - z_i)``, with ``D_i``
the previous table and ``z_i`` the oldest node of ``D_i``. Only ``n_derivatives + 1`` tensors are
kept (cache-dit keeps twice as many).

How this differs from cache-dit 1.5.3 (``taylorseer.py``), see docs/compat.md:

- cache-dit divides *finite differences* by the current spacing and sums ``dY_i k^i / i!``. That
  equals the Newton form only for degree ``<= 1``: for ``f(t) = t^2`` computed at every step its
  forecast ``k`` steps after ``t`` is ``(t + k)^2 - k``. Divided differences make order ``k``
  exact for every polynomial of degree ``<= k``, at any (also non-uniform) spacing.
- cache-dit counts steps itself, one behind the true step on first use, and needs three or four
  computed steps for the first derivative. Here the engine passes the true step index and the
  first derivative exists from the second computed step on.

Example:
    >>> import torch
    >>> seer = TaylorSeerCalibrator(n_derivatives=2)
    >>> for step in (0, 1, 3):                      # computed steps, non-uniform spacing
    ...     seer.mark_step_begin(step)
    ...     seer.update(torch.tensor([float(step) ** 2]))
    >>> seer.mark_step_begin(6)                      # a cached step: t^2 at t = 6, exactly
    >>> seer.approximate()
    tensor([36.])
"""

from __future__ import annotations

from typing import Any

import torch

from ._common import StepClock, check_int, layout, reject_unknown

__all__ = ["TaylorSeerCalibrator", "cache_dit_taylor_forecast"]


class TaylorSeerCalibrator(StepClock):
    """Newton-form polynomial extrapolation of one stream's cached value.

    Args:
        n_derivatives (`int`, defaults to 1): the polynomial degree (``taylorseer_order``); 0
            reuses the last computed value as is.

    The values handed to :meth:`update` are kept by reference and never modified in place. A
    value of another shape, dtype or device than the kept ones starts a fresh history (a
    resolution change). A second :meth:`update` at the same step replaces the history with the
    new value (the divided differences through the replaced value cannot be recovered).

    Example:
        >>> import torch
        >>> seer = TaylorSeerCalibrator(n_derivatives=1)
        >>> seer.mark_step_begin(0); seer.update(torch.tensor([1.0]))
        >>> seer.mark_step_begin(2); seer.update(torch.tensor([5.0]))
        >>> seer.mark_step_begin(3); seer.approximate()      # slope 2 per step
        tensor([7.])
        >>> seer.derivatives_available, seer.computed_steps
        (1, [2, 0])
    """

    def __init__(self, n_derivatives: int = 1, **kwargs: Any) -> None:
        reject_unknown(type(self).__name__, kwargs, ("n_derivatives",))
        self.n_derivatives = check_int(type(self).__name__, "n_derivatives", n_derivatives, 0)
        self._step: int | None = None
        self._nodes: list[int] = []  # computed steps, newest first
        self._table: list[torch.Tensor] = []  # f[z_0], f[z_0, z_1], ... (newest first)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_derivatives={self.n_derivatives})"

    # -- the Calibrator protocol ---------------------------------------------------------------
    def reset(self) -> None:
        """Forget every computed value and the current step."""
        self._step = None
        self._nodes = []
        self._table = []

    def mark_step_begin(self, step: int) -> None:
        """Set the denoising step of the current call (the true index, from the engine)."""
        self._step = int(step)

    def update(self, value: torch.Tensor) -> None:
        """Add the value computed at the current step to the divided-difference table."""
        step = self._current_step("update")
        if self._table and (layout(value) != layout(self._table[0]) or step <= self._nodes[0]):
            # a new shape (resolution), or no later step (a repeated or rewound step): restart
            self._nodes, self._table = [], []
        table = [value]
        for i, previous in enumerate(self._table[: self.n_derivatives]):
            table.append((table[i] - previous) / (step - self._nodes[i]))
        self._table = table
        self._nodes = [step, *self._nodes][: self.n_derivatives + 1]

    def approximate(self) -> torch.Tensor | None:
        """The polynomial's value at the current step (``None`` before any :meth:`update`)."""
        if not self._table:
            return None
        step = self._current_step("approximate")
        result = self._table[0]
        factor = 1.0
        for i in range(1, len(self._table)):
            factor *= step - self._nodes[i - 1]
            result = result + self._table[i] * factor
        return result

    # -- introspection -------------------------------------------------------------------------
    @property
    def derivatives_available(self) -> int:
        """How many divided differences beyond the value exist (the usable degree)."""
        return max(len(self._table) - 1, 0)

    @property
    def computed_steps(self) -> list[int]:
        """The steps the polynomial interpolates, newest first."""
        return list(self._nodes)


def cache_dit_taylor_forecast(
    values: list[torch.Tensor], steps: list[int], step: int, n_derivatives: int
) -> torch.Tensor:
    """cache-dit 1.5.3's TaylorSeer forecast (for comparison; not used by the engine).

    ``values`` were computed at ``steps`` (oldest first). cache-dit's ladder divides finite
    differences by the latest window only, ``dY_{i+1} = (dY_i - dY_i^{prev}) / window``, and
    forecasts ``sum_i dY_i k^i / i!`` with ``k = step - steps[-1]``. It assumes the step counts
    are aligned (no first-use lag), which favours cache-dit.

    Example:
        >>> import torch
        >>> t = [0, 1, 2, 3]
        >>> cache_dit_taylor_forecast([torch.tensor(float(s * s)) for s in t], t, 5, 2)
        tensor(23.)
    """
    current: list[torch.Tensor] = []
    last: int | None = None
    for value, at in zip(values, steps, strict=True):
        previous, current = current, [value]
        window = at - last if last is not None else 0
        for i in range(n_derivatives):
            if i < len(previous) and window > 0:
                current.append((current[i] - previous[i]) / window)
            else:
                break
        last = at
    k = step - (last if last is not None else step)
    result = current[0]
    factorial = 1.0
    for i in range(1, len(current)):
        factorial *= i
        result = result + current[i] * (k**i / factorial)
    return result
