"""The image patch functors: each one is needed, exact, and fully undone by ``disable_cache``.

``test_families_image.py`` runs every family case through DBCache, the steps mask and DBPrune;
this file checks what that harness cannot: that without its functor a family's cached forward is
wrong, the paths a single repeated call does not reach (HunyuanDiT's control residuals, the GLM
write pass, Qwen-Image 2.1's prefix KV cache, HiDream's non-square masks), and that the functor
leaves no attribute behind.
"""

from __future__ import annotations

import pytest
import torch

import ditkit_cache as dc
from ditkit_cache.families import IMAGE_FAMILIES
from ditkit_cache.functors.image_hunyuan_dit import skip_plan
from ditkit_testing.families import IMAGE_CASES

STEPS = 4
EXACT = dict(
    Fn_compute_blocks=1, Bn_compute_blocks=0, num_inference_steps=STEPS, residual_diff_threshold=0.0
)
NEEDED = ["ZImageControlNet", "HiDream", "HunyuanDiT", "GlmImage", "BriaFibo", "BriaFibo2"]
NEEDED.append("QwenImage21")


def _sample(output) -> torch.Tensor:
    output = output[0] if isinstance(output, tuple) else output.sample
    return torch.stack(output) if isinstance(output, list) else output


def _call(transformer, kwargs: dict) -> torch.Tensor:
    with torch.no_grad():
        return _sample(transformer(**kwargs)).clone()


def _steps(kwargs: dict) -> list[dict]:
    key = next(k for k in ("timestep", "timesteps", "t") if k in kwargs)
    return [
        dict(kwargs, **{key: kwargs[key] * (1.0 - step / (STEPS + 1))}) for step in range(STEPS)
    ]


def _instance_attributes(model: torch.nn.Module) -> dict[str, set[str]]:
    return {path: set(vars(module)) for path, module in model.named_modules()}


def test_families_with_a_functor_are_tested_here():
    named = {name for name, spec in IMAGE_FAMILIES.items() if spec.patch_functor}
    elsewhere = {"DiT", "Chroma", "ZImage", "HunyuanDiTPAG", "QwenImage21Turbo"}
    # control-residual functors: test_controlnet_residuals.py
    elsewhere |= {"Flux", "VisualCloze", "QwenImage", "StableDiffusion3", "Sana", "Bria"}
    assert named - elsewhere == set(NEEDED)


@pytest.mark.parametrize("name", NEEDED)
def test_without_its_functor_the_cached_forward_is_wrong(name):
    transformer, kwargs = IMAGE_CASES[name](0)
    calls = _steps(kwargs)
    reference = [_call(transformer, step) for step in calls]
    dc.enable_cache(dc.get_adapter(transformer, patch_functor=None), dc.DBCacheConfig(**EXACT))
    try:
        outputs = [_call(transformer, step) for step in calls]
    except (TypeError, AttributeError, RuntimeError):  # the stand-in cannot take the real calls
        outputs = None
    finally:
        dc.disable_cache(transformer)
    assert outputs is None or not all(map(torch.equal, outputs, reference))

    before = _instance_attributes(transformer)
    dc.enable_cache(dc.get_adapter(transformer), dc.DBCacheConfig(**EXACT))
    assert all(map(torch.equal, [_call(transformer, step) for step in calls], reference))
    dc.disable_cache(transformer)
    assert _instance_attributes(transformer) == before, "restore leaves no attribute behind"
    assert all(map(torch.equal, [_call(transformer, step) for step in calls], reference))


def test_skip_plan_pairs_mirror_blocks():
    source, order = skip_plan(28)
    assert source == {layer: 27 - layer for layer in range(15, 28)}
    assert order == {layer: layer - 15 for layer in range(15, 28)}
    with pytest.raises(ValueError, match="empty skip stack"):
        skip_plan(5)


def test_hunyuan_dit_control_residuals():
    transformer, kwargs = IMAGE_CASES["HunyuanDiT"](0)
    generator = torch.Generator().manual_seed(1)
    controls = [torch.randn(1, 16, 16, generator=generator) for _ in range(2)]
    calls = _steps(kwargs)
    # the untouched forward pops the list it is given: one fresh list per call
    reference = [
        _call(transformer, dict(c, controlnet_block_samples=list(controls))) for c in calls
    ]
    assert not torch.equal(reference[0], _call(transformer, calls[0]))

    dc.enable_cache(dc.get_adapter(transformer), dc.DBCacheConfig(**EXACT))
    given = list(controls)
    outputs = [_call(transformer, dict(c, controlnet_block_samples=given)) for c in calls]
    assert all(map(torch.equal, outputs, reference)) and len(given) == 2, "read, not popped"
    with pytest.raises(ValueError, match="number of controls"):
        _call(transformer, dict(calls[0], controlnet_block_samples=controls[:1]))
    dc.disable_cache(transformer)


