"""Image model families (text-to-image and editing DiTs).

Block lists and patterns were read from the forwards of diffusers 0.42.1. A family whose forward
does work between blocks inside its loop names a patch functor (``"module:Class"``) that reshapes
it first; :data:`UNSUPPORTED_IMAGE` lists the image transformers left out, with the reason.

A prefix in :data:`PIPELINE_ONLY_IMAGE` is matched by pipeline class names only: it shares its
transformer class with another family (``VisualCloze`` runs a ``FluxTransformer2DModel``), so a
bare transformer resolves to that other family.
"""

from __future__ import annotations

from ditkit_interfaces import BlockSpec, ForwardPattern, TransformerSpec

__all__ = ["IMAGE_FAMILIES", "PIPELINE_ONLY_IMAGE", "UNSUPPORTED_IMAGE"]

P = ForwardPattern
_FUNCTORS = "ditkit_cache.functors"

# Families whose loop adds control-net residuals by block index (FLUX, Qwen-Image, SD3, Sana,
# Bria, Chroma) name a functor that moves each residual into its block; without control samples
# it changes nothing (functors/control_residuals.py).
_CONTROL = f"{_FUNCTORS}.image_controlnet"
_FLUX = TransformerSpec(
    "FluxTransformer2DModel",
    (
        BlockSpec("transformer_blocks", P.Pattern_1),
        BlockSpec("single_transformer_blocks", P.Pattern_1, dummy=True),
    ),
    patch_functor=f"{_CONTROL}:FluxPatchFunctor",
)
# The layers take 'x' (not 'hidden_states') but are called positionally:
# layer(unified, mask, freqs, adaln_input, noise_mask, t_noisy, t_clean) -> unified. Under a control
# net the loop adds controlnet_block_samples[i] after layer i; the functor moves that addition into
# the layers and changes nothing without control samples, so every Z-Image transformer gets it.
_ZIMAGE = TransformerSpec(
    "ZImageTransformer2DModel",
    (BlockSpec("layers", P.Pattern_3),),
    check_forward_pattern=False,
    patch_functor=f"{_FUNCTORS}.image_zimage:ZImageControlNetPatchFunctor",
)
# Blocks in the second half take a long skip from the first half (a stack inside the loop).
_HUNYUAN_DIT = TransformerSpec(
    "HunyuanDiT2DModel",
    (BlockSpec("blocks", P.Pattern_3),),
    patch_functor=f"{_FUNCTORS}.image_hunyuan_dit:HunyuanDiTPatchFunctor",
)
# Flux.3: 5 per-mode blocks per token mode, then 28 joint blocks called
# block(hidden_states=content, encoder_hidden_states=text, ...) -> (text, content). The joint
# blocks are cached; the non-distilled pipelines run CFG through a guider, one call per branch.
_FLUX3 = (BlockSpec("single_transformer_blocks", P.Pattern_1),)
# Qwen-Image 2.1: one joint sequence through transformer_blocks; the functor hands each block its
# own layer of the prefix KV cache and reads the attention processors from the real blocks.
_QWEN_IMAGE21 = (BlockSpec("transformer_blocks", P.Pattern_3),)
_QWEN_IMAGE21_FUNCTOR = f"{_FUNCTORS}.image_qwen_image21:QwenImage21PatchFunctor"

