"""Bit-identical weights, outputs and token ids in a separate process (other hash seed)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import pytest

from ditkit_testing import build_tiny_pipeline, state_digest, tiny_call_kwargs, tiny_pipeline_names
from ditkit_testing.tokenizers import (
    build_clip_tokenizer,
    build_llama3_tokenizer,
    build_mistral_tokenizer,
    build_qwen2_tokenizer,
    build_qwen3_tokenizer,
    build_t5_tokenizer,
)

TOKENIZERS = (
    build_clip_tokenizer,
    build_t5_tokenizer,
    build_qwen2_tokenizer,
    build_qwen3_tokenizer,
    build_llama3_tokenizer,
    build_mistral_tokenizer,
)

TEXTS = ("a photo of a red cat", "The Astronaut riding a zebra, 3 é 🙂")

#: Run both here and in a fresh interpreter; prints one JSON line of digests and ids.
SCRIPT = """
import json
from ditkit_testing import build_tiny_pipeline, state_digest, tiny_call_kwargs, tiny_pipeline_names
from ditkit_testing import tokenizers

def fingerprint(texts, steps):
    result = {}
    for name in tiny_pipeline_names():
        pipe = build_tiny_pipeline(name, seed=11)
        out = pipe(**tiny_call_kwargs(name, num_inference_steps=steps, seed=2))[0]
        result[name] = {"weights": state_digest(pipe), "output": state_digest(out)}
    for kind in ("clip", "t5", "qwen2", "qwen3", "llama3", "mistral"):
        tok = getattr(tokenizers, f"build_{kind}_tokenizer")()
        result[f"build_{kind}_tokenizer"] = [tok(t).input_ids for t in texts]
    return result
"""


@functools.cache
def _fingerprint_here() -> dict:
    namespace: dict = {}
    exec(SCRIPT, namespace)
    return namespace["fingerprint"](TEXTS, 28)


@pytest.mark.slow
def test_other_process_gives_identical_weights_outputs_and_ids() -> None:
    code = SCRIPT + f"\nprint(json.dumps(fingerprint({TEXTS!r}, 28)))\n"
    env = {**os.environ, "PYTHONHASHSEED": "12345", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    there = json.loads(proc.stdout.strip().splitlines()[-1])
    here = _fingerprint_here()
    assert set(there) == set(here)
    for key in here:
        assert there[key] == here[key], key


def test_fingerprint_covers_every_pipeline_and_tokenizer() -> None:
    here = _fingerprint_here()
    assert set(tiny_pipeline_names()) <= set(here)
    names = tiny_pipeline_names()
    assert len({here[name]["weights"] for name in names}) == len(names) == 9
    for build in TOKENIZERS:
        assert here[build.__name__] == [build()(t).input_ids for t in TEXTS]
    pipe = build_tiny_pipeline("flux", seed=11)
    assert here["flux"]["weights"] == state_digest(pipe)
    out = pipe(**tiny_call_kwargs("flux", num_inference_steps=28, seed=2))[0]
    assert here["flux"]["output"] == state_digest(out)
