"""Bad input fails early, with the documented error, and leaves nothing patched.

Each case calls ``enable_cache`` with an invalid config or a mismatched adapter and checks:
the error class (``ConfigError``/``AdapterError``/``UnsupportedModelError``/
``MissingComponentError``), that the message names the field and says what to do, and that the
pipeline is exactly as before: same class, no instance ``forward`` anywhere in the transformer,
no ``_ditkit_cache``, the same block lists, and an output bit-identical to a never-cached one.
"""

from __future__ import annotations

import importlib.metadata

import pytest
import torch

import ditkit_cache as dc
from ditkit_interfaces import (
    AdapterError,
    ConfigError,
    MissingComponentError,
    TaylorSeerCalibratorConfig,
    UnsupportedModelError,
)
from ditkit_testing import build_tiny_transformer
from ditkit_testing import run_tiny_pipeline as run

P = dc.ForwardPattern
STEPS = 8
_UNCACHED: dict[str, torch.Tensor] = {}


def uncached_output(tiny, name: str) -> torch.Tensor:
    """The output of a never-cached tiny pipeline (computed once per name)."""
    if name not in _UNCACHED:
        _UNCACHED[name] = run(tiny(name), name, num_inference_steps=STEPS)
    return _UNCACHED[name]


def transformers_of(pipe) -> list[torch.nn.Module]:
    found = [getattr(pipe, "transformer", None), getattr(pipe, "transformer_2", None)]
    return [t for t in found if isinstance(t, torch.nn.Module)]


def snapshot(pipe) -> dict:
    lists = {}
    for t in transformers_of(pipe):
        for name, child in t.named_children():
            if isinstance(child, torch.nn.ModuleList):
                lists[(id(t), name)] = (child, list(child))
    return {"cls": type(pipe), "lists": lists}


def assert_untouched(pipe, name: str, before: dict, tiny) -> None:
    assert type(pipe) is before["cls"], "the pipeline class was changed"
    assert "_ditkit_pipeline_caches" not in vars(pipe)
    for t in transformers_of(pipe):
        assert not hasattr(t, "_ditkit_cache")
        assert not hasattr(t, "_ditkit_patch_record")
        for path, module in t.named_modules():
            assert "forward" not in vars(module), f"instance forward left on {path or 'root'}"
        for child_name, child in t.named_children():
            if isinstance(child, torch.nn.ModuleList):
                original, blocks = before["lists"][(id(t), child_name)]
                assert child is original and list(child) == blocks
    assert torch.equal(run(pipe, name, num_inference_steps=STEPS), uncached_output(tiny, name))


def assert_config_error(err: ConfigError, field: str) -> None:
    assert field in err.field
    assert err.fix, "the error must say how to fix it"
    assert "Fix:" in str(err)


# -- the cases ----------------------------------------------------------------------------------
def adapter(pipe, **fields):
    t = pipe.transformer
    return dc.BlockAdapter(pipe=pipe, transformer=t, **fields)


def flux_two_lists(pipe, **fields):
    t = pipe.transformer
    fields.setdefault("forward_pattern", P.Pattern_1)
    return adapter(pipe, blocks=[t.transformer_blocks, t.single_transformer_blocks], **fields)


def modifier(**fields):
    return dc.ParamsModifier(cache_config=dc.DBCacheConfig().reset(**fields))


OK = dc.DBCacheConfig(Fn_compute_blocks=1)

