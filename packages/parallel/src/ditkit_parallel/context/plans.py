"""Built-in context-parallel plans of the diffusers 0.42 transformers, as data.

Each plan says where a model's token sequences first exist at full length (split there),
where rotary tables are computed for the full sequence (split the module's outputs), which
masks carry keys (split them like the keys) and where the output must be whole again (gather).
Notes per family:

- **Flux / FLUX.2**: text and image tokens and their position ids are split at the input, so
  the rotary table built from ``cat(txt_ids, img_ids)`` matches the local ``[text, image]``
  tokens; ControlNet residuals are split like the image tokens. FLUX.2's KV-cache reference
  modes are not supported under CP.
- **Qwen-Image**: tokens are split at the first block (the text length for RoPE is read from
  the full text before); the rotary tables, ``encoder_hidden_states_mask`` and
  ``modulate_index`` are split for every block.
- **Wan 2.1 / 2.2**: image tokens are split at the first block; text stays whole because
  diffusers keeps Wan's cross-attention local (``parallel_config=None``). Wan 2.2 TI2V's
  per-token timestep (``(B, S)``) is split at the input.
- **HunyuanVideo**: the mask over ``[video, text]`` is built at full length in ``forward``;
  each block takes this rank's pieces of both segments. The token-replace I2V variant (which
  indexes first-frame tokens) is not supported.
- **CogVideoX**: the rotary table is an input (split at the input); its processor is replaced
  (it calls SDPA directly).
- **LTX-Video**: text is split with its mask, so cross-attention runs context-parallel too.
- **Z-Image**: the image and caption refiners each run on split tokens and gather after their
  last layer; the unified sequence is split again at the first main layer, with its padding
  mask, rotary table and (omni mode) noise mask.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ditkit_interfaces import UnsupportedModelError

from .plan import CPPlan, Gather, ModulePlan, Split

__all__ = ["BUILTIN_PLANS"]

TOKENS = Split(1, ndim=3)  # (B, S, C)
TOKEN_MASK = Split(1, ndim=2)  # (B, S)
GATHER_TOKENS = ModulePlan(gather=Gather(1, ndim=3))
IDS = Split(-2)  # (S, n_axes), or the deprecated (1, S, n_axes)


def _flux_plan(name: str, *token_inputs: str) -> CPPlan:
    """Flux-style: text and image tokens and their position ids (and ``token_inputs``, laid out
    like the image tokens) split at the input, the output gathered at ``proj_out``."""
    inputs = {
        "hidden_states": TOKENS,
        "encoder_hidden_states": TOKENS,
        "img_ids": IDS,
        "txt_ids": IDS,
    }
    inputs.update(dict.fromkeys(token_inputs, TOKENS))
    return CPPlan({"": ModulePlan(inputs=inputs), "proj_out": GATHER_TOKENS}, name=name)


FLUX = _flux_plan(
    "FluxTransformer2DModel", "controlnet_block_samples", "controlnet_single_block_samples"
)
FLUX2 = _flux_plan("Flux2Transformer2DModel")

QWEN_IMAGE = CPPlan(
    {
        "": ModulePlan(inputs={"controlnet_block_samples": TOKENS}),
        "pos_embed": ModulePlan(outputs={0: Split(0, ndim=2), 1: Split(0, ndim=2)}),
        "transformer_blocks.0": ModulePlan(
            inputs={"hidden_states": TOKENS, "encoder_hidden_states": TOKENS}
        ),
        "transformer_blocks.*": ModulePlan(
            inputs={"encoder_hidden_states_mask": TOKEN_MASK, "modulate_index": TOKEN_MASK}
        ),
        "proj_out": GATHER_TOKENS,
    },
    name="QwenImageTransformer2DModel",
)

WAN = CPPlan(
    {
        "": ModulePlan(inputs={"timestep": Split(1, ndim=2)}),
        "rope": ModulePlan(outputs={0: Split(1, ndim=4), 1: Split(1, ndim=4)}),
        "blocks.0": ModulePlan(inputs={"hidden_states": TOKENS}),
        "proj_out": GATHER_TOKENS,
    },
    name="WanTransformer3DModel",
)

_VIDEO_TEXT_MASK = Split(-1, ndim=4, segments=("hidden_states", "encoder_hidden_states"))

HUNYUAN_VIDEO = CPPlan(
    {
        "rope": ModulePlan(outputs={0: Split(0, ndim=2), 1: Split(0, ndim=2)}),
        "transformer_blocks.0": ModulePlan(
            inputs={"hidden_states": TOKENS, "encoder_hidden_states": TOKENS}
        ),
        "transformer_blocks.*": ModulePlan(inputs={"attention_mask": _VIDEO_TEXT_MASK}),
        "single_transformer_blocks.*": ModulePlan(inputs={"attention_mask": _VIDEO_TEXT_MASK}),
        "proj_out": GATHER_TOKENS,
    },
    # the token refiner attends over the whole text before any split: it stays local
    attention=("transformer_blocks.*.attn", "single_transformer_blocks.*.attn"),
    name="HunyuanVideoTransformer3DModel",
)

COGVIDEOX = CPPlan(
    {
        "": ModulePlan(inputs={"image_rotary_emb": Split(0, ndim=2)}),
        "transformer_blocks.0": ModulePlan(
            inputs={"hidden_states": TOKENS, "encoder_hidden_states": TOKENS}
        ),
        "proj_out": GATHER_TOKENS,
    },
    name="CogVideoXTransformer3DModel",
)

LTX_VIDEO = CPPlan(
    {
        "": ModulePlan(
            inputs={
                "hidden_states": TOKENS,
                "encoder_hidden_states": TOKENS,
                "encoder_attention_mask": TOKEN_MASK,
            }
        ),
        "rope": ModulePlan(outputs={0: Split(1, ndim=3), 1: Split(1, ndim=3)}),
        "proj_out": GATHER_TOKENS,
    },
    name="LTXVideoTransformer3DModel",
)


def hunyuan_video_plan(transformer: Any) -> CPPlan:
    """HunyuanVideo's plan; refuses the token-replace I2V variant."""
    if getattr(transformer.config, "image_condition_type", None) == "token_replace":
        raise UnsupportedModelError(
            "context parallelism does not support HunyuanVideo's token_replace image "
            "conditioning (its blocks index first-frame tokens of the full sequence); pass a "
            "ParallelismConfig(cp_plan=...) of your own or run it without context parallelism"
        )
    return HUNYUAN_VIDEO


