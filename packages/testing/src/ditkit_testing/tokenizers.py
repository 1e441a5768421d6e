"""Deterministic tiny tokenizers for the tiny pipelines (never trained).

The ``tokenizers`` trainer can assign different ids in different processes, so every vocabulary
here is written out from the fixed word list :data:`WORDS`: a byte (or character) alphabet first,
then one whole-word token per listed word, built by merges computed with a small pure-Python BPE
simulation in list order. Nothing iterates over a set or a hash, so the ids are the same in
every process and on every machine.

The tokenizer classes are the ones the diffusers pipelines name in ``model_index.json``:
:class:`~transformers.CLIPTokenizer` (Flux, SD3, HunyuanVideo),
:class:`~transformers.T5TokenizerFast` (Flux, Wan, SD3, LTX, CogVideoX),
:class:`~transformers.Qwen2Tokenizer` (Qwen-Image; with Qwen3's chat template for Z-Image) and
:class:`~transformers.LlamaTokenizerFast` (HunyuanVideo's Llama 3 tokens; FLUX.2's Mistral chat
format). The Llama kind is a SentencePiece-style BPE
(``▁`` marks a word start, unknown characters fall back to byte tokens) over
:data:`WORDS` + :data:`EXTRA_WORDS`. In transformers 5 the ``*Fast`` names are
aliases of the same ``tokenizers``-backed classes, so ``save_pretrained`` / ``from_pretrained``
round-trip through the real loading code.

Words in the list are one token each (also with a leading space for the byte-level tokenizers
and capitalised). Unknown words fall back to single characters, which keeps different prompts
distinct; characters outside the alphabet map to the unknown token (T5 only: the byte-level
tokenizers cover every byte).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import CLIPTokenizer, LlamaTokenizerFast, Qwen2Tokenizer, T5TokenizerFast

__all__ = [
    "EXTRA_WORDS",
    "LLAMA3_SPECIAL_TOKENS",
    "MISTRAL_SPECIAL_TOKENS",
    "QWEN_SPECIAL_TOKENS",
    "WORDS",
    "build_clip_tokenizer",
    "build_llama3_tokenizer",
    "build_mistral_tokenizer",
    "build_qwen2_tokenizer",
    "build_qwen3_tokenizer",
    "build_t5_tokenizer",
]

#: The fixed word list. Order matters (it fixes the ids): append, never reorder or remove.
#: It holds every word of the Qwen-Image prompt template, so the template's 34-token prefix
#: that the pipeline drops is exactly 34 tokens here too.
WORDS: tuple[str, ...] = (
    # function words
    "a", "an", "the", "of", "in", "on", "at", "with", "and", "or", "by", "to", "from", "under",
    "over", "near", "for", "is", "are", "this", "that", "it", "its", "into", "behind", "front",
    # Qwen-Image prompt template
    "system", "user", "assistant", "describe", "image", "detailing", "color", "shape", "size",
    "texture", "quantity", "text", "spatial", "relationships", "objects", "background",
    # things
    "cat", "dog", "bird", "fish", "horse", "car", "tree", "house", "city", "street", "mountain",
    "river", "lake", "sea", "ocean", "beach", "forest", "flower", "garden", "sky", "cloud", "sun",
    "moon", "star", "night", "day", "man", "woman", "child", "girl", "boy", "person", "robot",
    "astronaut", "castle", "bridge", "boat", "ship", "train", "road", "field", "snow", "rain",
    "fire", "water", "light", "shadow", "window", "door", "table", "chair", "book", "cup",
    "coffee", "apple", "cake", "hat", "sign", "word", "words", "ditkit",
    # kinds of picture
    "photo", "painting", "picture", "drawing", "sketch", "portrait", "landscape", "scene",
    "style", "video", "camera", "motion", "frame", "frames",
    # attributes
    "red", "green", "blue", "yellow", "orange", "purple", "pink", "black", "white", "gray",
    "brown", "golden", "silver", "big", "small", "tiny", "large", "old", "young", "new", "happy",
    "cute", "dark", "bright", "colorful", "detailed", "realistic", "cinematic", "high", "quality",
    "soft", "sharp", "wooden", "glass", "metal", "stone", "slow", "fast",
    # actions
    "sitting", "standing", "running", "flying", "walking", "swimming", "reading", "sleeping",
    "holding", "wearing", "looking", "says",
    # negative prompts
    "low", "bad", "worst", "blurry", "ugly", "deformed", "distorted", "watermark", "static",
    "overexposed", "artifacts", "jpeg",
)  # fmt: skip

#: Special tokens of the tiny Qwen2 tokenizer, in id order after the byte-level vocabulary.
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: More fixed words, only in the Llama-kind vocabulary (so :data:`WORDS` and every older tokenizer
#: stay as they are): the rest of HunyuanVideo's prompt template and of FLUX.2's system message.
#: Append, never reorder or remove.
EXTRA_WORDS: tuple[str, ...] = (
    "following", "aspects", "main", "content", "theme", "actions", "events", "behaviors",
    "temporal", "physical", "movement", "changes", "environment", "atmosphere", "angles",
    "movements", "transitions", "used", "you", "AI", "reasons", "about", "descriptions", "give",
    "structured", "responses", "focusing", "object", "attribution", "without", "speculation",
)  # fmt: skip

#: Llama-3 chat tokens of the HunyuanVideo tokenizer, in id order after the vocabulary.
LLAMA3_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
)

#: Mistral chat tokens of the FLUX.2 tokenizer, in id order after the vocabulary.
MISTRAL_SPECIAL_TOKENS: tuple[str, ...] = (
    "<s>",
    "</s>",
    "<pad>",
    "[INST]",
    "[/INST]",
    "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]",
    "[IMG]",
)

#: Mistral's chat format: ``<s>[SYSTEM_PROMPT]…[/SYSTEM_PROMPT][INST]…[/INST]``; a message's
#: content is a string or a list of ``{"type": "text", "text": …}`` parts (other parts dropped).
MISTRAL_CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{%- if message['content'] is string %}{%- set text = message['content'] %}"
    "{%- else %}{%- set text = message['content'] | selectattr('type', 'equalto', 'text')"
    " | map(attribute='text') | join('') %}{%- endif %}"
    "{%- if message['role'] == 'system' %}{{- '[SYSTEM_PROMPT]' + text + '[/SYSTEM_PROMPT]' }}"
    "{%- elif message['role'] == 'user' %}{{- '[INST]' + text + '[/INST]' }}"
    "{%- else %}{{- text + eos_token }}{%- endif %}"
    "{%- endfor %}"
)

#: Qwen3's chat format (text only); ``enable_thinking=False`` adds the empty thinking block.
QWEN3_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"
)

_CLIP_BOS = "<|startoftext|>"
_CLIP_EOS = "<|endoftext|>"
_CLIP_SUFFIX = "</w>"
_T5_SPACE = "▁"
_T5_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"-()"
_LLAMA_UNK = "<unk>"
_QWEN3_THINK_TOKENS = ("<think>", "</think>")


def _bytes_to_unicode() -> list[str]:
    """The GPT-2 byte → printable-character table, as a list indexed by byte, in a fixed order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += list(range(ord("®"), ord("ÿ") + 1))
    table: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def _byte_level(text: str) -> str:
    """Map ``text`` to its byte-level form (what ``pre_tokenizers.ByteLevel`` produces)."""
    table = _bytes_to_unicode()
    return "".join(table[b] for b in text.encode("utf-8"))


