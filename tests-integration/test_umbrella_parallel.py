"""The umbrella with ditkit-parallel installed: a bad parallel setup fails before any patching."""

import pytest

import ditkit
from ditkit_testing import build_tiny_pipeline


def test_parallelism_without_a_process_group_raises_before_anything_is_patched():
    pipe = build_tiny_pipeline("flux")
    cls = type(pipe)
    with pytest.raises(RuntimeError, match="init_process_group"):
        ditkit.enable_cache(
            pipe,
            cache_config=ditkit.DBCacheConfig(),
            parallelism_config=ditkit.ParallelismConfig(ulysses_size=2),
        )
    assert type(pipe) is cls
    assert not hasattr(pipe.transformer, "_ditkit_cache")


def test_a_bad_attention_backend_fails_before_the_cache_is_enabled():
    pipe = build_tiny_pipeline("flux")
    with pytest.raises(ditkit.ConfigError, match="attention_backend"):
        ditkit.enable_cache(pipe, cache_config=ditkit.DBCacheConfig(), attention_backend="nope")
    assert not hasattr(pipe.transformer, "_ditkit_cache")
