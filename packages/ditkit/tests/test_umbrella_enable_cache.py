"""ditkit.enable_cache: cache-dit's signature, deprecated options, all-or-nothing composition."""

import pytest
import torch

import ditkit
import ditkit as cache_dit  # the compatibility promise: only the import changes
from ditkit import MissingComponentError
from ditkit_testing import build_tiny_pipeline, run_tiny_pipeline


def test_cache_dit_style_call_caches_and_summarises():
    pipe = build_tiny_pipeline("flux")
    reference = run_tiny_pipeline(pipe, "flux")
    cache_dit.enable_cache(
        pipe,
        cache_config=cache_dit.DBCacheConfig(
            Fn_compute_blocks=1, residual_diff_threshold=0.5, max_warmup_steps=2
        ),
    )
    cached = run_tiny_pipeline(pipe, "flux")
    stats = cache_dit.summary(pipe)
    assert stats[0].cached_steps
    assert isinstance(stats[0], cache_dit.CacheStats)
    assert cache_dit.strify(pipe).startswith("DBCache_F1B0_W2I1")
    assert not torch.equal(cached, reference)
    cache_dit.disable_cache(pipe)
    assert torch.equal(run_tiny_pipeline(pipe, "flux"), reference)


def test_default_config_is_used_and_checked_against_the_model_early():
    # DBCacheConfig() computes the first 8 blocks; the tiny Flux has 6 (2 double + 4 single):
    # the error comes at enable time, names the fix, and nothing is patched.
    pipe = build_tiny_pipeline("flux")
    with pytest.raises(ditkit.ConfigError, match="Fn_compute_blocks") as err:
        ditkit.enable_cache(pipe)
    assert "<= 6" in str(err.value)
    assert not hasattr(pipe.transformer, "_ditkit_cache")
    assert type(pipe).__call__ is type(build_tiny_pipeline("flux")).__call__


def test_deprecated_flat_options_warn_and_apply():
    pipe = build_tiny_pipeline("flux")
    with pytest.warns(DeprecationWarning, match="Fn_compute_blocks"):
        ditkit.enable_cache(
            pipe, Fn_compute_blocks=2, residual_diff_threshold=0.4, max_warmup_steps=3
        )
    run_tiny_pipeline(pipe, "flux", num_inference_steps=6)
    config = ditkit.summary(pipe, logging=False)[0].cache_options["cache_config"]
    assert (config.Fn_compute_blocks, config.residual_diff_threshold) == (2, 0.4)


def test_unknown_flat_option_is_an_early_error():
    pipe = build_tiny_pipeline("flux")
    with pytest.raises(ditkit.ConfigError, match="Fn_compute_block"):
        ditkit.enable_cache(pipe, Fn_compute_block=2)
    assert "forward" not in vars(pipe.transformer)


def test_missing_component_raises_before_anything_is_patched(monkeypatch):
    from ditkit_interfaces.capabilities import COMPONENTS, Component

    ghost = Component(
        "parallel", "ditkit_parallel_not_here", "ditkit-parallel", "pip install ditkit-parallel"
    )
    monkeypatch.setitem(COMPONENTS, "parallel", ghost)
    pipe = build_tiny_pipeline("flux")
    cls = type(pipe)
    with pytest.raises(MissingComponentError, match="ditkit-parallel"):
        ditkit.enable_cache(
            pipe,
            cache_config=ditkit.DBCacheConfig(),
            parallelism_config=ditkit.ParallelismConfig(ulysses_size=2),
        )
    assert type(pipe) is cls
    assert not hasattr(pipe.transformer, "_ditkit_cache")


def test_calibrator_config_without_the_calibrators_package_names_it(monkeypatch):
    from ditkit_interfaces.capabilities import COMPONENTS, Component

    ghost = Component(
        "calibrators",
        "ditkit_calibrators_not_here",
        "ditkit-calibrators",
        "pip install ditkit-calibrators",
    )
    monkeypatch.setitem(COMPONENTS, "calibrators", ghost)
    pipe = build_tiny_pipeline("flux")
    with pytest.raises(MissingComponentError, match="ditkit-calibrators"):
        ditkit.enable_cache(
            pipe,
            ditkit.DBCacheConfig(Fn_compute_blocks=1),
            calibrator_config=ditkit.TaylorSeerCalibratorConfig(),
        )
    assert not hasattr(pipe.transformer, "_ditkit_cache")


def test_calibrator_config_uses_the_installed_calibrators():
    pipe = build_tiny_pipeline("flux")
    mask = ditkit.steps_mask(mask_policy="fast", total_steps=12)
    config = ditkit.DBCacheConfig(
        Fn_compute_blocks=1, steps_computation_mask=mask, steps_computation_policy="static"
    )
    ditkit.enable_cache(pipe, config)
    plain = run_tiny_pipeline(pipe, "flux", num_inference_steps=12)
    ditkit.disable_cache(pipe)
    ditkit.enable_cache(pipe, config, calibrator_config=ditkit.TaylorSeerCalibratorConfig())
    calibrated = run_tiny_pipeline(pipe, "flux", num_inference_steps=12)
    assert ditkit.strify(pipe).endswith("_T1O1")
    assert not torch.equal(calibrated, plain)
    assert torch.isfinite(calibrated).all()


def test_attention_backend_is_applied_through_diffusers():
    pipe = build_tiny_pipeline("flux")
    ditkit.enable_cache(pipe, ditkit.DBCacheConfig(Fn_compute_blocks=1), attention_backend="native")
    run_tiny_pipeline(pipe, "flux", num_inference_steps=2)
    assert ditkit.summary(pipe, logging=False)
