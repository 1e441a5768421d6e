"""Every video/audio family on the transformer-only path, with a tiny random model.

For each registered family: threshold 0 is bit-identical to no cache; a static mask caches
exactly the masked steps and changes the output; ``disable_cache`` restores the uncached output;
DBPrune prunes at threshold 0.5 and is bit-identical at threshold 0.
"""

import pytest
import torch

import ditkit_cache as dc
from ditkit_cache.families.video import VIDEO_FAMILIES
from ditkit_cache.registry import BlockAdapterRegister
from ditkit_testing.families.video import VIDEO_CASES

STEPS = 8
TIMESTEPS = torch.linspace(999.0, 100.0, STEPS)
MASK = [1, 1, 1, 0, 1, 0, 0, 1]

#: test case -> registry prefix it exercises
CASE_FAMILY = {
    "hunyuan_video": "HunyuanVideo",
    "ltx_video": "LTX",
    "cogvideox": "CogVideoX",
    "consisid": "ConsisID",
    "mochi": "Mochi",
    "allegro": "Allegro",
    "easyanimate": "EasyAnimate",
    "skyreels_v2": "SkyReelsV2",
    "chronoedit": "ChronoEdit",
    "cosmos": "Cosmos",
    "stable_audio": "StableAudio",
    "hunyuan_video15": "HunyuanVideo15",
    "helios": "Helios",
    "anyflow": "AnyFlow",
    "kandinsky5": "Kandinsky5",
    "hunyuan_video_framepack": "HunyuanVideoFramepack",
    "sana_video": "SanaVideo",
    "sana_wm": "SanaWM",
    "stable_audio3": "StableAudio3",
    "kandinsky6": "Kandinsky6",
    "kandinsky6_sr": "Kandinsky6SR",
    "motif_video": "MotifVideo",
    "minimax_h3": "MiniMaxH3",
    "minimax_music3": "MiniMaxMusic3",
    "joyimage_edit": "JoyImage",
    "joyimage_edit_plus": "JoyImageEditPlus",
    "ace_step": "AceStep",
    "wan_vace": "WanVACE",
    "wan_animate": "WanAnimate",
    "ltx2": "LTX2",
    "latte": "Latte",
    "cosmos3": "Cosmos3",
}
#: the timestep argument of the cases that do not call it ``timestep``
TIMESTEP_KEY = {"cosmos3": "vision_timesteps"}
CASES = sorted(CASE_FAMILY)


@pytest.fixture(scope="module")
def models():
    """One tiny model per case (built once; every test leaves it uncached)."""
    return {}


def _model(models, name):
    if name not in models:
        models[name] = VIDEO_CASES[name](0)
    transformer, kwargs = models[name]
    key = TIMESTEP_KEY.get(name, "timestep")
    return transformer, kwargs, key


def _sample(output) -> torch.Tensor:
    """The (video) sample of one call: the first output; a list of per-item latents is stacked."""
    sample = output[0] if isinstance(output, tuple | list) else output
    return torch.stack(sample) if isinstance(sample, list) else sample


def _run(transformer, kwargs, separate_cfg, key="timestep"):
    """``STEPS`` denoising steps (two calls a step when CFG is a separate call)."""
    base = kwargs[key]
    outputs = []
    with torch.no_grad():
        for value in TIMESTEPS:
            step = dict(kwargs, **{key: base * (float(value) / TIMESTEPS[0].item())})
            for _ in range(2 if separate_cfg else 1):
                outputs.append(_sample(transformer(**step, return_dict=False)))
    return torch.stack(outputs)


def _cfg(name):
    return VIDEO_FAMILIES[CASE_FAMILY[name]].has_separate_cfg


def test_every_family_has_a_case():
    assert set(CASE_FAMILY.values()) | {"Wan"} == set(VIDEO_FAMILIES)
    assert set(CASES) <= set(VIDEO_CASES)


@pytest.mark.parametrize("name", CASES)
def test_registry_matches_the_transformer(models, name):
    transformer, _, _ = _model(models, name)
    spec = VIDEO_FAMILIES[CASE_FAMILY[name]]
    assert type(transformer).__name__ == spec.transformer_class
    assert BlockAdapterRegister.is_supported(transformer)
    adapter = BlockAdapterRegister.get_adapter(transformer)
    assert adapter.has_separate_cfg == spec.has_separate_cfg


@pytest.mark.parametrize("name", CASES)
def test_dbcache(models, name):
    transformer, kwargs, key = _model(models, name)
    cfg = _cfg(name)
    reference = _run(transformer, kwargs, cfg, key)
    assert torch.isfinite(reference).all()

    exact = dc.DBCacheConfig(
        Fn_compute_blocks=1,
        residual_diff_threshold=0.0,
        max_warmup_steps=0,
        num_inference_steps=STEPS,
    )
    dc.enable_cache(transformer, exact)
    try:
        assert torch.equal(_run(transformer, kwargs, cfg, key), reference)
        assert dc.summary(transformer, logging=False)[0].cached_steps == []
    finally:
        dc.disable_cache(transformer)

    masked = dc.DBCacheConfig(
        Fn_compute_blocks=1,
        steps_computation_mask=MASK,
        steps_computation_policy="static",
        num_inference_steps=STEPS,
    )
    dc.enable_cache(transformer, masked)
    try:
        cached = _run(transformer, kwargs, cfg, key)
        stats = dc.summary(transformer, logging=False)[0]
    finally:
        dc.disable_cache(transformer)
    expected = [i for i, m in enumerate(MASK) if m == 0]
    assert stats.cached_steps == expected
    if cfg:
        assert stats.cfg_cached_steps == expected
    assert not torch.equal(cached, reference)
    assert torch.isfinite(cached).all()
    assert torch.equal(_run(transformer, kwargs, cfg, key), reference)


@pytest.mark.parametrize("name", CASES)
def test_dbprune(models, name):
    transformer, kwargs, key = _model(models, name)
    cfg = _cfg(name)
    reference = _run(transformer, kwargs, cfg, key)

    dc.enable_cache(
        transformer,
        dc.DBPruneConfig(
            Fn_compute_blocks=1,
            residual_diff_threshold=0.0,
            max_warmup_steps=0,
            num_inference_steps=STEPS,
        ),
    )
    try:
        assert torch.equal(_run(transformer, kwargs, cfg, key), reference)
        stats = dc.summary(transformer, logging=False)[0]
        assert sum(stats.pruned_blocks) == 0
    finally:
        dc.disable_cache(transformer)

    dc.enable_cache(
        transformer,
        dc.DBPruneConfig(
            Fn_compute_blocks=1,
            residual_diff_threshold=0.5,
            max_warmup_steps=2,
            num_inference_steps=STEPS,
        ),
    )
    try:
        pruned = _run(transformer, kwargs, cfg, key)
        stats = dc.summary(transformer, logging=False)[0]
    finally:
        dc.disable_cache(transformer)
    assert sum(stats.pruned_blocks) + sum(stats.cfg_pruned_blocks) >= 1
    assert torch.isfinite(pruned).all()
    assert torch.equal(_run(transformer, kwargs, cfg, key), reference)
