"""DMD: Dynamic Mode Decomposition of the last snapshots, extrapolated by eigenvalue powers.

Each computed value (a residual or hidden states) is a *snapshot* ``x_j`` taken at step ``t_j``.
Over the newest uniformly spaced snapshots (spacing ``s``) the stream is modelled as a linear
system ``x_{j+1} = A x_j``, i.e. a sum of exponential modes ``x(t) = sum_m phi_m lambda_m^{t/s}``
(decaying, growing or oscillating). Per batch item, in float64 (cache-dit 1.5.3 ``dmd.py``,
reference §3.6):

1. ``V = [x_0 ... x_{n-1}]`` (``d x n``), ``X = V[:, :-1]``, ``X' = V[:, 1:]``;
2. economy SVD ``X = U S Vh`` (``svd_precision``: ``"low"`` randomised with seed 0 inside
   ``fork_rng``, ``"medium"`` ``torch.linalg.svd``, ``"high"`` LAPACK ``gesvd``: scipy on CPU,
   ``torch.linalg.svd(driver="gesvd")`` on CUDA);
3. rank ``r = #{sigma_i > 1e-4 sigma_0}`` when ``rank=0`` (else ``min(rank, n-1)``), at least 1;
4. ``A~ = U_r^H X' V_r diag(1 / (sigma_r + ridge))`` (complex128) and ``eig(A~) = (lambda, W)``;
5. modes ``Phi = X' V_r diag(1 / (sigma_r + ridge)) W``, amplitudes ``b = lstsq(Phi, x_{n-1})``;
6. forecast ``k = (t - t_{n-1}) / s`` snapshots ahead: ``Re(Phi (lambda^k * b))``, cast back.

With fewer than 4 uniformly spaced snapshots the forecast is a Taylor (Newton divided
differences) extrapolation of order ``n_derivatives`` (1 by default) over the computed steps.
If an item is degenerate (``sigma_0 = 0``, a failed decomposition) or the cast forecast is not
finite, the newest snapshot is returned unchanged.

The ridge only shrinks the reduced operator: ``A~_ridge = A~_0 (I - D)`` with
``D = diag(ridge / (sigma_i + ridge))``; for ``k`` whole steps the forecast moves by at most
``k * eps * ||A~_0||^k * ||B|| * ||B^+ x_{n-1}||`` with ``eps = ridge / (sigma_r + ridge)`` and
``B = X' V_r diag(1 / sigma_r)`` (the tests check this bound; README.md derives it).

Example:
    >>> import torch
    >>> dmd = DMDCalibrator(ridge=0.0)
    >>> modes = torch.tensor([[1.0, 0.0], [0.5, 2.0], [0.0, 1.0]], dtype=torch.float64)
    >>> for step in range(0, 12, 2):                       # every second step is computed
    ...     dmd.mark_step_begin(step)
    ...     dmd.update((modes @ torch.tensor([0.9**step, 0.6**step], dtype=torch.float64))[None])
    >>> dmd.mark_step_begin(15)
    >>> exact = modes @ torch.tensor([0.9**15, 0.6**15], dtype=torch.float64)
    >>> bool(torch.allclose(dmd.approximate()[0], exact, rtol=1e-10, atol=0))
    True
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ._common import StepClock, check_choice, check_float, check_int, layout, reject_unknown
from .taylorseer import TaylorSeerCalibrator

__all__ = ["SVD_PRECISIONS", "DMDCalibrator", "DMDFit"]

SVD_PRECISIONS = ("low", "medium", "high")
#: Singular values at or below this fraction of the largest are dropped when ``rank=0``.
RANK_TOLERANCE = 1e-4
#: The fewest uniformly spaced snapshots a fit uses; fewer fall back to Taylor.
MIN_SNAPSHOTS = 4


@dataclasses.dataclass
class DMDFit:
    """One batch item's fit: ``forecast(k) = Re(modes @ (eigenvalues**k * amplitudes))``."""

    modes: torch.Tensor  # [d, r] complex128
    eigenvalues: torch.Tensor  # [r] complex128
    amplitudes: torch.Tensor  # [r] complex128
    rank: int

    def forecast(self, k: float) -> torch.Tensor:
        powers = self.eigenvalues ** torch.tensor(k, dtype=torch.float64)
        return (self.modes @ (powers * self.amplitudes)).real


