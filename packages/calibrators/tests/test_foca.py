"""FoCa: cache-dit's closed form, transcribed independently here and compared bit for bit."""

import pytest
import torch

from ditkit_calibrators import FoCaCalibrator
from ditkit_interfaces import Calibrator, ConfigError


class ReferenceFoCa:
    """cache-dit 1.5.3's FoCa as the reference describes it (§3.6), with true step indices."""

    def __init__(self):
        self.F_k = self.F_km1 = self.F_full = self.F_full_prev = None
        self.last_full_step = None

    def update(self, y, step):
        self.F_full_prev, self.F_full = self.F_full, y.clone()
        self.F_km1, self.F_k = self.F_k, y.clone()
        self.last_full_step = step

    def approximate(self, step):
        if self.F_km1 is None or self.F_full_prev is None:
            return self.F_full
        e = step - self.last_full_step
        d_full = self.F_full - self.F_full_prev
        d_cur = self.F_k - self.F_km1
        if e <= 3:
            pred = self.F_full + (e / 2) * (d_full + d_cur)
        else:
            w = 3 / e
            pred = w * (self.F_full + 1.5 * (d_full + d_cur)) + (1 - w) * self.F_full
        self.F_km1, self.F_k = self.F_k, pred
        return pred


MASKS = {
    "short-gaps": [1, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 1],
    "long-gap": [1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],  # e up to 7: the w = 3/e branch
    "one-compute": [1, 0, 0, 1, 0],
}


@pytest.mark.parametrize("mask", MASKS.values(), ids=MASKS.keys())
def test_matches_the_closed_form(mask):
    generator = torch.Generator().manual_seed(0)
    foca, reference = FoCaCalibrator(), ReferenceFoCa()
    seen_long_gap = False
    for step, compute in enumerate(mask):
        foca.mark_step_begin(step)
        if compute:
            y = torch.randn(2, 5, 3, generator=generator, dtype=torch.float64)
            foca.update(y)
            reference.update(y, step)
        else:
            got, want = foca.approximate(), reference.approximate(step)
            assert torch.allclose(got, want, rtol=1e-14, atol=1e-14)
            seen_long_gap |= step - foca.last_full_step > 3
    assert seen_long_gap == (max(_gaps(mask)) > 3)


def _gaps(mask):
    last, gaps = 0, [0]
    for step, compute in enumerate(mask):
        if compute:
            last = step
        else:
            gaps.append(step - last)
    return gaps


def test_explicit_values_of_both_branches():
    foca = FoCaCalibrator()
    for step, y in ((0, 0.0), (1, 1.0)):  # a line of slope 1
        foca.mark_step_begin(step)
        foca.update(torch.tensor(y, dtype=torch.float64))
    expected = {2: 2.0, 3: 3.0, 4: 4.0}  # e <= 3: the window keeps slope 1 exactly
    for step, want in expected.items():
        foca.mark_step_begin(step)
        assert foca.approximate().item() == want
    foca.mark_step_begin(5)  # e = 4: w = 3/4; d_cur = 4 - 3 = 1 -> 0.75 * (1 + 3) + 0.25 * 1
    assert foca.approximate().item() == 0.75 * 4.0 + 0.25 * 1.0


def test_returns_the_last_computed_value_until_it_has_two():
    foca = FoCaCalibrator()
    foca.mark_step_begin(0)
    assert foca.approximate() is None
    y = torch.randn(3)
    foca.update(y)
    foca.mark_step_begin(1)
    assert foca.approximate() is y


def test_asking_twice_in_one_step_does_not_shift_the_window_again():
    foca = FoCaCalibrator()
    for step in (0, 1):
        foca.mark_step_begin(step)
        foca.update(torch.tensor(float(step * step)))
    foca.mark_step_begin(2)
    first = foca.approximate()
    assert foca.approximate() is first
    foca.mark_step_begin(3)
    reference = ReferenceFoCa()
    reference.update(torch.tensor(0.0), 0)
    reference.update(torch.tensor(1.0), 1)
    reference.approximate(2)
    assert foca.approximate().item() == reference.approximate(3).item()


def test_shape_change_and_reset_start_over():
    foca = FoCaCalibrator()
    for step in (0, 1):
        foca.mark_step_begin(step)
        foca.update(torch.full((2, 2), float(step)))
    foca.mark_step_begin(2)
    new = torch.full((3, 2), 9.0)
    foca.update(new)
    assert foca.full_prev is None and foca.current_step == 2
    foca.mark_step_begin(3)
    assert foca.approximate() is new
    foca.reset()
    assert foca.approximate() is None and foca.current_step is None


def test_instances_keep_separate_state():
    a, b = FoCaCalibrator(), FoCaCalibrator()
    for step in (0, 1):
        for calibrator, scale in ((a, 1.0), (b, -2.0)):
            calibrator.mark_step_begin(step)
            calibrator.update(torch.tensor(scale * step))
    a.mark_step_begin(2)
    b.mark_step_begin(3)
    assert a.approximate().item() == 2.0
    assert b.approximate().item() == -6.0


def test_protocol_and_no_options():
    assert isinstance(FoCaCalibrator(), Calibrator)
    with pytest.raises(ConfigError, match="no options"):
        FoCaCalibrator(order=2)
