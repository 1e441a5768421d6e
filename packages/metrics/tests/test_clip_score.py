"""CLIP score: manifest layout, loading from a local folder, the score's definition, errors."""

from __future__ import annotations

import json
import math
import string
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch.nn import functional
from transformers import CLIPConfig, CLIPModel

from ditkit_interfaces.errors import MissingComponentError
from ditkit_metrics.clip_score import (
    CLIP_MEAN,
    CLIP_STD,
    OPENAI_CLIP_VIT_L14_CONFIG,
    CLIPScorer,
    clip_state_dict_layout,
    compute_clip_score,
    preprocess_images,
)
from ditkit_metrics.weights import MissingWeightsError, WeightsLayoutError, load_manifest

PROMPTS = ["a photo of a cat", "a red dog", "blue sky", "a cat and a dog"]


def _write_tokenizer(folder: Path) -> int:
    """A byte-level BPE vocabulary of single letters (no merges); returns the eos id."""
    vocab: dict[str, int] = {}
    for letter in string.ascii_lowercase:
        vocab[letter] = len(vocab)
        vocab[letter + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return vocab["<|endoftext|>"]


def _tiny_config(eos: int, width: int = 32, proj: int = 16) -> CLIPConfig:
    text = dict(
        vocab_size=eos + 1,
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=24,
        bos_token_id=eos - 1,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    vision = dict(
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=16,
    )
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=proj)


def _save(folder: Path, model: CLIPModel, extra: dict | None = None) -> Path:
    model.config.save_pretrained(folder)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    state.update(extra or {})
    save_file(state, str(folder / "model.safetensors"))
    return folder


@pytest.fixture
def tiny_clip(tmp_path: Path) -> tuple[Path, CLIPModel]:
    torch.manual_seed(0)
    eos = _write_tokenizer(tmp_path)
    model = CLIPModel(_tiny_config(eos)).eval()
    return _save(tmp_path, model), model


def test_manifest_is_the_published_layout():
    manifest = load_manifest("clip_vit_large_patch14")
    layout = clip_state_dict_layout(OPENAI_CLIP_VIT_L14_CONFIG)
    assert list(manifest.shapes) == list(layout)
    assert manifest.shapes == {k: tuple(v) for k, v in layout.items()}
    # the published config.json: vision 1024 wide x 24 layers, text 768 x 12, projection 768
    s = manifest.shapes
    assert s["visual_projection.weight"] == (768, 1024)
    assert s["text_projection.weight"] == (768, 768)
    assert s["vision_model.embeddings.patch_embedding.weight"] == (1024, 3, 14, 14)
    assert s["vision_model.embeddings.position_embedding.weight"] == (257, 1024)
    assert s["text_model.embeddings.token_embedding.weight"] == (49408, 768)
    assert s["text_model.embeddings.position_embedding.weight"] == (77, 768)
    assert s["vision_model.encoder.layers.0.mlp.fc1.weight"] == (4096, 1024)
    assert "vision_model.encoder.layers.23.mlp.fc2.bias" in s
    assert "vision_model.encoder.layers.24.mlp.fc2.bias" not in s
    assert "text_model.encoder.layers.11.mlp.fc2.bias" in s
    assert "text_model.encoder.layers.12.mlp.fc2.bias" not in s
    assert manifest.num_params() == 427_616_513


def test_score_is_100_times_clamped_cosine_of_model_embeddings(tiny_clip):
    folder, model = tiny_clip
    images = torch.rand(4, 3, 40, 52, generator=torch.Generator().manual_seed(1))
    scorer = CLIPScorer(folder, device="cpu", batch_size=3)  # two batches
    cos = scorer.cosines(images, PROMPTS)
    # recompute independently: own preprocessing, the model's towers, own cosine
    pixels = functional.interpolate(images, size=(32, 41), mode="bicubic", antialias=True).clamp(
        0, 1
    )
    pixels = pixels[..., :, 4:36]  # round((41 - 32) / 2) = 4
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    pixels = (pixels - mean) / std
    text = scorer.tokenizer(PROMPTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        img = model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output)
        txt = model.text_projection(model.text_model(**text).pooler_output)
    expected = functional.cosine_similarity(img, txt, dim=-1)
    torch.testing.assert_close(cos, expected, atol=1e-5, rtol=1e-5)
    assert len(set(torch.round(cos, decimals=4).tolist())) == 4  # not degenerate
    expected_score = float((100 * expected.clamp(min=0)).mean())
    assert compute_clip_score(images, PROMPTS, folder) == pytest.approx(expected_score, abs=1e-3)


def test_closed_form_score_and_clamp_at_zero(tmp_path: Path):
    eos = _write_tokenizer(tmp_path)
    model = CLIPModel(_tiny_config(eos, width=16, proj=16)).eval()
    with torch.no_grad():
        # zero-weight final norms make each tower emit its norm's bias, whatever the input
        model.vision_model.post_layernorm.weight.zero_()
        model.text_model.final_layer_norm.weight.zero_()
        model.visual_projection.weight.copy_(torch.eye(16))
        model.text_projection.weight.copy_(torch.eye(16))
        model.vision_model.post_layernorm.bias.copy_(torch.eye(16)[0])
        model.text_model.final_layer_norm.bias.copy_(torch.eye(16)[0] + torch.eye(16)[1])
    _save(tmp_path, model)
    images = torch.rand(3, 3, 32, 32)
    assert compute_clip_score(images, "a cat", tmp_path) == pytest.approx(100 / math.sqrt(2))
    with torch.no_grad():
        model.text_model.final_layer_norm.bias.copy_(-torch.eye(16)[0] + torch.eye(16)[1])
    _save(tmp_path, model)
    scorer = CLIPScorer(tmp_path, device="cpu")
    assert float(scorer.cosines(images, "a cat")[0]) == pytest.approx(-1 / math.sqrt(2))
    assert scorer(images, "a cat") == 0.0  # max(cos, 0)


def test_env_var_and_argument_agree(tiny_clip, monkeypatch):
    folder, _ = tiny_clip
    images = torch.rand(2, 3, 32, 32)
    by_arg = compute_clip_score(images, PROMPTS[:2], model_dir=str(folder))
    monkeypatch.setenv("CLIP_MODEL_DIR", str(folder))
    assert compute_clip_score(images, PROMPTS[:2]) == by_arg
    assert compute_clip_score((images * 255).round().to(torch.uint8), PROMPTS[:2]) == (
        pytest.approx(by_arg, abs=0.5)
    )


def test_missing_weights_say_what_to_download(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("CLIP_MODEL_DIR", raising=False)
    with pytest.raises(MissingWeightsError) as err:
        compute_clip_score(torch.rand(1, 3, 32, 32), "a cat")
    message = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    for needed in ("openai/clip-vit-large-patch14", "model.safetensors", "vocab.json"):
        assert needed in message
    assert "CLIP_MODEL_DIR" in message and "model_dir=" in message
    _write_tokenizer(tmp_path)
    (tmp_path / "merges.txt").unlink()
    with pytest.raises(MissingWeightsError) as err:
        compute_clip_score(torch.rand(1, 3, 32, 32), "a cat", tmp_path)
    message = str(err.value)
    assert "merges.txt" in message and "config.json" in message and "vocab.json" not in message
    with pytest.raises(MissingWeightsError, match="does_not_exist"):
        compute_clip_score(torch.rand(1, 3, 32, 32), "a cat", tmp_path / "does_not_exist")


def test_missing_transformers_names_the_extra(tiny_clip, monkeypatch):
    folder, _ = tiny_clip
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    with pytest.raises(MissingComponentError, match=r"ditkit-metrics\[prompts\]"):
        CLIPScorer(folder, device="cpu")


def test_load_is_strict_but_drops_position_ids(tmp_path: Path):
    eos = _write_tokenizer(tmp_path)
    model = CLIPModel(_tiny_config(eos)).eval()
    legacy = {"text_model.embeddings.position_ids": torch.arange(24)[None]}
    _save(tmp_path, model, legacy)  # older exports carry the index buffers
    assert math.isfinite(compute_clip_score(torch.rand(1, 3, 32, 32), "a cat", tmp_path))
    _save(tmp_path, model, {"logit_bias": torch.zeros(())})
    with pytest.raises(WeightsLayoutError, match="unexpected: logit_bias"):
        compute_clip_score(torch.rand(1, 3, 32, 32), "a cat", tmp_path)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    state["visual_projection.weight"] = state["visual_projection.weight"][:, :8].contiguous()
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(WeightsLayoutError, match=r"visual_projection\.weight"):
        compute_clip_score(torch.rand(1, 3, 32, 32), "a cat", tmp_path)


def test_preprocess_resize_crop_normalise():
    images = torch.rand(2, 3, 30, 50)
    out = preprocess_images(images, 20)
    assert out.shape == (2, 3, 20, 20)
    # resized to 20 x int(20 * 50 / 30) = 20 x 33; crop starts at round(13 / 2) = 6 (even)
    resized = functional.interpolate(images, size=(20, 33), mode="bicubic", antialias=True).clamp(
        0, 1
    )
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(out, (resized[..., 6:26] - mean) / std)
    exact = torch.rand(1, 3, 24, 20)  # shortest side already the size: crop only
    torch.testing.assert_close(preprocess_images(exact, 20), (exact[..., 2:22, :] - mean) / std)
    gray = torch.full((1, 3, 64, 48), 0.5)
    torch.testing.assert_close(
        preprocess_images(gray, 16), ((0.5 - mean) / std).expand(1, 3, 16, 16)
    )


def test_input_validation(tiny_clip):
    folder, _ = tiny_clip
    scorer = CLIPScorer(folder, device="cpu")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        scorer(torch.rand(1, 3, 32, 32) * 2, "a cat")
    with pytest.raises(ValueError, match="N, 3, H, W"):
        scorer(torch.rand(3, 32, 32), "a cat")
    with pytest.raises(ValueError, match="one per image"):
        scorer(torch.rand(2, 3, 32, 32), ["a cat"])
    assert preprocess_images(torch.rand(1, 3, 8, 12), 16).shape == (1, 3, 16, 16)  # upscales