def zimage_plan(transformer: Any) -> CPPlan:
    """Z-Image's plan: refiners split and gather, the main layers split the unified sequence."""
    per_layer = {"attn_mask": TOKEN_MASK, "freqs_cis": Split(1, ndim=3), "noise_mask": TOKEN_MASK}
    modules: dict[str, ModulePlan] = {
        "": ModulePlan(inputs={"controlnet_block_samples": TOKENS}),
        "layers.0": ModulePlan(inputs={"x": TOKENS}),
        "layers.*": ModulePlan(inputs=per_layer),
        "all_final_layer.*": ModulePlan(
            inputs={"noise_mask": TOKEN_MASK}, gather=Gather(1, ndim=3)
        ),
    }
    for name in ("noise_refiner", "context_refiner", "siglip_refiner"):
        layers = getattr(transformer, name, None)
        if not layers:
            continue
        last = len(layers) - 1  # one refiner layer: split and gather on the same module
        modules[f"{name}.0"] = ModulePlan(
            inputs={"x": TOKENS}, gather=Gather(1, ndim=3) if last == 0 else None
        )
        modules[f"{name}.*"] = ModulePlan(inputs=per_layer)
        if last > 0:
            modules[f"{name}.{last}"] = GATHER_TOKENS
    return CPPlan(modules, name="ZImageTransformer2DModel")


#: class-name prefix -> plan, or ``factory(transformer) -> plan`` for config-dependent plans.
BUILTIN_PLANS: dict[str, CPPlan | Callable[[Any], CPPlan]] = {
    "FluxTransformer2DModel": FLUX,
    "Flux2Transformer2DModel": FLUX2,
    "QwenImageTransformer2DModel": QWEN_IMAGE,
    "WanTransformer3DModel": WAN,
    "HunyuanVideoTransformer3DModel": hunyuan_video_plan,
    "CogVideoXTransformer3DModel": COGVIDEOX,
    "LTXVideoTransformer3DModel": LTX_VIDEO,
    "ZImageTransformer2DModel": zimage_plan,
}
