"""DMD: exact on sums of exponentials (ridge 0), the ridge bound, the fallbacks and the guard."""

import dataclasses
import math
import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ditkit_calibrators import DMDCalibrator, TaylorSeerCalibrator
from ditkit_calibrators.dmd import _householder_r, _svd, fit_item
from ditkit_interfaces import Calibrator, ConfigError

D = 48  # features per item


def exponentials(seed, rates, oscillation, batch=2):
    """``x_b(t) = sum_j a_bj rate_bj^t + rho^t (c_b cos(w t) + s_b sin(w t))``: 4 modes per item.

    Each item has its own decay rates (so one joint fit of 6 snapshots, 8 modes, could not be
    exact: the fits are per item). ``oscillation = (rho, w)``.
    """
    generator = torch.Generator().manual_seed(seed)
    vectors = torch.randn(batch, 4, D, generator=generator, dtype=torch.float64)
    rho, w = oscillation

    def at(t):
        items = []
        for b in range(batch):
            r1, r2 = rates[b]
            a1, a2, c, s = vectors[b]
            damp = rho**t
            items.append(
                a1 * r1**t + a2 * r2**t + damp * (c * math.cos(w * t) + s * math.sin(w * t))
            )
        return torch.stack(items).reshape(batch, 6, 8)  # a [B, tokens, channels] residual

    return at


SIGNAL = exponentials(0, rates=[(0.9, 0.7), (0.95, 0.6)], oscillation=(0.97, 0.5))


def feed(calibrator, f, steps):
    for step in steps:
        calibrator.mark_step_begin(step)
        calibrator.update(f(step))


def forecast(calibrator, step):
    calibrator.mark_step_begin(step)
    return calibrator.approximate()


def relative_error(got, want):
    return ((got - want).norm() / want.norm()).item()


@pytest.mark.parametrize("precision", ["low", "medium", "high"])
@pytest.mark.parametrize("spacing", [1, 2, 3])
def test_ridge_zero_reproduces_decaying_and_oscillating_exponentials(precision, spacing):
    dmd = DMDCalibrator(ridge=0.0, svd_precision=precision)
    steps = [4 + spacing * j for j in range(6)]
    feed(dmd, SIGNAL, steps)
    for step in range(steps[-1] + 1, steps[-1] + 3 * spacing + 1):  # whole and fractional k
        got = forecast(dmd, step)
        assert dmd.last_method == "dmd"
        assert relative_error(got, SIGNAL(step)) <= 1e-8, (precision, spacing, step)
    assert [fit.rank for fit in dmd.fits] == [4, 4]  # the rank rule finds the 4 modes per item


def test_a_joint_fit_would_not_be_exact():
    # all 8 modes of the batch in one 48*2 x 5 matrix: rank 5 < 8 modes, the forecast is off
    steps = range(6)
    stacked = torch.stack([SIGNAL(s).reshape(-1) for s in steps], dim=-1)
    fit = fit_item(stacked, ridge=0.0)
    assert relative_error(fit.forecast(3).reshape(2, 6, 8), SIGNAL(8)) > 1e-4


def ridge_bound(snapshots, ridge, k):
    """``k eps ||A0||^k ||B|| ||B^+ x_last||`` (README.md derives it), from the ridge-0 pieces."""
    x, x_next = snapshots[:, :-1], snapshots[:, 1:]
    u, s, vh = torch.linalg.svd(x, full_matrices=False)
    r = int((s > 1e-4 * s[0]).sum())
    b = (x_next @ vh[:r].mH) / s[:r]
    a0 = u[:, :r].mH @ b
    eps = ridge / (s[r - 1].item() + ridge)
    norm = torch.linalg.matrix_norm
    lifted = torch.linalg.lstsq(b, snapshots[:, -1:]).solution
    return k * eps * norm(a0, 2).item() ** k * norm(b, 2).item() * lifted.norm().item()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_default_ridge_stays_within_the_bound_it_implies(k):
    steps = list(range(6))
    dmd = DMDCalibrator()  # ridge 1e-8
    assert dmd.ridge == 1e-8
    feed(dmd, SIGNAL, steps)
    got = forecast(dmd, steps[-1] + k)
    exact = SIGNAL(steps[-1] + k)
    for b in range(2):
        snapshots = torch.stack([SIGNAL(s)[b].reshape(-1) for s in steps], dim=-1)
        bound = ridge_bound(snapshots, 1e-8, k)
        error = (got[b] - exact[b]).norm().item()
        assert error <= bound + 1e-8 * exact[b].norm().item()  # + the ridge-0 tolerance
        assert bound <= 1e-5 * exact[b].norm().item()  # and the bound itself is small


