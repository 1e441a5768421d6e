"""The video patch functors: each one is needed, exact, and fully undone by ``disable_cache``.

``test_families_video.py`` runs every family case through DBCache, the steps mask and DBPrune;
this file checks that without its functor a family's cached forward is wrong (so the functor does
real work) and that ``disable_cache`` leaves no instance attribute or buffer behind. The paths a
plain repeated call does not reach are in ``test_functors_video_paths.py``.
"""

from __future__ import annotations

import pytest
import torch

import ditkit_cache as dc
from ditkit_cache.families.video import VIDEO_FAMILIES
from ditkit_testing.families.video import VIDEO_CASES

STEPS = 4
EXACT = dict(
    Fn_compute_blocks=1, Bn_compute_blocks=0, num_inference_steps=STEPS, residual_diff_threshold=0.0
)
#: family -> its tiny case (the families whose functor moves work into the blocks)
NEEDED = {
    "WanVACE": "wan_vace",
    "WanAnimate": "wan_animate",
    "Latte": "latte",
    "LTX2": "ltx2",
    "Cosmos3": "cosmos3",
    "AceStep": "ace_step",
}
#: functors that change nothing on the default config (they refuse the configs they cannot do)
GUARDS = {"MotifVideo"}
#: Cosmos 3's functor changes which stream decides, not what the blocks compute: without it the
#: threshold-0 run is exact too (its test: test_functors_video_paths.py)
EXACT_WITHOUT = {"Cosmos3"}
TIMESTEP_KEY = {"cosmos3": "vision_timesteps"}


def _sample(output) -> torch.Tensor:
    sample = output[0] if isinstance(output, tuple | list) else output
    return torch.stack(sample) if isinstance(sample, list) else sample


def _calls(transformer, case: str, kwargs: dict) -> list[torch.Tensor]:
    """``STEPS`` calls with decreasing timesteps (twice a step for separate-CFG families)."""
    key = TIMESTEP_KEY.get(case, "timestep")
    family = next(f for f, c in NEEDED.items() if c == case)
    repeats = 2 if VIDEO_FAMILIES[family].has_separate_cfg else 1
    outputs = []
    with torch.no_grad():
        for step in range(STEPS):
            call = dict(kwargs, **{key: kwargs[key] * (1.0 - step / (STEPS + 1))})
            for _ in range(repeats):
                outputs.append(_sample(transformer(**call, return_dict=False)).clone())
    return outputs


def _state(model: torch.nn.Module) -> dict[str, tuple]:
    """Every module's instance attribute names and buffer objects, by path."""
    return {
        path: (frozenset(vars(module)), tuple(map(id, module._buffers.values())))
        for path, module in model.named_modules()
    }


def test_every_video_functor_is_tested_here():
    named = {name for name, spec in VIDEO_FAMILIES.items() if spec.patch_functor}
    control = {"Cosmos", "SanaVideo"}  # control-residual functors: test_controlnet_residuals.py
    assert named - control == set(NEEDED) | GUARDS


@pytest.mark.parametrize("family", sorted(set(NEEDED) - EXACT_WITHOUT))
def test_without_its_functor_the_cached_forward_is_wrong(family):
    case = NEEDED[family]
    transformer, kwargs = VIDEO_CASES[case](0)
    reference = _calls(transformer, case, kwargs)
    before = _state(transformer)

    dc.enable_cache(dc.get_adapter(transformer, patch_functor=None), dc.DBCacheConfig(**EXACT))
    try:
        outputs = _calls(transformer, case, kwargs)
    except (TypeError, AttributeError, RuntimeError, ValueError):  # the stand-in cannot cope
        outputs = None
    finally:
        dc.disable_cache(transformer)
    assert outputs is None or not all(map(torch.equal, outputs, reference))
    _assert_exact_and_restored(transformer, case, kwargs, reference, before)


@pytest.mark.parametrize("family", sorted(EXACT_WITHOUT))
def test_with_its_functor_the_cached_forward_is_exact_and_restored(family):
    case = NEEDED[family]
    transformer, kwargs = VIDEO_CASES[case](0)
    reference = _calls(transformer, case, kwargs)
    _assert_exact_and_restored(transformer, case, kwargs, reference, _state(transformer))


def _assert_exact_and_restored(transformer, case, kwargs, reference, before):
    dc.enable_cache(dc.get_adapter(transformer), dc.DBCacheConfig(**EXACT))
    try:
        assert dc.PatchFunctor.is_patched(transformer)
        assert all(map(torch.equal, _calls(transformer, case, kwargs), reference))
    finally:
        dc.disable_cache(transformer)
    assert not dc.PatchFunctor.is_patched(transformer)
    assert _state(transformer) == before, "restore leaves no attribute or buffer behind"
    assert all(map(torch.equal, _calls(transformer, case, kwargs), reference))


@pytest.mark.parametrize("family", sorted(NEEDED))
def test_the_functor_alone_changes_no_output(family):
    """Patched but not cached (the state between ``apply`` and installing the cache)."""
    case = NEEDED[family]
    transformer, kwargs = VIDEO_CASES[case](0)
    reference = _calls(transformer, case, kwargs)
    functor = dc.get_adapter(transformer).patch_functor
    functor.apply(transformer)
    try:
        assert all(map(torch.equal, _calls(transformer, case, kwargs), reference))
    finally:
        dc.PatchFunctor.restore(transformer)
    assert "forward" not in vars(transformer)
