"""BlockAdapter: manual, auto, several lists and transformers, dummy lists (functors and the
registry: test_block_adapter_functors.py).

Every test checks an observable effect: outputs bit-identical to another route to the same
caching (or to an independent re-implementation of DBCache), which blocks actually ran (forward
hooks, independent of the engine's own bookkeeping), and what ``disable_cache`` leaves behind.
"""

from __future__ import annotations

import pytest
import torch
from cache_test_toys import (
    DIM,
    DUAL,
    NAMES,
    SINGLE,
    STEPS,
    P,
    ReferenceDBCache,
    ToySingleBlock,
    ToyTransformer,
    assert_uncached,
    caching_config,
    count_calls,
    manual_adapter,
    model_cached_steps,
    toy_modifiers,
    toy_request,
)

import ditkit_cache as dc
from ditkit_interfaces import AdapterError
from ditkit_testing import build_tiny_transformer
from ditkit_testing import run_tiny_pipeline as run


def test_two_lists_with_different_patterns_get_their_own_contexts():
    model = ToyTransformer()
    reference_model = ToyTransformer()
    dual = ReferenceDBCache(reference_model.transformer_blocks, P.Pattern_0, **DUAL)
    single = ReferenceDBCache(reference_model.single_transformer_blocks, P.Pattern_3, **SINGLE)

    def reference_forward(h, e, t):
        temb = reference_model.embed(t)
        h, e = dual(h, e, temb)
        h, _ = single(reference_model.mix(h, e), None, temb)
        return reference_model.proj_out(h)

    expected = toy_request(reference_forward)
    uncached = toy_request(model)

    adapter = dc.BlockAdapter(
        transformer=model,
        blocks=[model.transformer_blocks, model.single_transformer_blocks],
        forward_pattern=[P.Pattern_0, P.Pattern_3],
        params_modifiers=toy_modifiers(),
    )
    dc.enable_cache(adapter, dc.DBCacheConfig(num_inference_steps=STEPS))
    for _ in range(2):  # two requests through the persistent transformer-only contexts
        out = toy_request(model)
        assert torch.equal(out, expected)
        stats = dc.summary(model, logging=False)
        assert [s.name for s in stats] == [
            "transformer_blocks",
            "single_transformer_blocks",
            "ToyTransformer",
        ]
        assert stats[0].cached_steps == dual.cached_steps
        assert stats[1].cached_steps == single.cached_steps
        assert {int(k): v for k, v in stats[0].residual_diffs.items()} == dual.diffs
        assert {int(k): v for k, v in stats[1].residual_diffs.items()} == single.diffs
        assert stats[0].cache_options["cache_config"].Fn_compute_blocks == 1
        assert stats[1].cache_options["cache_config"].Bn_compute_blocks == 1
    # each list decided on its own: both cached, at different steps
    assert dual.cached_steps and single.cached_steps
    assert dual.cached_steps != single.cached_steps
    assert not torch.equal(out, uncached)
    dc.disable_cache(model)
    assert_uncached(model)
    assert torch.equal(toy_request(model), uncached)