# (id, pipeline, enable_cache arguments, error, message regex, ConfigError field or None)
CASES = [
    (
        "pattern-outputs",
        "wan",
        lambda p: (
            adapter(
                p, blocks=p.transformer.blocks, forward_pattern=P.Pattern_1, check_num_outputs=True
            ),
            OK,
        ),
        AdapterError,
        r"Pattern_1.*returns 1 tensor.*Pick the pattern",
        None,
    ),
    (
        "blocks-is-one-block",
        "wan",
        lambda p: (adapter(p, blocks=p.transformer.blocks[0], forward_pattern=P.Pattern_2), OK),
        AdapterError,
        r"BlockAdapter\.blocks .* must be a non-empty nn\.ModuleList",
        None,
    ),
    (
        "blocks-empty",
        "wan",
        lambda p: (
            adapter(
                p, blocks=torch.nn.ModuleList(), blocks_name="blocks", forward_pattern=P.Pattern_2
            ),
            OK,
        ),
        AdapterError,
        r"BlockAdapter\.blocks .* must be a non-empty nn\.ModuleList",
        None,
    ),
    (
        "blocks-not-an-attribute",
        "qwen_image",
        lambda p: (
            adapter(
                p,
                blocks=torch.nn.ModuleList(list(p.transformer.transformer_blocks)),
                forward_pattern=P.Pattern_1,
            ),
            OK,
        ),
        AdapterError,
        r"not an attribute of QwenImageTransformer2DModel; pass blocks_name=",
        None,
    ),
    (
        "pattern-count-one-list",
        "wan",
        lambda p: (adapter(p, blocks=p.transformer.blocks, forward_pattern=[P.Pattern_2] * 3), OK),
        AdapterError,
        r"forward_pattern: 3 entries for 1 block lists; one per list",
        None,
    ),
    (
        "pattern-count-two-lists",
        "flux",
        lambda p: (flux_two_lists(p, forward_pattern=[P.Pattern_1] * 3), OK),
        AdapterError,
        r"forward_pattern: 3 entries for 2 block lists",
        None,
    ),
    (
        "blocks-name-count",
        "flux",
        lambda p: (flux_two_lists(p, blocks_name=["transformer_blocks"]), OK),
        AdapterError,
        r"2 block lists but 1 blocks_name entries; give one name per list",
        None,
    ),
    (
        "pattern-not-a-pattern",
        "wan",
        lambda p: (adapter(p, blocks=p.transformer.blocks, forward_pattern=7), OK),
        AdapterError,
        r"forward_pattern=7 is invalid: expected a ForwardPattern",
        None,
    ),
    (
        "blocks-per-transformer",
        "wan",
        lambda p: (
            dc.BlockAdapter(
                pipe=p,
                transformer=[p.transformer, build_tiny_transformer("wan", seed=1)],
                blocks=[p.transformer.blocks],
                forward_pattern=P.Pattern_2,
            ),
            OK,
        ),
        AdapterError,
        r"BlockAdapter\.blocks has 1 entries for 2 transformers; give one per transformer",
        None,
    ),
    (
        "dummy-not-a-list",
        "wan",
        lambda p: (
            adapter(
                p,
                blocks=p.transformer.blocks,
                forward_pattern=P.Pattern_2,
                dummy_blocks_names=["proj_out"],
            ),
            OK,
        ),
        AdapterError,
        r"dummy_blocks_names: 'proj_out' is not a ModuleList",
        None,
    ),
    (
        "Fn-plus-Bn-too-many",
        "wan",
        lambda p: (p, dc.DBCacheConfig(Fn_compute_blocks=3, Bn_compute_blocks=2)),
        ConfigError,
        r"at most the 4 blocks of 'blocks'.*sum to <= 4",
        "Fn_compute_blocks + Bn_compute_blocks",
    ),
    (
        "Fn-too-many-for-one-list",
        "flux",
        lambda p: (
            flux_two_lists(p, params_modifiers=[modifier(Fn_compute_blocks=3), None]),
            OK,
        ),
        ConfigError,
        r"at most the 2 blocks of 'transformer_blocks'",
        "Fn_compute_blocks + Bn_compute_blocks",
    ),
    (
        "dbcache-config-with-dbprune-type",
        "qwen_image",
        lambda p: (p, dc.DBCacheConfig(cache_type="DBPrune", Fn_compute_blocks=1)),
        ConfigError,
        r"DBPruneConfig",
        "cache_config",
    ),
    (
        "config-is-a-dict",
        "flux",
        lambda p: (p, {"Fn_compute_blocks": 1}),
        ConfigError,
        r"cache_config='dict' is invalid: expected a DBCacheConfig or DBPruneConfig",
        "cache_config",
    ),
    (
        "config-is-the-class",
        "flux",
        lambda p: (p, dc.DBCacheConfig),
        ConfigError,
        r"expected a DBCacheConfig or DBPruneConfig",
        "cache_config",
    ),
    (
        "config-is-a-calibrator-config",
        "flux",
        lambda p: (p, TaylorSeerCalibratorConfig()),
        ConfigError,
        r"cache_config='TaylorSeerCalibratorConfig'",
        "cache_config",
    ),
    (
        "calibrator-config-of-the-wrong-type",
        "flux",
        lambda p: (p, OK, {"calibrator_config": dc.DBCacheConfig()}),
        ConfigError,
        r"calibrator_config='DBCacheConfig' is invalid: expected a CalibratorConfig",
        "calibrator_config",
    ),
]


