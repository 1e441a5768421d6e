"""True CFG in families whose CFG is normally embedded: the ``"uncond"`` call is the CFG branch.

FluxPipeline and HunyuanVideoPipeline with ``true_cfg_scale > 1`` and a negative prompt call the
transformer twice a step, the second time inside ``with transformer.cache_context("uncond"):``
(diffusers' ``CacheMixin``). Their families have ``has_separate_cfg=False``, so cache-dit 1.5.3
(and ditkit before) counted each call as a denoising step: a steps mask hit the wrong steps and the
conditional call was compared with the unconditional one. The cache now observes the
``cache_context`` name per transformer instance and runs ``"uncond"`` calls in the CFG branch;
calls outside any ``cache_context`` behave as before.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

import ditkit_cache as dc
from ditkit_interfaces import ForwardPattern, TaylorSeerCalibratorConfig
from ditkit_testing import run_tiny_pipeline

STEPS = 8
MASK = [1, 1, 1, 0, 1, 0, 0, 1]
MASKED = [step for step, compute in enumerate(MASK) if not compute]
TRUE_CFG = dict(true_cfg_scale=2.0, negative_prompt="a blurry, low quality photo")
NAMES = ("flux", "hunyuan_video")


def _run(pipe, name, **overrides):
    return run_tiny_pipeline(pipe, name, num_inference_steps=STEPS, **overrides)


def _exact() -> dc.DBCacheConfig:
    return dc.DBCacheConfig(
        Fn_compute_blocks=1, Bn_compute_blocks=0, residual_diff_threshold=0.0, max_warmup_steps=0
    )


def _masked() -> dc.DBCacheConfig:
    return dc.DBCacheConfig(
        Fn_compute_blocks=1,
        Bn_compute_blocks=0,
        steps_computation_mask=list(MASK),
        steps_computation_policy="static",
    )


def _lists(pipe):
    """The per-block-list entries of ``summary`` (the transformer-level entry left out)."""
    stats = dc.summary(pipe, logging=False)
    return [s for s in stats if s.name != type(pipe.transformer).__name__]


@pytest.mark.parametrize("name", NAMES)
def test_true_cfg_caches_both_branches_step_by_step(tiny, name):
    pipe = tiny(name)
    cls, method = type(pipe.transformer), type(pipe.transformer).cache_context
    reference = _run(pipe, name, **TRUE_CFG)
    plain = _run(pipe, name)

    dc.enable_cache(pipe, _exact())
    assert "cache_context" in vars(pipe.transformer)
    assert torch.equal(_run(pipe, name, **TRUE_CFG), reference)
    for entry in _lists(pipe):
        assert entry.cached_steps == [] and entry.cfg_cached_steps == []
        assert entry.accumulated_executed_steps == STEPS  # a step is two calls, not one
        assert entry.accumulated_transformer_executed_steps == 2 * STEPS
    dc.disable_cache(pipe)

    dc.enable_cache(pipe, _masked())
    cached = _run(pipe, name, **TRUE_CFG)
    stats = _lists(pipe)
    assert stats
    for entry in stats:
        assert entry.cached_steps == MASKED, entry.name
        assert entry.cfg_cached_steps == MASKED, entry.name
    assert torch.isfinite(cached).all()
    assert not torch.equal(cached, reference)

    # a normal request afterwards: one call a step, as before (no CFG branch)
    normal = _run(pipe, name)
    for entry in _lists(pipe):
        assert entry.cached_steps == MASKED and entry.cfg_cached_steps == []
        assert entry.accumulated_transformer_executed_steps == STEPS
    fresh = tiny(name)
    dc.enable_cache(fresh, _masked())
    assert torch.equal(_run(fresh, name), normal)
    dc.disable_cache(fresh)

    dc.disable_cache(pipe)
    assert "cache_context" not in vars(pipe.transformer)
    assert type(pipe.transformer) is cls and cls.cache_context is method
    assert torch.equal(_run(pipe, name, **TRUE_CFG), reference)
    assert torch.equal(_run(pipe, name), plain)


def test_true_cfg_with_dbprune_prunes_each_branch(tiny):
    pipe = tiny("flux")
    reference = _run(pipe, "flux", **TRUE_CFG)
    exact = dc.DBPruneConfig(
        Fn_compute_blocks=1, Bn_compute_blocks=0, residual_diff_threshold=0.0, max_warmup_steps=0
    )
    dc.enable_cache(pipe, exact)
    assert torch.equal(_run(pipe, "flux", **TRUE_CFG), reference)
    entry = _lists(pipe)[0]
    assert len(entry.actual_blocks) == STEPS and len(entry.cfg_actual_blocks) == STEPS
    dc.disable_cache(pipe)

    masked = dc.DBPruneConfig(
        Fn_compute_blocks=1,
        Bn_compute_blocks=0,
        steps_computation_mask=list(MASK),
        steps_computation_policy="static",
    )
    dc.enable_cache(pipe, masked)
    _run(pipe, "flux", **TRUE_CFG)
    entry = _lists(pipe)[0]
    assert entry.pruned_steps == MASKED and entry.cfg_pruned_steps == MASKED
    dc.disable_cache(pipe)


class LastValue:
    """A calibrator that forecasts the last computed value; it logs the steps it was given."""

    def __init__(self) -> None:
        self.value, self.step, self.updates = None, None, []

    def reset(self) -> None:
        self.value, self.updates = None, []

    def mark_step_begin(self, step: int) -> None:
        self.step = step

    def update(self, value: torch.Tensor) -> None:
        self.value = value
        self.updates.append(self.step)

    def approximate(self) -> torch.Tensor | None:
        return self.value


def test_the_cfg_branch_gets_calibrators_of_its_own(tiny):
    pipe = tiny("flux")
    built: list[LastValue] = []

    def builder(config):
        built.append(LastValue())
        return built[-1]

    dc.enable_cache(
        pipe,
        _masked(),
        calibrator_config=TaylorSeerCalibratorConfig(),
        calibrator_builder=builder,
    )
    _run(pipe, "flux")
    assert len(built) == 2  # hidden and encoder streams of the conditional branch only
    built.clear()
    cached = _run(pipe, "flux", **TRUE_CFG)
    dc.disable_cache(pipe)
    assert len(built) == 4  # and of the CFG branch, built at its first call
    computed = [step for step in range(STEPS) if step not in MASKED]
    assert [calibrator.updates for calibrator in built] == [computed] * 4
    assert torch.isfinite(cached).all()


def test_transformer_only_requests_count_named_calls(tiny):
    """Cached as a bare transformer with ``num_inference_steps``: a request is STEPS steps of two
    calls each, so back-to-back requests see the same steps."""
    pipe = tiny("flux")
    dc.enable_cache(pipe.transformer, _masked().update(num_inference_steps=STEPS))
    first = _run(pipe, "flux", **TRUE_CFG)
    stats_first = [(s.cached_steps, s.cfg_cached_steps) for s in _lists(pipe)]
    second = _run(pipe, "flux", **TRUE_CFG)
    stats_second = [(s.cached_steps, s.cfg_cached_steps) for s in _lists(pipe)]
    dc.disable_cache(pipe.transformer)
    assert stats_first == stats_second == [(MASKED, MASKED)]
    assert torch.equal(first, second)


class Named(torch.nn.Module):
    """A transformer with diffusers' ``cache_context`` protocol (a context manager by name)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.blocks = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(3))
        self.names: list[str | None] = []
        self.current: str | None = None

    @contextlib.contextmanager
    def cache_context(self, name: str):
        self.current = name
        try:
            yield
        finally:
            self.current = None

    def forward(self, hidden_states, timestep=None):
        self.names.append(self.current)
        for block in self.blocks:
            hidden_states = torch.tanh(block(hidden_states))
        return hidden_states


