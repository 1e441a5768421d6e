"""The video functors on the paths a plain repeated call does not reach.

LTX-2's guidance-branch calls (spatio-temporal guidance, isolated modalities) run uncached between
the main calls; Cosmos 3 decides on the generation stream, not the constant text stream; ACE-Step
with a full-attention first layer builds the sliding mask itself; Wan VACE without explicit hint
scales; Latte without temporal attention; Motif-Video with decoder layers is refused before
anything changes. Also the call-site tools the functors share, and their docstring examples.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import torch

import ditkit_cache as dc
import ditkit_cache.functors as functors
from ditkit_cache.functors.video_calls import PerCall, call_sites, like
from ditkit_interfaces import UnsupportedModelError
from ditkit_testing.families.video import VIDEO_CASES

EXACT = dict(Fn_compute_blocks=1, Bn_compute_blocks=0, residual_diff_threshold=0.0)
VIDEO_MODULES = sorted(
    f"ditkit_cache.functors.{info.name}"
    for info in pkgutil.iter_modules(functors.__path__)
    if info.name.startswith("video_")
)


def _sample(output) -> torch.Tensor:
    sample = output[0] if isinstance(output, tuple | list) else output
    return (torch.stack(sample) if isinstance(sample, list) else sample).clone()


def _call(transformer, kwargs: dict) -> torch.Tensor:
    with torch.no_grad():
        return _sample(transformer(**kwargs, return_dict=False))


@pytest.mark.parametrize("name", VIDEO_MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_call_sites_put_the_list_back_even_when_the_call_fails():
    model = torch.nn.Module()
    model.blocks = torch.nn.ModuleList([torch.nn.Identity(), torch.nn.Identity()])
    original = model.blocks

    seen = []

    def convert(entry, args, kwargs):
        seen.append(entry)
        raise RuntimeError("boom")

    def call() -> None:
        with call_sites(model, "blocks", convert):
            model.blocks[1](torch.ones(1))

    with pytest.raises(RuntimeError, match="boom"):
        call()
    assert seen == [original[1]]
    assert model.blocks is original
    assert [name for name, _ in model.named_modules()] == ["", "blocks", "blocks.0", "blocks.1"]


def test_per_call_values_are_dropped_on_error():
    state = PerCall()

    def call() -> None:
        with state.call():
            state["hint"] = torch.ones(1)
            raise ValueError("the call failed")

    with pytest.raises(ValueError, match="the call failed"):
        call()
    assert state.get("hint") is None


def test_like_keeps_the_reference_layout():
    reference = torch.randn(2, 8, 4).transpose(1, 2)  # (2, 4, 8), not contiguous
    same = torch.empty_like(reference).copy_(reference)
    assert like(reference, same) is same
    contiguous = reference.contiguous()
    moved = like(reference, contiguous)
    assert moved.stride() == reference.stride() and torch.equal(moved, contiguous)


# -- LTX-2 ----------------------------------------------------------------------------------------
def test_ltx2_guidance_branches_run_uncached_and_do_not_count_as_steps():
    transformer, kwargs = VIDEO_CASES["ltx2"](0)
    steps = 4
    mask = [1, 0, 0, 1]
    branches = {
        "main": {},
        "stg": dict(spatio_temporal_guidance_blocks=[1]),
        "isolated": dict(isolate_modalities=True),
    }
    calls = [
        (step, branch, dict(kwargs, timestep=kwargs["timestep"] * (1 - step / 5), **extra))
        for step in range(steps)
        for branch, extra in branches.items()
    ]
    reference = [_call(transformer, call) for _, _, call in calls]
    assert not torch.equal(reference[0], reference[1]), "the STG branch perturbs the output"
    assert not torch.equal(reference[0], reference[2]), "the isolated branch too"

    config = dc.DBCacheConfig(
        Fn_compute_blocks=1,
        steps_computation_mask=mask,
        steps_computation_policy="static",
        num_inference_steps=steps,
    )
    dc.enable_cache(transformer, config)
    outputs = []
    try:
        for step, branch, call in calls:
            outputs.append(_call(transformer, call))
            if (step, branch) == (steps - 1, "main"):  # the request's last cached-list call
                stats = dc.summary(transformer, logging=False)[0]
    finally:
        dc.disable_cache(transformer)
    assert stats.cached_steps == [1, 2]
    for (step, branch, _), output, expected in zip(calls, outputs, reference, strict=True):
        cached = branch == "main" and mask[step] == 0
        assert torch.equal(output, expected) != cached, (step, branch)


# -- Cosmos 3 -------------------------------------------------------------------------------------
@pytest.mark.parametrize("functor", [True, False])
def test_cosmos3_decides_on_the_generation_stream(functor):
    """The text stream is the same every step, so deciding on it would cache every step."""
    transformer, kwargs = VIDEO_CASES["cosmos3"](0)
    adapter = (
        dc.get_adapter(transformer) if functor else dc.get_adapter(transformer, patch_functor=None)
    )
    config = dc.DBCacheConfig(
        Fn_compute_blocks=1,
        Bn_compute_blocks=0,
        residual_diff_threshold=0.001,
        max_warmup_steps=0,
        num_inference_steps=4,
        enable_separate_cfg=False,
    )
    dc.enable_cache(adapter, config)
    try:
        for value in (999.0, 900.0, 800.0, 700.0):
            _call(transformer, dict(kwargs, vision_timesteps=torch.full((4,), value)))
        cached = dc.summary(transformer, logging=False)[0].cached_steps
    finally:
        dc.disable_cache(transformer)
    assert cached == ([] if functor else [1, 2, 3])


# -- ACE-Step, Wan VACE, Latte --------------------------------------------------------------------
def _exact_over_steps(transformer, kwargs: dict, config_type=dc.DBCacheConfig, **adapter) -> bool:
    calls = [dict(kwargs, timestep=kwargs["timestep"] * (1 - step / 5)) for step in range(3)]
    reference = [_call(transformer, call) for call in calls]
    config = config_type(num_inference_steps=3, max_warmup_steps=0, **EXACT)
    dc.enable_cache(dc.get_adapter(transformer, **adapter), config)
    try:
        outputs = [_call(transformer, call) for call in calls]
    except (TypeError, AttributeError, RuntimeError):
        outputs = []
    finally:
        dc.disable_cache(transformer)
    return len(outputs) == len(reference) and all(map(torch.equal, outputs, reference))


@pytest.mark.parametrize("config_type", [dc.DBCacheConfig, dc.DBPruneConfig])
def test_ace_step_with_a_full_attention_first_layer(config_type):
    transformer, kwargs = VIDEO_CASES["ace_step"](0)
    transformer.layer_types = ["full_attention", "sliding_attention"] * 2
    assert _exact_over_steps(transformer, kwargs, config_type)
    assert not _exact_over_steps(transformer, kwargs, config_type, patch_functor=None)


def test_wan_vace_default_hint_scales():
    transformer, kwargs = VIDEO_CASES["wan_vace"](0)
    kwargs = {k: v for k, v in kwargs.items() if k != "control_hidden_states_scale"}
    assert _exact_over_steps(transformer, kwargs, dc.DBCacheConfig)


def test_latte_without_temporal_attention():
    transformer, kwargs = VIDEO_CASES["latte"](0)
    kwargs = dict(kwargs, enable_temporal_attentions=False)
    assert _exact_over_steps(transformer, kwargs, dc.DBCacheConfig)


def test_wan_animate_face_adapters_work_outside_the_transformer_call():
    transformer, _ = VIDEO_CASES["wan_animate"](0)
    adapter = transformer.face_adapter[0]
    hidden, motion = torch.randn(1, 32, 16), torch.randn(1, 2, 1, 16)
    with torch.no_grad():
        expected = adapter(hidden, motion)
    dc.enable_cache(transformer, dc.DBCacheConfig(num_inference_steps=4, **EXACT))
    try:
        with torch.no_grad():
            assert torch.equal(adapter(hidden, motion), expected)
    finally:
        dc.disable_cache(transformer)


# -- Motif-Video ----------------------------------------------------------------------------------
def test_motif_video_with_decoder_layers_is_refused_untouched():
    from diffusers import MotifVideoTransformer3DModel

    _, kwargs = VIDEO_CASES["motif_video"](0)
    torch.manual_seed(0)
    transformer = MotifVideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=1,
        num_single_layers=3,
        num_decoder_layers=1,
        text_embed_dim=16,
        rope_axes_dim=(2, 2, 4),
    ).eval()
    reference = _call(transformer, kwargs)
    with pytest.raises(UnsupportedModelError, match="num_decoder_layers=1"):
        dc.enable_cache(transformer, dc.DBCacheConfig(num_inference_steps=4, **EXACT))
    assert "forward" not in vars(transformer)
    assert not dc.PatchFunctor.is_patched(transformer)
    assert torch.equal(_call(transformer, kwargs), reference)