def _svd(x: torch.Tensor, precision: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Economy SVD ``x = U diag(S) V^H`` as ``(U, S, V)`` in ``x``'s dtype and device."""
    if precision == "low":
        devices = [x.device] if x.device.type != "cpu" else []
        with torch.random.fork_rng(devices=devices, device_type=x.device.type):
            torch.manual_seed(0)
            u, s, v = torch.svd_lowrank(x, q=min(x.shape), niter=1)
        return u, s, v
    if precision == "high" and x.device.type == "cpu":
        import scipy.linalg  # LAPACK gesvd; torch offers the driver on CUDA only

        u_np, s_np, vh_np = scipy.linalg.svd(
            x.numpy(), full_matrices=False, lapack_driver="gesvd", check_finite=False
        )
        u, s, vh = (torch.from_numpy(a) for a in (u_np, s_np, vh_np))
        return u, s, vh.mH
    driver = "gesvd" if precision == "high" else None
    u, s, vh = torch.linalg.svd(x, full_matrices=False, driver=driver)
    return u, s, vh.mH


def fit_item(
    snapshots: torch.Tensor, rank: int = 0, ridge: float = 1e-8, svd_precision: str = "medium"
) -> DMDFit | None:
    """Fit one item's ``[d, n]`` float64 snapshot matrix; ``None`` if it is degenerate.

    Example:
        >>> import torch
        >>> t = torch.arange(5, dtype=torch.float64)
        >>> fit = fit_item(torch.stack([0.5**t, 2 * 0.5**t]), ridge=0.0)
        >>> fit.rank, round(fit.eigenvalues[0].real.item(), 12)
        (1, 0.5)
    """
    x, x_next = snapshots[:, :-1], snapshots[:, 1:]
    try:
        u, s, v = _svd(x, svd_precision)
    except (RuntimeError, ValueError):  # LinAlgError is a RuntimeError/ValueError subclass
        return None
    if s.numel() == 0 or not bool(torch.isfinite(s).all()) or not s[0] > 0:
        return None
    r = int((s > RANK_TOLERANCE * s[0]).sum()) if rank == 0 else min(rank, s.numel())
    r = max(r, 1)
    u_r, v_r = u[:, :r].to(torch.complex128), v[:, :r].to(torch.complex128)
    scale = (1.0 / (s[:r] + ridge)).to(torch.complex128)
    projected = (x_next.to(torch.complex128) @ v_r) * scale  # X' V_r diag(1/(sigma+ridge))
    reduced = u_r.mH @ projected
    try:
        eigenvalues, vectors = torch.linalg.eig(reduced)
        modes = projected @ vectors
        target = snapshots[:, -1:].to(torch.complex128)
        amplitudes = torch.linalg.lstsq(modes, target, driver="gelsd" if modes.is_cpu else None)
    except (RuntimeError, ValueError):
        return None
    return DMDFit(modes, eigenvalues, amplitudes.solution[:, 0], r)


class DMDCalibrator(StepClock):
    """Dynamic Mode Decomposition forecaster for one stream (formulas in the module docstring).

    Args:
        history (`int`, defaults to 6): snapshots kept (>= 2; a fit needs 4 uniform ones).
        rank (`int`, defaults to 0): SVD rank; 0 keeps ``sigma > 1e-4 sigma_0``.
        ridge (`float`, defaults to 1e-8): added to the kept singular values.
        svd_precision (`str`, defaults to `"medium"`): ``"low"``, ``"medium"`` or ``"high"``.
        n_derivatives (`int`, defaults to 1): the order of the Taylor fallback.

    Example:
        >>> import torch
        >>> dmd = DMDCalibrator()
        >>> for step in (0, 1, 2):                       # 3 snapshots: the Taylor fallback
        ...     dmd.mark_step_begin(step); dmd.update(torch.tensor([[1.0 + step]]))
        >>> dmd.mark_step_begin(4); dmd.approximate(), dmd.last_method
        (tensor([[5.]]), 'taylor')
    """

    def __init__(
        self,
        history: int = 6,
        rank: int = 0,
        ridge: float = 1e-8,
        svd_precision: str = "medium",
        n_derivatives: int = 1,
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        reject_unknown(
            owner, kwargs, ("history", "rank", "ridge", "svd_precision", "n_derivatives")
        )
        self.history = check_int(owner, "history", history, 2)
        self.rank = check_int(owner, "rank", rank, 0)
        self.ridge = check_float(owner, "ridge", ridge, 0.0)
        self.svd_precision = check_choice(owner, "svd_precision", svd_precision, SVD_PRECISIONS)
        self.taylor = TaylorSeerCalibrator(n_derivatives=n_derivatives)
        self.n_derivatives = self.taylor.n_derivatives
        self._step: int | None = None
        self.reset()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(history={self.history}, rank={self.rank}, "
            f"ridge={self.ridge}, svd_precision={self.svd_precision!r})"
        )

    # -- the Calibrator protocol ---------------------------------------------------------------
    def reset(self) -> None:
        """Forget the snapshots, the fit, the Taylor fallback and the current step."""
        self._step = None
        self.steps: list[int] = []
        self.snapshots: list[torch.Tensor] = []
        self.taylor.reset()
        self._fit_key: tuple[int, int, int] | None = None
        self._fits: list[DMDFit | None] = []
        #: ``"dmd"``, ``"taylor"`` or ``"newest"`` (the guard): what the last forecast used.
        self.last_method: str | None = None

    def mark_step_begin(self, step: int) -> None:
        """Set the denoising step of the current call (the true index, from the engine)."""
        self._step = int(step)
        self.taylor.mark_step_begin(step)

    def update(self, value: torch.Tensor) -> None:
        """Keep the value computed at the current step as the newest snapshot."""
        step = self._current_step("update")
        if self.snapshots and (
            layout(value) != layout(self.snapshots[-1]) or step <= self.steps[-1]
        ):
            self.steps, self.snapshots = [], []  # a new shape, or a repeated step: start over
        self.taylor.update(value)
        self.steps = [*self.steps, step][-self.history :]
        self.snapshots = [*self.snapshots, value][-self.history :]
        self._fit_key, self._fits = None, []

    def approximate(self) -> torch.Tensor | None:
        """The forecast at the current step (``None`` before any :meth:`update`)."""
        if not self.snapshots:
            return None
        step = self._current_step("approximate")
        count, spacing = self.uniform_suffix()
        if count < MIN_SNAPSHOTS:
            self.last_method = "taylor"
            return self.taylor.approximate()
        newest = self.snapshots[-1]
        key = (self.steps[-1], count, spacing)
        if key != self._fit_key:
            self._fits = self._fit(self.snapshots[-count:])
            self._fit_key = key
        if any(fit is None for fit in self._fits):
            self.last_method = "newest"
            return newest
        k = (step - self.steps[-1]) / spacing
        items = [fit.forecast(k) for fit in self._fits if fit is not None]
        prediction = torch.stack(items).to(newest.dtype).reshape(newest.shape)
        if not bool(torch.isfinite(prediction).all()):
            self.last_method = "newest"
            return newest
        self.last_method = "dmd"
        return prediction

    # -- the fit -------------------------------------------------------------------------------
    def uniform_suffix(self) -> tuple[int, int]:
        """``(count, spacing)`` of the longest uniformly spaced run ending at the newest step."""
        steps = self.steps
        if len(steps) < 2:
            return len(steps), 1
        spacing = steps[-1] - steps[-2]
        count = 2
        while count < len(steps) and steps[-count] - steps[-count - 1] == spacing:
            count += 1
        return count, spacing

    def _fit(self, snapshots: list[torch.Tensor]) -> list[DMDFit | None]:
        stacked = torch.stack(snapshots, dim=-1).to(torch.float64)  # [..., n]
        batch = stacked.shape[0] if stacked.dim() > 2 else 1  # [B, ...] values: one fit per item
        items = stacked.reshape(batch, -1, stacked.shape[-1])  # [B, d, n]
        return [fit_item(item, self.rank, self.ridge, self.svd_precision) for item in items]

    @property
    def fits(self) -> list[DMDFit | None]:
        """The per-item fits of the last DMD forecast (``None`` for a degenerate item)."""
        return list(self._fits)