def test_under_four_uniform_snapshots_falls_back_to_taylor_order_one():
    dmd, taylor = DMDCalibrator(), TaylorSeerCalibrator(n_derivatives=1)
    feed(dmd, SIGNAL, [0, 1, 2])
    feed(taylor, SIGNAL, [0, 1, 2])
    assert torch.equal(forecast(dmd, 4), forecast(taylor, 4))
    assert dmd.last_method == "taylor"
    feed(dmd, SIGNAL, [3])
    forecast(dmd, 4)
    assert dmd.last_method == "dmd"


def test_non_uniform_spacing_falls_back_until_four_uniform_snapshots():
    dmd, taylor = DMDCalibrator(history=8, ridge=0.0), TaylorSeerCalibrator(n_derivatives=1)
    steps = [0, 1, 2, 4, 6, 9, 12]  # the uniform suffix: 6, 9, 12 (3 snapshots)
    feed(dmd, SIGNAL, steps)
    feed(taylor, SIGNAL, steps)
    assert dmd.uniform_suffix() == (3, 3)
    assert torch.equal(forecast(dmd, 14), forecast(taylor, 14))
    assert dmd.last_method == "taylor"
    feed(dmd, SIGNAL, [15])  # 6, 9, 12, 15: four uniform snapshots, spacing 3: a fit
    assert dmd.uniform_suffix() == (4, 3)
    forecast(dmd, 17)
    assert dmd.last_method == "dmd" and [fit.rank for fit in dmd.fits] == [3, 3]
    feed(dmd, SIGNAL, [18, 21])  # six uniform snapshots (the 4 modes fit): exact again
    assert dmd.uniform_suffix() == (6, 3)
    assert relative_error(forecast(dmd, 23), SIGNAL(23)) <= 1e-8


def test_fallback_order_comes_from_calibrator_kwargs():
    square = lambda s: torch.full((1, 3), float(s * s), dtype=torch.float64)  # noqa: E731
    dmd = DMDCalibrator(n_derivatives=2)
    feed(dmd, square, [0, 2, 3])
    taylor = TaylorSeerCalibrator(n_derivatives=2)  # the fallback is ditkit's TaylorSeer
    feed(taylor, square, [0, 2, 3])
    order_one = TaylorSeerCalibrator(n_derivatives=1)
    feed(order_one, square, [0, 2, 3])
    got = forecast(dmd, 5)
    assert torch.equal(got, forecast(taylor, 5)) and not torch.equal(got, forecast(order_one, 5))


def test_history_keeps_the_newest_snapshots():
    dmd = DMDCalibrator(history=4)
    feed(dmd, SIGNAL, range(9))
    assert dmd.steps == [5, 6, 7, 8] and len(dmd.snapshots) == 4
    forecast(dmd, 10)  # 3 columns: a rank-3 fit of the 4 modes
    assert dmd.last_method == "dmd" and [fit.rank for fit in dmd.fits] == [3, 3]


def test_finiteness_guard_returns_the_newest_snapshot():
    grow = lambda s: torch.full((1, 4), 10.0**s, dtype=torch.float32)  # noqa: E731
    dmd = DMDCalibrator()
    feed(dmd, grow, range(6))
    assert forecast(dmd, 20).abs().max().item() > 1e19  # finite in float32
    result = forecast(dmd, 60)  # 1e60 overflows float32
    # a device-side torch.where (no sync): the newest snapshot's values, in a new tensor
    assert dmd.last_method == "newest" and torch.equal(result, dmd.snapshots[-1])


def test_degenerate_items_return_the_newest_snapshot():
    dmd = DMDCalibrator()
    feed(dmd, lambda s: torch.zeros(2, 3, dtype=torch.float64), range(5))
    assert forecast(dmd, 6) is dmd.snapshots[-1] and dmd.last_method == "newest"
    assert dmd.fits == [None, None]


def test_float32_input_is_fitted_in_float64_and_returned_in_float32():
    dmd = DMDCalibrator(ridge=0.0)
    feed(dmd, lambda s: SIGNAL(s).float(), range(6))
    got = forecast(dmd, 7)
    assert got.dtype == torch.float32
    assert relative_error(got.double(), SIGNAL(7)) <= 1e-5  # float32 snapshots: ~1e-7 noise


