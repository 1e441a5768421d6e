"""Prompt accuracy: the share of generated images a classifier assigns to the prompted class.

For a model trained on labelled data (ditkit's fixture model draws digits from prompts such as
"a handwritten digit 7"), a classifier of that data says whether each image shows what its
prompt asked for. The classifier is any callable: it takes a ``[B, 3, H, W]`` batch in [0, 1]
and returns logits ``[B, K]`` (the arg-max is the prediction) or integer labels ``[B]``.

Example:
    >>> import torch
    >>> from ditkit_metrics.prompt_accuracy import compute_prompt_accuracy, labels_from_prompts
    >>> labels = labels_from_prompts(["a digit 1", "a digit 0"], ["0", "1"])
    >>> labels
    [1, 0]
    >>> images = torch.stack([torch.ones(3, 4, 4), torch.zeros(3, 4, 4)])
    >>> brightness = lambda batch: (batch.mean(dim=(1, 2, 3)) > 0.5).long()
    >>> compute_prompt_accuracy(images, labels, brightness)
    1.0
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import torch

__all__ = ["compute_prompt_accuracy", "labels_from_prompts", "predict_labels"]

Classifier = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def predict_labels(
    images: torch.Tensor, classifier: Classifier, batch_size: int = 64
) -> torch.Tensor:
    """Predicted class of each image, ``[N]`` int64 on the CPU."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [N, 3, H, W], got {tuple(images.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    out = []
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size]
        result = torch.as_tensor(classifier(batch))
        if result.ndim == 2:
            result = result.argmax(dim=1)
        if result.shape != (batch.shape[0],):
            raise ValueError(
                f"the classifier returned shape {tuple(result.shape)} for {batch.shape[0]} "
                "images: expected logits [B, K] or labels [B]"
            )
        out.append(result.long().cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def compute_prompt_accuracy(
    images: torch.Tensor,
    labels: Sequence[int] | torch.Tensor,
    classifier: Classifier,
    batch_size: int = 64,
) -> float:
    """Fraction of ``images`` (``[N, 3, H, W]`` in [0, 1]) that ``classifier`` puts in the class
    of their ``labels`` (one integer per image; see :func:`labels_from_prompts`)."""
    expected = torch.as_tensor(labels, dtype=torch.long).flatten()
    if expected.numel() != images.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {expected.numel()} labels")
    if expected.numel() == 0:
        raise ValueError("no images to classify")
    predicted = predict_labels(images, classifier, batch_size)
    return float((predicted == expected).double().mean())


def labels_from_prompts(prompts: Sequence[str], classes: Sequence[str]) -> list[int]:
    """The index in ``classes`` of the one class name each prompt contains as a whole word.

    Raises ``ValueError`` for a prompt that names no class or more than one.
    """
    patterns = [re.compile(rf"(?<!\w){re.escape(c)}(?!\w)", re.IGNORECASE) for c in classes]
    labels = []
    for prompt in prompts:
        found = [i for i, pattern in enumerate(patterns) if pattern.search(prompt)]
        if len(found) != 1:
            what = "no class" if not found else f"several classes {[classes[i] for i in found]}"
            raise ValueError(f"prompt {prompt!r} names {what} of {list(classes)}")
        labels.append(found[0])
    return labels
