"""The tiny pipelines: 28 CPU steps, shapes, block counts, seeds, CFG calls, save → reload."""

from __future__ import annotations

import json
import time

import pytest
import torch

from ditkit_testing import (
    build_tiny_pipeline,
    build_tiny_transformer,
    save_and_reload,
    state_digest,
    tiny_call_kwargs,
    tiny_pipeline_names,
)

NAMES = tiny_pipeline_names()

#: Output shape of the standard call, transformer calls for 28 steps (a separate CFG call doubles
#: them) and the batch of each call (batched CFG doubles it).
EXPECTED = {
    "flux": {"shape": (1, 3, 64, 64), "calls": 28, "batch": 1},
    "qwen_image": {"shape": (1, 3, 64, 64), "calls": 56, "batch": 1},
    "wan": {"shape": (1, 9, 3, 64, 64), "calls": 56, "batch": 1},
    "flux2": {"shape": (1, 3, 64, 64), "calls": 28, "batch": 1},
    "hunyuan_video": {"shape": (1, 9, 3, 64, 64), "calls": 28, "batch": 1},
    "ltx": {"shape": (1, 9, 3, 64, 64), "calls": 28, "batch": 2},
    "cogvideox": {"shape": (1, 9, 3, 64, 64), "calls": 28, "batch": 2},
    "sd3": {"shape": (1, 3, 64, 64), "calls": 28, "batch": 2},
    "zimage": {"shape": (1, 3, 64, 64), "calls": 28, "batch": 2},
}

#: Block lists of each tiny transformer and their lengths.
BLOCKS = {
    "flux": {"transformer_blocks": 2, "single_transformer_blocks": 4},
    "qwen_image": {"transformer_blocks": 4},
    "wan": {"blocks": 4},
    "flux2": {"transformer_blocks": 2, "single_transformer_blocks": 4},
    "hunyuan_video": {"transformer_blocks": 2, "single_transformer_blocks": 2},
    "ltx": {"transformer_blocks": 4},
    "cogvideox": {"transformer_blocks": 4},
    "sd3": {"transformer_blocks": 4},
    "zimage": {"layers": 4, "noise_refiner": 1, "context_refiner": 1},
}

#: Generous bound for 28 CPU steps (measured well under 1 s on 2 cores).
MAX_SECONDS = 30.0


def _run(pipe, name: str, steps: int = 28, seed: int = 0, **overrides) -> torch.Tensor:
    kwargs = tiny_call_kwargs(name, num_inference_steps=steps, seed=seed)
    return pipe(**{**kwargs, **overrides})[0]


def test_expected_tables_cover_registry() -> None:
    assert set(EXPECTED) == set(BLOCKS) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_28_steps_on_cpu(name: str, record_property) -> None:
    pipe = build_tiny_pipeline(name, seed=0)
    calls = []
    pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(_batch(args, kwargs)), with_kwargs=True
    )

    start = time.perf_counter()
    out = _run(pipe, name)
    seconds = time.perf_counter() - start
    print(f"{name}: 28 steps in {seconds:.2f} s on CPU")
    record_property("seconds_28_steps", round(seconds, 3))

    assert tuple(out.shape) == EXPECTED[name]["shape"]
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out.std() > 1e-3, "output is constant"
    assert calls == [EXPECTED[name]["batch"]] * EXPECTED[name]["calls"]
    assert seconds < MAX_SECONDS


def _batch(args: tuple, kwargs: dict) -> int:
    """The batch size of one transformer call (Z-Image passes a list of latents positionally)."""
    latents = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
    return len(latents) if isinstance(latents, list) else latents.shape[0]


@pytest.mark.parametrize("name", NAMES)
def test_block_counts_and_heads(name: str) -> None:
    transformer = build_tiny_transformer(name)
    assert {key: len(getattr(transformer, key)) for key in BLOCKS[name]} == BLOCKS[name]
    config = transformer.config
    if name == "zimage":  # Z-Image names them n_heads and dim
        assert (config.n_heads, config.dim // config.n_heads) == (2, 16)
    else:
        assert (config.num_attention_heads, config.attention_head_dim) == (2, 16)


@pytest.mark.parametrize("name", NAMES)
def test_transformer_alone_equals_pipeline_transformer(name: str) -> None:
    alone = build_tiny_transformer(name, seed=5)
    assert state_digest(alone) == state_digest(build_tiny_pipeline(name, seed=5).transformer)
    assert not alone.training


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_is_bit_identical(name: str) -> None:
    a, b = build_tiny_pipeline(name, seed=3), build_tiny_pipeline(name, seed=3)
    assert state_digest(a) == state_digest(b)
    assert torch.equal(_run(a, name, seed=7), _run(b, name, seed=7))


@pytest.mark.parametrize("name", NAMES)
def test_different_seeds_differ(name: str) -> None:
    a, b = build_tiny_pipeline(name, seed=0), build_tiny_pipeline(name, seed=1)
    modules = [k for k, v in a.components.items() if isinstance(v, torch.nn.Module)]
    assert len(modules) >= 3
    for key in modules:
        assert state_digest(a.components[key]) != state_digest(b.components[key]), key
    assert not torch.equal(_run(a, name, steps=4), _run(b, name, steps=4))
    # the latent seed of the call matters too
    assert not torch.equal(_run(a, name, steps=4, seed=0), _run(a, name, steps=4, seed=1))


def test_build_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_pipeline("flux", seed=0)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", NAMES)
def test_save_and_reload_is_bit_identical(name: str, tmp_path) -> None:
    pipe = build_tiny_pipeline(name, seed=0)
    reloaded = save_and_reload(pipe, tmp_path)

    assert type(reloaded) is type(pipe)
    for key, component in pipe.components.items():
        assert type(reloaded.components[key]) is type(component), key
    assert state_digest(reloaded) == state_digest(pipe)
    assert torch.equal(_run(reloaded, name), _run(pipe, name))

    assert list(tmp_path.rglob("*.safetensors"))
    assert not list(tmp_path.rglob("*.bin"))
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == type(pipe).__name__


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_matches_checkpoint_loading(name: str, tmp_path) -> None:
    pipe = build_tiny_pipeline(name, seed=0, dtype=torch.bfloat16)
    reloaded = save_and_reload(pipe, tmp_path)
    for key, component in pipe.components.items():
        if isinstance(component, torch.nn.Module):
            built = {
                k: t.dtype for k, t in [*component.named_parameters(), *component.named_buffers()]
            }
            other = reloaded.components[key]
            loaded = {k: t.dtype for k, t in [*other.named_parameters(), *other.named_buffers()]}
            assert built == loaded, key
    assert pipe.transformer.dtype == torch.bfloat16
    # bfloat16 convolutions are slow on CPU: a 32×32 call (5 frames for video) keeps this fast
    small = {"height": 32, "width": 32}
    if "num_frames" in tiny_call_kwargs(name):
        small["num_frames"] = 5
    out = _run(pipe, name, steps=2, **small)
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, _run(reloaded, name, steps=2, **small))


def test_wan_bfloat16_keeps_float32_modules() -> None:
    transformer = build_tiny_transformer("wan", dtype=torch.bfloat16)
    assert transformer.scale_shift_table.dtype == torch.float32
    assert transformer.blocks[0].norm2.weight.dtype == torch.float32
    assert transformer.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16
