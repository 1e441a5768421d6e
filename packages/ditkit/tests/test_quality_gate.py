"""CI quality gate: the recommended cache config may not lose quality on the trained fixture.

The floors are the values measured when the gate was set (2026-11-22, docs/benchmarks/quality.md
and the demo), minus a stated margin: 1.0 dB of PSNR against the uncached images (the fixture
reproduces its samples to >= 60 dB across CPUs, so library noise is far below that) and one image
in ten of prompt accuracy. A change to the engine, the calibrators or the recommended config
that costs more than that fails CI.
"""

import pytest
import torch

import ditkit
from ditkit.demo import recommended_config

STEPS = 28
DIGITS = list(range(10))
#: config -> (PSNR measured, prompt accuracy measured, computed steps measured)
MEASURED = {
    "recommended (F1B0 rdt 0.12 + TaylorSeer 2)": (53.89, 1.0, 13),
    "plain DBCache F1B0 rdt 0.12": (42.47, 1.0, 13),
}
PSNR_MARGIN_DB = 1.0
ACCURACY_MARGIN = 0.1
COMPUTED_MARGIN = 1  # the speed side: at most one more computed step than measured


@pytest.fixture(scope="module")
def fixture_run():
    from ditkit_testing.fixture import build_fixture_pipeline, fixture_call_kwargs

    pipe = build_fixture_pipeline()

    def run():
        with torch.no_grad():
            return pipe(**fixture_call_kwargs(DIGITS, STEPS)).images

    return pipe, run, run()


@pytest.mark.parametrize("label", list(MEASURED))
def test_recommended_config_keeps_its_quality(label, fixture_run):
    from ditkit_metrics import compute_prompt_accuracy, psnr
    from ditkit_testing.fixture import load_digit_classifier

    pipe, run, reference = fixture_run
    cache, calibrator = recommended_config(STEPS)
    if label.startswith("plain"):
        calibrator = None
    ditkit.enable_cache(pipe, cache_config=cache, calibrator_config=calibrator)
    try:
        images = run()
        computed = STEPS - len(ditkit.summary(pipe, logging=False)[0].cached_steps)
    finally:
        ditkit.disable_cache(pipe)
    measured_psnr, measured_accuracy, measured_computed = MEASURED[label]
    value = psnr(reference, images, data_range=1.0)
    accuracy = compute_prompt_accuracy(images, DIGITS, load_digit_classifier())
    assert value >= measured_psnr - PSNR_MARGIN_DB, f"PSNR {value:.2f} dB"
    assert accuracy >= measured_accuracy - ACCURACY_MARGIN, f"prompt accuracy {accuracy:.2f}"
    assert computed <= measured_computed + COMPUTED_MARGIN, f"{computed} computed steps"
    assert torch.equal(run(), reference), "disable_cache must restore the uncached output"
