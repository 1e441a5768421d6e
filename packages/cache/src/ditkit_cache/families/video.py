"""Video (and audio) model families: text/image-to-video, audio and audio-video DiTs.

Patterns, read off each diffusers 0.42.1 forward: P0 blocks take and return
``(hidden_states, encoder_hidden_states)``; P2 blocks take both and return ``hidden_states``;
P3 blocks are called ``block(hidden_states, *args)`` and return ``hidden_states``. A family whose
loop does work between blocks names a patch functor (``"module:Class"``) that moves the work into
the blocks first; :data:`UNSUPPORTED_VIDEO` lists the families left out, with the reason.

Several families share a pipeline-name prefix with an older one (``SanaVideo``/``Sana``,
``WanAnimate``/``Wan``, ``StableAudio3``/``StableAudio``, ``Kandinsky6SR``/``Kandinsky6``): the
registry matches the longest prefix, so each is keyed by its own, longer prefix. Two pipelines
hold a newer class under a name the older family's prefix would match:
``SanaImageToVideoPipeline`` (``SanaVideoTransformer3DModel``, not ``Sana``'s class) and
``Wan22VaceModularPipeline`` (``WanVACETransformer3DModel``, not ``Wan``'s). Their prefixes are in
:data:`PIPELINE_ONLY_VIDEO_FAMILIES`: matched by pipeline class names only, with the spec of the
family that owns the class, so a bare transformer still resolves to that family.
"""

from __future__ import annotations

from ditkit_interfaces import BlockSpec, ForwardPattern, TransformerSpec

__all__ = [
    "PIPELINE_ONLY_VIDEO",
    "PIPELINE_ONLY_VIDEO_FAMILIES",
    "UNSUPPORTED_VIDEO",
    "VIDEO_FAMILIES",
]

P = ForwardPattern
_FUNCTORS = "ditkit_cache.functors"


def _one(
    cls: str,
    attribute: str,
    pattern: ForwardPattern,
    cfg: bool = False,
    functor: str | None = None,
    check: bool = True,
) -> TransformerSpec:
    return TransformerSpec(
        cls,
        (BlockSpec(attribute, pattern),),
        has_separate_cfg=cfg,
        patch_functor=f"{_FUNCTORS}.{functor}" if functor else None,
        check_forward_pattern=check,
    )