def attempt(pipe, arguments):
    target, config, *extra = arguments(pipe)
    dc.enable_cache(target, config, **(extra[0] if extra else {}))


@pytest.mark.parametrize(
    ("name", "arguments", "error", "message", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_invalid_input_raises_early_and_patches_nothing(
    tiny, name, arguments, error, message, field
):
    pipe = tiny(name)
    before = snapshot(pipe)
    with pytest.raises(error, match=message) as info:
        attempt(pipe, arguments)
    if field is not None:
        assert field in info.value.field
    assert_untouched(pipe, name, before, tiny)


# words with which an AdapterError (it has no `fix` attribute) tells the user what to do
FIX_WORDS = ("pass ", "give ", "use ", "Pick ", "expected ", "must be ", "one per ")


@pytest.mark.parametrize(
    ("name", "arguments", "error"),
    [pytest.param(*case[1:4], id=case[0]) for case in CASES],
)
def test_error_message_says_how_to_fix(tiny, name, arguments, error):
    with pytest.raises(error) as info:
        attempt(tiny(name), arguments)
    if isinstance(info.value, ConfigError):
        assert_config_error(info.value, info.value.field)
    else:
        assert any(word in str(info.value) for word in FIX_WORDS)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"Fn_compute_block": 1},  # a typo of a deprecated flat option
        {"Fn_compute_blocks": 1, "residual_diff_threshol": 0.1},  # one good, one typo
        {"non_prune_block_ids": [1]},  # a DBPrune field is not a flat option
    ],
)
def test_unknown_flat_kwargs_raise(tiny, kwargs):
    pipe = tiny("flux")
    before = snapshot(pipe)
    bad = sorted(k for k in kwargs if k != "Fn_compute_blocks")
    with pytest.raises(ConfigError) as info:
        dc.enable_cache(pipe, **kwargs)
    assert info.value.field == "enable_cache" and info.value.value == bad
    assert "DBCacheConfig(" in info.value.fix
    assert_untouched(pipe, "flux", before, tiny)


class MyPipeline:
    """A pipeline no registry entry matches."""

    def __init__(self, transformer) -> None:
        self.transformer = transformer


def test_unsupported_pipeline_class_raises(tiny):
    pipe = tiny("wan")
    before = snapshot(pipe)
    mine = MyPipeline(pipe.transformer)
    with pytest.raises(UnsupportedModelError, match=r"MyPipeline .*BlockAdapter\(pipe=") as info:
        dc.enable_cache(mine, OK)
    assert isinstance(info.value, AdapterError)
    assert type(mine) is MyPipeline
    with pytest.raises(UnsupportedModelError, match="Linear is not a registered model family"):
        dc.enable_cache(torch.nn.Linear(2, 2), OK)
    assert_untouched(pipe, "wan", before, tiny)


def test_registered_pipeline_with_a_foreign_transformer_raises_adapter_error(tiny):
    pipe = tiny("flux")
    pipe.register_modules(transformer=build_tiny_transformer("wan"))
    cls = type(pipe)
    with pytest.raises(AdapterError, match="WanTransformer3DModel, not the FluxTransformer2DModel"):
        dc.enable_cache(pipe, OK)
    assert type(pipe) is cls and not hasattr(pipe.transformer, "_ditkit_cache")


