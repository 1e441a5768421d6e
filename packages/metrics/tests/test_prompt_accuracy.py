"""Prompt accuracy over any classifier callable, and labels read from prompts."""

from __future__ import annotations

import pytest
import torch

from ditkit_metrics.prompt_accuracy import (
    compute_prompt_accuracy,
    labels_from_prompts,
    predict_labels,
)


def _by_channel(batch: torch.Tensor) -> torch.Tensor:
    """Logits [B, 3]: the mean of each colour channel (the brightest channel wins)."""
    return batch.mean(dim=(2, 3))


def test_accuracy_with_logits_and_label_classifiers():
    images = torch.zeros(5, 3, 4, 4)
    for i, channel in enumerate([0, 1, 2, 1, 0]):
        images[i, channel] = 1.0
    assert compute_prompt_accuracy(images, [0, 1, 2, 1, 0], _by_channel) == 1.0
    assert compute_prompt_accuracy(images, [0, 1, 2, 2, 2], _by_channel, batch_size=2) == 0.6
    as_labels = lambda batch: _by_channel(batch).argmax(dim=1)  # noqa: E731
    assert compute_prompt_accuracy(images, torch.tensor([0, 0, 0, 0, 0]), as_labels) == 0.4
    assert predict_labels(images, _by_channel, batch_size=3).tolist() == [0, 1, 2, 1, 0]


def test_errors():
    images = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        compute_prompt_accuracy(images, [0, 1, 2], _by_channel)
    with pytest.raises(ValueError, match=r"logits \[B, K\] or labels \[B\]"):
        compute_prompt_accuracy(images, [0, 1], lambda b: torch.zeros(2, 3, 1))
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        predict_labels(torch.zeros(2, 4, 4), _by_channel)


def test_labels_from_prompts_match_whole_words():
    digits = [str(d) for d in range(10)]
    prompts = ["a handwritten digit 7", "Digit 0, bold", "the number 10 is not a digit 1 0"]
    assert labels_from_prompts(prompts[:2], digits) == [7, 0]
    with pytest.raises(ValueError, match="several classes"):
        labels_from_prompts(prompts[2:], digits)
    with pytest.raises(ValueError, match="names no class"):
        labels_from_prompts(["a cat"], digits)
    assert labels_from_prompts(["A Seven"], ["six", "seven"]) == [1]