def test_the_fit_is_reused_until_the_next_update():
    dmd = DMDCalibrator()
    feed(dmd, SIGNAL, range(6))
    forecast(dmd, 6)
    fits = dmd.fits
    forecast(dmd, 7)
    assert all(a is b for a, b in zip(fits, dmd.fits, strict=True))
    feed(dmd, SIGNAL, [6])
    forecast(dmd, 7)
    assert all(a is not b for a, b in zip(fits, dmd.fits, strict=True))


def test_shape_change_and_reset_start_over():
    dmd = DMDCalibrator()
    feed(dmd, SIGNAL, range(6))
    new = torch.ones(1, 4, dtype=torch.float64)
    feed(dmd, lambda s: new, [6])
    assert dmd.steps == [6] and forecast(dmd, 8) is new
    assert dmd.taylor.computed_steps == [6]
    dmd.reset()
    assert dmd.approximate() is None and dmd.steps == [] and dmd.current_step is None


def test_instances_keep_separate_state():
    a, b = DMDCalibrator(ridge=0.0), DMDCalibrator(ridge=0.0)
    other = exponentials(1, rates=[(0.8, 0.5), (0.85, 0.4)], oscillation=(0.9, 0.3))
    feed(a, SIGNAL, range(6))
    feed(b, other, range(0, 12, 2))
    assert relative_error(forecast(a, 7), SIGNAL(7)) <= 1e-8
    assert relative_error(forecast(b, 13), other(13)) <= 1e-8


def test_protocol_and_options_are_checked():
    assert isinstance(DMDCalibrator(), Calibrator)
    for bad in (dict(history=1), dict(rank=-1), dict(ridge=-1.0), dict(svd_precision="max")):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            DMDCalibrator(**bad)
    with pytest.raises(ConfigError, match="windows"):
        DMDCalibrator(windows=3)


# -- the real-basis formulation against the former complex128 one ------------------------------


def complex_reference(snapshots, k, rank=0, ridge=1e-8, precision="medium"):
    """The former formulation: d x r complex128 modes, ``lstsq`` on them, ``Re(Phi λ^k b)``."""
    x, x_next = snapshots[:, :-1], snapshots[:, 1:]
    u, s, v = _svd(x, precision)
    r = max(int((s > 1e-4 * s[0]).sum()) if rank == 0 else min(rank, s.numel()), 1)
    u_r, v_r = u[:, :r].to(torch.complex128), v[:, :r].to(torch.complex128)
    scale = (1.0 / (s[:r] + ridge)).to(torch.complex128)
    projected = (x_next.to(torch.complex128) @ v_r) * scale
    eigenvalues, vectors = torch.linalg.eig(u_r.mH @ projected)
    modes = projected @ vectors
    target = snapshots[:, -1:].to(torch.complex128)
    amplitudes = torch.linalg.lstsq(modes, target, driver="gelsd").solution[:, 0]
    powers = eigenvalues ** torch.tensor(k, dtype=torch.float64)
    return (modes @ (powers * amplitudes)).real, r


def low_rank_snapshots(seed, d=200, n=6, noise=1e-3):
    """Two real exponentials and a damped rotation in ``d`` dimensions, plus Gaussian noise."""
    generator = torch.Generator().manual_seed(seed)
    vectors = torch.randn(d, 4, generator=generator, dtype=torch.float64)
    t = torch.arange(n, dtype=torch.float64)
    rho, w = 0.95, 0.7
    weights = torch.stack([0.8**t, 1.05**t, rho**t * torch.cos(w * t), rho**t * torch.sin(w * t)])
    noisy = torch.randn(d, n, generator=generator, dtype=torch.float64)
    return vectors @ weights + noise * noisy


CASES = [  # (seed, d, n, noise, rank, ridge): auto rank full or truncated, fixed ranks, ridges
    (0, 200, 6, 1e-3, 0, 0.0),
    (1, 200, 6, 1e-3, 0, 1e-8),
    (2, 200, 7, 1e-3, 0, 1e-2),
    (3, 200, 6, 1e-11, 0, 0.0),  # the noise under 1e-4 sigma_0: auto rank 4
    (4, 200, 6, 1e-11, 0, 1e-3),
    (5, 200, 6, 1e-3, 1, 0.0),
    (6, 200, 6, 1e-3, 2, 1e-8),
    (7, 200, 6, 1e-3, 3, 1e-3),
    (8, 200, 7, 1e-3, 5, 0.0),
    (9, 200, 6, 1e-3, 9, 1e-8),  # rank above n - 1: n - 1
    (10, 4, 7, 1e-3, 0, 1e-8),  # d < n - 1: T is 4 x 7, U is square
]


