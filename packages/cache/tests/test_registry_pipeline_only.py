"""Registry resolution by pipeline class name: pipeline-only prefixes, longest prefixes, extras.

A pipeline-only prefix (``VisualCloze``: its pipelines run ``FluxTransformer2DModel``) is matched
by pipeline class names only, while a bare transformer keeps resolving to the family that owns its
class. Pipeline-shaped objects here are plain classes named like diffusers' pipelines (the
registry matches ``type(pipe).__name__``), holding tiny random transformers.
"""

from __future__ import annotations

import pytest
import torch

import ditkit_cache as dc
from ditkit_cache.registry import FAMILY_SPECS, PIPELINE_ONLY, BlockAdapterRegister
from ditkit_interfaces import UnsupportedModelError
from ditkit_testing.families import IMAGE_CASES

STEPS = 6
MASK = [1, 1, 0, 1, 0, 1]
Registry = BlockAdapterRegister


class StepsPipeline:
    """Calls each of its transformers once per step with decreasing timesteps."""

    names = ("transformer",)

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
                    output = getattr(self, name)(**dict(self.inputs, timestep=timestep))[0]
                    outputs.append(output)
        return torch.stack(outputs)


def _pipeline(name: str, inputs: dict, **transformers: torch.nn.Module) -> StepsPipeline:
    cls = type(name, (StepsPipeline,), {"names": tuple(transformers)})
    return cls(inputs, **transformers)


def _flux() -> tuple[torch.nn.Module, dict]:
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=8,
        num_layers=1,
        num_single_layers=2,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=16,
        pooled_projection_dim=8,
        axes_dims_rope=(2, 2, 4),
    ).eval()
    inputs = dict(
        hidden_states=torch.randn(1, 16, 8),
        encoder_hidden_states=torch.randn(1, 6, 16),
        pooled_projections=torch.randn(1, 8),
        timestep=torch.tensor([0.999]),
        img_ids=torch.zeros(16, 3),
        txt_ids=torch.zeros(6, 3),
        return_dict=False,
    )
    rows, columns = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
    inputs["img_ids"][:, 1], inputs["img_ids"][:, 2] = rows.flatten(), columns.flatten()
    return transformer, inputs


def _prefix(name: str) -> str:
    factory = Registry._adapters.match(name)
    return next(p for p, f in Registry._adapters._handlers.items() if f is factory)


def test_pipeline_only_prefixes_never_claim_a_transformer():
    owners = Registry._transformer_prefixes._handlers
    for prefix in PIPELINE_ONLY:
        spec = FAMILY_SPECS[prefix]
        assert prefix not in owners.values()
        owner = owners[spec.transformer_class]
        assert owner not in PIPELINE_ONLY and FAMILY_SPECS[owner].blocks == spec.blocks
        assert Registry._key(spec.transformer_class) == owner
    assert {"VisualCloze*", "ZImageControlNet*", "HunyuanDiTPAG*"} <= set(
        dc.supported_pipelines()[1]
    )


@pytest.mark.parametrize("name", ["VisualClozePipeline", "VisualClozeGenerationPipeline"])
def test_visualcloze_runs_flux_through_its_pipeline_name(name):
    transformer, inputs = _flux()
    pipe = _pipeline(name, inputs, transformer=transformer)
    assert _prefix(name) == "VisualCloze" and Registry.is_supported(pipe)
    assert Registry.family(pipe) is FAMILY_SPECS["Flux"] and not Registry.has_separate_cfg(pipe)
    adapter = dc.get_adapter(pipe)
    assert adapter.pipe is pipe and adapter.transformer is transformer
    assert adapter.blocks_name == ["transformer_blocks"]
    assert adapter.dummy_blocks_names == ["single_transformer_blocks"]
    bare = dc.get_adapter(transformer)  # the bare transformer stays FLUX.1's
    assert Registry._key(transformer) == "Flux" and bare.blocks_name == adapter.blocks_name

    uncached = pipe()
    config = dict(Fn_compute_blocks=1, Bn_compute_blocks=0, num_inference_steps=STEPS)
    dc.enable_cache(pipe, dc.DBCacheConfig(residual_diff_threshold=0.0, **config))
    assert torch.equal(pipe(), uncached) and torch.equal(pipe(), uncached)
    dc.disable_cache(pipe)
    masked = dict(config, steps_computation_mask=MASK, steps_computation_policy="static")
    dc.enable_cache(pipe, dc.DBCacheConfig(**masked))
    cached = pipe()
    assert dc.summary(pipe, logging=False)[0].cached_steps == [2, 4]
    assert not torch.equal(cached, uncached) and torch.equal(cached[:2], uncached[:2])
    dc.disable_cache(pipe)
    assert type(pipe).__name__ == name and torch.equal(pipe(), uncached)