def test_enabling_twice_raises_and_keeps_the_first_cache(tiny):
    reference = tiny("qwen_image")
    config = dc.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.3, max_warmup_steps=2)
    dc.enable_cache(reference, config.copy())
    expected = run(reference, "qwen_image", num_inference_steps=STEPS)

    pipe = tiny("qwen_image")
    cls = type(pipe)
    t = pipe.transformer
    dc.enable_cache(pipe, config.copy())
    cache, wrapped = t._ditkit_cache, type(pipe)
    for again in (pipe, t, adapter(pipe, blocks=t.transformer_blocks, forward_pattern=1)):
        with pytest.raises(ConfigError, match="not yet cached") as info:
            dc.enable_cache(again, dc.DBCacheConfig(Fn_compute_blocks=2))
        assert info.value.field == "enable_cache" and "disable_cache" in info.value.fix
        assert t._ditkit_cache is cache and type(pipe) is wrapped
    assert type(pipe).__mro__[1] is cls  # wrapped once
    assert torch.equal(run(pipe, "qwen_image", num_inference_steps=STEPS), expected)
    assert dc.summary(pipe, logging=False)[0].cache_options["cache_config"].Fn_compute_blocks == 1
    dc.disable_cache(pipe)
    before = {"cls": cls, "lists": snapshot(pipe)["lists"]}
    assert_untouched(pipe, "qwen_image", before, tiny)


def test_calibrator_without_an_implementation_raises(tiny, monkeypatch):
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: [])
    pipe = tiny("flux")
    before = snapshot(pipe)
    with pytest.raises(MissingComponentError, match="pip install ditkit-calibrators") as info:
        dc.enable_cache(pipe, OK, calibrator_config=TaylorSeerCalibratorConfig())
    assert "calibrator_config" in str(info.value)
    monkeypatch.undo()
    assert_untouched(pipe, "flux", before, tiny)


