"""Every registered image family on the transformer-only path, with a tiny random transformer.

Each case calls the transformer directly over a few steps with decreasing timesteps (twice per
step for families whose CFG is a separate call) and checks: threshold 0 is bit-identical to the
uncached run; a static steps mask caches exactly the masked steps and changes the output;
``disable_cache`` restores bit-identical behaviour; DBPrune prunes blocks at threshold 0.5 and is
bit-identical at threshold 0.
"""

from __future__ import annotations

import importlib

import pytest
import torch

import ditkit_cache as dc
from ditkit_cache.families import IMAGE_FAMILIES
from ditkit_testing.families import IMAGE_CASES

STEPS = 8
MASK = [1, 1, 1, 0, 1, 0, 0, 1]
MASKED = [step for step, compute in enumerate(MASK) if not compute]
NAMES = sorted(IMAGE_CASES)


def test_every_image_family_has_a_case():
    assert sorted(IMAGE_FAMILIES) == sorted({*NAMES, "Flux", "QwenImage"})


def _timestep_key(kwargs: dict) -> str:
    return "timestep" if "timestep" in kwargs else "t"


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


def _adapter(transformer):
    adapter = dc.get_adapter(transformer)
    functor = IMAGE_FAMILIES[_family(transformer)].patch_functor
    if functor is not None and adapter.patch_functor is None:
        module, _, name = functor.partition(":")
        adapter.patch_functor = getattr(importlib.import_module(module), name)()
    return adapter


def _family(transformer) -> str:
    cls = type(transformer).__name__
    matches = [p for p, s in IMAGE_FAMILIES.items() if cls.startswith(s.transformer_class)]
    return max(matches, key=lambda p: len(IMAGE_FAMILIES[p].transformer_class))


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
    assert dc.get_adapter(transformer).has_separate_cfg == (calls == 2)

    exact = dict(Fn_compute_blocks=1, Bn_compute_blocks=0, num_inference_steps=STEPS)
    dc.enable_cache(_adapter(transformer), dc.DBCacheConfig(residual_diff_threshold=0.0, **exact))
    assert _same(_run(transformer, kwargs, calls), reference), "threshold 0 must be exact"
    dc.disable_cache(transformer)

    masked = dc.DBCacheConfig(
        steps_computation_mask=MASK, steps_computation_policy="static", **exact
    )
    dc.enable_cache(_adapter(transformer), masked)
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
    base = dict(Fn_compute_blocks=1, Bn_compute_blocks=0, num_inference_steps=STEPS)

    dc.enable_cache(_adapter(transformer), dc.DBPruneConfig(residual_diff_threshold=0.0, **base))
    assert _same(_run(transformer, kwargs, calls), reference), "threshold 0 must be exact"
    dc.disable_cache(transformer)

    dc.enable_cache(
        _adapter(transformer),
        dc.DBPruneConfig(residual_diff_threshold=0.5, max_warmup_steps=0, **base),
    )
    outputs = _run(transformer, kwargs, calls)
    stats = dc.summary(transformer, logging=False)[:-1]
    pruned = sum(sum(s.pruned_blocks) + sum(s.cfg_pruned_blocks or []) for s in stats)
    assert pruned >= 1, "threshold 0.5 must prune at least one block"
    assert all(torch.isfinite(output).all() for output in outputs)
    dc.disable_cache(transformer)
    assert _same(_run(transformer, kwargs, calls), reference)
