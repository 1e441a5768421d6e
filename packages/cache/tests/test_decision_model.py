"""An independent pure-Python model of the DBCache rules agrees with the engine step by step.

The model is written from the reference (cache-dit 1.5.3 §3.2-3.4), not from the engine: it
replays the per-step diffs the engine recorded and must reproduce the engine's cached steps and
the exact set of steps at which a diff was measured.
"""

import pytest

import ditkit_cache as dc
from ditkit_testing import run_tiny_pipeline as run


def model_cached_steps(config, diffs, cfg_reuse=None):
    """Replay the rules for one branch. ``diffs``: {step: diff} measured by the engine."""
    mask = config.steps_computation_mask
    leading = len(mask) if mask and all(mask) else (mask.index(0) if mask else None)
    limit = config.max_warmup_steps if mask is None else min(config.max_warmup_steps, leading)
    warmup = set(range(0, limit, config.warmup_interval))
    cached, measured, accumulated, streak, computed_once = [], [], 0.0, 0, False
    for step in range(config.num_inference_steps):
        if cached and cached[-1] != step - 1:
            streak = 0
        accumulated_cap = config.max_accumulated_residual_diff_threshold or 0.0
        if step in warmup:
            decision = False
        elif mask is not None and step < len(mask) and mask[step] == 1:
            decision = False
        elif mask is not None and config.steps_computation_policy == "static":
            decision = computed_once
        elif 0 <= config.max_cached_steps <= len(cached):
            decision = False
        elif 0 <= config.max_continuous_cached_steps <= streak:
            decision = False
        elif accumulated_cap > 0 and accumulated >= accumulated_cap:
            decision = False
        elif not computed_once:
            decision = False
        else:
            diff = diffs[step] if cfg_reuse is None or step not in cfg_reuse else cfg_reuse[step]
            measured.append(step)
            accumulated += diff if diff > 0 else 0.0
            decision = diff < config.residual_diff_threshold
        if decision:
            cached.append(step)
            streak += 1
        else:
            computed_once = True
    return cached, measured


CONFIGS = {
    "plain": dict(residual_diff_threshold=0.3, max_warmup_steps=4),
    "interval": dict(residual_diff_threshold=0.3, max_warmup_steps=6, warmup_interval=2),
    "max_cached": dict(residual_diff_threshold=0.4, max_warmup_steps=2, max_cached_steps=5),
    "max_continuous": dict(
        residual_diff_threshold=0.5, max_warmup_steps=2, max_continuous_cached_steps=2
    ),
    "accumulated": dict(
        residual_diff_threshold=0.5, max_warmup_steps=2, max_accumulated_residual_diff_threshold=2.0
    ),
    "dynamic_mask": dict(
        residual_diff_threshold=0.3,
        max_warmup_steps=8,
        steps_computation_mask=[1] * 4 + [0, 1, 0, 0] * 6,
        steps_computation_policy="dynamic",
    ),
    "static_mask": dict(
        steps_computation_mask=[1] * 5 + [0, 0, 1] * 7 + [1, 1], steps_computation_policy="static"
    ),
}


@pytest.mark.parametrize("case", sorted(CONFIGS))
@pytest.mark.parametrize("name", ["flux", "wan"])
def test_engine_matches_the_rule_model(tiny, name, case):
    pipe = tiny(name)
    config = dc.DBCacheConfig(Fn_compute_blocks=1, num_inference_steps=28, **CONFIGS[case])
    if name == "wan":
        config.update(residual_diff_threshold=config.residual_diff_threshold / 4)
    dc.enable_cache(pipe, config)
    run(pipe, name)
    stats = dc.summary(pipe, logging=False)[0]
    for cached_steps, recorded in (
        (stats.cached_steps, stats.residual_diffs),
        (stats.cfg_cached_steps, stats.cfg_residual_diffs),
    ):
        if name == "flux" and recorded is stats.cfg_residual_diffs:
            assert cached_steps == [] and recorded == {}
            continue
        diffs = {int(k): v for k, v in recorded.items()}
        expected, measured = model_cached_steps(config, diffs)
        assert cached_steps == expected
        assert sorted(diffs) == measured
    assert stats.cached_steps or case == "max_cached"


@pytest.mark.parametrize(
    ("compute_first", "separate_diff"), [(False, True), (False, False), (True, False)]
)
def test_cfg_modes_match_the_rule_model(tiny, compute_first, separate_diff):
    pipe = tiny("qwen_image")
    config = dc.DBCacheConfig(
        Fn_compute_blocks=1,
        residual_diff_threshold=0.3,
        max_warmup_steps=3,
        num_inference_steps=28,
        enable_separate_cfg=True,
        cfg_compute_first=compute_first,
        cfg_diff_compute_separate=separate_diff,
    )
    dc.enable_cache(pipe, config)
    run(pipe, "qwen_image")
    stats = dc.summary(pipe, logging=False)[0]
    cond = {int(k): v for k, v in stats.residual_diffs.items()}
    cfg = {int(k): v for k, v in stats.cfg_residual_diffs.items()}
    if compute_first:
        # the CFG call comes first: it measures; the conditional call reuses nothing
        assert model_cached_steps(config, cfg)[0] == stats.cfg_cached_steps
        assert model_cached_steps(config, cond)[0] == stats.cached_steps
    else:
        assert model_cached_steps(config, cond)[0] == stats.cached_steps
        reuse = cond if not separate_diff else None
        assert model_cached_steps(config, cfg, cfg_reuse=reuse)[0] == stats.cfg_cached_steps
        if not separate_diff:
            assert stats.cfg_cached_steps == stats.cached_steps
            assert all(cfg[k] == cond[k] for k in cfg)
    assert stats.cached_steps