@pytest.mark.parametrize("precision", ["low", "medium", "high"])
@pytest.mark.parametrize(("seed", "d", "n", "noise", "rank", "ridge"), CASES)
def test_real_basis_forecast_equals_the_complex128_formulation(
    seed, d, n, noise, rank, ridge, precision
):
    snapshots = low_rank_snapshots(seed, d=d, n=n, noise=noise)
    fit = fit_item(snapshots, rank=rank, ridge=ridge, svd_precision=precision)
    for k in (0.0, 0.5, 1.0, 2.0, 3.5):
        want, r = complex_reference(snapshots, k, rank, ridge, precision)
        assert fit.rank == r
        assert relative_error(fit.forecast(k), want) <= 1e-9, (k, r)
    if noise < 1e-6 and rank == 0:
        assert fit.rank == 4


def test_regular_amplitudes_are_w_inverse_times_the_basis_least_squares():
    # W invertible, P of full column rank: b = W^{-1} lstsq(P, x_{n-1})
    snapshots = low_rank_snapshots(20, noise=1e-3)
    fit = fit_item(snapshots, ridge=0.0)
    basis_solution = torch.linalg.lstsq(fit.basis, snapshots[:, -1:]).solution[:, 0]
    want = torch.linalg.solve(fit.vectors, basis_solution.to(torch.complex128))
    assert relative_error(fit.amplitudes, want) <= 1e-9


def test_degenerate_basis_keeps_the_minimum_norm_amplitudes():
    # the newest snapshot repeats the one before: X' has rank n - 2 < r = n - 1, so P (and Phi)
    # are rank-deficient and W^{-1} lstsq(P, .) is not defined by a full-rank P; both forms
    # take gelsd's minimum-norm solution with the same cut-off
    snapshots = low_rank_snapshots(21, noise=1e-3)
    snapshots[:, -1] = snapshots[:, -2]
    fit = fit_item(snapshots, ridge=0.0)
    assert fit.rank == 5
    for k in (1.0, 2.5):
        want, _ = complex_reference(snapshots, k, ridge=0.0)
        assert relative_error(fit.forecast(k), want) <= 1e-9
    assert torch.isfinite(fit.forecast(3.0)).all()


@pytest.mark.parametrize("shape", [(300, 6), (6, 6), (3, 6), (50, 2)])
def test_householder_r_matches_lapack(shape):
    generator = torch.Generator().manual_seed(sum(shape))
    matrix = torch.randn(*shape, generator=generator, dtype=torch.float64)
    matrix[:, 1] = 0.0  # a zero column: a zero reflector, no division by zero
    got = _householder_r(matrix.T.contiguous().T)  # column-major, as the fit passes it
    want = torch.linalg.qr(matrix, mode="r").R
    assert got.shape == want.shape and torch.isfinite(got).all()
    assert torch.allclose(got.abs(), want.abs(), rtol=1e-12, atol=1e-12)  # rows up to sign
    assert torch.allclose(got.mT @ got, matrix.mT @ matrix, rtol=1e-12, atol=1e-10)


class Allocations(TorchDispatchMode):
    """The new tensors operations return (not views, not in place): ``(shape, dtype)`` in
    ``fresh``; for those of more than ``large`` elements, when they are made and freed."""

    def __init__(self, large):
        super().__init__()
        self.large = large
        self.fresh = []
        self.events = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if not func.is_view and not func._schema.is_mutable:
            for out in result if isinstance(result, tuple | list) else [result]:
                if isinstance(out, torch.Tensor):
                    key = (tuple(out.shape), out.dtype)
                    self.fresh.append(key)
                    if out.numel() > self.large:  # a view keeps its base (and this) alive
                        self.events.append(("new", key))
                        weakref.finalize(out, self.events.append, ("freed", key))
        return result


