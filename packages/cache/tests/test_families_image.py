"""Every registered image family on the transformer-only path, with a tiny random transformer.

Each case calls the transformer directly over a few steps with decreasing timesteps (twice per
step for families whose CFG is a separate call) and checks: threshold 0 is bit-identical to the
uncached run; a static steps mask caches exactly the masked steps and changes the output;
``disable_cache`` restores bit-identical behaviour (and removes the family's patch functor);
DBPrune prunes blocks at threshold 0.5 and is bit-identical at threshold 0.
"""

from __future__ import annotations

import pytest
import torch

import ditkit_cache as dc
from ditkit_cache.families import IMAGE_FAMILIES
from ditkit_cache.families.image import PIPELINE_ONLY_IMAGE
from ditkit_cache.registry import BlockAdapterRegister, adapter_from_spec
from ditkit_testing.families import IMAGE_CASES

STEPS = 8
MASK = [1, 1, 1, 0, 1, 0, 0, 1]
MASKED = [step for step, compute in enumerate(MASK) if not compute]
NAMES = sorted(IMAGE_CASES)


def test_every_image_family_has_a_case():
    # Flux and QwenImage run as full tiny pipelines (TINY_PIPELINES)
    assert sorted(IMAGE_FAMILIES) == sorted({*NAMES, "Flux", "QwenImage"})
    assert len({IMAGE_FAMILIES[name].transformer_class for name in IMAGE_FAMILIES}) >= 30


@pytest.mark.parametrize("name", NAMES)
def test_a_bare_transformer_resolves_to_the_family_of_its_class(name):
    """Pipeline-only prefixes (tests/test_registry_pipeline_only.py) resolve by pipeline name."""
    transformer, _ = IMAGE_CASES[name](0)
    spec = BlockAdapterRegister.family(transformer)
    assert spec.transformer_class == IMAGE_FAMILIES[name].transformer_class
    assert (spec is IMAGE_FAMILIES[name]) or (name in PIPELINE_ONLY_IMAGE)


def _timestep_key(kwargs: dict) -> str:
    return next(key for key in ("timestep", "timesteps", "t") if key in kwargs)


def _sample(output) -> torch.Tensor:
    output = output[0] if isinstance(output, tuple) else output.sample
    return torch.stack(output) if isinstance(output, list) else output


def _run(transformer, kwargs: dict, calls_per_step: int) -> list[torch.Tensor]:
    key = _timestep_key(kwargs)
    outputs = []
    with torch.no_grad():
        for step in range(STEPS):
            step_kwargs = dict(kwargs, **{key: kwargs[key] * (1.0 - step / (STEPS + 1))})
            for _ in range(calls_per_step):
                outputs.append(_sample(transformer(**step_kwargs)).clone())
    return outputs


def _adapter(transformer, name: str):
    """The transformer-only adapter of the case's family (what ``get_adapter`` builds for it)."""
    adapter = adapter_from_spec(dc.FakeDiffusionPipeline(transformer), IMAGE_FAMILIES[name])
    functor = IMAGE_FAMILIES[name].patch_functor
    applied = adapter.patch_functor and type(adapter.patch_functor).__name__
    assert applied == (functor and functor.partition(":")[2]), "the spec's functor is applied"
    return adapter


def _options(name: str, calls: int) -> dict:
    options = dict(Fn_compute_blocks=1, Bn_compute_blocks=0, num_inference_steps=STEPS)
    if name in PIPELINE_ONLY_IMAGE:
        # a bare transformer's class names its owning family, whose CFG mode the cache would
        # take; the pipeline-only family's pipelines name their own (test_registry_pipeline_only)
        options["enable_separate_cfg"] = calls == 2
    return options


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def references():
    """Uncached outputs per family (built once)."""
    return {}


def _case(name: str, references: dict):
    transformer, kwargs = IMAGE_CASES[name](0)
    calls = 2 if IMAGE_FAMILIES[name].has_separate_cfg else 1
    if name not in references:
        references[name] = _run(transformer, kwargs, calls)
    return transformer, kwargs, calls, references[name]


@pytest.mark.parametrize("name", NAMES)
def test_dbcache(name, references):
    transformer, kwargs, calls, reference = _case(name, references)
    assert _adapter(transformer, name).has_separate_cfg == (calls == 2)

    exact = _options(name, calls)
    adapter = _adapter(transformer, name)
    dc.enable_cache(adapter, dc.DBCacheConfig(residual_diff_threshold=0.0, **exact))
    patched = adapter.patch_functor is not None
    assert dc.PatchFunctor.is_patched(transformer) == patched
    assert _same(_run(transformer, kwargs, calls), reference), "threshold 0 must be exact"
    dc.disable_cache(transformer)
    assert not dc.PatchFunctor.is_patched(transformer) and "forward" not in vars(transformer)

    masked = dc.DBCacheConfig(
        steps_computation_mask=MASK, steps_computation_policy="static", **exact
    )
    dc.enable_cache(_adapter(transformer, name), masked)
    outputs = _run(transformer, kwargs, calls)
    for stats in dc.summary(transformer, logging=False)[:-1]:
        assert stats.cached_steps == MASKED
        if calls == 2:
            assert stats.cfg_cached_steps == MASKED
    # The inputs are the same every step, so computed steps match the uncached run exactly and
    # only the cached steps (served from the last computed step's residuals) differ.
    for index, (output, expected) in enumerate(zip(outputs, reference, strict=True)):
        if index // calls in MASKED:
            assert not torch.equal(output, expected), f"cached call {index} must differ"
        else:
            assert torch.equal(output, expected), f"computed call {index} must be exact"
    assert all(torch.isfinite(output).all() for output in outputs)
    dc.disable_cache(transformer)
    assert _same(_run(transformer, kwargs, calls), reference), "disable_cache must restore"


@pytest.mark.parametrize("name", NAMES)
def test_dbprune(name, references):
    transformer, kwargs, calls, reference = _case(name, references)
    base = _options(name, calls)

    dc.enable_cache(
        _adapter(transformer, name), dc.DBPruneConfig(residual_diff_threshold=0.0, **base)
    )
    assert _same(_run(transformer, kwargs, calls), reference), "threshold 0 must be exact"
    dc.disable_cache(transformer)

    dc.enable_cache(
        _adapter(transformer, name),
        dc.DBPruneConfig(residual_diff_threshold=0.5, max_warmup_steps=0, **base),
    )
    outputs = _run(transformer, kwargs, calls)
    stats = dc.summary(transformer, logging=False)[:-1]
    pruned = sum(sum(s.pruned_blocks) + sum(s.cfg_pruned_blocks or []) for s in stats)
    assert pruned >= 1, "threshold 0.5 must prune at least one block"
    assert all(torch.isfinite(output).all() for output in outputs)
    dc.disable_cache(transformer)
    assert _same(_run(transformer, kwargs, calls), reference)
