"""The local tokenizers: fixed ids, whole-word tokens, fallbacks, the Qwen template, round trips."""

from __future__ import annotations

import pytest
from transformers import CLIPTokenizer, LlamaTokenizerFast, Qwen2Tokenizer, T5TokenizerFast

from ditkit_testing import build_tiny_pipeline
from ditkit_testing.tokenizers import (
    EXTRA_WORDS,
    LLAMA3_SPECIAL_TOKENS,
    MISTRAL_SPECIAL_TOKENS,
    QWEN_SPECIAL_TOKENS,
    WORDS,
    build_clip_tokenizer,
    build_llama3_tokenizer,
    build_mistral_tokenizer,
    build_qwen2_tokenizer,
    build_qwen3_tokenizer,
    build_t5_tokenizer,
)

BUILDERS = {
    "clip": build_clip_tokenizer,
    "t5": build_t5_tokenizer,
    "qwen2": build_qwen2_tokenizer,
    "qwen3": build_qwen3_tokenizer,
    "llama3": build_llama3_tokenizer,
    "mistral": build_mistral_tokenizer,
}

#: Pinned ids: any change to WORDS or to the vocabulary layout changes every tiny pipeline.
GOLDEN = {
    "clip": (1065, [1063, 353, 864, 642, 1064]),
    "t5": (435, [3, 237, 87, 1]),
    "qwen2": (1717, [97, 1173, 591]),
    "qwen3": (1719, [97, 1173, 591]),
    "llama3": (2894, [2889, 333, 1673, 837]),
    "mistral": (2897, [2889, 333, 1673, 837]),
}


def test_classes_are_the_ones_the_pipelines_name() -> None:
    assert isinstance(build_clip_tokenizer(), CLIPTokenizer)
    assert isinstance(build_t5_tokenizer(), T5TokenizerFast)
    assert isinstance(build_qwen2_tokenizer(), Qwen2Tokenizer)
    assert isinstance(build_qwen3_tokenizer(), Qwen2Tokenizer)
    assert isinstance(build_llama3_tokenizer(), LlamaTokenizerFast)
    assert isinstance(build_mistral_tokenizer(), LlamaTokenizerFast)


@pytest.mark.parametrize("kind", BUILDERS)
def test_vocabulary_is_pinned(kind: str) -> None:
    tok = BUILDERS[kind]()
    size, ids = GOLDEN[kind]
    assert len(tok) == size
    assert tok("a red cat").input_ids == ids


def test_words_are_unique() -> None:
    assert len(set(WORDS)) == len(WORDS)
    assert len({*WORDS, *EXTRA_WORDS}) == len(WORDS) + len(EXTRA_WORDS)


@pytest.mark.parametrize("kind", ["llama3", "mistral"])
def test_llama_kind_words_are_single_tokens_and_bytes_fall_back(kind: str) -> None:
    tok = BUILDERS[kind]()
    for word in (*WORDS, *EXTRA_WORDS):
        for variant in {word, word[:1].upper() + word[1:]}:
            assert tok.tokenize(f"x {variant}") == ["▁", "x", f"▁{variant}"], variant
    assert tok.tokenize("zebra")[:3] == ["▁", "z", "e"]  # unknown word: characters
    assert tok.tokenize("é") == ["▁", "<0xC3>", "<0xA9>"]  # unknown character: its bytes
    assert tok.tokenize("a\n\nb") == ["▁a", "\n\n", "b"]  # a blank line is one token
    text = "Ünïcödé 🙂 text, 42!"
    assert tok.decode(tok(text).input_ids, skip_special_tokens=True) == text
    assert tok.unk_token_id not in tok(text).input_ids


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

    qwen3, llama3, mistral = (
        build_qwen3_tokenizer(),
        build_llama3_tokenizer(),
        build_mistral_tokenizer(),
    )
    assert (qwen3.eos_token, qwen3.pad_token) == ("<|im_end|>", "<|endoftext|>")
    assert qwen3.tokenize("x<think>y</think>") == ["x", "<think>", "y", "</think>"]
    assert (llama3.bos_token, llama3.pad_token, llama3.padding_side) == (
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "right",
    )
    assert (mistral.bos_token, mistral.eos_token, mistral.pad_token) == ("<s>", "</s>", "<pad>")
    for tok, specials in ((llama3, LLAMA3_SPECIAL_TOKENS), (mistral, MISTRAL_SPECIAL_TOKENS)):
        assert tok("x").input_ids[0] == tok.bos_token_id  # BOS first, as in Llama and Mistral
        for token in specials:
            assert tok.tokenize(f"x{token}y") == ["▁", "x", token, "y"], token


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


def test_hunyuan_video_template_prefix_is_cropped_exactly() -> None:
    pipe = build_tiny_pipeline("hunyuan_video")
    from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video import DEFAULT_PROMPT_TEMPLATE

    template, crop = DEFAULT_PROMPT_TEMPLATE["template"], DEFAULT_PROMPT_TEMPLATE["crop_start"]
    prefix = template.split("{}")[0]
    tok = pipe.tokenizer
    assert len(tok(prefix).input_ids) == crop == 95
    prompt = "A photo of a zebra, 3 cats"
    ids = tok(template.format(prompt)).input_ids
    assert tok.decode(ids[crop:]) == prompt + "<|eot_id|>"  # exactly the prompt is kept
    embeds, _, mask = pipe.encode_prompt(prompt, device="cpu", max_sequence_length=16)
    assert embeds.shape[1] == 16 and int(mask.sum()) == len(ids) - crop


def test_flux2_chat_format_and_system_message() -> None:
    pipe = build_tiny_pipeline("flux2")
    chat = [
        {"role": "system", "content": [{"type": "text", "text": pipe.system_message}]},
        {"role": "user", "content": [{"type": "text", "text": "a red cat"}]},
    ]
    text = pipe.tokenizer.apply_chat_template(chat, tokenize=False)
    assert text == f"<s>[SYSTEM_PROMPT]{pipe.system_message}[/SYSTEM_PROMPT][INST]a red cat[/INST]"
    ids = pipe.tokenizer.apply_chat_template(chat, return_dict=True).input_ids
    assert len(ids) == 35  # the system message's words are single tokens
    batch = pipe.tokenizer.apply_chat_template(
        [chat], return_dict=True, return_tensors="pt", padding="max_length", max_length=64
    )
    assert tuple(batch["input_ids"].shape) == (1, 64) and int(batch["attention_mask"].sum()) == 35


def test_qwen3_chat_template() -> None:
    tok = build_qwen3_tokenizer()
    chat = [{"role": "user", "content": "a red cat"}]
    think = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert think == "<|im_start|>user\na red cat<|im_end|>\n<|im_start|>assistant\n"
    plain = tok.apply_chat_template(
        chat, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    assert plain == think + "<think>\n\n</think>\n\n"


@pytest.mark.parametrize("kind", BUILDERS)
def test_save_and_load_round_trip(kind: str, tmp_path) -> None:
    tok = BUILDERS[kind]()
    tok.save_pretrained(tmp_path)
    loaded = type(tok).from_pretrained(tmp_path, local_files_only=True)
    assert type(loaded) is type(tok)
    assert len(loaded) == len(tok)
    assert loaded.all_special_ids == tok.all_special_ids
    assert loaded.model_max_length == tok.model_max_length
    assert loaded.chat_template == tok.chat_template
    for text in ("a red cat", "The Astronaut riding a zebra, 3 é 🙂", "", "x\n\n[INST]<|eot_id|>"):
        assert loaded(text).input_ids == tok(text).input_ids, text
