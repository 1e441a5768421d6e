"""Pipeline-only video prefixes: newer pipelines named like an older family get the right spec.

``SanaImageToVideoPipeline`` runs a ``SanaVideoTransformer3DModel`` but starts with ``Sana``
(FLUX-era Sana's prefix); ``Wan22VaceModularPipeline`` runs ``WanVACETransformer3DModel`` but
starts with ``Wan``. Without their own pipeline-only prefixes the registry handed them the older
family's spec, whose class check refused them. Pipeline-shaped objects here are plain classes
named like diffusers' pipelines (the registry matches ``type(pipe).__name__``) holding the tiny
video cases; each calls its transformer once per step, twice when CFG is a separate call.
"""

from __future__ import annotations

import pytest
import torch

import ditkit_cache as dc
from ditkit_cache.families import (
    PIPELINE_ONLY,
    PIPELINE_ONLY_IMAGE,
    PIPELINE_ONLY_VIDEO,
    PIPELINE_ONLY_VIDEO_FAMILIES,
    VIDEO_FAMILIES,
)
from ditkit_cache.registry import FAMILY_SPECS, BlockAdapterRegister
from ditkit_interfaces import UnsupportedModelError
from ditkit_testing.families import VIDEO_CASES

Registry = BlockAdapterRegister
STEPS = 6
MASK = [1, 1, 0, 1, 0, 1]

#: pipeline class -> (pipeline-only prefix, family owning the class, tiny case)
PIPELINES = {
    "SanaImageToVideoPipeline": ("SanaImageToVideo", "SanaVideo", "sana_video"),
    "Wan22VaceModularPipeline": ("Wan22Vace", "WanVACE", "wan_vace"),
}


class StepsPipeline:
    """Calls each transformer once per step (twice with separate CFG), timesteps decreasing."""

    names: tuple[str, ...] = ("transformer",)
    calls = 1

    def __init__(self, inputs: dict, **transformers: torch.nn.Module) -> None:
        self.inputs = inputs
        for name, transformer in transformers.items():
            setattr(self, name, transformer)

    def __call__(self) -> torch.Tensor:
        outputs = []
        with torch.no_grad():
            for step in range(STEPS):
                timestep = self.inputs["timestep"] * (1.0 - step / (STEPS + 1))
                for name in self.names:
                    for _ in range(self.calls):
                        call = dict(self.inputs, timestep=timestep, return_dict=False)
                        outputs.append(getattr(self, name)(**call)[0])
        return torch.stack(outputs)


def _pipeline(name: str, inputs: dict, calls: int, **transformers: torch.nn.Module):
    attributes = {"names": tuple(transformers), "calls": calls}
    return type(name, (StepsPipeline,), attributes)(inputs, **transformers)


def _prefix(name: str) -> str:
    factory = Registry._adapters.match(name)
    return next(p for p, f in Registry._adapters._handlers.items() if f is factory)


def test_pipeline_only_is_image_and_video():
    assert PIPELINE_ONLY == PIPELINE_ONLY_IMAGE | PIPELINE_ONLY_VIDEO
    assert {"SanaImageToVideo", "Wan22Vace"} == PIPELINE_ONLY_VIDEO
    assert not PIPELINE_ONLY_VIDEO & set(VIDEO_FAMILIES)  # one video prefix per class
    names = dc.supported_pipelines()[1]
    assert {"SanaImageToVideo*", "Wan22Vace*"} <= set(names)
    owners = Registry._transformer_prefixes._handlers
    for prefix, spec in PIPELINE_ONLY_VIDEO_FAMILIES.items():
        assert FAMILY_SPECS[prefix] is spec and prefix not in owners.values()
        assert owners[spec.transformer_class] not in PIPELINE_ONLY


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_resolves_by_pipeline_name_to_the_owning_familys_spec(name):
    prefix, owner, _ = PIPELINES[name]
    assert _prefix(name) == prefix and Registry.is_supported(name)
    assert Registry.family(name) is FAMILY_SPECS[owner] is VIDEO_FAMILIES[owner]
    assert Registry.has_separate_cfg(name) is VIDEO_FAMILIES[owner].has_separate_cfg
    # the shorter prefixes keep their own families
    older = {"SanaImageToVideoPipeline": "SanaPipeline", "Wan22VaceModularPipeline": "Wan22"}
    assert Registry.family(older[name]) is not FAMILY_SPECS[owner]


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_cached_through_the_pipeline_name(name):
    _, owner, case = PIPELINES[name]
    spec = VIDEO_FAMILIES[owner]
    transformer, inputs = VIDEO_CASES[case](0)
    calls = 2 if spec.has_separate_cfg else 1
    pipe = _pipeline(name, inputs, calls, transformer=transformer)
    assert Registry._key(transformer) == owner  # the bare transformer stays its family's
    adapter = dc.get_adapter(pipe)
    assert adapter.pipe is pipe and adapter.transformer is transformer
    assert adapter.blocks_name == list(spec.block_names())
    assert (adapter.patch_functor is None) is (spec.patch_functor is None)

    uncached = pipe()
    config = dict(Fn_compute_blocks=1, Bn_compute_blocks=0, num_inference_steps=STEPS)
    dc.enable_cache(pipe, dc.DBCacheConfig(residual_diff_threshold=0.0, **config))
    assert torch.equal(pipe(), uncached)
    dc.disable_cache(pipe)
    masked = dict(config, steps_computation_mask=MASK, steps_computation_policy="static")
    dc.enable_cache(pipe, dc.DBCacheConfig(**masked))
    cached = pipe()
    stats = dc.summary(pipe, logging=False)[0]
    dc.disable_cache(pipe)
    assert stats.cached_steps == [2, 4]
    assert stats.cfg_cached_steps == ([2, 4] if calls == 2 else [])
    computed = 2 * calls  # the outputs of steps 0 and 1
    assert not torch.equal(cached, uncached) and torch.equal(cached[:computed], uncached[:computed])
    assert torch.equal(pipe(), uncached)


def test_wan22_vace_caches_both_experts():
    high, inputs = VIDEO_CASES["wan_vace"](0)
    low, _ = VIDEO_CASES["wan_vace"](1)
    pipe = _pipeline("Wan22VaceModularPipeline", inputs, 2, transformer=high, transformer_2=low)
    adapter = dc.get_adapter(pipe)
    assert adapter.transformer == [high, low]
    assert adapter.blocks_name == [["blocks"], ["blocks"]]


def test_a_pipeline_holding_another_class_is_still_refused():
    sana, inputs = VIDEO_CASES["sana_video"](0)
    pipe = _pipeline("Wan22VaceModularPipeline", inputs, 2, transformer=sana)
    with pytest.raises(UnsupportedModelError, match="WanVACETransformer3DModel"):
        dc.get_adapter(pipe)