# -- forward patterns: the signature check --------------------------------------------------------
class HiddenOnlyBlock(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    def forward(self, hidden_states, temb=None):
        return self.linear(hidden_states)


class PlainModel(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.transformer_blocks = torch.nn.ModuleList(HiddenOnlyBlock() for _ in range(3))

    def forward(self, hidden_states, encoder_hidden_states=None, timestep=None):
        for block in self.transformer_blocks:
            hidden_states = block(hidden_states)
        return hidden_states


class DiffusersLikeModel(PlainModel):
    """A transformer whose class lives in a ``diffusers`` module: checked by default."""

    __module__ = "diffusers.models.transformers.toy"


def test_block_lacking_an_input_of_the_pattern_raises():
    model = DiffusersLikeModel()
    with pytest.raises(
        AdapterError, match=r"Pattern_1: its forward lacks encoder_hidden_states"
    ) as info:
        dc.enable_cache(
            dc.BlockAdapter(
                transformer=model, blocks=model.transformer_blocks, forward_pattern=P.Pattern_1
            ),
            OK,
        )
    assert "check_forward_pattern=False" in str(info.value)
    assert not hasattr(model, "_ditkit_cache") and "forward" not in vars(model)
    # outside diffusers the check is opt-in (cache-dit's rule)
    plain = PlainModel()
    with pytest.raises(AdapterError, match="lacks encoder_hidden_states"):
        dc.enable_cache(
            dc.BlockAdapter(
                transformer=plain,
                blocks=plain.transformer_blocks,
                forward_pattern=P.Pattern_1,
                check_forward_pattern=True,
            ),
            OK,
        )
    assert not hasattr(plain, "_ditkit_cache")
    dc.enable_cache(
        dc.BlockAdapter(
            transformer=plain, blocks=plain.transformer_blocks, forward_pattern=P.Pattern_3
        ),
        OK,
    )
    assert hasattr(plain, "_ditkit_cache")


def test_wrong_pattern_is_caught_at_enable_time_by_default(tiny):
    pipe = tiny("wan")
    before = snapshot(pipe)
    with pytest.raises(AdapterError, match="Pattern_1"):
        dc.enable_cache(adapter(pipe, blocks=pipe.transformer.blocks, forward_pattern=1), OK)
    assert_untouched(pipe, "wan", before, tiny)


# -- blocks_name, params_modifiers -----------------------------------------------------------------
def test_blocks_name_that_does_not_exist_raises(tiny):
    pipe = tiny("wan")
    before = snapshot(pipe)
    with pytest.raises(AdapterError, match="layers"):
        dc.enable_cache(
            adapter(pipe, blocks=pipe.transformer.blocks, blocks_name="layers", forward_pattern=2),
            OK,
        )
    assert_untouched(pipe, "wan", before, tiny)


def test_blocks_name_of_another_list_raises(tiny):
    pipe = tiny("flux")
    before = snapshot(pipe)
    t = pipe.transformer
    with pytest.raises(AdapterError, match="single_transformer_blocks"):
        dc.enable_cache(
            adapter(
                pipe,
                blocks=t.transformer_blocks,
                blocks_name="single_transformer_blocks",
                forward_pattern=P.Pattern_1,
            ),
            dc.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.0),
        )
    assert_untouched(pipe, "flux", before, tiny)


def test_params_modifier_that_is_a_config_raises_config_error(tiny):
    pipe = tiny("wan")
    before = snapshot(pipe)
    with pytest.raises((ConfigError, AdapterError), match="ParamsModifier"):
        dc.enable_cache(pipe, OK, params_modifiers=[dc.DBCacheConfig(max_warmup_steps=2)])
    assert_untouched(pipe, "wan", before, tiny)


# -- patch functors that fail --------------------------------------------------------------------
class RaisesMidway(dc.PatchFunctor):
    def _apply(self, transformer, **kwargs):
        transformer.blocks[0].forward = lambda *args, **kw: None
        transformer.half_patched = True
        raise RuntimeError("functor failed midway")


class RaisesOnSecondExpert(dc.PatchFunctor):
    """Patches the first transformer, then fails (cleanly) on the second."""

    def __init__(self) -> None:
        self.seen = 0

    def _apply(self, transformer, **kwargs):
        self.seen += 1
        if self.seen == 2:
            raise RuntimeError("functor failed on transformer_2")
        transformer.proj_out.forward = lambda x: x
        return transformer


def test_functor_failing_on_the_second_transformer_unpatches_the_first(tiny):
    pipe = tiny("wan")
    pipe.register_modules(transformer_2=build_tiny_transformer("wan", seed=1))
    pipe.register_to_config(boundary_ratio=0.5)
    before = snapshot(pipe)
    reference = run(pipe, "wan", num_inference_steps=STEPS)
    t1, t2 = pipe.transformer, pipe.transformer_2
    with pytest.raises(RuntimeError, match="transformer_2"):
        dc.enable_cache(
            dc.BlockAdapter(
                pipe=pipe,
                transformer=[t1, t2],
                blocks=[t1.blocks, t2.blocks],
                forward_pattern=P.Pattern_2,
                patch_functor=RaisesOnSecondExpert(),
            ),
            OK,
        )
    assert type(pipe) is before["cls"]
    for t in (t1, t2):
        assert not hasattr(t, "_ditkit_cache") and not hasattr(t, "_ditkit_patch_record")
        assert all("forward" not in vars(m) for m in t.modules())
    assert torch.equal(run(pipe, "wan", num_inference_steps=STEPS), reference)


def test_functor_raising_midway_leaves_nothing_patched(tiny):
    pipe = tiny("wan")
    before = snapshot(pipe)
    with pytest.raises(RuntimeError, match="midway"):
        dc.enable_cache(
            adapter(
                pipe,
                blocks=pipe.transformer.blocks,
                forward_pattern=P.Pattern_2,
                patch_functor=RaisesMidway(),
            ),
            OK,
        )
    assert not hasattr(pipe.transformer, "half_patched")
    assert_untouched(pipe, "wan", before, tiny)


# -- refresh_context ---------------------------------------------------------------------------
def test_refresh_with_too_many_blocks_raises_and_keeps_the_old_config(tiny):
    # Bn_compute_blocks=10 on 4 blocks would make blocks[-6:] run block 0 a second time
    pipe = tiny("wan")
    t = pipe.transformer
    first = [0]
    t.blocks[0].register_forward_pre_hook(lambda *_: first.__setitem__(0, first[0] + 1))
    dc.enable_cache(t, dc.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.0))
    for bad in ({"Bn_compute_blocks": 10}, {"cache_config": dc.DBCacheConfig(Fn_compute_blocks=5)}):
        with pytest.raises(ConfigError, match="sum to <= 4") as info:
            dc.refresh_context(t, **bad)
        assert_config_error(info.value, "Fn_compute_blocks + Bn_compute_blocks")
    assert torch.equal(run(pipe, "wan", num_inference_steps=STEPS), uncached_output(tiny, "wan"))
    assert first[0] == 2 * STEPS  # once per transformer call (CFG: two per step)
    config = dc.summary(t, logging=False)[0].cache_options["cache_config"]
    assert (config.Fn_compute_blocks, config.Bn_compute_blocks) == (1, 0)
