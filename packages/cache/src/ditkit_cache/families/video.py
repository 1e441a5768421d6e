"""Video model families (text/image-to-video DiTs)."""

from __future__ import annotations

from ditkit_interfaces import BlockSpec, ForwardPattern, TransformerSpec

__all__ = ["VIDEO_FAMILIES"]

P = ForwardPattern

VIDEO_FAMILIES: dict[str, TransformerSpec] = {
    "Wan": TransformerSpec(
        "WanTransformer3DModel", (BlockSpec("blocks", P.Pattern_2),), has_separate_cfg=True
    ),
}
