"""``ditkit.set_attn_backend``: cache-dit names, every processor switched, nothing on error."""

import doctest
import types

import pytest
import torch
from diffusers.models import attention_dispatch
from diffusers.models.attention_dispatch import AttentionBackendName, _AttentionBackendRegistry

import ditkit
from ditkit import ConfigError, MissingComponentError, attention_backend
from ditkit.attention_backend import (
    CACHE_DIT_ALIASES,
    resolve_attn_backend,
    set_attn_backend,
    valid_attn_backends,
)
from ditkit_interfaces.errors import AdapterError
from ditkit_testing import build_tiny_pipeline, build_tiny_transformer, tiny_call_kwargs


@pytest.fixture(autouse=True)
def keep_active_backend():
    """diffusers' set_attention_backend also sets the process-wide backend: put it back."""
    before = _AttentionBackendRegistry._active_backend
    yield
    _AttentionBackendRegistry.set_active_backend(before)


@pytest.fixture(scope="module")
def flux():
    return build_tiny_pipeline("flux")


def backends(module: torch.nn.Module) -> list:
    return [
        m.processor._attention_backend
        for m in module.modules()
        if hasattr(getattr(m, "processor", None), "_attention_backend")
    ]


@pytest.mark.parametrize(
    ("cache_dit_name", "diffusers_name"),
    [
        ("native", "native"),
        ("flash", "flash"),
        ("flash_varlen", "flash_varlen"),
        ("_flash_3", "_flash_3"),
        ("_sdpa_cudnn", "_native_cudnn"),
        ("sage", "sage"),
        ("_native_npu", "_native_npu"),
        ("_native_cudnn", "_native_cudnn"),  # diffusers' own names pass through
        ("_native_efficient", "_native_efficient"),
        ("flex", "flex"),
        ("NATIVE", "native"),
        (" _SDPA_CUDNN ", "_native_cudnn"),
    ],
)
def test_alias_table(cache_dit_name, diffusers_name):
    assert resolve_attn_backend(cache_dit_name) == diffusers_name
    assert AttentionBackendName(diffusers_name).value == diffusers_name


def test_every_alias_targets_a_real_diffusers_backend():
    real = {member.value for member in AttentionBackendName}
    assert set(CACHE_DIT_ALIASES.values()) <= real
    assert set(valid_attn_backends()) == set(CACHE_DIT_ALIASES) | real


@pytest.mark.parametrize("name", ["sage3", "ffpa", "ffpa_fp8", "_npu_fia", "_mindiesd_laser"])
def test_cache_dit_own_kernels_are_refused_with_a_fix(name):
    with pytest.raises(ConfigError, match="Fix: use '"):
        resolve_attn_backend(name)


def test_unknown_name_lists_valid_names_and_suggests():
    with pytest.raises(ConfigError) as err:
        resolve_attn_backend("_sdpa_cudn")
    message = str(err.value)
    assert "'_sdpa_cudn'" in message and "_sdpa_cudnn" in message and "flash_varlen" in message
    assert "did you mean '_sdpa_cudnn'?" in message
    with pytest.raises(ConfigError):
        resolve_attn_backend(3)


def test_native_sets_every_processor_and_keeps_the_output(flux):
    before = flux(**tiny_call_kwargs("flux", num_inference_steps=2)).images
    assert set(backends(flux.transformer)) == {None}
    assert set_attn_backend(flux, "native") is None
    switched = backends(flux.transformer)
    assert len(switched) == len(flux.transformer.attn_processors) > 1
    assert all(b is AttentionBackendName.NATIVE for b in switched)
    after = flux(**tiny_call_kwargs("flux", num_inference_steps=2)).images
    assert torch.equal(after, before)


def test_alias_reaches_the_processors():
    pipe = build_tiny_pipeline("flux")
    set_attn_backend(pipe, "_sdpa_cudnn")
    assert set(backends(pipe.transformer)) == {AttentionBackendName._NATIVE_CUDNN}


