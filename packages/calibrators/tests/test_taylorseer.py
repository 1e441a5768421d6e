"""TaylorSeer: Newton divided differences over the computed steps (float64, analytic).

The exactness tests use ``extrapolation="newton"`` (the interpolating polynomial); the
"trusted" default is tested against the same polynomial with its reach and trust limits.
"""

import pytest
import torch

from ditkit_calibrators import TaylorSeerCalibrator
from ditkit_calibrators.taylorseer import EARLY_FRACTION, cache_dit_taylor_forecast
from ditkit_interfaces import Calibrator, ConfigError

UNIFORM = [0, 1, 2, 3, 4, 5, 6]
NON_UNIFORM = [0, 1, 3, 4, 7, 9, 10]  # gaps 1, 2, 1, 3, 2, 1
SHAPE = (2, 3, 4)


def polynomial(degree, seed=0):
    """A random vector-valued polynomial of exactly ``degree``: ``t -> sum_j c_j t^j``."""
    generator = torch.Generator().manual_seed(seed)
    coefficients = torch.randn(degree + 1, *SHAPE, generator=generator, dtype=torch.float64)
    return lambda t: sum(c * float(t) ** j for j, c in enumerate(coefficients))


def feed(seer, f, steps):
    for step in steps:
        seer.mark_step_begin(step)
        seer.update(f(step))


def forecast(seer, step):
    seer.mark_step_begin(step)
    return seer.approximate()


def relative_error(got, want):
    return ((got - want).abs().max() / want.abs().max()).item()


@pytest.mark.parametrize("steps", [UNIFORM, NON_UNIFORM], ids=["uniform", "non-uniform"])
@pytest.mark.parametrize("order", [0, 1, 2, 3, 4])
def test_order_k_reproduces_every_polynomial_of_degree_at_most_k(order, steps):
    for degree in range(order + 1):
        f = polynomial(degree, seed=10 * order + degree)
        seer = TaylorSeerCalibrator(n_derivatives=order, extrapolation="newton")
        feed(seer, f, steps)
        assert seer.derivatives_available == order
        assert seer.computed_steps == steps[::-1][: order + 1]
        for step in (steps[-1], steps[-1] + 1, steps[-1] + 2, steps[-1] + 5):
            assert relative_error(forecast(seer, step), f(step)) <= 1e-12


@pytest.mark.parametrize("steps", [UNIFORM, NON_UNIFORM], ids=["uniform", "non-uniform"])
@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_order_k_does_not_reproduce_degree_k_plus_one(order, steps):
    # the exactness above is not vacuous: one degree more and the forecast is off
    f = polynomial(order + 1, seed=99)
    seer = TaylorSeerCalibrator(n_derivatives=order, extrapolation="newton")
    feed(seer, f, steps)
    assert relative_error(forecast(seer, steps[-1] + 2), f(steps[-1] + 2)) > 1e-3


def test_non_uniform_spacing_between_computed_steps_of_a_cached_run():
    # computed steps 0, 1, 2, then every third step: the cache's usual pattern after warm-up
    f = polynomial(2, seed=5)
    seer = TaylorSeerCalibrator(n_derivatives=2, extrapolation="newton")
    for step in range(15):
        seer.mark_step_begin(step)
        if step < 3 or step % 3 == 2:
            seer.update(f(step))
        else:
            assert relative_error(seer.approximate(), f(step)) <= 1e-12


@pytest.mark.parametrize("t", [2, 3, 6])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_square_cache_dit_predicts_t_plus_k_squared_minus_k_ours_is_exact(t, k):
    steps = list(range(t + 1))
    values = [torch.tensor(float(s * s), dtype=torch.float64) for s in steps]
    cache_dit = cache_dit_taylor_forecast(values, steps, t + k, n_derivatives=2)
    assert cache_dit.item() == (t + k) ** 2 - k
    seer = TaylorSeerCalibrator(n_derivatives=2, extrapolation="newton")
    feed(seer, lambda s: torch.tensor(float(s * s), dtype=torch.float64), steps)
    assert forecast(seer, t + k).item() == (t + k) ** 2


def test_cache_dit_formula_is_exact_for_degree_one_only_with_uniform_spacing():
    line = polynomial(1, seed=3)
    values = [line(s) for s in NON_UNIFORM]
    # order 1 with a gap of 1 before the last step; the forecast slope is still right for a line
    ours = TaylorSeerCalibrator(n_derivatives=1)
    feed(ours, line, NON_UNIFORM)
    want = line(13)
    assert relative_error(forecast(ours, 13), want) <= 1e-12
    got = cache_dit_taylor_forecast(values, NON_UNIFORM, 13, n_derivatives=1)
    assert relative_error(got, want) <= 1e-12
    # order 2 with non-uniform spacing: cache-dit's second difference mixes windows
    square = polynomial(2, seed=4)
    got = cache_dit_taylor_forecast([square(s) for s in NON_UNIFORM], NON_UNIFORM, 13, 2)
    assert relative_error(got, square(13)) > 1e-3
    ours = TaylorSeerCalibrator(n_derivatives=2, extrapolation="newton")
    feed(ours, square, NON_UNIFORM)
    assert relative_error(forecast(ours, 13), square(13)) <= 1e-12


