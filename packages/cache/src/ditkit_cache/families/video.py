"""Video (and audio) model families: text/image-to-video and audio DiTs.

Patterns, read off each diffusers 0.42.1 forward: P0 blocks take and return
``(hidden_states, encoder_hidden_states)``; P2 blocks take both and return ``hidden_states``;
P3 blocks are called ``block(hidden_states, *args)`` and return ``hidden_states``.
"""

from __future__ import annotations

from ditkit_interfaces import BlockSpec, ForwardPattern, TransformerSpec

__all__ = ["UNSUPPORTED_VIDEO", "VIDEO_FAMILIES"]

P = ForwardPattern


def _one(cls: str, attribute: str, pattern: ForwardPattern, cfg: bool = False) -> TransformerSpec:
    return TransformerSpec(cls, (BlockSpec(attribute, pattern),), has_separate_cfg=cfg)


VIDEO_FAMILIES: dict[str, TransformerSpec] = {
    "Wan": TransformerSpec(
        "WanTransformer3DModel", (BlockSpec("blocks", P.Pattern_2),), has_separate_cfg=True
    ),
    # dual-stream blocks, then single-stream blocks that also carry the text stream
    "HunyuanVideo": TransformerSpec(
        "HunyuanVideoTransformer3DModel",
        (
            BlockSpec("transformer_blocks", P.Pattern_0),
            BlockSpec("single_transformer_blocks", P.Pattern_0),
        ),
    ),
    # one dual-stream list; the pipeline runs CFG as a second call
    "HunyuanVideo15": _one(
        "HunyuanVideo15Transformer3DModel", "transformer_blocks", P.Pattern_0, cfg=True
    ),
    "LTX": _one("LTXVideoTransformer3DModel", "transformer_blocks", P.Pattern_2),
    "CogVideoX": _one("CogVideoXTransformer3DModel", "transformer_blocks", P.Pattern_0),
    "ConsisID": _one("ConsisIDTransformer3DModel", "transformer_blocks", P.Pattern_0),
    "Mochi": _one("MochiTransformer3DModel", "transformer_blocks", P.Pattern_0),
    "Allegro": _one("AllegroTransformer3DModel", "transformer_blocks", P.Pattern_2),
    "EasyAnimate": _one("EasyAnimateTransformer3DModel", "transformer_blocks", P.Pattern_0),
    # the text stream is passed positionally: P3 forwards it through *args untouched
    "SkyReelsV2": _one("SkyReelsV2Transformer3DModel", "blocks", P.Pattern_3, cfg=True),
    "ChronoEdit": _one("ChronoEditTransformer3DModel", "blocks", P.Pattern_2, cfg=True),
    "Cosmos": _one("CosmosTransformer3DModel", "transformer_blocks", P.Pattern_2, cfg=True),
    "Helios": _one("HeliosTransformer3DModel", "blocks", P.Pattern_2, cfg=True),
    "AnyFlow": _one("AnyFlowTransformer3DModel", "blocks", P.Pattern_2),
    "StableAudio": _one("StableAudioDiTModel", "transformer_blocks", P.Pattern_3),
    # visual_transformer_blocks take 'visual_embed' (no 'hidden_states') but are called
    # positionally: block(visual, text, time, rope, sparse_params) -> visual; the text stream
    # rides in *args untouched and nothing runs between blocks
    "Kandinsky5": TransformerSpec(
        "Kandinsky5Transformer3DModel",
        (BlockSpec("visual_transformer_blocks", P.Pattern_3),),
        has_separate_cfg=True,
        check_forward_pattern=False,
    ),
}

#: Families cache-dit registers that ditkit leaves out, with the reason.
UNSUPPORTED_VIDEO: dict[str, str] = {
    "WanVACE": (
        "WanVACETransformer3DModel adds control hints between blocks inside its loop: needs a "
        "patch functor, which is not written yet"
    ),
    "LTX2": (
        "LTX2VideoTransformer3DModel's blocks take and return (video, audio) streams (P0 with "
        "audio as the encoder stream) and cache-dit reshapes its forward with LTX2PatchFunctor; "
        "needs a functor resolved from the spec"
    ),
    "Cosmos3": (
        "Cosmos3OmniTransformer (MoT und/gen streams) needs a functor reordering the block "
        "contract; not written yet"
    ),
}
