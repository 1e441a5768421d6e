"""BlockAdapter: patch functors (applied and fully restored) and the adapter registry.

Every test checks an observable effect: outputs bit-identical to another route to the same
caching (or to an independent re-implementation of DBCache), which blocks actually ran (forward
hooks, independent of the engine's own bookkeeping), and what ``disable_cache`` leaves behind.
"""

from __future__ import annotations

import pytest
import torch
from cache_test_toys import (
    STEPS,
    P,
    ToyTransformer,
    assert_uncached,
    count_calls,
    toy_request,
)

import ditkit_cache as dc
from ditkit_interfaces import UnsupportedModelError
from ditkit_testing import run_tiny_pipeline as run


# -- PatchFunctor -------------------------------------------------------------------------------
class ScaleProjOut(dc.PatchFunctor):
    """Patches a submodule's forward and sets an attribute (instance patching)."""

    def _apply(self, transformer, **kwargs):
        proj = transformer.proj_out
        original = proj.forward
        proj.forward = lambda x: original(x) * 1.5
        transformer.patched_by_toy_functor = True
        return transformer


class WrapProjOut(dc.PatchFunctor):
    """Replaces a submodule (a common way to reshape a model's forward)."""

    def _apply(self, transformer, **kwargs):
        transformer.proj_out = torch.nn.Sequential(transformer.proj_out, torch.nn.Tanh())
        return transformer


def wan_adapter_with(pipe, functor):
    t = pipe.transformer
    return dc.BlockAdapter(
        pipe=pipe,
        transformer=t,
        blocks=t.blocks,
        forward_pattern=P.Pattern_2,
        patch_functor=functor,
    )


EXACT = dict(Fn_compute_blocks=1, residual_diff_threshold=0.0, max_warmup_steps=0)


def test_patch_functor_applied_and_fully_restored(tiny):
    pipe = tiny("wan")
    uncached = run(pipe, "wan", num_inference_steps=8)
    dc.enable_cache(wan_adapter_with(pipe, ScaleProjOut()), dc.DBCacheConfig(**EXACT))
    t = pipe.transformer
    assert dc.PatchFunctor.is_patched(t)
    assert t.patched_by_toy_functor is True
    patched = run(pipe, "wan", num_inference_steps=8)
    assert not torch.equal(patched, uncached)  # the functor's change is in effect
    dc.disable_cache(pipe)
    assert not dc.PatchFunctor.is_patched(t)
    assert not hasattr(t, "patched_by_toy_functor")
    assert_uncached(t)
    assert torch.equal(run(pipe, "wan", num_inference_steps=8), uncached)


def test_patch_functor_replacing_a_submodule_is_restored(tiny):
    pipe = tiny("wan")
    t = pipe.transformer
    original = t.proj_out
    uncached = run(pipe, "wan", num_inference_steps=8)
    dc.enable_cache(wan_adapter_with(pipe, WrapProjOut()), dc.DBCacheConfig(**EXACT))
    assert not torch.equal(run(pipe, "wan", num_inference_steps=8), uncached)
    dc.disable_cache(pipe)
    assert t.proj_out is original
    assert torch.equal(run(pipe, "wan", num_inference_steps=8), uncached)


# -- the registry -------------------------------------------------------------------------------
def test_supported_pipelines_and_get_adapter(tiny):
    count, names = dc.supported_pipelines()
    assert {"Flux*", "QwenImage*", "Wan*"} <= set(names) and count == len(names)
    expected = {
        "flux": (["transformer_blocks"], 6, ["single_transformer_blocks"], False),
        "qwen_image": (["transformer_blocks"], 4, [], True),
        "wan": (["blocks"], 4, [], True),
    }
    for name, (blocks_name, count_blocks, dummies, cfg) in expected.items():
        pipe = tiny(name)
        adapter = dc.get_adapter(pipe)
        assert adapter.pipe is pipe and adapter.transformer is pipe.transformer
        assert adapter.blocks_name == blocks_name
        assert [len(b) for b in adapter.blocks] == [count_blocks]
        assert adapter.dummy_blocks_names == dummies
        assert adapter.has_separate_cfg is cfg
        # a bare transformer resolves through its class name
        bare = dc.get_adapter(pipe.transformer)
        assert isinstance(bare.pipe, dc.FakeDiffusionPipeline)
        assert bare.blocks_name == blocks_name
        assert dc.BlockAdapterRegister.is_supported(pipe)
        assert dc.BlockAdapterRegister.is_supported(pipe.transformer)
    assert not dc.BlockAdapterRegister.is_supported(ToyTransformer())
    with pytest.raises(UnsupportedModelError, match="BlockAdapter"):
        dc.get_adapter(ToyTransformer())


class DitkitToyPipeline:
    """A minimal pipeline object: its class name is what the registry matches."""

    def __init__(self, transformer: torch.nn.Module) -> None:
        self.transformer = transformer

    def __call__(self, steps: int = STEPS, seed: int = 0) -> torch.Tensor:
        return toy_request(self.transformer, steps, seed)


@pytest.fixture
def toy_registration():
    calls = []

    @dc.BlockAdapterRegister.register("DitkitToy")
    def toy_adapter(pipe, **kwargs):
        calls.append((pipe, kwargs))
        t = pipe.transformer
        return dc.BlockAdapter(
            pipe=pipe,
            transformer=t,
            blocks=t.single_transformer_blocks,
            forward_pattern=P.Pattern_3,
            **kwargs,
        )

    yield calls
    dc.BlockAdapterRegister._adapters._handlers.pop("DitkitToy", None)


def test_register_a_custom_factory(toy_registration):
    calls = toy_registration
    pipe = DitkitToyPipeline(ToyTransformer())
    cls = type(pipe)
    single_calls = count_calls(pipe.transformer.single_transformer_blocks)
    uncached = pipe()
    count, names = dc.supported_pipelines()
    assert "DitkitToy*" in names and count == len(names)
    assert dc.BlockAdapterRegister.is_supported("DitkitToyPipeline")
    adapter = dc.get_adapter(pipe, blocks_policy="min")
    assert calls[-1] == (pipe, {"blocks_policy": "min"})
    assert adapter.blocks is pipe.transformer.single_transformer_blocks

    dc.enable_cache(
        pipe,
        dc.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=1.0, max_warmup_steps=2),
    )
    assert len(calls) == 2 and calls[-1][0] is pipe
    for _ in range(2):  # the pipeline call starts a new request each time
        cached = pipe()
        stats = dc.summary(pipe, logging=False)
        assert [s.name for s in stats] == ["single_transformer_blocks", "ToyTransformer"]
        assert stats[0].cached_steps == list(range(2, STEPS))
    assert single_calls == [3 * STEPS] + [STEPS + 2 * 2] * 4
    assert not torch.equal(cached, uncached)
    dc.disable_cache(pipe)
    assert type(pipe) is cls
    assert torch.equal(pipe(), uncached)