FAMILY_OF = [
    ("QwenImage21Pipeline", "QwenImage21", True),
    ("QwenImage21ModularPipeline", "QwenImage21", True),
    ("QwenImage21TurboModularPipeline", "QwenImage21Turbo", False),
    ("QwenImageEditPlusPipeline", "QwenImage", True),
    ("Flux3ModularPipeline", "Flux3", True),
    ("Flux3DistilledModularPipeline", "Flux3Distilled", False),
    ("FluxKontextPipeline", "Flux", False),
    ("JoyImageEditPipeline", "JoyImage", True),
    ("JoyImageEditPlusPipeline", "JoyImageEditPlus", False),
    ("BriaFibo2Pipeline", "BriaFibo2", True),
    ("BriaFiboEditPipeline", "BriaFibo", False),
    ("BriaPipeline", "Bria", False),
    ("HunyuanDiTPipeline", "HunyuanDiT", False),
    ("HunyuanDiTPAGPipeline", "HunyuanDiTPAG", False),
    ("ZImageControlNetInpaintPipeline", "ZImageControlNet", False),
    ("ZImagePipeline", "ZImage", False),
    ("HiDreamImagePipeline", "HiDream", False),
    ("GlmImagePipeline", "GlmImage", True),
    ("ErnieImagePipeline", "ErnieImage", False),
    ("Ideogram4Pipeline", "Ideogram4", False),
    ("NucleusMoEImagePipeline", "NucleusMoEImage", True),
    ("Krea2Pipeline", "Krea2", True),  # the spec decides, not cache-dit's prefix list
]


@pytest.mark.parametrize(("name", "prefix", "separate_cfg"), FAMILY_OF)
def test_longest_prefix_and_separate_cfg(name, prefix, separate_cfg):
    assert _prefix(name) == prefix and Registry.is_supported(name)
    assert Registry.family(name) is FAMILY_SPECS[prefix]
    assert Registry.has_separate_cfg(name) is separate_cfg


def test_custom_factories_keep_cache_dits_cfg_list():
    @Registry.register("BooguImage")
    def boogu(pipe, **kwargs):  # pragma: no cover - never called
        raise AssertionError

    try:
        assert Registry.family("BooguImagePipeline") is None
        assert Registry.has_separate_cfg("BooguImagePipeline")
    finally:
        Registry._adapters._handlers.pop("BooguImage")


def test_a_pipeline_holding_another_class_is_refused():
    transformer, inputs = _flux()
    pipe = _pipeline("QwenImage21Pipeline", inputs, transformer=transformer)
    with pytest.raises(UnsupportedModelError, match="QwenImage21Transformer2DModel"):
        dc.get_adapter(pipe)


def test_dreamlite_is_refused_with_the_reason():
    pipe = _pipeline("DreamLitePipeline", {}, transformer=torch.nn.Linear(1, 1))
    assert not Registry.is_supported(pipe) and "DreamLite*" not in dc.supported_pipelines()[1]
    with pytest.raises(UnsupportedModelError, match="U-Net"):
        dc.get_adapter(pipe)


def test_ideogram4_caches_its_unconditional_transformer_too():
    conditional, inputs = IMAGE_CASES["Ideogram4"](0)
    unconditional, _ = IMAGE_CASES["Ideogram4"](1)
    pipe = _pipeline(
        "Ideogram4Pipeline",
        inputs,
        transformer=conditional,
        unconditional_transformer=unconditional,
    )
    adapter = dc.get_adapter(pipe)
    assert adapter.transformer == [conditional, unconditional]
    uncached = pipe()
    config = dict(Fn_compute_blocks=1, Bn_compute_blocks=0, num_inference_steps=STEPS)
    dc.enable_cache(pipe, dc.DBCacheConfig(residual_diff_threshold=0.0, **config))
    assert torch.equal(pipe(), uncached)
    dc.disable_cache(pipe)
    masked = dict(config, steps_computation_mask=MASK, steps_computation_policy="static")
    dc.enable_cache(pipe, dc.DBCacheConfig(**masked))
    cached = pipe()
    for transformer in (conditional, unconditional):  # each with its own contexts
        assert dc.summary(transformer, logging=False)[0].cached_steps == [2, 4]
    assert not torch.equal(cached[0::2], uncached[0::2])
    assert not torch.equal(cached[1::2], uncached[1::2])
    dc.disable_cache(pipe)
    assert torch.equal(pipe(), uncached)
