"""Transformer-only use: persistent contexts, refresh_context, and new-request detection.

Back-to-back requests through a transformer-only cache must see the same step indices every
time, whether or not refresh_context is called between them and whether or not the step count
was announced; step 0 of a new request is never served from the previous request's cache.
"""

import pytest
import torch

import ditkit_cache as dc
from ditkit_testing import build_tiny_pipeline, run_tiny_pipeline


def _config(**overrides):
    values = dict(Fn_compute_blocks=1, residual_diff_threshold=0.35, max_warmup_steps=3)
    values.update(overrides)
    return dc.DBCacheConfig(**values)


def _requests(pipe, name, count, steps=12, refresh=None):
    results = []
    for index in range(count):
        if refresh is not None:
            refresh(index)
        output = run_tiny_pipeline(pipe, name, num_inference_steps=steps)
        stats = dc.summary(pipe.transformer, logging=False)[0]
        results.append((output, stats.cached_steps, stats.cfg_cached_steps, stats.residual_diffs))
    return results


@pytest.mark.parametrize("name", ["flux", "qwen_image"])
@pytest.mark.parametrize("announced", [True, False])
@pytest.mark.parametrize("refresh", [True, False])
def test_back_to_back_requests_see_the_same_steps(name, announced, refresh):
    pipe = build_tiny_pipeline(name)
    dc.enable_cache(pipe.transformer, _config(num_inference_steps=12 if announced else None))
    hook = (lambda i: dc.refresh_context(pipe.transformer)) if refresh else None
    first, second, third = _requests(pipe, name, 3, refresh=hook)
    assert first[1], "the config must cache some steps"
    for other in (second, third):
        assert other[1] == first[1]
        assert other[2] == first[2]
        assert other[3] == first[3]
        assert torch.equal(other[0], first[0])


def test_matches_a_fresh_cache_per_request():
    # The persistent path must give what a pipeline-level cache (fresh each call) gives.
    pipe_a, pipe_b = build_tiny_pipeline("flux"), build_tiny_pipeline("flux")
    dc.enable_cache(pipe_a.transformer, _config())
    dc.enable_cache(pipe_b, _config())
    for _ in range(2):
        out_a = run_tiny_pipeline(pipe_a, "flux", num_inference_steps=12)
        out_b = run_tiny_pipeline(pipe_b, "flux", num_inference_steps=12)
        assert torch.equal(out_a, out_b)
        a = dc.summary(pipe_a.transformer, logging=False)[0]
        b = dc.summary(pipe_b, logging=False)[0]
        assert a.cached_steps == b.cached_steps


def test_step_zero_of_a_new_request_is_never_cached():
    # No warmup and a threshold that caches almost everything: a request that wrongly
    # continued the previous one would cache its first step.
    pipe = build_tiny_pipeline("flux")
    dc.enable_cache(pipe.transformer, _config(max_warmup_steps=0, residual_diff_threshold=0.9))
    for _ in range(3):
        run_tiny_pipeline(pipe, "flux", num_inference_steps=8)
        stats = dc.summary(pipe.transformer, logging=False)[0]
        assert 0 not in stats.cached_steps
        assert stats.cached_steps == list(range(1, 8))


def test_refresh_context_changes_the_step_count_and_the_config():
    pipe = build_tiny_pipeline("flux")
    dc.enable_cache(pipe.transformer, _config(num_inference_steps=None))
    dc.refresh_context(pipe.transformer, num_inference_steps=10, verbose=True)
    run_tiny_pipeline(pipe, "flux", num_inference_steps=10)
    stats = dc.summary(pipe.transformer, logging=False)[0]
    assert stats.cache_options["cache_config"].num_inference_steps == 10
    assert stats.accumulated_executed_steps == 10
    # A full config overrides every field (cache-dit's merge): Fn=8 does not fit 6 blocks,
    # so the refresh is refused and nothing changes.
    with pytest.raises(dc.ConfigError, match="Fn_compute_blocks"):
        dc.refresh_context(pipe.transformer, cache_config=dc.DBCacheConfig(num_inference_steps=6))
    options = dc.summary(pipe.transformer, logging=False)[0].cache_options
    assert options["cache_config"].num_inference_steps == 10
    partial = dc.DBCacheConfig().reset(residual_diff_threshold=0.0, num_inference_steps=6)
    dc.refresh_context(pipe.transformer, cache_config=partial)
    run_tiny_pipeline(pipe, "flux", num_inference_steps=6)
    stats = dc.summary(pipe.transformer, logging=False)[0]
    config = stats.cache_options["cache_config"]
    assert (config.residual_diff_threshold, config.num_inference_steps) == (0.0, 6)
    assert config.Fn_compute_blocks == 1  # unset fields of a partial config keep the old value
    assert stats.cached_steps == []


def test_raw_transformer_loop_detects_requests_from_the_timestep():
    pipe = build_tiny_pipeline("flux")
    calls = []
    handle = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(dict(kwargs)), with_kwargs=True
    )
    run_tiny_pipeline(pipe, "flux", num_inference_steps=8)
    handle.remove()
    transformer = pipe.transformer
    dc.enable_cache(transformer, _config(max_warmup_steps=1, residual_diff_threshold=0.5))
    outputs = []
    for _ in range(2):
        outputs.append([transformer(**kwargs)[0] for kwargs in calls])
        stats = dc.summary(transformer, logging=False)[0]
        assert stats.accumulated_executed_steps == 8
    assert all(torch.equal(a, b) for a, b in zip(*outputs, strict=True))


def test_refresh_context_on_an_uncached_module_warns():
    with pytest.warns(UserWarning, match="no ditkit cache"):
        dc.refresh_context(torch.nn.Linear(2, 2), num_inference_steps=4)
