"""Caching that cannot cache is exact, disable_cache is exact, and instances do not interfere."""

import pytest
import torch

import ditkit_cache as dc
from ditkit_testing import run_tiny_pipeline as run

NAMES = ("flux", "qwen_image", "wan")


@pytest.mark.parametrize("name", NAMES)
def test_threshold_zero_is_bit_identical(tiny, name):
    pipe = tiny(name)
    reference = run(pipe, name)
    dc.enable_cache(
        pipe, dc.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.0, max_warmup_steps=0)
    )
    assert torch.equal(run(pipe, name), reference)
    stats = dc.summary(pipe, logging=False)
    assert stats[0].cached_steps == []


@pytest.mark.parametrize("name", NAMES)
def test_warmup_covering_all_steps_is_bit_identical(tiny, name):
    pipe = tiny(name)
    reference = run(pipe, name, num_inference_steps=10)
    dc.enable_cache(
        pipe,
        dc.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.9, max_warmup_steps=10),
    )
    assert torch.equal(run(pipe, name, num_inference_steps=10), reference)


@pytest.mark.parametrize("name", NAMES)
def test_caching_changes_output_and_disable_restores_it_exactly(tiny, name):
    pipe = tiny(name)
    reference = run(pipe, name)
    cls = type(pipe)
    dc.enable_cache(
        pipe, dc.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.5, max_warmup_steps=2)
    )
    cached = run(pipe, name)
    stats = dc.summary(pipe, logging=False)
    assert stats[0].cached_steps, "a threshold of 0.5 must cache on the tiny models"
    assert not torch.equal(cached, reference)
    assert torch.isfinite(cached).all()
    dc.disable_cache(pipe)
    assert type(pipe) is cls
    assert "forward" not in vars(pipe.transformer)
    assert not hasattr(pipe.transformer, "_ditkit_cache")
    assert torch.equal(run(pipe, name), reference)
    fresh = tiny(name)
    assert torch.equal(run(fresh, name), reference)


def test_two_pipelines_of_one_class_do_not_interfere(tiny):
    cached, plain = tiny("flux"), tiny("flux")
    reference = run(plain, "flux")
    dc.enable_cache(
        cached,
        dc.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.5, max_warmup_steps=2),
    )
    assert type(plain).__call__ is type(tiny("flux")).__call__
    assert not hasattr(plain.transformer, "_ditkit_cache")
    out_cached = run(cached, "flux")
    assert torch.equal(run(plain, "flux"), reference)
    assert not torch.equal(out_cached, reference)
    assert dc.summary(plain, logging=False) == []


def test_repeated_pipeline_calls_are_identical_requests(tiny):
    pipe = tiny("qwen_image")
    dc.enable_cache(
        pipe, dc.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.3, max_warmup_steps=3)
    )
    first = run(pipe, "qwen_image")
    stats_first = dc.summary(pipe, logging=False)[0]
    second = run(pipe, "qwen_image")
    stats_second = dc.summary(pipe, logging=False)[0]
    assert torch.equal(first, second)
    assert stats_first.cached_steps == stats_second.cached_steps
    assert stats_first.cfg_cached_steps == stats_second.cfg_cached_steps
    assert stats_second.accumulated_executed_steps == 28


def test_static_mask_caches_exactly_the_masked_steps(tiny):
    pipe = tiny("flux")
    mask = [1] * 6 + [0, 0, 1] * 7 + [1]
    config = dc.DBCacheConfig(
        Fn_compute_blocks=1,
        steps_computation_mask=mask,
        steps_computation_policy="static",
        num_inference_steps=28,
    )
    dc.enable_cache(pipe, config)
    run(pipe, "flux")
    stats = dc.summary(pipe, logging=False)[0]
    assert stats.cached_steps == [i for i, m in enumerate(mask) if m == 0]
    assert stats.residual_diffs == {}  # the static policy never measures a diff