def test_the_fit_allocates_one_d_by_n_working_copy_and_the_basis():
    d, n = 600, 6
    vectors = torch.randn(3, d, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def signal(step):  # a bfloat16 [1, 20, 30] residual: the fit upcasts column by column
        value = 0.9**step * vectors[0] + 0.7**step * vectors[1] + 1.02**step * vectors[2]
        return value.reshape(1, 20, 30).bfloat16()

    dmd = DMDCalibrator()
    feed(dmd, signal, range(n))
    with Allocations(large=d) as seen:
        forecast(dmd, n)  # the fit and one forecast
        events = list(seen.events)
    (fit,) = dmd.fits
    big = [(shape, dtype) for shape, dtype in seen.fresh if math.prod(shape) > d]
    # the float64 working copy (the QR overwrites it) and the basis P: nothing else with d rows
    work, basis = ((n, d), torch.float64), ((d, fit.rank), torch.float64)
    assert big == [work, basis]
    # and the working copy (no view of it either) is gone before the basis is made
    assert events == [("new", work), ("freed", work), ("new", basis)]


def test_no_d_sized_tensor_is_complex():
    dmd = DMDCalibrator()
    feed(dmd, SIGNAL, range(6))
    forecast(dmd, 7)
    d = SIGNAL(0)[0].numel()
    for fit in dmd.fits:
        r = fit.rank
        tensors = {
            field.name: getattr(fit, field.name)
            for field in dataclasses.fields(fit)
            if isinstance(getattr(fit, field.name), torch.Tensor)
        }
        assert tensors["basis"].shape == (d, r)
        for name, tensor in tensors.items():
            if d in tensor.shape:
                assert tensor.dtype == torch.float64 and not tensor.is_complex(), name
            if tensor.is_complex():
                assert tensor.numel() <= r * r, name


class ComplexSizes(TorchDispatchMode):
    """Records the largest complex tensor any operation returns (and scalar reads)."""

    def __init__(self):
        super().__init__()
        self.largest_complex = 0
        self.scalar_reads = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.scalar_reads += 1  # what .item(), bool() and float() of a tensor dispatch to
        result = func(*args, **(kwargs or {}))
        outputs = result if isinstance(result, tuple | list) else [result]
        for out in outputs:
            if isinstance(out, torch.Tensor) and out.is_complex():
                self.largest_complex = max(self.largest_complex, out.numel())
        return result


def test_fit_and_forecast_create_no_d_sized_complex_tensor():
    snapshots = low_rank_snapshots(12, noise=1e-3)
    with ComplexSizes() as seen:
        fit = fit_item(snapshots, ridge=1e-8)
        fit.forecast(2.5)
    assert fit.rank == 5
    # the largest: W and R_G W (r x r); the device gets (lambda, W, b) as float64 pairs
    assert 0 < seen.largest_complex <= fit.rank * fit.rank < snapshots.shape[0]


def refuse_host_reads(patch):
    """Make reading a tensor's value on the host (what a CUDA sync is for) raise."""

    def refuse(*args, **kwargs):
        raise AssertionError("a host read of a tensor inside approximate()")

    for name in ("__bool__", "__float__", "__int__", "__index__", "item", "tolist", "cpu", "numpy"):
        patch.setattr(torch.Tensor, name, refuse)


@pytest.mark.parametrize(
    ("signal", "step", "method"),
    [
        (lambda s: SIGNAL(s).float(), 7, "dmd"),
        (lambda s: torch.full((1, 4), 10.0**s, dtype=torch.float32), 60, "newest"),
    ],
)
def test_cached_forecasts_read_nothing_on_the_host(signal, step, method):
    dmd = DMDCalibrator()
    feed(dmd, signal, range(6))
    forecast(dmd, 6)  # the fit: its one device-to-host copy happens here
    fits, newest = dmd.fits, dmd.snapshots[-1]
    with pytest.MonkeyPatch.context() as patch, ComplexSizes() as seen:
        refuse_host_reads(patch)
        got = forecast(dmd, step)  # the same snapshots: the cached fit
        again = forecast(dmd, step)
    assert seen.scalar_reads == 0
    assert all(a is b for a, b in zip(fits, dmd.fits, strict=True))
    assert torch.equal(got, again)
    assert dmd.last_method == method  # read lazily, after the forecasts
    if method == "newest":  # the non-finite forecast: the newest snapshot's values
        assert torch.equal(got, newest) and got is not newest
    else:
        assert relative_error(got.double(), SIGNAL(step)) <= 1e-5


def test_host_reads_are_refused_while_patched():
    with pytest.MonkeyPatch.context() as patch:
        refuse_host_reads(patch)
        with pytest.raises(AssertionError, match="host read"):
            bool(torch.ones(()))
    assert bool(torch.ones(()))