def _glm_calls(transformer, kwargs: dict) -> tuple[dict, list[dict]]:
    """A write pass over one condition image, then two calls (CFG) per step reading it."""
    from diffusers.models.transformers.transformer_glm_image import GlmImageKVCache

    caches = GlmImageKVCache(num_layers=len(transformer.transformer_blocks))
    generator = torch.Generator().manual_seed(2)
    write = dict(
        kwargs,
        hidden_states=torch.randn(1, 4, 8, 8, generator=generator),
        encoder_hidden_states=torch.zeros(1, 0, 12),
        timestep=torch.zeros(1),
        kv_caches=caches,
    )
    reads = [dict(step, kv_caches=caches) for step in _steps(kwargs) for _ in range(2)]
    return write, reads


def _run_glm(transformer, write: dict, reads: list[dict]) -> list[torch.Tensor]:
    caches = write["kv_caches"]
    caches.clear()
    caches.set_mode("write")
    outputs = [_call(transformer, write)]
    caches.next_sample()
    caches.set_mode("read")
    return outputs + [_call(transformer, read) for read in reads]


def test_glm_write_pass_runs_every_block_and_is_not_a_step():
    transformer, kwargs = IMAGE_CASES["GlmImage"](0)
    write, reads = _glm_calls(transformer, kwargs)
    reference = _run_glm(transformer, write, reads)

    dc.enable_cache(dc.get_adapter(transformer), dc.DBCacheConfig(**EXACT))
    assert all(map(torch.equal, _run_glm(transformer, write, reads), reference))
    dc.disable_cache(transformer)

    mask = dict(EXACT, steps_computation_mask=[1, 1, 0, 1], steps_computation_policy="static")
    dc.enable_cache(dc.get_adapter(transformer), dc.DBCacheConfig(**mask))
    outputs = _run_glm(transformer, write, reads)
    stats = dc.summary(transformer, logging=False)[0]
    # counted as a step, the write pass would shift both branches by one call
    assert stats.cached_steps == [2] and stats.cfg_cached_steps == [2]
    assert torch.equal(outputs[0], reference[0]) and not torch.equal(outputs[5], reference[5])
    dc.disable_cache(transformer)


def test_qwen_image21_prefix_kv_cache():
    from diffusers.models.transformers.transformer_qwenimage21 import QwenImage21KVCache

    transformer, kwargs = IMAGE_CASES["QwenImage21"](0)
    blocks = len(transformer.transformer_blocks)

    def run() -> list[torch.Tensor]:
        """Two calls (CFG branches) per step, each branch prefilling its own cache first."""
        caches = [QwenImage21KVCache(blocks), QwenImage21KVCache(blocks)]
        return [
            _call(transformer, dict(step, kv_cache=cache, kv_cache_mode=mode))
            for step, mode in zip(_steps(kwargs), ["extract"] + ["cached"] * STEPS, strict=False)
            for cache in caches
        ]

    reference = run()
    assert reference[0].shape[1] == 22 and reference[2].shape[1] == 16  # prefix + target, target
    dc.enable_cache(dc.get_adapter(transformer), dc.DBCacheConfig(**EXACT))
    assert all(map(torch.equal, run(), reference))
    dc.disable_cache(transformer)

    dynamic = dict(EXACT, residual_diff_threshold=0.9, max_warmup_steps=0)
    dc.enable_cache(dc.get_adapter(transformer), dc.DBCacheConfig(**dynamic))
    run()
    diffs = dc.summary(transformer, logging=False)[0].residual_diffs
    assert sorted(diffs) == ["2", "3"], "step 1 changes shape (target tokens only): no diff"
    dc.disable_cache(transformer)

    mask = dict(EXACT, steps_computation_mask=[1, 1, 0, 0], steps_computation_policy="static")
    dc.enable_cache(dc.get_adapter(transformer), dc.DBCacheConfig(**mask))
    outputs = run()
    stats = dc.summary(transformer, logging=False)[0]
    assert stats.cached_steps == stats.cfg_cached_steps == [2, 3]
    assert all(map(torch.equal, outputs[:4], reference[:4]))
    assert not any(map(torch.equal, outputs[4:], reference[4:]))
    dc.disable_cache(transformer)


def test_hidream_non_square_latents():
    transformer, kwargs = IMAGE_CASES["HiDream"](0)
    wide = dict(kwargs, hidden_states=torch.randn(1, 4, 4, 8, generator=torch.Generator()))
    calls = _steps(wide)
    reference = [_call(transformer, step) for step in calls]
    assert reference[0].shape == (1, 4, 4, 8)
    dc.enable_cache(dc.get_adapter(transformer), dc.DBCacheConfig(**EXACT))
    assert all(map(torch.equal, [_call(transformer, step) for step in calls], reference))
    dc.disable_cache(transformer)


def test_cache_dit_functor_names():
    for name in ("HiDream", "HunyuanDiT", "ZImageControlNet", "GlmImage", "BriaFibo", "ErnieImage"):
        functor = getattr(dc, f"{name}PatchFunctor")()
        assert isinstance(functor, dc.PatchFunctor)
    transformer, _ = IMAGE_CASES["ErnieImage"](0)
    before = _instance_attributes(transformer)
    dc.ErnieImagePatchFunctor().apply(transformer)
    assert dc.PatchFunctor.is_patched(transformer)
    assert dc.PatchFunctor.restore(transformer) is transformer
    assert _instance_attributes(transformer) == before