def test_none_changes_nothing():
    pipe = build_tiny_pipeline("flux")
    active = _AttentionBackendRegistry._active_backend
    assert set_attn_backend(pipe, None) is None
    assert set_attn_backend(pipe) is None
    assert set(backends(pipe.transformer)) == {None}
    assert _AttentionBackendRegistry._active_backend is active


def test_unknown_name_changes_nothing():
    pipe = build_tiny_pipeline("flux")
    set_attn_backend(pipe, "native")
    with pytest.raises(ConfigError, match="no_such_kernel"):
        set_attn_backend(pipe, "no_such_kernel")
    assert set(backends(pipe.transformer)) == {AttentionBackendName.NATIVE}


def test_missing_kernel_package_names_the_pip_line(monkeypatch):
    monkeypatch.setattr(attention_dispatch, "_CAN_USE_FLASH_ATTN", False)
    monkeypatch.setattr(attention_dispatch, "_CAN_USE_SAGE_ATTN", False)
    pipe = build_tiny_pipeline("flux")
    with pytest.raises(MissingComponentError) as err:
        set_attn_backend(pipe, "flash")
    assert "flash-attn" in str(err.value) and "pip install flash-attn" in str(err.value)
    assert isinstance(err.value, ImportError)
    with pytest.raises(MissingComponentError, match="pip install sageattention"):
        set_attn_backend(pipe, "sage")
    assert set(backends(pipe.transformer)) == {None}


def test_two_transformers_and_adapter_like_objects():
    first, second = build_tiny_transformer("wan", seed=1), build_tiny_transformer("wan", seed=2)
    wan22 = types.SimpleNamespace(transformer=first, transformer_2=second)
    set_attn_backend(wan22, "_native_math")
    for module in (first, second):
        assert set(backends(module)) == {AttentionBackendName._NATIVE_MATH}
    adapter = types.SimpleNamespace(transformer=first, blocks=None)
    set_attn_backend(adapter, "native")
    assert set(backends(first)) == {AttentionBackendName.NATIVE}
    assert set(backends(second)) == {AttentionBackendName._NATIVE_MATH}
    through_pipe = types.SimpleNamespace(pipe=types.SimpleNamespace(transformer=second))
    set_attn_backend(through_pipe, "native")
    assert set(backends(second)) == {AttentionBackendName.NATIVE}
    set_attn_backend(second, "_native_math")  # a transformer by itself
    assert set(backends(second)) == {AttentionBackendName._NATIVE_MATH}


def test_plain_module_with_processors(flux):
    blocks = torch.nn.ModuleList(flux.transformer.transformer_blocks)
    assert not hasattr(blocks, "set_attention_backend")
    set_attn_backend(blocks, "_native_math")
    assert set(backends(blocks)) == {AttentionBackendName._NATIVE_MATH}
    set_attn_backend(blocks, "native")


def test_a_bad_target_leaves_the_good_one_unchanged():
    good = build_tiny_transformer("wan", seed=1)
    holder = types.SimpleNamespace(transformer=good, transformer_2=torch.nn.Linear(2, 2))
    with pytest.raises(AdapterError, match="Linear"):
        set_attn_backend(holder, "native")
    assert set(backends(good)) == {None}
    with pytest.raises(AdapterError, match="no transformer"):
        set_attn_backend(types.SimpleNamespace(transformer=None), "native")


def test_context_parallel_needs_a_cp_backend():
    transformer = build_tiny_transformer("wan", seed=1)
    processor = next(iter(transformer.attn_processors.values()))
    processor._parallel_config = object()
    with pytest.raises(ConfigError, match="context parallelism"):
        set_attn_backend(transformer, "_native_math")
    assert set(backends(transformer)) == {None}


def test_umbrella_exports_lazily():
    assert ditkit.set_attn_backend is set_attn_backend
    assert "set_attn_backend" in dir(ditkit) and "set_attn_backend" in ditkit.__all__


def test_docstring_examples():
    result = doctest.testmod(attention_backend)
    assert result.attempted >= 3
    assert result.failed == 0