def _bpe(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Merge ``symbols`` like the ``tokenizers`` BPE model: lowest rank first, leftmost on ties."""
    symbols = list(symbols)
    while len(symbols) > 1:
        best: tuple[int, int] | None = None
        for i in range(len(symbols) - 1):
            rank = ranks.get((symbols[i], symbols[i + 1]))
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, i)
        if best is None:
            break
        i = best[1]
        symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
    return symbols


def _word_merges(
    alphabet: list[str], words: list[list[str]]
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary and merges that make each word (given as initial symbols) a single token.

    Words are processed in order; each one is encoded with the merges so far and the leftover
    pieces are joined left to right by new, lowest-priority merges. Words already processed are
    single tokens, so later merges never change them.
    """
    vocab: dict[str, int] = {}
    for symbol in alphabet:
        vocab.setdefault(symbol, len(vocab))
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for symbols in words:
        pieces = _bpe(symbols, ranks)
        while len(pieces) > 1:
            pair = (pieces[0], pieces[1])
            ranks[pair] = len(merges)
            merges.append(pair)
            pieces = [pieces[0] + pieces[1], *pieces[2:]]
            vocab.setdefault(pieces[0], len(vocab))
    return vocab, merges


def _word_variants(word: str) -> list[str]:
    """``word`` and its capitalised form (once if they are equal)."""
    capital = word[:1].upper() + word[1:]
    return [word] if capital == word else [word, capital]


@lru_cache(maxsize=1)
def _clip_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    table = _bytes_to_unicode()
    alphabet = table + [c + _CLIP_SUFFIX for c in table]
    words = [[*w[:-1], w[-1] + _CLIP_SUFFIX] for w in WORDS]  # CLIP lowercases its input
    vocab, merges = _word_merges(alphabet, words)
    for token in (_CLIP_BOS, _CLIP_EOS):
        vocab[token] = len(vocab)
    return vocab, merges


@lru_cache(maxsize=1)
def _qwen_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    space = _byte_level(" ")
    words: list[list[str]] = []
    for word in WORDS:
        for variant in _word_variants(word):
            words.append(list(_byte_level(variant)))
            words.append([space, *_byte_level(variant)])
    vocab, merges = _word_merges(_bytes_to_unicode(), words)
    for token in QWEN_SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    return vocab, merges


@lru_cache(maxsize=1)
def _llama_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """``<unk>``, 256 byte-fallback tokens, characters, then each word with and without ``▁``."""
    alphabet = [_LLAMA_UNK, *(f"<0x{b:02X}>" for b in range(256)), _T5_SPACE, "\n", *_T5_CHARS]
    words: list[list[str]] = [["\n", "\n"]]  # a blank line is one token, as in Llama 3
    for word in (*WORDS, *EXTRA_WORDS):
        for variant in _word_variants(word):
            words.append([_T5_SPACE, *variant])
            words.append(list(variant))
    return _word_merges(alphabet, words)


@lru_cache(maxsize=1)
def _t5_vocab() -> tuple[tuple[str, float], ...]:
    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    # Whole words score far above characters, so a listed word is always one piece.
    pieces += [(_T5_SPACE + v, -5.0) for w in WORDS for v in _word_variants(w)]
    pieces += [(_T5_SPACE, -8.0)] + [(c, -10.0) for c in _T5_CHARS]
    return tuple(pieces)


def build_clip_tokenizer(model_max_length: int = 77) -> CLIPTokenizer:
    """A byte-level BPE :class:`~transformers.CLIPTokenizer` over :data:`WORDS`.

    Example:
        >>> tok = build_clip_tokenizer()
        >>> ids = tok("a red cat").input_ids
        >>> tok.convert_ids_to_tokens(ids)
        ['<|startoftext|>', 'a</w>', 'red</w>', 'cat</w>', '<|endoftext|>']
    """
    from transformers import CLIPTokenizer

    vocab, merges = _clip_vocab()
    return CLIPTokenizer(
        vocab=dict(vocab),
        merges=list(merges),
        model_max_length=model_max_length,
    )


def build_t5_tokenizer(model_max_length: int = 512) -> T5TokenizerFast:
    """A Unigram :class:`~transformers.T5TokenizerFast` over :data:`WORDS` (Flux, Wan).

    Ids: ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2; no sentinel ``<extra_id_*>`` tokens.

    Example:
        >>> tok = build_t5_tokenizer()
        >>> tok.convert_ids_to_tokens(tok("a red cat").input_ids)
        ['▁a', '▁red', '▁cat', '</s>']
    """
    from transformers import T5TokenizerFast

    return T5TokenizerFast(
        vocab=list(_t5_vocab()),
        extra_ids=0,
        model_max_length=model_max_length,
    )


def build_qwen2_tokenizer(model_max_length: int = 32768) -> Qwen2Tokenizer:
    """A byte-level BPE :class:`~transformers.Qwen2Tokenizer` over :data:`WORDS` (Qwen-Image).

    ``<|endoftext|>`` is the pad/eos token; the chat tokens of :data:`QWEN_SPECIAL_TOKENS` are
    special (never split).

    Example:
        >>> tok = build_qwen2_tokenizer()
        >>> tok.convert_ids_to_tokens(tok("<|im_start|>user\\nA red cat").input_ids)
        ['<|im_start|>', 'user', 'Ċ', 'A', 'Ġred', 'Ġcat']
    """
    from transformers import Qwen2Tokenizer

    vocab, merges = _qwen_vocab()
    return Qwen2Tokenizer(
        vocab=dict(vocab),
        merges=list(merges),
        unk_token=None,
        bos_token=None,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=list(QWEN_SPECIAL_TOKENS[1:]),
        model_max_length=model_max_length,
    )


def _llama_kind(
    special_tokens: tuple[str, ...], model_max_length: int, **kwargs: object
) -> LlamaTokenizerFast:
    from transformers import LlamaTokenizerFast

    vocab, merges = _llama_vocab()
    vocab = dict(vocab)
    for token in special_tokens:
        vocab[token] = len(vocab)
    named = {kwargs[k] for k in ("bos_token", "eos_token", "pad_token")}
    return LlamaTokenizerFast(
        vocab=vocab,
        merges=list(merges),
        unk_token=_LLAMA_UNK,
        extra_special_tokens=[t for t in special_tokens if t not in named],
        add_bos_token=True,
        model_max_length=model_max_length,
        **kwargs,
    )


def build_llama3_tokenizer(model_max_length: int = 131072) -> LlamaTokenizerFast:
    """A :class:`~transformers.LlamaTokenizerFast` with Llama 3's chat tokens (HunyuanVideo).

    Adds ``<|begin_of_text|>`` in front, pads on the right with ``<|end_of_text|>``. The words
    of HunyuanVideo's prompt template are single tokens, so its system prefix is 95 tokens, the
    ``crop_start`` the pipeline drops, as with the real tokenizer.

    Example:
        >>> tok = build_llama3_tokenizer()
        >>> ids = tok("<|start_header_id|>user<|end_header_id|>\\n\\nA red cat").input_ids
        >>> tok.convert_ids_to_tokens(ids)  # doctest: +NORMALIZE_WHITESPACE
        ['<|begin_of_text|>', '<|start_header_id|>', 'user', '<|end_header_id|>', '\\n\\n',
         'A', '▁red', '▁cat']
    """
    return _llama_kind(
        LLAMA3_SPECIAL_TOKENS,
        model_max_length,
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        pad_token="<|end_of_text|>",
        padding_side="right",
    )


def build_mistral_tokenizer(model_max_length: int = 131072) -> LlamaTokenizerFast:
    """A :class:`~transformers.LlamaTokenizerFast` with Mistral's chat format (FLUX.2).

    FLUX.2 names a ``PixtralProcessor``, which needs torchvision even for text; the pipeline
    only calls its ``apply_chat_template``, which this tokenizer has
    (:data:`MISTRAL_CHAT_TEMPLATE`). FLUX.2's system message is made of listed words, so it
    takes few tokens.

    Example:
        >>> tok = build_mistral_tokenizer()
        >>> chat = [{"role": "user", "content": [{"type": "text", "text": "a red cat"}]}]
        >>> tok.apply_chat_template(chat, tokenize=False)
        '<s>[INST]a red cat[/INST]'
        >>> tok.convert_ids_to_tokens(tok.apply_chat_template(chat, return_dict=True).input_ids)
        ['<s>', '[INST]', 'a', '▁red', '▁cat', '[/INST]']
    """
    return _llama_kind(
        MISTRAL_SPECIAL_TOKENS,
        model_max_length,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        chat_template=MISTRAL_CHAT_TEMPLATE,
    )


def build_qwen3_tokenizer(model_max_length: int = 40960) -> Qwen2Tokenizer:
    """The Qwen2 tokenizer plus ``<think>`` / ``</think>`` and Qwen3's chat template (Z-Image).

    Example:
        >>> tok = build_qwen3_tokenizer()
        >>> chat = [{"role": "user", "content": "a red cat"}]
        >>> tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        '<|im_start|>user\\na red cat<|im_end|>\\n<|im_start|>assistant\\n'
    """
    from transformers import Qwen2Tokenizer

    vocab, merges = _qwen_vocab()
    vocab = dict(vocab)
    for token in _QWEN3_THINK_TOKENS:
        vocab[token] = len(vocab)
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=list(merges),
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=[*QWEN_SPECIAL_TOKENS[1:], *_QWEN3_THINK_TOKENS],
        chat_template=QWEN3_CHAT_TEMPLATE,
        model_max_length=model_max_length,
    )
