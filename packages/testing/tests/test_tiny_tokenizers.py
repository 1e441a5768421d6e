"""The local tokenizers: fixed ids, whole-word tokens, fallbacks, the Qwen template, round trips."""

from __future__ import annotations

import pytest
from transformers import CLIPTokenizer, Qwen2Tokenizer, T5TokenizerFast

from ditkit_testing import build_tiny_pipeline
from ditkit_testing.tokenizers import (
    QWEN_SPECIAL_TOKENS,
    WORDS,
    build_clip_tokenizer,
    build_qwen2_tokenizer,
    build_t5_tokenizer,
)

BUILDERS = {
    "clip": build_clip_tokenizer,
    "t5": build_t5_tokenizer,
    "qwen2": build_qwen2_tokenizer,
}

#: Pinned ids: any change to WORDS or to the vocabulary layout changes every tiny pipeline.
GOLDEN = {
    "clip": (1065, [1063, 353, 864, 642, 1064]),
    "t5": (435, [3, 237, 87, 1]),
    "qwen2": (1717, [97, 1173, 591]),
}


def test_classes_are_the_ones_the_pipelines_name() -> None:
    assert isinstance(build_clip_tokenizer(), CLIPTokenizer)
    assert isinstance(build_t5_tokenizer(), T5TokenizerFast)
    assert isinstance(build_qwen2_tokenizer(), Qwen2Tokenizer)


@pytest.mark.parametrize("kind", BUILDERS)
def test_vocabulary_is_pinned(kind: str) -> None:
    tok = BUILDERS[kind]()
    size, ids = GOLDEN[kind]
    assert len(tok) == size
    assert tok("a red cat").input_ids == ids


def test_words_are_unique() -> None:
    assert len(set(WORDS)) == len(WORDS)


def test_listed_words_are_single_tokens() -> None:
    clip, t5, qwen = build_clip_tokenizer(), build_t5_tokenizer(), build_qwen2_tokenizer()
    for word in WORDS:
        capital = word.capitalize()
        assert clip.tokenize(word) == [f"{word}</w>"]
        assert clip.tokenize(capital) == [f"{word}</w>"]  # CLIP lowercases
        for variant in (word, capital):
            assert t5.tokenize(variant) == [f"▁{variant}"]
            assert len(qwen.tokenize(variant)) == 1, variant
            assert len(qwen.tokenize(f"x {variant}")) == 2, variant  # "x", "Ġword"


def test_unknown_words_fall_back_to_characters() -> None:
    clip, t5, qwen = build_clip_tokenizer(), build_t5_tokenizer(), build_qwen2_tokenizer()
    assert clip.tokenize("zebra") == ["z", "e", "b", "r", "a</w>"]
    assert t5.tokenize("zebra") == ["▁", "z", "e", "b", "r", "a"]
    assert qwen.tokenize("a zebra")[0] == "a" and len(qwen.tokenize("a zebra")) > 2
    # T5 has no byte fallback: characters outside its alphabet are <unk>
    assert t5("é").input_ids == [t5.convert_tokens_to_ids("▁"), t5.unk_token_id, t5.eos_token_id]
    # the byte-level tokenizers cover every byte: no unknown token, lossless for Qwen
    text = "Ünïcödé 🙂 text, 42!"
    assert qwen.decode(qwen(text).input_ids) == text
    assert clip.unk_token_id not in clip(text).input_ids[1:-1]


def test_special_tokens() -> None:
    clip, t5, qwen = build_clip_tokenizer(), build_t5_tokenizer(), build_qwen2_tokenizer()
    assert (clip.bos_token, clip.eos_token, clip.pad_token) == (
        "<|startoftext|>",
        "<|endoftext|>",
        "<|endoftext|>",
    )
    assert clip.model_max_length == 77
    assert (t5.pad_token_id, t5.eos_token_id, t5.unk_token_id) == (0, 1, 2)
    assert qwen.pad_token == qwen.eos_token == "<|endoftext|>"
    for token in QWEN_SPECIAL_TOKENS:
        assert qwen.tokenize(f"x{token}y") == ["x", token, "y"]


def test_qwen_template_prefix_is_dropped_exactly() -> None:
    pipe = build_tiny_pipeline("qwen_image")
    tok, template = pipe.tokenizer, pipe.prompt_template_encode
    drop = pipe.prompt_template_encode_start_idx
    prefix, suffix = template.split("{}")
    assert len(tok(prefix).input_ids) == drop == 34

    prompt = "A photo of a zebra, 3 cats"
    ids = tok(template.format(prompt)).input_ids
    assert ids[drop:] == tok(prompt).input_ids + tok(suffix).input_ids

    embeds, _ = pipe.encode_prompt(prompt, device="cpu")
    assert embeds.shape[1] == len(ids) - drop


@pytest.mark.parametrize("kind", BUILDERS)
def test_save_and_load_round_trip(kind: str, tmp_path) -> None:
    tok = BUILDERS[kind]()
    tok.save_pretrained(tmp_path)
    loaded = type(tok).from_pretrained(tmp_path, local_files_only=True)
    assert type(loaded) is type(tok)
    assert len(loaded) == len(tok)
    assert loaded.all_special_ids == tok.all_special_ids
    assert loaded.model_max_length == tok.model_max_length
    for text in ("a red cat", "The Astronaut riding a zebra, 3 é 🙂", ""):
        assert loaded(text).input_ids == tok(text).input_ids, text
