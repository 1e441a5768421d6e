"""The trained fixture: ships offline, reproduces its samples, draws the prompted digit."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from ditkit_testing.fixture import (
    WEIGHTS_DIR,
    build_fixture_pipeline,
    fixture_call_kwargs,
    fixture_prompts,
    load_digit_classifier,
)
from ditkit_testing.fixture.data import TEST_SIZE, load_digits_split

#: what tools/train_fixture.py writes; text encoders are rebuilt from config and seed instead
SHIPPED = ("transformer", "vae", "classifier", "reference_samples")


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


@pytest.fixture(scope="module")
def pipe():
    return build_fixture_pipeline()


@pytest.fixture(scope="module")
def samples(pipe) -> torch.Tensor:
    """One image per digit, 28 steps, seed 0: what the reference samples were made with."""
    with torch.no_grad():
        return pipe(**fixture_call_kwargs(list(range(10)), 28, seed=0)).images


def test_weights_ship_in_the_package_within_budget():
    sizes = {name: (WEIGHTS_DIR / f"{name}.safetensors").stat().st_size for name in SHIPPED}
    model_bytes = sizes["transformer"] + sizes["vae"] + sizes["classifier"]
    assert model_bytes <= 20 * 1024 * 1024, sizes
    assert not list(WEIGHTS_DIR.glob("text_encoder*")), "text encoders are rebuilt, not shipped"
    assert (WEIGHTS_DIR / "MODEL_CARD.md").is_file()


def test_components_are_the_trained_ones(pipe):
    from safetensors import safe_open

    assert type(pipe).__name__ == "FluxPipeline"
    assert type(pipe.transformer).__name__ == "FluxTransformer2DModel"
    transformer = pipe.transformer
    assert (len(transformer.transformer_blocks), len(transformer.single_transformer_blocks)) == (
        3,
        9,
    )
    with safe_open(str(WEIGHTS_DIR / "vae.safetensors"), framework="pt") as handle:
        meta = handle.metadata()
    assert pipe.vae.config.scaling_factor == float(meta["scaling_factor"]) != 1.0
    # the random-init text encoders are the same in every process (fixed seed, fixed vocab)
    again = build_fixture_pipeline()
    for a, b in zip(
        pipe.text_encoder_2.state_dict().values(),
        again.text_encoder_2.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b)


def test_reproduces_reference_samples(samples):
    from safetensors.torch import load_file

    reference = load_file(str(WEIGHTS_DIR / "reference_samples.safetensors"))["images"]
    assert samples.shape == reference.shape == (10, 3, 32, 32)
    assert _psnr(samples, reference) >= 60.0


def test_samples_show_the_prompted_digit(samples):
    classifier = load_digit_classifier()
    predicted = classifier.predict(samples)
    accuracy = (predicted == torch.arange(10)).float().mean().item()
    assert accuracy >= 0.9, predicted.tolist()
    # the prompt matters: swapping prompts changes the digit drawn
    assert samples[3].sub(samples[7]).abs().mean() > 0.05


def test_classifier_on_the_real_held_out_split():
    images, labels = load_digits_split("test")
    assert len(images) == TEST_SIZE
    predicted = load_digit_classifier().predict(images * 0.5 + 0.5)
    assert (predicted == labels).float().mean().item() >= 0.97


def test_split_is_fixed_and_disjoint():
    train, _ = load_digits_split("train")
    test, _ = load_digits_split("test")
    assert len(train) + len(test) == 1797
    flat_train = {tuple(row.tolist()) for row in train.flatten(1)[:, ::37]}
    overlap = sum(tuple(row.tolist()) in flat_train for row in test.flatten(1)[:, ::37])
    assert overlap <= 2  # sklearn's digits hold a few exact duplicates
    assert torch.equal(load_digits_split("test")[0], test)


def test_missing_weights_name_the_fix(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"train_fixture\.py"):
        build_fixture_pipeline(tmp_path)
    with pytest.raises(ValueError, match=r"0\.\.9"):
        fixture_prompts([10])
