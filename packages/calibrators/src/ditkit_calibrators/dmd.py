"""DMD: Dynamic Mode Decomposition of the last snapshots, extrapolated by eigenvalue powers.

Each computed value (a residual or hidden states) is a *snapshot* ``x_j`` taken at step ``t_j``.
Over the newest uniformly spaced snapshots (spacing ``s``) the stream is modelled as a linear
system ``x_{j+1} = A x_j``, i.e. a sum of exponential modes ``x(t) = sum_m phi_m lambda_m^{t/s}``
(decaying, growing or oscillating). Per batch item, in float64 (the math of cache-dit 1.5.3
``dmd.py``, reference §3.6, arranged so that only ``r x r`` quantities are complex and only the
QR and the basis touch the ``d`` rows):

1. ``V = [x_0 ... x_{n-1}]`` (``d x n``), ``X = V[:, :-1]``, ``X' = V[:, 1:]``;
2. on the snapshots' device, a Householder QR ``V = Q T`` (``T``: ``min(d, n) x n``, upper
   triangular; ``Q`` is never formed), so ``X = Q T[:, :-1]``, ``X' = Q T[:, 1:]`` and
   ``x_{n-1} = Q T[:, -1]``; ``T`` is copied to the CPU, where steps 3-5 run;
3. the economy SVD ``X = U S V^T`` as ``T[:, :-1] = u S V^T``, ``U = Q u`` (``svd_precision``:
   ``"low"`` ``torch.svd_lowrank`` with seed 0 inside ``fork_rng``, ``"medium"``
   ``torch.linalg.svd``, ``"high"`` LAPACK ``gesvd`` through scipy);
4. rank ``r = #{sigma_i > 1e-4 sigma_0}`` when ``rank=0`` (else ``min(rank, n-1)``), at least 1;
5. the real basis ``P = X' V_r diag(1 / (sigma_r + ridge))`` (``d x r``), in ``Q``'s coordinates
   ``G = Q^T P = T[:, 1:] V_r diag(...)``; the real reduced operator ``A~ = U_r^T P = u_r^T G``
   (``r x r``) and its complex ``eig(A~) = (lambda, W)``; modes ``Phi = P W`` (never formed),
   amplitudes ``b = lstsq(Phi, x_{n-1})`` (below);
6. on the device, ``P`` from the snapshots; the forecast ``k = (t - t_{n-1}) / s`` snapshots
   ahead, ``Re(Phi (lambda^k * b)) = P Re(W (lambda^k * b))``: one real ``d x r`` product.

**The amplitudes in ``r x r``.** ``Q`` has orthonormal columns and holds every snapshot, so
``||Phi b - x_{n-1}|| = ||G W b - T[:, -1]||``; with ``G = Q_G R_G`` (a small QR),
``lstsq(Phi, x_{n-1})`` is the minimum-norm least-squares solution of the ``r x r`` complex
system ``R_G W b = Q_G^T T[:, -1]``, whose matrix has the singular values of ``Phi``: LAPACK
``gelsd`` with ``Phi``'s cut-off (``eps * max(d, r)``) gives the same ``b``. When ``W`` is
invertible and ``P`` has full column rank this is ``b = W^{-1} lstsq(P, x_{n-1})``; when either is
singular (a defective operator, a newest snapshot repeating an older one) ``b`` is still the
minimum-norm solution, and no ``W^{-1}`` is formed.

**Memory and syncs.** Items are fitted one at a time. The fit's largest tensor is the item's
float64 ``d x n`` working copy, which the QR overwrites in place; ``P`` (``d x r`` float64, the
only tensor a fit keeps with ``d`` rows) is then summed from the kept snapshots one column at a
time. cuSOLVER's SVD of a tall ``d x (n-1)`` matrix would need a workspace many times that
matrix and fails outright for ``d`` in the tens of millions; the SVD of ``T`` needs neither.
A fit copies ``T`` to the host once (one sync per item and new snapshot) and
``(lambda, W, b, V_r diag(...))`` back without waiting. A forecast is a few ``r``-sized complex
operations and one real matrix-vector product, and its finiteness guard is a device-side
``torch.where``: no host-device sync; :attr:`DMDCalibrator.last_method` reads the guard's flag
only when it is asked for.

With fewer than 4 uniformly spaced snapshots the forecast is a Taylor (Newton divided
differences) extrapolation of order ``n_derivatives`` (1 by default) over the computed steps.
If an item is degenerate (``sigma_0 = 0``, a non-finite ``T``, a failed decomposition) or the
cast forecast is not finite, the newest snapshot's values are returned unchanged.

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
    """One batch item's fit: ``forecast(k) = basis @ Re(vectors @ (eigenvalues**k * amplitudes))``.

    ``basis`` is the real ``P = X' V_r diag(1 / (sigma_r + ridge))``; the DMD modes are
    ``basis @ vectors`` (``Phi = P W``), kept factored so that nothing with ``d`` rows is complex.
    """

    basis: torch.Tensor  # [d, r] float64, on the snapshots' device
    vectors: torch.Tensor  # [r, r] complex128: the eigenvectors W of the reduced operator
    eigenvalues: torch.Tensor  # [r] complex128
    amplitudes: torch.Tensor  # [r] complex128
    rank: int

    def coefficients(self, k: float) -> torch.Tensor:
        """``Re(W (lambda^k * b))``: the ``[r]`` real weights of ``basis``'s columns."""
        return (self.vectors @ (self.eigenvalues ** float(k) * self.amplitudes)).real

    def forecast(self, k: float) -> torch.Tensor:
        """``Re(Phi (lambda^k * b))`` as ``[d]`` float64, ``k`` snapshots after the newest."""
        return self.basis @ self.coefficients(k)