def _cache_named(model: Named, config: dc.DBCacheConfig) -> None:
    adapter = dc.BlockAdapter(
        transformer=model, blocks=model.blocks, forward_pattern=ForwardPattern.Pattern_3
    )
    dc.enable_cache(adapter, config)


@pytest.mark.parametrize("order", [("cond", "uncond"), ("uncond", "cond")])
def test_either_call_order_shares_the_step(order):
    model = Named()
    _cache_named(model, _masked().update(num_inference_steps=STEPS))
    for step in range(STEPS):
        for name in order:
            with model.cache_context(name):
                model(torch.ones(1, 4) * step, timestep=STEPS - step)
    stats = dc.summary(model, logging=False)[0]
    assert stats.cached_steps == MASKED and stats.cfg_cached_steps == MASKED
    assert model.names == list(order) * STEPS  # the original cache_context still runs
    dc.disable_cache(model)
    assert "cache_context" not in vars(model)


def test_other_names_and_unnamed_calls_are_steps_as_before():
    """LTX-2's ``"uncond_stg"``, batched ``"cond_uncond"`` and no name: every call is a step."""
    model = Named()
    _cache_named(model, _masked().update(num_inference_steps=STEPS))
    names = ["cond_uncond", "uncond_stg", None, "cond"] * 2
    for step, name in enumerate(names):
        with model.cache_context(name) if name else contextlib.nullcontext():
            model(torch.ones(1, 4) * step, timestep=STEPS - step)
    stats = dc.summary(model, logging=False)[0]
    assert stats.cached_steps == MASKED and stats.cfg_cached_steps == []
    dc.disable_cache(model)


def test_an_instance_cache_context_is_put_back():
    model = Named()
    own = model.cache_context
    model.cache_context = own  # an instance attribute set by someone else
    _cache_named(model, _masked())
    assert vars(model)["cache_context"] is not own
    dc.disable_cache(model)
    assert vars(model)["cache_context"] is own