# -- auto discovery and blocks_policy -----------------------------------------------------------
class ToyTwoLists(torch.nn.Module):
    """Two Pattern_3 lists of different lengths, plus a ModuleList outside the allowed prefixes."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.time_embed = torch.nn.Linear(1, DIM)
        self.blocks = torch.nn.ModuleList(ToySingleBlock() for _ in range(2))
        self.layers = torch.nn.ModuleList(ToySingleBlock() for _ in range(4))
        self.norms = torch.nn.ModuleList(ToySingleBlock() for _ in range(6))  # not a prefix

    def forward(self, hidden_states, encoder_hidden_states, timestep):
        temb = torch.sin(self.time_embed(timestep.reshape(-1, 1, 1) / 1000.0))
        for block in self.blocks:
            hidden_states = block(hidden_states, temb=temb)
        for block in self.layers:
            hidden_states = block(hidden_states, temb=temb)
        return hidden_states


@pytest.mark.parametrize(("policy", "found"), [("max", "layers"), ("min", "blocks")])
def test_auto_blocks_policy_on_a_toy_with_two_lists(policy, found):
    model = ToyTwoLists()
    uncached = toy_request(model)
    layer_calls = count_calls(model.layers)  # counted from the cached run on
    block_calls = count_calls(model.blocks)
    adapter = dc.BlockAdapter(
        transformer=model, auto=True, forward_pattern=P.Pattern_3, blocks_policy=policy
    )
    # threshold >= 1 caches every step after the warmup: only the found list skips blocks
    config = dc.DBCacheConfig(
        Fn_compute_blocks=1,
        residual_diff_threshold=1.0,
        max_warmup_steps=1,
        num_inference_steps=STEPS,
    )
    dc.enable_cache(adapter, config)
    cached = toy_request(model)
    assert adapter.unique_blocks_name == [found]
    assert dc.summary(model, logging=False)[0].cached_steps == list(range(1, STEPS))
    chosen, other = (layer_calls, block_calls) if found == "layers" else (block_calls, layer_calls)
    assert chosen[0] == STEPS  # the Fn block always runs
    assert chosen[1:] == [1] * (len(chosen) - 1)  # the rest only in the warmup step
    assert other == [STEPS] * len(other)
    assert not torch.equal(cached, uncached)


def test_auto_prefix_filter_and_pattern_filter():
    model = ToyTwoLists()
    # without the prefix check the 6-block "norms" list is the longest candidate
    adapter = dc.BlockAdapter(
        transformer=model, auto=True, forward_pattern=P.Pattern_3, check_prefixes=False
    )
    adapter.resolve()
    assert adapter.unique_blocks_name == ["norms"]
    # Pattern_0 needs encoder_hidden_states: only the toy's dual-stream list qualifies
    toy = ToyTransformer()
    adapter = dc.BlockAdapter(
        transformer=toy, auto=True, forward_pattern=P.Pattern_0, blocks_policy="max"
    )
    adapter.resolve()
    assert adapter.unique_blocks_name == ["transformer_blocks"]
    with pytest.raises(AdapterError, match="blocks="):
        dc.BlockAdapter(
            transformer=model, auto=True, forward_pattern=P.Pattern_0, allow_prefixes=["nothing"]
        ).resolve()


@pytest.mark.parametrize(
    ("name", "pattern", "found"),
    [
        ("qwen_image", P.Pattern_1, "transformer_blocks"),
        ("wan", P.Pattern_2, "blocks"),
    ],
)
def test_auto_discovery_on_tiny_pipelines_matches_the_registry(tiny, name, pattern, found):
    config = caching_config(name)
    registered = tiny(name)
    dc.enable_cache(registered, config.copy())
    expected = run(registered, name, num_inference_steps=STEPS)
    expected_stats = dc.summary(registered, logging=False)[0]

    pipe = tiny(name)
    adapter = dc.BlockAdapter(pipe=pipe, auto=True, forward_pattern=pattern)
    dc.enable_cache(adapter, config.copy())
    assert adapter.unique_blocks_name == [found]
    out = run(pipe, name, num_inference_steps=STEPS)
    stats = dc.summary(pipe, logging=False)[0]
    assert expected_stats.cached_steps and expected_stats.cfg_cached_steps
    assert stats.cached_steps == expected_stats.cached_steps
    assert stats.cfg_cached_steps == expected_stats.cfg_cached_steps
    assert torch.equal(out, expected)


@pytest.mark.parametrize(
    ("policy", "found"), [("max", "single_transformer_blocks"), ("min", "transformer_blocks")]
)
def test_auto_blocks_policy_on_flux(tiny, policy, found):
    pipe = tiny("flux")
    adapter = dc.BlockAdapter(
        pipe=pipe, auto=True, forward_pattern=P.Pattern_1, blocks_policy=policy
    )
    dc.enable_cache(adapter, caching_config("flux"))
    assert adapter.unique_blocks_name == [found]
    run(pipe, "flux", num_inference_steps=STEPS)
    assert dc.summary(pipe, logging=False)[0].name == found


# -- manual adapters ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_manual_adapter_is_bit_identical_to_the_registered_one(tiny, name):
    registered = tiny(name)
    dc.enable_cache(registered, caching_config(name))
    expected = run(registered, name, num_inference_steps=STEPS)
    expected_stats = dc.summary(registered, logging=False)[0]

    pipe = tiny(name)
    cls = type(pipe)
    uncached = run(pipe, name, num_inference_steps=STEPS)
    dc.enable_cache(manual_adapter(pipe, name), caching_config(name))
    out = run(pipe, name, num_inference_steps=STEPS)
    stats = dc.summary(pipe, logging=False)[0]
    assert expected_stats.cached_steps, "the config must cache on the tiny model"
    assert stats.cached_steps == expected_stats.cached_steps
    assert stats.cfg_cached_steps == expected_stats.cfg_cached_steps
    assert bool(stats.cfg_cached_steps) == (name != "flux")  # separate CFG from the registry
    assert torch.equal(out, expected)
    assert not torch.equal(out, uncached)
    dc.disable_cache(pipe)
    assert type(pipe) is cls
    assert_uncached(pipe.transformer)
    assert torch.equal(run(pipe, name, num_inference_steps=STEPS), uncached)


def test_flux_two_separate_lists_vs_the_merged_list(tiny):
    merged = tiny("flux")
    uncached = run(merged, "flux", num_inference_steps=STEPS)
    dc.enable_cache(merged, caching_config("flux"))
    merged_out = run(merged, "flux", num_inference_steps=STEPS)
    merged_stats = dc.summary(merged, logging=False)
    assert [s.name for s in merged_stats] == ["transformer_blocks", "FluxTransformer2DModel"]

    pipe = tiny("flux")
    t = pipe.transformer
    double_calls = count_calls(t.transformer_blocks)
    single_calls = count_calls(t.single_transformer_blocks)
    adapter = dc.BlockAdapter(
        pipe=pipe,
        transformer=t,
        blocks=[t.transformer_blocks, t.single_transformer_blocks],
        forward_pattern=[P.Pattern_1, P.Pattern_1],
    )
    dc.enable_cache(adapter, caching_config("flux"))
    out = run(pipe, "flux", num_inference_steps=STEPS)
    stats = dc.summary(pipe, logging=False)
    assert [s.name for s in stats] == [
        "transformer_blocks",
        "single_transformer_blocks",
        "FluxTransformer2DModel",
    ]
    threshold = caching_config("flux").residual_diff_threshold
    for entry in stats[:2]:
        diffs = {int(k): v for k, v in entry.residual_diffs.items()}
        expected_cached, measured = model_cached_steps(diffs, 2, threshold, STEPS)
        assert sorted(diffs) == measured
        assert entry.cached_steps == expected_cached
    double_cached, single_cached = len(stats[0].cached_steps), len(stats[1].cached_steps)
    assert double_cached and single_cached
    # each list skips its own middle blocks on its own cached steps
    assert double_calls == [STEPS, STEPS - double_cached]
    assert single_calls == [STEPS] + [STEPS - single_cached] * 3
    # the single list's Fn residual differs from the merged list's: different decisions/output
    assert stats[1].residual_diffs != merged_stats[0].residual_diffs
    assert not torch.equal(out, merged_out)
    assert not torch.equal(out, uncached)

    # with caching impossible, the two layouts and the uncached model agree bit for bit
    exact = dc.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.0, max_warmup_steps=0)
    for p in (pipe, merged):
        dc.disable_cache(p)
    dc.enable_cache(merged, exact.copy())
    dc.enable_cache(
        dc.BlockAdapter(
            pipe=pipe,
            transformer=t,
            blocks=[t.transformer_blocks, t.single_transformer_blocks],
            forward_pattern=[P.Pattern_1, P.Pattern_1],
        ),
        exact.copy(),
    )
    assert torch.equal(run(pipe, "flux", num_inference_steps=STEPS), uncached)
    assert torch.equal(run(merged, "flux", num_inference_steps=STEPS), uncached)


# -- dummy lists --------------------------------------------------------------------------------
def test_dummy_list_is_emptied_during_forward_and_restored_after(tiny):
    pipe = tiny("flux")
    reference = tiny("flux")
    uncached = run(reference, "flux", num_inference_steps=STEPS)
    dc.enable_cache(reference, caching_config("flux"))
    expected = run(reference, "flux", num_inference_steps=STEPS)

    t = pipe.transformer
    double, single = t.transformer_blocks, t.single_transformer_blocks
    seen = []
    t.transformer_blocks[1].register_forward_pre_hook(
        lambda *_: seen.append((len(t.transformer_blocks), len(t.single_transformer_blocks)))
    )
    dc.enable_cache(pipe, caching_config("flux"))
    out = run(pipe, "flux", num_inference_steps=STEPS)
    assert seen and set(seen) == {(1, 0)}  # one wrapper, an empty dummy list
    assert t.transformer_blocks is double and t.single_transformer_blocks is single
    assert len(double) == 2 and len(single) == 4
    assert torch.equal(out, expected)

    # a block raising mid-forward: the lists are restored all the same
    calls = [0]

    def explode(*_):
        calls[0] += 1
        if calls[0] == 2:  # step 1, a warmup step: the block surely runs
            raise RuntimeError("boom")

    handle = single[2].register_forward_pre_hook(explode)
    with pytest.raises(RuntimeError, match="boom"):
        run(pipe, "flux", num_inference_steps=STEPS)
    handle.remove()
    assert t.transformer_blocks is double and t.single_transformer_blocks is single
    assert t._modules["transformer_blocks"] is double
    assert [type(b).__name__ for b in single] == ["FluxSingleTransformerBlock"] * 4
    # the next request starts clean and matches an undisturbed cached pipeline
    assert torch.equal(run(pipe, "flux", num_inference_steps=STEPS), expected)
    dc.disable_cache(pipe)
    assert_uncached(t)
    assert torch.equal(run(pipe, "flux", num_inference_steps=STEPS), uncached)


# -- Wan 2.2 MoE: two transformers --------------------------------------------------------------
def wan22(tiny):
    """A WanPipeline with a second expert (diffusers 0.42.1: transformer_2 + boundary_ratio)."""
    pipe = tiny("wan")
    pipe.register_modules(transformer_2=build_tiny_transformer("wan", seed=1))
    pipe.register_to_config(boundary_ratio=0.5)
    return pipe


def wan22_modifiers():
    return [
        dc.ParamsModifier(
            cache_config=dc.DBCacheConfig().reset(max_warmup_steps=4, max_cached_steps=3)
        ),
        dc.ParamsModifier(
            cache_config=dc.DBCacheConfig().reset(max_warmup_steps=2, max_cached_steps=20)
        ),
    ]


# threshold >= 1 always caches when the limits allow: the modifiers alone decide the steps
WAN22_BASE = dict(Fn_compute_blocks=1, residual_diff_threshold=1.0, max_warmup_steps=1)
WAN22_STEPS = 20


def test_wan22_moe_registry_with_params_modifiers(tiny):
    pipe = wan22(tiny)
    t1, t2 = pipe.transformer, pipe.transformer_2
    calls = count_calls([t1, t2])
    uncached = run(pipe, "wan", num_inference_steps=WAN22_STEPS)
    steps_1, steps_2 = calls[0] // 2, calls[1] // 2  # CFG: two calls per step
    assert steps_1 + steps_2 == WAN22_STEPS and steps_2 >= 4, "both experts must run"

    dc.enable_cache(pipe, dc.DBCacheConfig(**WAN22_BASE), params_modifiers=wan22_modifiers())
    assert hasattr(t1, "_ditkit_cache") and hasattr(t2, "_ditkit_cache")
    out = run(pipe, "wan", num_inference_steps=WAN22_STEPS)
    stats = dc.summary(pipe, logging=False)
    assert [s.name for s in stats] == [
        "blocks_0",
        "blocks_1",
        "WanTransformer3DModel",
        "WanTransformer3DModel",
    ]
    first, second = stats[0], stats[1]
    assert first.cache_options["cache_config"].max_warmup_steps == 4
    assert second.cache_options["cache_config"].max_cached_steps == 20
    assert first.cached_steps == first.cfg_cached_steps == [4, 5, 6]
    assert second.cached_steps == second.cfg_cached_steps == list(range(2, steps_2))
    assert first.accumulated_executed_steps == steps_1
    assert second.accumulated_executed_steps == steps_2
    assert not torch.equal(out, uncached)

    # the seed's snippet (explicit BlockAdapter) does the same, bit for bit
    other = wan22(tiny)
    dc.enable_cache(
        dc.BlockAdapter(
            pipe=other,
            transformer=[other.transformer, other.transformer_2],
            blocks=[other.transformer.blocks, other.transformer_2.blocks],
            forward_pattern=[P.Pattern_2, P.Pattern_2],
            params_modifiers=wan22_modifiers(),
            has_separate_cfg=True,
        ),
        dc.DBCacheConfig(**WAN22_BASE),
    )
    assert torch.equal(run(other, "wan", num_inference_steps=WAN22_STEPS), out)
    assert [s.cached_steps for s in dc.summary(other, logging=False)[:2]] == [
        first.cached_steps,
        second.cached_steps,
    ]

    # without modifiers the shared config applies to both experts
    plain = wan22(tiny)
    dc.enable_cache(plain, dc.DBCacheConfig(**WAN22_BASE))
    run(plain, "wan", num_inference_steps=WAN22_STEPS)
    plain_stats = dc.summary(plain, logging=False)
    assert plain_stats[0].cached_steps == list(range(1, steps_1))
    assert plain_stats[1].cached_steps == list(range(1, steps_2))

    dc.disable_cache(pipe)
    assert_uncached(t1)
    assert_uncached(t2)
    assert torch.equal(run(pipe, "wan", num_inference_steps=WAN22_STEPS), uncached)


def test_params_modifiers_count_mismatch_raises(tiny):
    pipe = wan22(tiny)
    cls = type(pipe)
    with pytest.raises(AdapterError, match="params_modifiers"):
        dc.enable_cache(
            pipe, dc.DBCacheConfig(**WAN22_BASE), params_modifiers=[*wan22_modifiers(), None]
        )
    assert type(pipe) is cls
    assert_uncached(pipe.transformer)
    assert_uncached(pipe.transformer_2)
    flux = tiny("flux")
    t = flux.transformer
    with pytest.raises(AdapterError, match="one ParamsModifier per list"):
        dc.enable_cache(
            dc.BlockAdapter(
                pipe=flux,
                transformer=t,
                blocks=[t.transformer_blocks, t.single_transformer_blocks],
                forward_pattern=P.Pattern_1,
                params_modifiers=wan22_modifiers()[:1] * 3,
            )
        )
    assert_uncached(t)


# -- transformer-only use -----------------------------------------------------------------------
@pytest.mark.parametrize("announced", [True, False])
def test_transformer_only_adapter_without_pipe(tiny, announced):
    config = caching_config("wan")
    reference = tiny("wan")
    dc.enable_cache(reference, config.copy())
    expected = run(reference, "wan", num_inference_steps=STEPS)
    expected_stats = dc.summary(reference, logging=False)[0]

    pipe = tiny("wan")
    cls = type(pipe)
    t = pipe.transformer
    adapter = dc.BlockAdapter(transformer=t, blocks=t.blocks, forward_pattern=P.Pattern_2)
    assert isinstance(adapter.pipe, dc.FakeDiffusionPipeline)
    dc.enable_cache(adapter, config.copy(num_inference_steps=STEPS if announced else None))
    assert type(pipe) is cls  # the pipeline is not touched
    for _ in range(2):  # back-to-back requests see the same steps
        assert torch.equal(run(pipe, "wan", num_inference_steps=STEPS), expected)
        stats = dc.summary(t, logging=False)[0]
        assert stats.cached_steps == expected_stats.cached_steps != []
        assert stats.cfg_cached_steps == expected_stats.cfg_cached_steps
    dc.disable_cache(adapter)
    assert_uncached(t)