# specs that a pipeline-only prefix shares (see PIPELINE_ONLY_VIDEO)
# Sana-Video adds control-net residuals in its loop by Sana's rule; the functor moves them into
# the blocks (a no-op without control samples).
_SANA_VIDEO = _one(
    "SanaVideoTransformer3DModel",
    "transformer_blocks",
    P.Pattern_3,
    functor="image_controlnet:SanaControlNetPatchFunctor",
)
_WAN_VACE = _one(
    "WanVACETransformer3DModel",
    "blocks",
    P.Pattern_2,
    cfg=True,
    functor="video_wan_vace:WanVACEPatchFunctor",
)

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
    # Cosmos-Transfer passes each block its control residual by index; the functor hands each
    # real block its own (a no-op without control samples)
    "Cosmos": _one(
        "CosmosTransformer3DModel",
        "transformer_blocks",
        P.Pattern_2,
        cfg=True,
        functor="video_controlnet:CosmosControlNetPatchFunctor",
    ),
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
    # dual-stream then single-stream blocks, as HunyuanVideo, plus packed history latents
    "HunyuanVideoFramepack": TransformerSpec(
        "HunyuanVideoFramepackTransformer3DModel",
        (
            BlockSpec("transformer_blocks", P.Pattern_0),
            BlockSpec("single_transformer_blocks", P.Pattern_0),
        ),
    ),
    # block(hidden, attention_mask, encoder_hidden_states, ...) -> hidden, as Sana; CFG batched
    "SanaVideo": _SANA_VIDEO,
    # block(x, y, t0, y_lens, ...) -> x: the text stream is the second positional input
    "SanaWM": _one("SanaWMTransformer3DModel", "blocks", P.Pattern_2, check=False),
    # block(hidden_states, context=..., global_modulation=..., ...) -> hidden_states
    "StableAudio3": _one("StableAudio3DiTModel", "transformer_blocks", P.Pattern_3),
    # fused blocks: block(visual, audio, video_text, audio_text, ...) -> (visual, audio): the
    # audio (None for video-only calls) plays the encoder stream
    "Kandinsky6": _one(
        "Kandinsky6Transformer3DModel",
        "visual_transformer_blocks",
        P.Pattern_0,
        cfg=True,
        check=False,
    ),
    "Kandinsky6SR": _one(
        "Kandinsky6SRTransformer3DModel", "visual_transformer_blocks", P.Pattern_3
    ),
    # the single-stream blocks return both streams (annotated as one tensor); the pipelines run
    # CFG through a guider, one call per branch; the functor refuses decoder-layer configs
    "MotifVideo": TransformerSpec(
        "MotifVideoTransformer3DModel",
        (
            BlockSpec("transformer_blocks", P.Pattern_0),
            BlockSpec("single_transformer_blocks", P.Pattern_0),
        ),
        has_separate_cfg=True,
        patch_functor=f"{_FUNCTORS}.video_motif_video:MotifVideoPatchFunctor",
        check_forward_pattern=False,
    ),
    # one packed sequence (text, video and audio rows): block(hidden, temb, adaln_indices, rope)
    "MiniMaxH3": _one("MiniMaxH3Transformer3DModel", "transformer_blocks", P.Pattern_3),
    # block(hidden_states, rotary_emb); the modular pipeline's guider runs one call per branch
    "MiniMaxMusic3": _one(
        "MiniMaxMusic3Transformer1DModel", "transformer_blocks", P.Pattern_3, cfg=True
    ),
    # double-stream blocks called by keyword; the edit pipeline runs CFG as a second call, the
    # edit-plus pipeline batches it
    "JoyImage": _one("JoyImageEditTransformer3DModel", "double_blocks", P.Pattern_0, cfg=True),
    "JoyImageEditPlus": _one("JoyImageEditPlusTransformer3DModel", "double_blocks", P.Pattern_0),
    # layers called by keyword; each layer's attention mask depends on its index (functor)
    "AceStep": _one(
        "AceStepTransformer1DModel",
        "layers",
        P.Pattern_3,
        functor="video_ace_step:AceStepPatchFunctor",
    ),
    # control hints are added between blocks (functor)
    "WanVACE": _WAN_VACE,
    # a face adapter runs after every inject_face_latents_blocks-th block (functor)
    "WanAnimate": _one(
        "WanAnimateTransformer3DModel",
        "blocks",
        P.Pattern_2,
        cfg=True,
        functor="video_wan_animate:WanAnimatePatchFunctor",
    ),
    # (video, audio) streams; the audio is the P0 encoder stream (functor passes it by position;
    # guidance-branch calls run uncached). Blocks are annotated as returning one tensor.
    "LTX2": _one(
        "LTX2VideoTransformer3DModel",
        "transformer_blocks",
        P.Pattern_0,
        functor="video_ltx2:LTX2PatchFunctor",
        check=False,
    ),
    # spatial blocks alternate with temporal blocks in one loop; the functor runs each temporal
    # step inside its spatial block, and only the spatial list is cached
    "Latte": _one(
        "LatteTransformer3DModel",
        "transformer_blocks",
        P.Pattern_3,
        functor="video_latte:LattePatchFunctor",
    ),
    # MoT layers (und, gen) -> (und, gen): the functor makes the generation stream the hidden one
    "Cosmos3": _one(
        "Cosmos3OmniTransformer",
        "layers",
        P.Pattern_0,
        cfg=True,
        functor="video_cosmos3:Cosmos3OmniPatchFunctor",
        check=False,
    ),
}

#: pipeline-only prefix -> the spec of the family that owns its pipelines' transformer class
#: (kept out of :data:`VIDEO_FAMILIES`, which holds one prefix per transformer class).
PIPELINE_ONLY_VIDEO_FAMILIES: dict[str, TransformerSpec] = {
    "SanaImageToVideo": _SANA_VIDEO,  # SanaImageToVideoPipeline: batched CFG, as SanaVideo
    "Wan22Vace": _WAN_VACE,  # Wan22VaceModularPipeline: one guider call per CFG branch
}

#: prefixes matched by pipeline class names only (they share their family's transformer class).
PIPELINE_ONLY_VIDEO: frozenset[str] = frozenset(PIPELINE_ONLY_VIDEO_FAMILIES)

#: Families left out (cache-dit's, and newer diffusers classes), with the reason.
UNSUPPORTED_VIDEO: dict[str, str] = {
    "AnyFlowFAR": (
        "AnyFlowFARTransformer3DModel denoises chunk by chunk autoregressively: every block "
        "reads and writes its own KV cache (kv_cache[index]) and full cache-prefill passes "
        "(kv_cache_flag['is_cache_step']) must run every block, while each chunk restarts the "
        "scheduler; a cached list would skip blocks in those passes (cache-dit documents DBCache "
        "as unsupported on FAR too)"
    ),
    "WanAnimate2": (
        "WanAnimate2Transformer3DModel passes each block its own slot of a reference KV cache "
        "(kv_cache.get(index)) that a separate kv_cache_mode='extract' call fills, skips block 9 "
        "for the unconditional branch, attends through a flex-attention BlockMask, and returns a "
        "list of per-sample tensors; needs a patch functor that is not written yet"
    ),
}
