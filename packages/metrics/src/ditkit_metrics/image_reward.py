"""ImageReward v1.0: a learned human-preference score of an image for its prompt.

The network is our own plain-torch code (:mod:`ditkit_metrics.image_reward_model`) whose
state-dict keys and shapes equal the published ``ImageReward.pt`` (committed in
``manifests/image_reward_v1.json``); it loads with ``strict=True``.

Weights: a folder, passed as ``model_dir`` or in ``IMAGEREWARD_MODEL_DIR``, holding

- ``ImageReward.pt`` from https://huggingface.co/THUDM/ImageReward (``med_config.json`` there is
  not needed: its values are built in);
- the bert-base-uncased tokenizer's ``vocab.txt`` (and optionally ``tokenizer_config.json``)
  from https://huggingface.co/google-bert/bert-base-uncased, in the folder itself or in its
  subfolder ``bert-base-uncased/``;
- optionally ``ditkit_image_reward.json``: :class:`ImageRewardConfig` fields that override the
  v1.0 sizes (used by tests to run the same code on a tiny network).

Preprocessing and tokenization follow the reference ``ImageReward.score``: shortest side to 224
(bicubic), center crop, CLIP mean/std; the prompt padded/truncated to 35 BERT tokens (cache-dit
1.5.3 pads to 512 instead, which gives the same reward for prompts of up to 33 word pieces).

Example:
    >>> import torch
    >>> try:
    ...     compute_image_reward(torch.rand(1, 3, 64, 64), "a cat", model_dir="/no/such/dir")
    ... except FileNotFoundError as err:
    ...     print(str(err).splitlines()[0])
    ImageReward needs a local model folder, which ditkit does not download.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from .clip_score import (
    MissingModelDirError,
    check_images,
    check_prompts,
    hub_file,
    preprocess_images,
    require_transformers,
)
from .image_reward_model import ImageRewardConfig, ImageRewardModel
from .weights import Manifest, check_layout, load_manifest

__all__ = [
    "ImageRewardScorer",
    "compute_image_reward",
    "load_image_reward",
    "resolve_model_dir",
]

ENV_VAR = "IMAGEREWARD_MODEL_DIR"
METRIC = "ImageReward"
MANIFEST = "image_reward_v1"
CONFIG_FILE = "ditkit_image_reward.json"
TOKENIZER_REPO = "google-bert/bert-base-uncased"
SUBDIR = "bert-base-uncased"
#: Prompt length of the reference ``ImageReward.score`` (tokens, [CLS] and [SEP] included).
MAX_LENGTH = 35


def _files() -> list[Manifest]:
    return [
        load_manifest(MANIFEST),
        hub_file(TOKENIZER_REPO, "vocab.txt", f"bert-base-uncased vocabulary; DIR or DIR/{SUBDIR}"),
        hub_file(TOKENIZER_REPO, "tokenizer_config.json", "optional, beside vocab.txt"),
    ]


def _tokenizer_dir(path: Path) -> Path | None:
    for candidate in (path, path / SUBDIR):
        if (candidate / "vocab.txt").is_file():
            return candidate
    return None


def resolve_model_dir(model_dir: str | os.PathLike | None) -> Path:
    """The folder to load from (argument, else ``IMAGEREWARD_MODEL_DIR``), checked for files."""
    given = model_dir if model_dir is not None else os.environ.get(ENV_VAR) or None
    if given is None:
        raise MissingModelDirError(METRIC, ENV_VAR, _files())
    path = Path(given).expanduser()
    if not path.is_dir():
        raise MissingModelDirError(METRIC, ENV_VAR, _files(), [path])
    checkpoint, vocab, _ = _files()
    missing, looked_at = [], []
    if not (path / checkpoint.file_name).is_file():
        missing.append(checkpoint)
        looked_at.append(path / checkpoint.file_name)
    if _tokenizer_dir(path) is None:
        missing.append(vocab)
        looked_at += [path / "vocab.txt", path / SUBDIR / "vocab.txt"]
    if missing:
        raise MissingModelDirError(METRIC, ENV_VAR, missing, looked_at)
    return path


def _read_config(path: Path) -> ImageRewardConfig:
    file = path / CONFIG_FILE
    if not file.is_file():
        return ImageRewardConfig()
    return ImageRewardConfig.from_dict(json.loads(file.read_text()))


def _read_checkpoint(file: Path) -> dict[str, torch.Tensor]:
    try:  # memory-mapped: the 1.8 GB file is not copied
        return torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # a legacy (non-zip) torch file cannot be mapped
        return torch.load(file, map_location="cpu", weights_only=True)


def load_image_reward(model_dir: str | os.PathLike | None, device: torch.device | str = "cpu"):
    """Loads ``(ImageRewardModel, BertTokenizer)`` from a local folder (weights strict)."""
    transformers = require_transformers(METRIC)
    path = resolve_model_dir(model_dir)
    config = _read_config(path)
    expected = load_manifest(MANIFEST)
    with torch.device("meta"):
        model = ImageRewardModel(config)
    if config != ImageRewardConfig():  # a reduced test network: its own layout
        layout = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        expected = dataclasses.replace(expected, name=f"{MANIFEST} resized", shapes=layout)
    state = check_layout(_read_checkpoint(path / expected.file_name), expected, str(path))
    # Every tensor, buffers included, comes from the checkpoint: none stays on meta.
    model.load_state_dict(state, strict=True, assign=True)
    model = model.to(device=device, dtype=torch.float32).eval()
    tokenizer = transformers.BertTokenizer.from_pretrained(str(_tokenizer_dir(path)))
    # BLIP's tokenizer adds these two tokens (ids 30522 and 30523 for bert-base-uncased).
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    if len(tokenizer) > config.vocab_size:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but the model embeds {config.vocab_size}"
        )
    return model, tokenizer


class ImageRewardScorer:
    """A loaded ImageReward model; call it on images and prompts for the mean reward.

    Args:
        model_dir: the weights folder (see the module docstring); else ``IMAGEREWARD_MODEL_DIR``.
        device: where the model runs (default: CUDA when available, else CPU).
        batch_size: image/prompt pairs per forward pass.
        max_length: prompt tokens kept (35 as the reference ``score``; cache-dit uses 512).
    """

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        device: torch.device | str | None = None,
        batch_size: int = 16,
        max_length: int = MAX_LENGTH,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model, self.tokenizer = load_image_reward(model_dir, self.device)
        if not 3 <= max_length <= self.model.config.max_positions:
            raise ValueError(
                f"max_length={max_length} must be in [3, {self.model.config.max_positions}]"
            )
        self.max_length = max_length

    def tokenize(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input_ids, attention_mask)`` padded to ``max_length``, on the model's device."""
        text = self.tokenizer(
            prompts,
            padding="max_length",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return text["input_ids"].to(self.device), text["attention_mask"].to(self.device)

    @torch.no_grad()
    def scores(self, images: torch.Tensor, prompts: str | Sequence[str]) -> torch.Tensor:
        """Normalised reward of each image for its prompt, ``[N]`` float32 on the CPU."""
        images = check_images(images)
        prompts = check_prompts(prompts, images.shape[0])
        size = self.model.config.image_size
        out = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            pixels = preprocess_images(images[chunk].to(self.device), size)
            ids, mask = self.tokenize(prompts[chunk])
            out.append(self.model(pixels, ids, mask).float().cpu())
        return torch.cat(out)

    def __call__(self, images: torch.Tensor, prompts: str | Sequence[str]) -> float:
        value = float(self.scores(images, prompts).mean())
        if not math.isfinite(value):
            raise FloatingPointError("ImageReward is not finite; check the weights")
        return value


def compute_image_reward(
    images: torch.Tensor,
    prompts: str | Sequence[str],
    model_dir: str | os.PathLike | None = None,
    *,
    device: torch.device | str | None = None,
    batch_size: int = 16,
) -> float:
    """Mean ImageReward of ``images`` (``[N, 3, H, W]`` in [0, 1]) for ``prompts``.

    Loads the model each call; keep an :class:`ImageRewardScorer` to score many batches.
    """
    if device is None and isinstance(images, torch.Tensor):
        device = images.device
    return ImageRewardScorer(model_dir, device=device, batch_size=batch_size)(images, prompts)
