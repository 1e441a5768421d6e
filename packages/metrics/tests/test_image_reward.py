"""ImageReward: manifest layout, strict loading from a local folder, normalisation, errors."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from ditkit_metrics.image_reward import ImageRewardScorer, compute_image_reward
from ditkit_metrics.image_reward_model import (
    REWARD_MEAN,
    REWARD_STD,
    ImageRewardConfig,
    ImageRewardModel,
)
from ditkit_metrics.weights import (
    MissingWeightsError,
    WeightsLayoutError,
    load_manifest,
    random_state_dict,
)

WORDS = ["a", "photo", "of", "cat", "dog", "red", "blue", "sky", "and"]
PROMPTS = ["a photo of a cat", "a red dog", "blue sky", "a cat and a dog"]


def _random_weights(cfg: ImageRewardConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        model = ImageRewardModel(cfg)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    ids = {
        k: torch.arange(s[-1]).expand(s).clone() for k, s in shapes.items() if "position_ids" in k
    }
    return random_state_dict(shapes, seed=seed, overrides=ids)


def _write_folder(folder: Path, cfg: ImageRewardConfig, state=None, vocab_dir: str = "") -> Path:
    """A tiny ImageReward folder: config override, random checkpoint, bert-style vocab."""
    folder.mkdir(parents=True, exist_ok=True)
    fields = dataclasses.asdict(cfg)
    (folder / "ditkit_image_reward.json").write_text(json.dumps(fields))
    if state is None:
        state = _random_weights(cfg)
    torch.save(state, folder / "ImageReward.pt")
    (folder / vocab_dir).mkdir(exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (folder / vocab_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return folder


def _tiny_config() -> ImageRewardConfig:
    return ImageRewardConfig.tiny(vocab_size=5 + len(WORDS) + 2)  # + [DEC] + [ENC]


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    return _write_folder(tmp_path / "ir", _tiny_config())


def test_manifest_is_the_reference_layout():
    manifest = load_manifest("image_reward_v1")
    with torch.device("meta"):
        model = ImageRewardModel()
    layout = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert list(manifest.shapes) == list(layout)
    assert manifest.shapes == layout
    s = manifest.shapes
    # BLIP ViT-L/16 at 224 px: 14 x 14 patches + class token, 24 blocks of width 1024
    assert s["blip.visual_encoder.pos_embed"] == (1, 197, 1024)
    assert s["blip.visual_encoder.patch_embed.proj.weight"] == (1024, 3, 16, 16)
    assert s["blip.visual_encoder.blocks.23.attn.qkv.weight"] == (3072, 1024)
    assert "blip.visual_encoder.blocks.24.norm1.weight" not in s
    # med BERT: 30522 + [DEC] + [ENC] tokens, cross-attention reads 1024-wide image tokens
    assert s["blip.text_encoder.embeddings.word_embeddings.weight"] == (30524, 768)
    assert s["blip.text_encoder.embeddings.position_ids"] == (1, 512)
    assert s["blip.text_encoder.encoder.layer.11.crossattention.self.key.weight"] == (768, 1024)
    assert "blip.text_encoder.encoder.layer.12.output.dense.weight" not in s
    assert not any(k.startswith("blip.text_encoder.pooler") for k in s)
    assert [s[f"mlp.layers.{i}.weight"] for i in (0, 2, 4, 6, 7)] == [
        (1024, 768),
        (128, 1024),
        (64, 128),
        (16, 64),
        (1, 16),
    ]
    assert s["blip.vision_proj.weight"] == (256, 1024) and s["blip.text_proj.weight"] == (256, 768)
    assert manifest.num_params() == 446_666_465  # ~1.79 GB of float32, as ImageReward.pt


def test_scores_through_argument_and_env_var(tiny_dir: Path, monkeypatch):
    images = torch.rand(4, 3, 48, 40, generator=torch.Generator().manual_seed(1))
    scorer = ImageRewardScorer(tiny_dir, device="cpu", batch_size=3)
    scores = scorer.scores(images, PROMPTS)
    assert scores.shape == (4,) and torch.isfinite(scores).all()
    assert len(set(torch.round(scores, decimals=4).tolist())) == 4  # depends on its inputs
    by_arg = compute_image_reward(images, PROMPTS, model_dir=tiny_dir)
    assert by_arg == pytest.approx(float(scores.mean()), abs=1e-5)
    monkeypatch.setenv("IMAGEREWARD_MODEL_DIR", str(tiny_dir))
    assert compute_image_reward(images, PROMPTS) == by_arg
    one_by_one = torch.cat([scorer.scores(images[i : i + 1], PROMPTS[i]) for i in range(4)])
    torch.testing.assert_close(one_by_one, scores, atol=1e-5, rtol=1e-5)


def test_reward_is_normalised_raw_head_output(tmp_path: Path):
    cfg = _tiny_config()
    state = _random_weights(cfg)
    state["mlp.layers.7.weight"] = torch.zeros(1, cfg.head_sizes[-1])
    state["mlp.layers.7.bias"] = torch.tensor([2.5])
    folder = _write_folder(tmp_path / "const", cfg, state)
    rewards = ImageRewardScorer(folder, device="cpu").scores(torch.rand(3, 3, 32, 32), "a cat")
    expected = (2.5 - REWARD_MEAN) / REWARD_STD
    torch.testing.assert_close(rewards, torch.full((3,), expected), atol=1e-6, rtol=0)
    assert (REWARD_MEAN, REWARD_STD) == (0.16717362830052426, 1.0333394966054072)


def test_raw_reward_reads_the_text_class_token(tiny_dir: Path):
    scorer = ImageRewardScorer(tiny_dir, device="cpu")
    model = scorer.model
    pixels = torch.randn(2, 3, 32, 32)
    ids, mask = scorer.tokenize(["a cat", "blue sky and a red dog"])
    assert ids[0, 0] == 2 and mask[0].sum() == 4  # [CLS] a cat [SEP], then padding
    with torch.no_grad():
        image = model.blip.visual_encoder(pixels)
        text = model.blip.text_encoder(ids, mask, image)
        raw = model.mlp(text[:, 0]).squeeze(-1)
        got = model(pixels, ids, mask)
    assert image.shape == (2, 5, 32) and text.shape == (2, 35, 32)
    torch.testing.assert_close(got, (raw - REWARD_MEAN) / REWARD_STD)
    # padding is masked: fewer pad tokens leave the reward unchanged
    short_ids, short_mask = ids[:, :12], mask[:, :12]
    with torch.no_grad():
        torch.testing.assert_close(model(pixels, short_ids, short_mask), got, atol=1e-5, rtol=0)
        # ... while the image does matter, through cross-attention
        assert not torch.allclose(model(pixels.flip(-1), ids, mask), got, atol=1e-4)


def test_tokenizer_in_subfolder_and_special_tokens(tmp_path: Path):
    folder = _write_folder(tmp_path / "sub", _tiny_config(), vocab_dir="bert-base-uncased")
    scorer = ImageRewardScorer(folder, device="cpu", max_length=8)
    n = 5 + len(WORDS)
    assert scorer.tokenizer.convert_tokens_to_ids(["[DEC]", "[ENC]"]) == [n, n + 1]
    ids, _ = scorer.tokenize(["A Photo of a CAT"])
    assert ids.tolist() == [[2, 5, 6, 7, 5, 8, 3, 0]]  # lower-cased, [CLS] ... [SEP] [PAD]


def test_missing_weights_say_what_to_download(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("IMAGEREWARD_MODEL_DIR", raising=False)
    with pytest.raises(MissingWeightsError) as err:
        compute_image_reward(torch.rand(1, 3, 32, 32), "a cat")
    message = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    for needed in (
        "ImageReward.pt",
        "https://huggingface.co/THUDM/ImageReward",
        "vocab.txt",
        "bert-base-uncased",
        "IMAGEREWARD_MODEL_DIR",
        "model_dir=",
    ):
        assert needed in message
    folder = _write_folder(tmp_path / "novocab", _tiny_config())
    (folder / "vocab.txt").unlink()
    with pytest.raises(MissingWeightsError) as err:
        compute_image_reward(torch.rand(1, 3, 32, 32), "a cat", folder)
    assert "vocab.txt" in str(err.value) and "ImageReward.pt " not in str(err.value)


def test_load_is_strict(tmp_path: Path):
    cfg = _tiny_config()
    state = _random_weights(cfg)
    del state["blip.text_proj.bias"]
    state["blip.text_encoder.pooler.dense.weight"] = torch.zeros(32, 32)
    folder = _write_folder(tmp_path / "bad", cfg, state)
    with pytest.raises(WeightsLayoutError) as err:
        compute_image_reward(torch.rand(1, 3, 32, 32), "a cat", folder)
    assert "blip.text_proj.bias" in str(err.value) and "pooler.dense.weight" in str(err.value)
    (folder / "ditkit_image_reward.json").write_text(json.dumps({"vision_widht": 8}))
    with pytest.raises(ValueError, match="vision_widht"):
        compute_image_reward(torch.rand(1, 3, 32, 32), "a cat", folder)


def test_without_config_file_the_published_layout_is_required(tiny_dir: Path):
    (tiny_dir / "ditkit_image_reward.json").unlink()
    with pytest.raises(WeightsLayoutError, match="image_reward_v1") as err:
        compute_image_reward(torch.rand(1, 3, 32, 32), "a cat", tiny_dir)
    assert "blip.visual_encoder.pos_embed" in str(err.value)
    assert math.isfinite(REWARD_STD)
