"""TaylorSeer: extrapolate a cached value from divided differences of the computed steps.

On every computed step the cache hands the freshly computed value ``Y(t)`` (a residual or the
hidden states) to :meth:`TaylorSeerCalibrator.update`; on a cached step
:meth:`~TaylorSeerCalibrator.approximate` extrapolates to the current step ``t`` from the last
``n_derivatives + 1`` computed steps. With the newest computed step first,
``z_0 > z_1 > ... > z_n``, ``k = t - z_0`` and ``d_0 = z_0 - z_1``, Newton's divided differences
``f[z_0..z_i]`` give two forecasts (``extrapolation=``):

- ``"newton"``, the interpolating polynomial, exact for every polynomial of degree ``<= n``::

      P(t) = f[z_0] + f[z_0, z_1] k + f[z_0, z_1, z_2] k (k + d_0) + ...

- ``"trusted"`` (the default), the same polynomial with two limits on its terms of degree
  ``i >= 2`` (the curvature and beyond):

  1. *reach*: a term is used only while ``k <= z_0 - z_i``, the span of the steps it was
     measured on (a curvature seen over two steps is not extrapolated five steps ahead);
  2. *trust region*: their sum is scaled, per sample, so that its norm is at most half the norm
     of the slope term ``f[z_0, z_1] k``.

  3. *early damping under a static schedule*: when the cache runs a static steps mask (every
     computed step fixed in advance, so the request length ``N`` is known; the cache calls
     :meth:`~TaylorSeerCalibrator.set_static_schedule`), forecasts for steps ``t < 0.4 N``
     scale those terms by ``min(1, k (d_0 + d_1) / (2 d_0 (k + d_0)))`` with
     ``d_1 = z_1 - z_2``: cache-dit's effective weight on Newton's curvature, capped at 1.

  Orders 0 and 1 are the same in both forms. On the trained fixture the exact parabola
  over-reaches on long gaps, mostly early in denoising; "trusted" is at least as good as
  "newton" in all 8 order-2 configs measured there (up to +9.6 dB), and the early damping
  lifts the 28-step static "fast" mask from 41.8 to 45.9 dB, see docs/benchmarks/quality.md
  ("TaylorSeer order 2"). The scales are a device tensor and a Python float: no sync.

The divided differences are kept incrementally: when a value ``Y`` arrives at step ``s``,
``D'_0 = Y`` and ``D'_{i+1} = (D'_i - D_i) / (s - z_i)``, with ``D_i`` the previous table and
``z_i`` the oldest node of ``D_i``. Only ``n_derivatives + 1`` tensors are kept (cache-dit keeps
twice as many). The weights are Python floats of the step indices: no host-device sync.

How this differs from cache-dit 1.5.3 (``taylorseer.py``), see docs/compat.md:

- cache-dit divides *finite differences* by the current spacing and sums ``dY_i k^i / i!``. That
  equals the Newton form only for degree ``<= 1``: for ``f(t) = t^2`` computed at every step its
  forecast ``k`` steps after ``t`` is ``(t + k)^2 - k``, and after a gap of ``g`` steps followed
  by two adjacent computed steps it scales the curvature by about ``(1 + g) / 2``. Divided
  differences are exact at any (also non-uniform) spacing; ``"trusted"`` then bounds the
  reach and the size of the terms of degree >= 2.
- cache-dit counts steps itself, one behind the true step on first use, and needs three or four
  computed steps for the first derivative. Here the engine passes the true step index and the
  first derivative exists from the second computed step on.

Example:
    >>> import torch
    >>> seer = TaylorSeerCalibrator(n_derivatives=2)
    >>> exact = TaylorSeerCalibrator(n_derivatives=2, extrapolation="newton")
    >>> for seer in (exact, TaylorSeerCalibrator(n_derivatives=2)):
    ...     for step in (0, 1, 3):                   # computed steps, non-uniform spacing
    ...         seer.mark_step_begin(step)
    ...         seer.update(torch.tensor([float(step) ** 2]))
    ...     seer.mark_step_begin(6)                  # a cached step: t^2 = 36 at t = 6
    ...     print(seer.approximate())
    tensor([36.])
    tensor([27.])
"""

from __future__ import annotations

from typing import Any

import torch

from ._common import StepClock, check_int, layout, reject_unknown

__all__ = [
    "EARLY_FRACTION",
    "EXTRAPOLATIONS",
    "TRUST_RATIO",
    "TaylorSeerCalibrator",
    "cache_dit_taylor_forecast",
]

EXTRAPOLATIONS = ("trusted", "newton")
TRUST_RATIO = 0.5  # the terms of degree >= 2 may be at most this fraction of the slope term
EARLY_FRACTION = 0.4  # under a static schedule, damp those terms for steps t < this * N