def _svd(x: torch.Tensor, precision: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Economy SVD ``x = U diag(S) V^H`` as ``(U, S, V)`` in ``x``'s dtype and device.

    The fit calls it on the small CPU factor ``T[:, :-1]`` (module docstring, step 3).
    """
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


def _householder_r(work: torch.Tensor) -> torch.Tensor:
    """``R`` (``[min(d, n), n]``) of ``work = Q R``; ``work`` (``[d, n]``) is overwritten.

    Householder reflections with device-side scalars only (no host sync); ``Q`` is not formed.
    Column-major ``work`` (contiguous columns) is the fast layout. In place on purpose:
    ``torch.linalg.qr`` would first copy the ``d x n`` matrix, doubling the fit's peak.
    """
    rows, cols = work.shape
    for j in range(min(rows, cols)):
        column = work[j:, j]
        head = column[0]
        norm = torch.linalg.vector_norm(column)
        alpha = torch.where(head >= 0, -norm, norm)  # the new diagonal: away from the head
        # H = I - beta v v^T, v = column - alpha e_1, beta = 1 / (norm (norm + |head|)); 0 if 0
        denominator = norm * (norm + head.abs())
        beta = torch.where(denominator > 0, 1.0 / denominator, torch.zeros_like(denominator))
        head.sub_(alpha)  # the column holds v now
        if j + 1 < cols:
            trailing = work[j:, j + 1 :]
            trailing.addr_(column, (column @ trailing) * beta, alpha=-1.0)
        head.copy_(alpha)
    return torch.triu(work[: min(rows, cols)])


def _fit_columns(
    columns: list[torch.Tensor], rank: int, ridge: float, svd_precision: str
) -> DMDFit | None:
    """:func:`fit_item` of the snapshots ``columns`` (``n`` tensors of ``d`` values each)."""
    n, first = len(columns), columns[0]
    d, device = first.numel(), first.device
    if n < 2 or d == 0:
        return None
    work = torch.empty(n, d, dtype=torch.float64, device=device)  # row j: snapshot j
    for j, column in enumerate(columns):  # (no view of work may outlive it: no loop variable)
        work[j].copy_(column.reshape(-1))
    triangle = _householder_r(work.T)  # V = Q T; work.T is [d, n] with contiguous columns
    del work  # freed here, before the basis is allocated
    t = triangle.cpu()  # the fit's one device-to-host copy (and sync): [min(d, n), n]
    if not bool(torch.isfinite(t).all()):
        return None
    try:
        u, s, v = _svd(t[:, :-1], svd_precision)  # X = Q T[:, :-1] = (Q u) diag(s) v^T
    except (RuntimeError, ValueError):  # LinAlgError is a RuntimeError/ValueError subclass
        return None
    if s.numel() == 0 or not s[0] > 0:
        return None
    r = int((s > RANK_TOLERANCE * s[0]).sum()) if rank == 0 else min(rank, s.numel())
    r = max(r, 1)
    projector = v[:, :r] / (s[:r] + ridge)  # V_r diag(1 / (sigma_r + ridge))   [n-1, r]
    coords = t[:, 1:] @ projector  # Q^T P: the basis in Q's coordinates          [m, r]
    try:
        eigenvalues, vectors = torch.linalg.eig(u[:, :r].mT @ coords)  # A~ = U_r^T P
        q_c, r_c = torch.linalg.qr(coords)  # Q^T P = q_c r_c: lstsq(P W, x) on r x r
        amplitudes = torch.linalg.lstsq(
            r_c.to(torch.complex128) @ vectors,  # the singular values of Phi = P W
            (q_c.mT @ t[:, -1:]).to(torch.complex128),  # Q^T x_{n-1} = T[:, -1]
            rcond=torch.finfo(torch.float64).eps * max(d, r),  # lstsq(Phi, .)'s default
            driver="gelsd",
        ).solution[:, 0]
    except (RuntimeError, ValueError):
        return None
    packed = torch.cat(
        [torch.view_as_real(z).reshape(-1) for z in (eigenvalues, vectors, amplitudes)]
        + [projector.reshape(-1)]
    )
    if device.type == "cuda":  # back without waiting: a pinned buffer, non-blocking
        packed = packed.pin_memory().to(device, non_blocking=True)
    else:
        packed = packed.to(device)
    parts = packed.split([2 * r, 2 * r * r, 2 * r, (n - 1) * r])
    projector = parts[3].view(n - 1, r)
    # P = X' projector, one column of X' at a time (no float64 copy of X' is kept)
    basis = torch.outer(columns[1].reshape(-1).to(torch.float64), projector[0])
    for column, weights in zip(columns[2:], projector[1:], strict=True):
        basis.addr_(column.reshape(-1).to(torch.float64), weights)
    return DMDFit(
        basis=basis,
        vectors=torch.view_as_complex(parts[1].view(r, r, 2)),
        eigenvalues=torch.view_as_complex(parts[0].view(r, 2)),
        amplitudes=torch.view_as_complex(parts[2].view(r, 2)),
        rank=r,
    )


def fit_item(
    snapshots: torch.Tensor, rank: int = 0, ridge: float = 1e-8, svd_precision: str = "medium"
) -> DMDFit | None:
    """Fit one item's ``[d, n]`` float64 snapshot matrix; ``None`` if it is degenerate.

    The snapshots are factored as ``Q T`` on their device; the SVD, ``eig`` and the amplitudes'
    least squares run on the CPU on ``T`` (module docstring); ``basis`` stays on the device.

    Example:
        >>> import torch
        >>> t = torch.arange(5, dtype=torch.float64)
        >>> fit = fit_item(torch.stack([0.5**t, 2 * 0.5**t]), ridge=0.0)
        >>> fit.rank, round(fit.eigenvalues[0].real.item(), 12)
        (1, 0.5)
    """
    return _fit_columns(list(snapshots.unbind(1)), rank, ridge, svd_precision)


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
        self._last_method: str | None = None
        self._finite: torch.Tensor | None = None  # the last DMD forecast's guard, on device

    @property
    def last_method(self) -> str | None:
        """``"dmd"``, ``"taylor"`` or ``"newest"`` (the guard): what the last forecast used.

        After a DMD forecast, reading it copies the finiteness flag to the host (a sync),
        which :meth:`approximate` itself never does.
        """
        if self._finite is not None:
            self._last_method = "dmd" if bool(self._finite) else "newest"
            self._finite = None
        return self._last_method

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
        self._finite = None
        if count < MIN_SNAPSHOTS:
            self._last_method = "taylor"
            return self.taylor.approximate()
        newest = self.snapshots[-1]
        key = (self.steps[-1], count, spacing)
        if key != self._fit_key:
            self._fits = []  # the previous fits' bases go before the new fit allocates
            self._fits = self._fit(self.snapshots[-count:])
            self._fit_key = key
        fits = [fit for fit in self._fits if fit is not None]
        if not fits or len(fits) < len(self._fits):  # a degenerate item (or none)
            self._last_method = "newest"
            return newest
        k = (step - self.steps[-1]) / spacing
        stacked = torch.empty(
            len(fits), fits[0].basis.shape[0], dtype=torch.float64, device=newest.device
        )
        for b, fit in enumerate(fits):  # each item's forecast straight into its row
            torch.mv(fit.basis, fit.coefficients(k), out=stacked[b])
        prediction = stacked.to(newest.dtype).reshape(newest.shape)
        # the guard without a sync: the newest snapshot wherever the cast forecast is not finite
        self._finite = torch.isfinite(prediction).all()
        self._last_method = "dmd"
        return torch.where(self._finite, prediction, newest, out=prediction)

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
        newest = snapshots[-1]
        batch = newest.shape[0] if newest.dim() > 1 else 1  # [B, ...] values: one fit per item
        d = newest.numel() // batch if batch else 0
        items = [value.reshape(batch, d) for value in snapshots]  # views of the kept values
        return [  # one item at a time: its float64 working copy is freed before the next
            _fit_columns([item[b] for item in items], self.rank, self.ridge, self.svd_precision)
            for b in range(batch)
        ]

    @property
    def fits(self) -> list[DMDFit | None]:
        """The per-item fits of the last DMD forecast (``None`` for a degenerate item)."""
        return list(self._fits)
