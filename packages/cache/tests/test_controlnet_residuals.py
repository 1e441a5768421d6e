"""Control-net residuals that a transformer's loop adds by block index stay exact under the cache.

For each family whose forward adds control samples inside its block loop (FLUX, Qwen-Image, SD3,
Sana, Bria, Chroma, Cosmos, Sana-Video), a tiny transformer gets control samples of the real
shapes (read off its blocks' outputs) straight in its forward, and: without the family's functor
the cached forward is wrong; with it, threshold 0 is bit-identical to the uncached model with
samples (and without them: the functor is a no-op then); a static steps mask caches exactly the
masked steps while the computed steps equal the uncached ones; ``disable_cache`` restores the
model and leaves no attribute behind. The full ControlNet pipelines are not run here: the samples
a pipeline's control net makes reach the transformer through these same forward arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import ditkit_cache as dc
from ditkit_cache.registry import BlockAdapterRegister
from ditkit_testing import build_tiny_transformer
from ditkit_testing.families import IMAGE_CASES, VIDEO_CASES

STEPS = 6
MASK = [1, 1, 0, 1, 0, 1]
MASKED = [step for step, compute in enumerate(MASK) if not compute]
EXACT = dict(Fn_compute_blocks=1, Bn_compute_blocks=0, num_inference_steps=STEPS)


def _hidden(output: Any) -> torch.Tensor:
    return output if isinstance(output, torch.Tensor) else output[1]


def _shape(transformer, kwargs: dict, blocks: str, text_tokens: bool = False) -> torch.Size:
    """The hidden stream's shape after the list's first block (less the text tokens if asked)."""
    shapes = []
    hook = getattr(transformer, blocks)[0].register_forward_hook(
        lambda module, args, output: shapes.append(_hidden(output).shape)
    )
    with torch.no_grad():
        transformer(**kwargs)
    hook.remove()
    shape = list(shapes[0])
    if text_tokens:
        shape[1] -= kwargs["encoder_hidden_states"].shape[1]
    return torch.Size(shape)


def _samples(shape: torch.Size, count: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [0.5 * torch.randn(shape, generator=generator) for _ in range(count)]


def _flux() -> tuple[Any, dict, dict]:
    transformer = build_tiny_transformer("flux").eval()
    generator = torch.Generator().manual_seed(0)
    img_ids = torch.zeros(16, 3)
    img_ids[:, 1] = torch.arange(4).repeat_interleave(4)
    img_ids[:, 2] = torch.arange(4).repeat(4)
    kwargs = dict(
        hidden_states=torch.randn(1, 16, 64, generator=generator),
        encoder_hidden_states=torch.randn(1, 6, 32, generator=generator),
        pooled_projections=torch.randn(1, 32, generator=generator),
        timestep=torch.tensor([1.0]),
        guidance=torch.tensor([3.5]),
        img_ids=img_ids,
        txt_ids=torch.zeros(6, 3),
        return_dict=False,
    )
    double = _shape(transformer, kwargs, "transformer_blocks")
    single = _shape(transformer, kwargs, "single_transformer_blocks")
    control = dict(
        controlnet_block_samples=_samples(double, 2, 1),
        controlnet_single_block_samples=_samples(single, 2, 2),
    )
    return transformer, kwargs, control


def _flux_repeat() -> tuple[Any, dict, dict]:
    transformer, kwargs, control = _flux()
    control["controlnet_block_samples"] = control["controlnet_block_samples"][:1]
    return transformer, kwargs, dict(control, controlnet_blocks_repeat=True)


def _qwen_image() -> tuple[Any, dict, dict]:
    transformer = build_tiny_transformer("qwen_image").eval()
    generator = torch.Generator().manual_seed(0)
    kwargs = dict(
        hidden_states=torch.randn(1, 16, 64, generator=generator),
        encoder_hidden_states=torch.randn(1, 6, 32, generator=generator),
        encoder_hidden_states_mask=torch.ones(1, 6),
        timestep=torch.tensor([1.0]),
        img_shapes=[(1, 4, 4)],
        return_dict=False,
    )
    shape = _shape(transformer, kwargs, "transformer_blocks")
    return transformer, kwargs, dict(controlnet_block_samples=_samples(shape, 2, 1))


def _image(name: str, samples: str, single: str | None = None) -> Callable:
    def build() -> tuple[Any, dict, dict]:
        transformer, kwargs = IMAGE_CASES[name](0)
        shape = _shape(transformer, kwargs, "transformer_blocks")
        control = {samples: _samples(shape, 2, 1)}
        if single:
            after_text = _shape(transformer, kwargs, "single_transformer_blocks", True)
            control[single] = _samples(after_text, 2, 2)
        return transformer, kwargs, control

    return build


def _cosmos() -> tuple[Any, dict, dict]:
    transformer, kwargs = VIDEO_CASES["cosmos"]()
    transformer.register_to_config(controlnet_block_every_n=2)  # Cosmos-Transfer's layout
    shape = _shape(transformer, kwargs, "transformer_blocks")
    return transformer, kwargs, dict(block_controlnet_hidden_states=_samples(shape, 2, 1))


def _sana_video() -> tuple[Any, dict, dict]:
    transformer, kwargs = VIDEO_CASES["sana_video"]()
    shape = _shape(transformer, kwargs, "transformer_blocks")
    return transformer, kwargs, dict(controlnet_block_samples=_samples(shape, 2, 1))


CASES: dict[str, Callable[[], tuple[Any, dict, dict]]] = {
    "Flux": _flux,
    "FluxRepeat": _flux_repeat,
    "QwenImage": _qwen_image,
    "StableDiffusion3": _image("StableDiffusion3", "block_controlnet_hidden_states"),
    "Sana": _image("Sana", "controlnet_block_samples"),
    "Bria": _image("Bria", "controlnet_block_samples", "controlnet_single_block_samples"),
    "Chroma": _image("Chroma", "controlnet_block_samples", "controlnet_single_block_samples"),
    "Cosmos": _cosmos,
    "SanaVideo": _sana_video,
}


def _steps(kwargs: dict, control: dict | None) -> list[dict]:
    key = next(k for k in ("timestep", "timesteps", "t") if k in kwargs)
    steps = [dict(kwargs, **{key: kwargs[key] * (1.0 - s / (STEPS + 1))}) for s in range(STEPS)]
    return [dict(step, **(control or {})) for step in steps]


def _run(transformer, calls: list[dict], per_step: int) -> list[torch.Tensor]:
    outputs = []
    with torch.no_grad():
        for call in calls:
            for _ in range(per_step):
                output = transformer(**call)
                output = output[0] if isinstance(output, tuple) else output.sample
                outputs.append(output.clone())
    return outputs


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def _attributes(model: torch.nn.Module) -> dict[str, set[str]]:
    return {path: set(vars(module)) for path, module in model.named_modules()}


@pytest.fixture(params=sorted(CASES))
def case(request):
    transformer, kwargs, control = CASES[request.param]()
    per_step = 2 if BlockAdapterRegister.family(transformer).has_separate_cfg else 1
    return transformer, kwargs, control, per_step


def test_every_in_loop_control_family_has_a_functor():
    for name, build in CASES.items():
        assert BlockAdapterRegister.family(build()[0]).patch_functor, name


def test_threshold_zero_is_exact_with_and_without_samples(case):
    transformer, kwargs, control, per_step = case
    with_samples, without = _steps(kwargs, control), _steps(kwargs, None)
    mixed = [
        call if index % 2 else plain
        for index, (call, plain) in enumerate(zip(with_samples, without, strict=True))
    ]
    reference = _run(transformer, with_samples, per_step)
    plain = _run(transformer, without, per_step)
    reference_mixed = _run(transformer, mixed, per_step)
    assert not torch.equal(reference[0], plain[0]), "the samples change the output"

    exact = dc.DBCacheConfig(residual_diff_threshold=0.0, **EXACT)
    dc.enable_cache(dc.get_adapter(transformer, patch_functor=None), exact)
    try:
        unpatched = _run(transformer, with_samples, per_step)
    except (AttributeError, TypeError, RuntimeError, IndexError):  # the stand-in cannot take them
        unpatched = None
    finally:
        dc.disable_cache(transformer)
    assert unpatched is None or not _same(unpatched, reference), "the bug this fixes"

    before = _attributes(transformer)
    for calls, expected in ((with_samples, reference), (without, plain), (mixed, reference_mixed)):
        dc.enable_cache(dc.get_adapter(transformer), exact)
        assert dc.PatchFunctor.is_patched(transformer)
        assert _same(_run(transformer, calls, per_step), expected), "threshold 0 must be exact"
        dc.disable_cache(transformer)
    assert _attributes(transformer) == before, "disable_cache leaves no attribute behind"
    assert _same(_run(transformer, with_samples, per_step), reference)


def test_steps_mask_caches_the_masked_steps_and_computes_the_others_exactly(case):
    transformer, kwargs, control, per_step = case
    calls = _steps(kwargs, control)
    reference = _run(transformer, calls, per_step)
    masked = dc.DBCacheConfig(
        steps_computation_mask=MASK, steps_computation_policy="static", **EXACT
    )
    dc.enable_cache(dc.get_adapter(transformer), masked)
    given = [list(call[name]) for call in calls for name in control if isinstance(call[name], list)]
    outputs = _run(transformer, calls, per_step)
    for stats in dc.summary(transformer, logging=False)[:-1]:
        assert stats.cached_steps == MASKED
    for index, (output, expected) in enumerate(zip(outputs, reference, strict=True)):
        if index // per_step in MASKED:
            assert not torch.equal(output, expected), f"cached call {index} must differ"
        else:
            assert torch.equal(output, expected), f"computed call {index} must be exact"
    after = [list(call[name]) for call in calls for name in control if isinstance(call[name], list)]
    assert all(map(_same, given, after)), "the caller's sample lists are left as they are"
    dc.disable_cache(transformer)
    assert _same(_run(transformer, calls, per_step), reference), "disable_cache must restore"
