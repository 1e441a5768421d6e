"""Real use: batches, resolution changes, accelerate offload hooks, LoRA, calibrator plug-ins."""

import pytest
import torch

import ditkit_cache as dc
from ditkit_testing import build_tiny_pipeline, run_tiny_pipeline

CONFIG = dict(Fn_compute_blocks=1, residual_diff_threshold=0.35, max_warmup_steps=2)


def test_batch_of_two_caches_and_matches_single_prompts_at_threshold_zero():
    pipe = build_tiny_pipeline("flux")
    batch = dict(prompt=["a red square", "a blue circle"])
    reference = run_tiny_pipeline(pipe, "flux", num_inference_steps=8, **batch)
    dc.enable_cache(pipe, dc.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.0))
    assert torch.equal(run_tiny_pipeline(pipe, "flux", num_inference_steps=8, **batch), reference)
    dc.disable_cache(pipe)
    dc.enable_cache(pipe, dc.DBCacheConfig(**CONFIG))
    cached = run_tiny_pipeline(pipe, "flux", num_inference_steps=12, **batch)
    assert cached.shape[0] == 2
    assert dc.summary(pipe, logging=False)[0].cached_steps


@pytest.mark.parametrize("transformer_only", [False, True])
def test_resolution_change_between_requests_resets_instead_of_crashing(transformer_only):
    pipe = build_tiny_pipeline("flux")
    plain = build_tiny_pipeline("flux")
    dc.enable_cache(pipe.transformer if transformer_only else pipe, dc.DBCacheConfig(**CONFIG))
    for size in (64, 32, 48, 64):
        out = run_tiny_pipeline(pipe, "flux", num_inference_steps=10, height=size, width=size)
        assert out.shape[-2:] == (size, size)
        stats = dc.summary(pipe.transformer if transformer_only else pipe, logging=False)[0]
        assert stats.cached_steps
        assert 0 not in stats.cached_steps
    # the last request equals a fresh cached run at that size (nothing leaked across sizes)
    dc.enable_cache(plain.transformer if transformer_only else plain, dc.DBCacheConfig(**CONFIG))
    fresh = run_tiny_pipeline(plain, "flux", num_inference_steps=10, height=64, width=64)
    assert torch.equal(out, fresh)


@pytest.mark.parametrize("order", ["offload_first", "cache_first"])
def test_composes_with_model_cpu_offload(order):
    reference_pipe = build_tiny_pipeline("flux")
    dc.enable_cache(reference_pipe, dc.DBCacheConfig(**CONFIG))
    reference = run_tiny_pipeline(reference_pipe, "flux", num_inference_steps=10)
    pipe = build_tiny_pipeline("flux")
    if order == "offload_first":
        pipe.enable_model_cpu_offload(device="cpu")
        dc.enable_cache(pipe, dc.DBCacheConfig(**CONFIG))
    else:
        dc.enable_cache(pipe, dc.DBCacheConfig(**CONFIG))
        pipe.enable_model_cpu_offload(device="cpu")
    assert hasattr(pipe.transformer, "_hf_hook")
    out = run_tiny_pipeline(pipe, "flux", num_inference_steps=10)
    assert torch.equal(out, reference)
    assert dc.summary(pipe, logging=False)[0].cached_steps
    dc.disable_cache(pipe)
    uncached = build_tiny_pipeline("flux")
    assert torch.equal(
        run_tiny_pipeline(pipe, "flux", num_inference_steps=10),
        run_tiny_pipeline(uncached, "flux", num_inference_steps=10),
    )


def test_lora_load_fuse_unfuse_unload_on_the_cached_transformer():
    from peft import LoraConfig  # a test dependency of ditkit-cache

    pipe = build_tiny_pipeline("flux")
    dc.enable_cache(pipe, dc.DBCacheConfig(**CONFIG))
    base = run_tiny_pipeline(pipe, "flux", num_inference_steps=10)
    torch.manual_seed(0)
    lora = LoraConfig(
        r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v"], init_lora_weights=False
    )
    pipe.transformer.add_adapter(lora, adapter_name="style")
    with_lora = run_tiny_pipeline(pipe, "flux", num_inference_steps=10)
    assert not torch.equal(with_lora, base)
    assert dc.summary(pipe, logging=False)[0].cached_steps
    pipe.fuse_lora(components=["transformer"])
    fused = run_tiny_pipeline(pipe, "flux", num_inference_steps=10)
    assert torch.allclose(fused, with_lora, atol=1e-4)
    pipe.unfuse_lora(components=["transformer"])
    pipe.transformer.delete_adapters("style")
    assert torch.allclose(run_tiny_pipeline(pipe, "flux", num_inference_steps=10), base, atol=1e-5)


class LastPlusTrend:
    """A toy calibrator: last value + (last - previous) × steps since the last update."""

    built = 0

    def __init__(self, config):
        LastPlusTrend.built += 1
        self.reset()

    def reset(self):
        self.values, self.steps, self.step = [], [], -1

    def mark_step_begin(self, step):
        self.step = step

    def update(self, value):
        self.values = [*self.values[-1:], value]
        self.steps = [*self.steps[-1:], self.step]

    def approximate(self):
        if len(self.values) < 2:
            return self.values[-1]
        slope = (self.values[1] - self.values[0]) / (self.steps[1] - self.steps[0])
        return self.values[1] + slope * (self.step - self.steps[1])


def test_calibrator_plugs_in_through_the_protocol():
    from ditkit_interfaces import Calibrator, TaylorSeerCalibratorConfig

    assert isinstance(LastPlusTrend(None), Calibrator)
    mask = [1, 1, 1, 0, 1, 0, 0, 1, 0, 1]
    config = dc.DBCacheConfig(
        Fn_compute_blocks=1, steps_computation_mask=mask, steps_computation_policy="static"
    )
    plain = build_tiny_pipeline("flux")
    dc.enable_cache(plain, config)
    plain_out = run_tiny_pipeline(plain, "flux", num_inference_steps=10)
    pipe = build_tiny_pipeline("flux")
    LastPlusTrend.built = 0
    dc.enable_cache(
        pipe,
        config,
        calibrator_config=TaylorSeerCalibratorConfig(),
        calibrator_builder=LastPlusTrend,
    )
    out = run_tiny_pipeline(pipe, "flux", num_inference_steps=10)
    assert LastPlusTrend.built == 2  # hidden and encoder streams of the one branch
    assert dc.summary(pipe, logging=False)[0].cached_steps == [3, 5, 6, 8]
    assert not torch.equal(out, plain_out)  # the forecast, not the stale residual, was used
    assert torch.isfinite(out).all()