def test_first_derivative_from_the_second_computed_step_no_lag():
    seer = TaylorSeerCalibrator(n_derivatives=1)
    feed(seer, lambda s: torch.tensor([2.0 * s + 1.0], dtype=torch.float64), [0])
    assert seer.derivatives_available == 0
    assert forecast(seer, 1).item() == 1.0  # only the value so far
    feed(seer, lambda s: torch.tensor([2.0 * s + 1.0], dtype=torch.float64), [1])
    assert seer.derivatives_available == 1
    assert forecast(seer, 2).item() == 5.0


def test_order_zero_returns_the_last_computed_value_itself():
    seer = TaylorSeerCalibrator(n_derivatives=0)
    value = torch.randn(3)
    feed(seer, lambda s: torch.randn(3), [0, 1])
    seer.mark_step_begin(2)
    seer.update(value)
    assert forecast(seer, 7) is value


def test_shape_change_restarts_the_history():
    seer = TaylorSeerCalibrator(n_derivatives=2)
    feed(seer, lambda s: torch.full((2, 3), float(s)), [0, 1, 2])
    assert seer.derivatives_available == 2
    seer.mark_step_begin(3)
    new = torch.full((4, 3), 7.0)
    seer.update(new)
    assert seer.derivatives_available == 0 and seer.computed_steps == [3]
    assert torch.equal(forecast(seer, 5), new)
    feed(seer, lambda s: torch.full((4, 3), 7.0 + s - 3), [4])
    assert torch.equal(forecast(seer, 6), torch.full((4, 3), 10.0))


def test_dtype_change_and_repeated_step_restart_the_history():
    seer = TaylorSeerCalibrator(n_derivatives=1)
    feed(seer, lambda s: torch.full((2,), float(s)), [0, 1])
    seer.mark_step_begin(2)
    seer.update(torch.zeros(2, dtype=torch.float64))
    assert seer.derivatives_available == 0
    seer.update(torch.ones(2, dtype=torch.float64))  # same step again: the newer value wins
    assert seer.computed_steps == [2] and torch.equal(forecast(seer, 3), torch.ones(2).double())


def test_reset_forgets_everything_and_the_step_is_required():
    seer = TaylorSeerCalibrator(n_derivatives=2)
    feed(seer, lambda s: torch.full((2,), float(s)), [0, 1, 2])
    seer.reset()
    assert seer.approximate() is None and seer.derivatives_available == 0
    assert seer.current_step is None
    with pytest.raises(RuntimeError, match="mark_step_begin"):
        seer.update(torch.zeros(2))
    feed(seer, lambda s: torch.full((2,), 5.0), [0])
    assert torch.equal(forecast(seer, 4), torch.full((2,), 5.0))


def test_instances_keep_separate_state():
    a, b = TaylorSeerCalibrator(n_derivatives=1), TaylorSeerCalibrator(n_derivatives=1)
    feed(a, lambda s: torch.tensor([float(s)]), [0, 1])
    feed(b, lambda s: torch.tensor([-3.0 * s]), [0, 2])
    assert forecast(a, 4).item() == 4.0
    assert forecast(b, 4).item() == -12.0
    assert a.computed_steps == [1, 0] and b.computed_steps == [2, 0]


def test_implements_the_protocol_and_checks_its_options():
    assert isinstance(TaylorSeerCalibrator(), Calibrator)
    with pytest.raises(ConfigError, match="n_derivatives"):
        TaylorSeerCalibrator(n_derivatives=-1)
    with pytest.raises(ConfigError, match="max_warmup_steps"):
        TaylorSeerCalibrator(max_warmup_steps=2)


def _newton_and_trusted(order, f, steps):
    newton = TaylorSeerCalibrator(n_derivatives=order, extrapolation="newton")
    trusted = TaylorSeerCalibrator(n_derivatives=order)
    feed(newton, f, steps)
    feed(trusted, f, steps)
    return newton, trusted


@pytest.mark.parametrize("order", [0, 1])
def test_trusted_equals_newton_up_to_order_one(order):
    newton, trusted = _newton_and_trusted(order, polynomial(3, seed=8), NON_UNIFORM)
    for step in (11, 12, 20):
        assert torch.equal(forecast(trusted, step), forecast(newton, step))


def test_trusted_keeps_a_small_curvature_term_exactly():
    # nodes 10, 11, 12 and f = 100 t + t^2: at k = 1 the curvature term f[z0,z1,z2] k (k + 1)
    # = 2 is far below half the slope term (123), so the forecast is exact
    f = lambda s: torch.tensor([100.0 * s + float(s * s)], dtype=torch.float64)  # noqa: E731
    newton, trusted = _newton_and_trusted(2, f, [10, 11, 12])
    assert forecast(trusted, 13).item() == forecast(newton, 13).item() == f(13).item()


