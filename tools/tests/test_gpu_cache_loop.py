"""tools/bench/gpu_cache.py's denoising loop on the CPU, with a tiny Flux in place of FLUX.1-dev.

The bench itself needs CUDA (events, memory stats); its loop and cache wiring do not. A broken
loop found on the GPU machine costs a session's device minutes, so the loop runs here: without
CFG one transformer call per step, with ``--cfg`` two (prompt, then negative prompt) combined as
``v_neg + scale * (v_pos - v_neg)``, and the cache under the static fast mask caches the same
steps in both branches.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import gpu_cache

TINY = dict(gpu_cache.FLUX_DEV, num_layers=1, num_single_layers=1, num_attention_heads=2,
            attention_head_dim=16, joint_attention_dim=32, pooled_projection_dim=8,
            axes_dims_rope=(4, 6, 6))  # fmt: skip


class _Event:  # torch.cuda.Event's two calls the loop makes, on the CPU
    def __init__(self, enable_timing: bool = False) -> None:
        pass

    def record(self) -> None:
        pass


@pytest.fixture
def tiny(monkeypatch):
    from diffusers import FluxTransformer2DModel

    monkeypatch.setattr(torch.cuda, "Event", _Event)
    monkeypatch.setattr(gpu_cache, "CFG_SCALE", None)
    torch.manual_seed(0)
    model = FluxTransformer2DModel(**TINY).eval().requires_grad_(False)
    g = torch.Generator().manual_seed(1)
    data = {
        "latents": torch.randn(1, 16, 64, generator=g),
        "encoder_hidden_states": torch.randn(1, 5, 32, generator=g),
        "pooled_projections": torch.randn(1, 8, generator=g),
        "guidance": torch.full((1,), 3.5),
        "img_ids": torch.zeros(16, 3),
        "txt_ids": torch.zeros(5, 3),
        "negative_encoder_hidden_states": torch.randn(1, 5, 32, generator=g),
        "negative_pooled_projections": torch.randn(1, 8, generator=g),
    }
    return model, data


def _calls(model: torch.nn.Module) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    model.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(kwargs["encoder_hidden_states"]), with_kwargs=True
    )
    return seen


def test_cfg_runs_both_branches_and_combines_them(tiny, monkeypatch):
    model, data = tiny
    seen = _calls(model)
    plain, _ = gpu_cache.denoise(model, data, steps=3)
    assert len(seen) == 3
    monkeypatch.setattr(gpu_cache, "CFG_SCALE", 1.0)  # scale 1: the prompt's velocity alone
    seen.clear()
    same, _ = gpu_cache.denoise(model, data, steps=3)
    assert len(seen) == 6
    assert torch.equal(seen[1], data["negative_encoder_hidden_states"])
    torch.testing.assert_close(same, plain, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(gpu_cache, "CFG_SCALE", 4.0)
    guided, _ = gpu_cache.denoise(model, data, steps=3)
    assert (guided - plain).abs().max() > 1e-3


def test_separate_cfg_cache_caches_the_same_steps_in_both_branches(tiny, monkeypatch):
    model, data = tiny
    monkeypatch.setattr(gpu_cache, "CFG_SCALE", 4.0)
    library = gpu_cache.Library("ditkit")
    mask = library.mask("fast")
    library.enable(model, Fn_compute_blocks=1, Bn_compute_blocks=0,
                   steps_computation_mask=mask, steps_computation_policy="static")  # fmt: skip
    try:
        seen = _calls(model)
        gpu_cache.denoise(model, data)
        stats = library.module.summary(model, logging=False)
        cached = [sorted(s.cached_steps) for s in stats]
        cached += [sorted(s.cfg_cached_steps) for s in stats]  # the negative branch
    finally:
        library.disable(model)
    assert len(seen) == 2 * gpu_cache.STEPS
    expected = [i for i, m in enumerate(mask) if not m]
    assert cached and all(steps == expected for steps in cached), cached


@pytest.mark.parametrize("calibrator", ["ts", "foca", "dmd"])
def test_each_calibrator_suffix_enables_that_calibrator(tiny, calibrator):
    model, data = tiny
    library = gpu_cache.Library("ditkit")
    outputs = []
    for name in (None, calibrator):
        library.enable(model, calibrator=name, Fn_compute_blocks=1, Bn_compute_blocks=0,
                       steps_computation_mask=library.mask("fast"),
                       steps_computation_policy="static")  # fmt: skip
        try:
            outputs.append(gpu_cache.denoise(model, data)[0])
            assert library.cached_steps(model)
        finally:
            library.disable(model)
    # the calibrator forecasts the cached steps' residuals instead of reusing the last one
    assert (outputs[0] - outputs[1]).abs().max() > 1e-4


def test_an_unknown_calibrator_suffix_is_refused(tiny):
    model, data = tiny
    with pytest.raises(SystemExit, match="unknown calibrator suffix"):
        gpu_cache.run_variant(gpu_cache.Library("ditkit"), model, data, "dynamic_f1b0+xx",
                              "eager", None)  # fmt: skip


def test_the_warm_up_request_before_the_first_variant_runs(tiny):
    model, data = tiny
    output, events = gpu_cache.denoise(model, data, steps=2)  # what main() runs first
    assert len(events) == 2 and torch.isfinite(output).all()
