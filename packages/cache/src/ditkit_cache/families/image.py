"""Image model families (text-to-image and editing DiTs).

Block lists and patterns were read from the forwards of diffusers 0.42.1. A family whose forward
does work between blocks inside its loop names a patch functor (``"module:Class"``) that reshapes
it first; :data:`UNSUPPORTED_IMAGE` lists the image transformers left out, with the reason.
"""

from __future__ import annotations

from ditkit_interfaces import BlockSpec, ForwardPattern, TransformerSpec

__all__ = ["IMAGE_FAMILIES", "UNSUPPORTED_IMAGE"]

P = ForwardPattern

IMAGE_FAMILIES: dict[str, TransformerSpec] = {
    "Flux": TransformerSpec(
        "FluxTransformer2DModel",
        (
            BlockSpec("transformer_blocks", P.Pattern_1),
            BlockSpec("single_transformer_blocks", P.Pattern_1, dummy=True),
        ),
    ),
    "QwenImage": TransformerSpec(
        "QwenImageTransformer2DModel",
        (BlockSpec("transformer_blocks", P.Pattern_1),),
        has_separate_cfg=True,
    ),
    "StableDiffusion3": TransformerSpec(
        "SD3Transformer2DModel", (BlockSpec("transformer_blocks", P.Pattern_1),)
    ),
    "PixArt": TransformerSpec(
        "PixArtTransformer2DModel", (BlockSpec("transformer_blocks", P.Pattern_3),)
    ),
    "Sana": TransformerSpec(
        "SanaTransformer2DModel", (BlockSpec("transformer_blocks", P.Pattern_3),)
    ),
    "AuraFlow": TransformerSpec(
        "AuraFlowTransformer2DModel",
        (
            BlockSpec("joint_transformer_blocks", P.Pattern_1),
            BlockSpec("single_transformer_blocks", P.Pattern_3),
        ),
    ),
    "Lumina2": TransformerSpec(
        "Lumina2Transformer2DModel", (BlockSpec("layers", P.Pattern_3),), has_separate_cfg=True
    ),
    "Lumina": TransformerSpec("LuminaNextDiT2DModel", (BlockSpec("layers", P.Pattern_3),)),
    "CogView3Plus": TransformerSpec(
        "CogView3PlusTransformer2DModel", (BlockSpec("transformer_blocks", P.Pattern_0),)
    ),
    "CogView4": TransformerSpec(
        "CogView4Transformer2DModel",
        (BlockSpec("transformer_blocks", P.Pattern_0),),
        has_separate_cfg=True,
    ),
    "Flux2": TransformerSpec(
        "Flux2Transformer2DModel",
        (
            BlockSpec("transformer_blocks", P.Pattern_1),
            BlockSpec("single_transformer_blocks", P.Pattern_3),
        ),
    ),
    "OvisImage": TransformerSpec(
        "OvisImageTransformer2DModel",
        (
            BlockSpec("transformer_blocks", P.Pattern_1),
            BlockSpec("single_transformer_blocks", P.Pattern_1),
        ),
        has_separate_cfg=True,
    ),
    "LongCatImage": TransformerSpec(
        "LongCatImageTransformer2DModel",
        (
            BlockSpec("transformer_blocks", P.Pattern_1),
            BlockSpec("single_transformer_blocks", P.Pattern_1),
        ),
        has_separate_cfg=True,
    ),
    # cache-dit says Pattern_0 for both lists; in diffusers 0.42.1 both return (encoder, hidden)
    "Bria": TransformerSpec(
        "BriaTransformer2DModel",
        (
            BlockSpec("transformer_blocks", P.Pattern_1),
            BlockSpec("single_transformer_blocks", P.Pattern_1),
        ),
    ),
    "OmniGen": TransformerSpec("OmniGenTransformer2DModel", (BlockSpec("layers", P.Pattern_3),)),
    "PRX": TransformerSpec("PRXTransformer2DModel", (BlockSpec("blocks", P.Pattern_3),)),
    "Krea2": TransformerSpec(
        "Krea2Transformer2DModel",
        (BlockSpec("transformer_blocks", P.Pattern_3),),
        has_separate_cfg=True,
    ),
    "DiT": TransformerSpec(
        "DiTTransformer2DModel",
        (BlockSpec("transformer_blocks", P.Pattern_3),),
        patch_functor="ditkit_cache.functors.image_dit:DiTPatchFunctor",
    ),
    "Chroma": TransformerSpec(
        "ChromaTransformer2DModel",
        (
            BlockSpec("transformer_blocks", P.Pattern_1),
            BlockSpec("single_transformer_blocks", P.Pattern_3),
        ),
        has_separate_cfg=True,
        patch_functor="ditkit_cache.functors.image_chroma:ChromaPatchFunctor",
    ),
    # Both lists are called block(hidden, encoder, temb, attention_mask=, image_rotary_emb=) and
    # return (hidden, encoder); the single-stream blocks annotate '-> torch.Tensor', which the
    # signature check would reject. The pipeline's guider runs CFG as two calls.
    "HunyuanImage": TransformerSpec(
        "HunyuanImageTransformer2DModel",
        (
            BlockSpec("transformer_blocks", P.Pattern_0),
            BlockSpec("single_transformer_blocks", P.Pattern_0),
        ),
        has_separate_cfg=True,
        check_forward_pattern=False,
    ),
    # The layers take 'x' (not 'hidden_states') but are called positionally:
    # layer(unified, mask, freqs, adaln_input, noise_mask, t_noisy, t_clean) -> unified. Only a
    # control net adds work between layers ("ZImageControlNet" below).
    "ZImage": TransformerSpec(
        "ZImageTransformer2DModel",
        (BlockSpec("layers", P.Pattern_3),),
        check_forward_pattern=False,
    ),
}

#: image transformers of diffusers 0.42.1 that cache-dit registers but ditkit leaves out, and why.
UNSUPPORTED_IMAGE: dict[str, str] = {
    "ZImageControlNet": (
        "ZImageTransformer2DModel under a control net: the loop adds controlnet_block_samples["
        "layer_idx] after each layer, between blocks; needs a patch functor that is not written "
        "yet (cache-dit: ZImageControlNetPatchFunctor)"
    ),
    "HiDream": (
        "HiDreamImageTransformer2DModel: its loop concatenates a per-block Llama layer onto the "
        "text stream before every block and truncates after it (double and single stream); "
        "needs a patch functor that is not written yet"
    ),
    "HunyuanDiT": (
        "HunyuanDiT2DModel: long skip connections (block i+N/2 takes the output of block N/2-i) "
        "are kept in a list inside the loop; needs a patch functor that is not written yet"
    ),
    "GlmImage": (
        "GlmImageTransformer2DModel: passes kv_caches[idx] (per-block KV cache for image "
        "editing) by loop index; needs a patch functor that is not written yet"
    ),
    "BriaFibo": (
        "BriaFiboTransformer2DModel: feeds a per-block text-encoder layer into every block "
        "inside the loop; needs a patch functor that is not written yet"
    ),
    "ErnieImage": (
        "ErnieImageTransformer2DModel: its layers take 'x' and positional arguments, which the "
        "forward-pattern check rejects and a TransformerSpec cannot turn off; cache-dit uses a "
        "patch functor and check_forward_pattern=False"
    ),
    "VisualCloze": (
        "a Flux pipeline (FluxTransformer2DModel, P1+P1): the registry maps every spec's "
        "transformer class to one prefix, so a pipeline-only prefix on Flux's class cannot be "
        "expressed as data; VisualClozePipeline is not a 'Flux*' name either"
    ),
}