def test_trusted_scales_a_large_curvature_term_to_half_the_slope_term():
    # f = t^2 at nodes 0, 1, 3; at t = 6 (k = 3, within the reach 3): value 9, slope term
    # 4 * 3 = 12, Newton's curvature term 1 * 3 * 5 = 15 > 6 = half the slope term: scaled to 6
    f = lambda s: torch.tensor([float(s * s)], dtype=torch.float64)  # noqa: E731
    newton, trusted = _newton_and_trusted(2, f, [0, 1, 3])
    assert forecast(newton, 6).item() == 36.0
    assert forecast(trusted, 6).item() == pytest.approx(9.0 + 12.0 + 6.0, abs=1e-12)


def test_trusted_drops_a_term_beyond_the_reach_of_its_steps():
    # nodes 0, 1, 3 span 3 steps: at t = 7 (k = 4) the curvature is not used, order 1 is
    f = lambda s: torch.tensor([100.0 * s + float(s * s)], dtype=torch.float64)  # noqa: E731
    trusted = TaylorSeerCalibrator(n_derivatives=2)
    order_one = TaylorSeerCalibrator(n_derivatives=1)
    feed(trusted, f, [0, 1, 3])
    feed(order_one, f, [0, 1, 3])
    assert torch.equal(forecast(trusted, 7), forecast(order_one, 7))
    assert forecast(trusted, 6).item() != forecast(order_one, 6).item()  # within the reach


def test_trusted_scale_is_per_sample_so_a_batch_does_not_mix():
    # the same sample alone and next to a sample with a huge curvature: the same forecast
    def f(s, batch):
        calm = torch.tensor([100.0 * s + float(s * s)], dtype=torch.float64)
        wild = torch.tensor([1e3 * float(s**2)], dtype=torch.float64)
        return torch.stack([calm, wild]) if batch else calm.unsqueeze(0)

    alone = TaylorSeerCalibrator(n_derivatives=2)
    batched = TaylorSeerCalibrator(n_derivatives=2)
    feed(alone, lambda s: f(s, False), [0, 1, 3])
    feed(batched, lambda s: f(s, True), [0, 1, 3])
    assert torch.equal(forecast(batched, 5)[:1], forecast(alone, 5))


def test_static_schedule_damps_the_curvature_early_only():
    # f = 100 t + t^2 at nodes 0, 1, 3 (d0 = 2, d1 = 1); at t = 4 (k = 1): value 309, slope
    # term 104, Newton's curvature term 1 * 1 * 3 = 3 (exact: 416). Under a static schedule of
    # N = 11 steps, t = 4 < 0.4 N: the curvature is scaled by k (d0 + d1) / (2 d0 (k + d0))
    # = 3 / 12 (cache-dit's weight, below 1), so 309 + 104 + 0.75; at N = 10 (t = 0.4 N) it is
    # not, and "newton" never is
    assert EARLY_FRACTION == 0.4
    f = lambda s: torch.tensor([100.0 * s + float(s * s)], dtype=torch.float64)  # noqa: E731
    newton, trusted = _newton_and_trusted(2, f, [0, 1, 3])
    assert forecast(trusted, 4).item() == 416.0
    trusted.set_static_schedule(11)
    newton.set_static_schedule(11)
    assert forecast(trusted, 4).item() == pytest.approx(413.75, abs=1e-12)
    assert forecast(newton, 4).item() == 416.0
    trusted.set_static_schedule(10)
    assert forecast(trusted, 4).item() == 416.0
    trusted.set_static_schedule(None)
    assert forecast(trusted, 4).item() == 416.0


def test_static_schedule_weight_is_capped_at_one():
    # nodes 0, 8, 9 (a gap, then adjacent steps: d0 = 1, d1 = 8): cache-dit's weight at k = 2
    # is 2 * 9 / (2 * 1 * 3) = 3 > 1, so the term is kept as it is (not amplified)
    f = lambda s: torch.tensor([100.0 * s + float(s * s)], dtype=torch.float64)  # noqa: E731
    plain, damped = _newton_and_trusted(2, f, [0, 8, 9])[1], TaylorSeerCalibrator(2)
    feed(damped, f, [0, 8, 9])
    damped.set_static_schedule(50)
    assert torch.equal(forecast(damped, 11), forecast(plain, 11))


def test_static_schedule_is_checked():
    seer = TaylorSeerCalibrator(n_derivatives=2)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="total_steps"):
            seer.set_static_schedule(bad)
    assert seer.static_steps is None


def test_unknown_extrapolation_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"extrapolation='damped'.*trusted.*newton"):
        TaylorSeerCalibrator(n_derivatives=2, extrapolation="damped")
    assert "newton" in repr(TaylorSeerCalibrator(2, extrapolation="newton"))