class TaylorSeerCalibrator(StepClock):
    """Newton-form polynomial extrapolation of one stream's cached value.

    Args:
        n_derivatives (`int`, defaults to 1): the polynomial degree (``taylorseer_order``); 0
            reuses the last computed value as is.
        extrapolation (`str`, defaults to `"trusted"`): ``"trusted"`` or ``"newton"`` (the exact
            interpolating polynomial), see the module docstring; equal for degree <= 1. Pass it
            through ``TaylorSeerCalibratorConfig(calibrator_kwargs={"extrapolation": ...})``.

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

    def __init__(
        self, n_derivatives: int = 1, extrapolation: str = "trusted", **kwargs: Any
    ) -> None:
        name = type(self).__name__
        reject_unknown(name, kwargs, ("n_derivatives", "extrapolation"))
        self.n_derivatives = check_int(name, "n_derivatives", n_derivatives, 0)
        if extrapolation not in EXTRAPOLATIONS:
            raise ValueError(
                f"{name}(extrapolation={extrapolation!r}): use one of {EXTRAPOLATIONS} "
                '("trusted" is the default; "newton" is the exact interpolating polynomial)'
            )
        self.extrapolation = extrapolation
        self.static_steps: int | None = None  # N of a static schedule (set_static_schedule)
        self._step: int | None = None
        self._nodes: list[int] = []  # computed steps, newest first
        self._table: list[torch.Tensor] = []  # f[z_0], f[z_0, z_1], ... (newest first)

    def __repr__(self) -> str:
        extra = "" if self.extrapolation == "trusted" else f", extrapolation={self.extrapolation!r}"
        return f"{type(self).__name__}(n_derivatives={self.n_derivatives}{extra})"

    # -- the Calibrator protocol ---------------------------------------------------------------
    def reset(self) -> None:
        """Forget every computed value and the current step."""
        self._step = None
        self._nodes = []
        self._table = []

    def mark_step_begin(self, step: int) -> None:
        """Set the denoising step of the current call (the true index, from the engine)."""
        self._step = int(step)

    def set_static_schedule(self, total_steps: int | None) -> None:
        """The request's step count when a static steps mask fixes the schedule (else ``None``).

        The cache calls it at the start of each request. With ``extrapolation="trusted"`` the
        terms of degree >= 2 are damped for steps before ``EARLY_FRACTION * total_steps``.
        """
        if total_steps is not None:
            total_steps = check_int(type(self).__name__, "total_steps", total_steps, 1)
        self.static_steps = total_steps

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
        table, nodes = self._table, self._nodes
        k = step - nodes[0]
        if len(table) == 1:
            return table[0]
        slope = table[1] * k
        higher: torch.Tensor | None = None
        factor = float(k)
        for i in range(2, len(table)):
            factor *= step - nodes[i - 1]
            if self.extrapolation == "trusted" and k > nodes[0] - nodes[i]:
                break  # beyond the reach of this term's steps (and of every later one)
            term = table[i] * factor
            higher = term if higher is None else higher + term
        if higher is None:
            return table[0] + slope
        if self.extrapolation == "trusted":
            if self.static_steps is not None and step < EARLY_FRACTION * self.static_steps:
                d0, d1 = nodes[0] - nodes[1], nodes[1] - nodes[2]
                higher = higher * min(1.0, k * (d0 + d1) / (2 * d0 * (k + d0)))
            higher = higher * _trust_scale(slope, higher)
        return table[0] + slope + higher

    # -- introspection -------------------------------------------------------------------------
    @property
    def derivatives_available(self) -> int:
        """How many divided differences beyond the value exist (the usable degree)."""
        return max(len(self._table) - 1, 0)

    @property
    def computed_steps(self) -> list[int]:
        """The steps the polynomial interpolates, newest first."""
        return list(self._nodes)


def _trust_scale(slope: torch.Tensor, higher: torch.Tensor) -> torch.Tensor:
    """Per-sample ``min(1, TRUST_RATIO * |slope| / |higher|)``, shaped to broadcast (no sync)."""
    dims = tuple(range(1, slope.dim())) if slope.dim() > 1 else None
    keep = slope.dim() > 1
    dtype = torch.promote_types(higher.dtype, torch.float32)  # bf16/fp16 norms in float32
    norm = torch.linalg.vector_norm
    slope_norm = norm(slope, dim=dims, keepdim=keep, dtype=dtype)
    higher_norm = norm(higher, dim=dims, keepdim=keep, dtype=dtype)
    ratio = TRUST_RATIO * slope_norm / higher_norm.clamp_min(torch.finfo(dtype).tiny)
    return ratio.clamp(max=1.0).to(higher.dtype)


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
