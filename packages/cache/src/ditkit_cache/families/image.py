"""Image model families (text-to-image and editing DiTs)."""

from __future__ import annotations

from ditkit_interfaces import BlockSpec, ForwardPattern, TransformerSpec

__all__ = ["IMAGE_FAMILIES"]

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
}
