"""DMD: exact on sums of exponentials (ridge 0), the ridge bound, the fallbacks and the guard."""

import math

import pytest
import torch

from ditkit_calibrators import DMDCalibrator, TaylorSeerCalibrator
from ditkit_calibrators.dmd import fit_item
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
    assert dmd.last_method == "newest" and result is dmd.snapshots[-1]


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