IMAGE_FAMILIES: dict[str, TransformerSpec] = {
    "Flux": _FLUX,
    "QwenImage": TransformerSpec(
        "QwenImageTransformer2DModel",
        (BlockSpec("transformer_blocks", P.Pattern_1),),
        has_separate_cfg=True,
        patch_functor=f"{_CONTROL}:QwenImageControlNetPatchFunctor",
    ),
    "StableDiffusion3": TransformerSpec(
        "SD3Transformer2DModel",
        (BlockSpec("transformer_blocks", P.Pattern_1),),
        patch_functor=f"{_CONTROL}:SD3ControlNetPatchFunctor",
    ),
    "PixArt": TransformerSpec(
        "PixArtTransformer2DModel", (BlockSpec("transformer_blocks", P.Pattern_3),)
    ),
    "Sana": TransformerSpec(
        "SanaTransformer2DModel",
        (BlockSpec("transformer_blocks", P.Pattern_3),),
        patch_functor=f"{_CONTROL}:SanaControlNetPatchFunctor",
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
        patch_functor=f"{_CONTROL}:BriaControlNetPatchFunctor",
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
    "ZImage": _ZIMAGE,
    "ZImageControlNet": _ZIMAGE,
    # Every double- and single-stream block gets its own Llama layer joined to the text stream;
    # the functor moves that into the blocks (double: (hidden, text), single: image + text).
    "HiDream": TransformerSpec(
        "HiDreamImageTransformer2DModel",
        (
            BlockSpec("double_stream_blocks", P.Pattern_0),
            BlockSpec("single_stream_blocks", P.Pattern_3),
        ),
        patch_functor=f"{_FUNCTORS}.image_hidream:HiDreamPatchFunctor",
    ),
    "HunyuanDiT": _HUNYUAN_DIT,
    "HunyuanDiTPAG": _HUNYUAN_DIT,
    # layer(x, rotary_pos_emb, temb_list, attention_mask) -> x, sequence-first (S, B, H); the temb
    # list rebuilt in every iteration holds the same six tensors, so no functor is needed.
    "ErnieImage": TransformerSpec(
        "ErnieImageTransformer2DModel",
        (BlockSpec("layers", P.Pattern_3),),
        check_forward_pattern=False,
    ),
    # Block i reads kv_caches[i] (image editing); the functor hands each block its own.
    "GlmImage": TransformerSpec(
        "GlmImageTransformer2DModel",
        (BlockSpec("transformer_blocks", P.Pattern_0),),
        has_separate_cfg=True,
        patch_functor=f"{_FUNCTORS}.image_glm_image:GlmImagePatchFunctor",
    ),
    # Block k's text stream takes text-encoder layer k in its second half of channels; the single
    # blocks run on [text, image] joined, which stays the stream between them (Pattern_3).
    "BriaFibo": TransformerSpec(
        "BriaFiboTransformer2DModel",
        (
            BlockSpec("transformer_blocks", P.Pattern_1),
            BlockSpec("single_transformer_blocks", P.Pattern_3),
        ),
        patch_functor=f"{_FUNCTORS}.image_bria_fibo:BriaFiboPatchFunctor",
    ),
    # layer(x, mask, freqs, ..., encoder_hidden_states=bundle or None): injection layers read their
    # own text bundle; the functor picks it by layer index. The negative prompt is a second call.
    "BriaFibo2": TransformerSpec(
        "BriaFibo2Transformer2DModel",
        (BlockSpec("layers", P.Pattern_3),),
        has_separate_cfg=True,
        check_forward_pattern=False,
        patch_functor=f"{_FUNCTORS}.image_bria_fibo2:BriaFibo2PatchFunctor",
    ),
    # VisualClozePipeline and VisualClozeGenerationPipeline run FLUX.1's transformer.
    "VisualCloze": _FLUX,
    "Flux3": TransformerSpec("Flux3Transformer2DModel", _FLUX3, has_separate_cfg=True),
    "Flux3Distilled": TransformerSpec("Flux3Transformer2DModel", _FLUX3),  # one call per step
    "QwenImage21": TransformerSpec(
        "QwenImage21Transformer2DModel",
        _QWEN_IMAGE21,
        has_separate_cfg=True,
        patch_functor=_QWEN_IMAGE21_FUNCTOR,
    ),
    "QwenImage21Turbo": TransformerSpec(  # no guidance: one call per step
        "QwenImage21Transformer2DModel", _QWEN_IMAGE21, patch_functor=_QWEN_IMAGE21_FUNCTOR
    ),
    # block(hidden, mask, rotary, adaln_input) -> hidden. The pipeline's asymmetric CFG runs a
    # second transformer (unconditional_transformer), cached with its own contexts.
    "Ideogram4": TransformerSpec(
        "Ideogram4Transformer2DModel", (BlockSpec("layers", P.Pattern_3),)
    ),
    # Single-stream image blocks with per-block text projection for cross-attention keys/values.
    "NucleusMoEImage": TransformerSpec(
        "NucleusMoEImageTransformer2DModel",
        (BlockSpec("transformer_blocks", P.Pattern_2),),
        has_separate_cfg=True,
    ),
}

#: prefixes matched by pipeline class names only (they share their family's transformer class).
PIPELINE_ONLY_IMAGE: frozenset[str] = frozenset(
    {
        "ZImageControlNet",
        "HunyuanDiTPAG",
        "VisualCloze",
        "Flux3Distilled",
        "QwenImage21Turbo",
    }
)

#: image pipelines of diffusers 0.42.1 that ditkit refuses, and why.
UNSUPPORTED_IMAGE: dict[str, str] = {
    "DreamLite": (
        "DreamLitePipeline and DreamLiteMobilePipeline run a DreamLiteUNetModel (a U-Net, the "
        "pipeline's `unet`); DreamLiteTransformer2DModel is the spatial transformer inside its "
        "down/up blocks, called once per resolution level, not a DiT the pipeline calls"
    ),
}
