"""The tensor-parallel plans of the supported diffusers transformers, as data.

Every plan follows the Megatron pattern per block: the query/key/value projections (and the
text-stream ``add_*`` projections) are colwise, the attention output projections rowwise, the
MLP input colwise and its output rowwise, so each block costs one all-reduce per rowwise layer
and its inputs and outputs stay whole on every rank. AdaLN modulation linears are colwise with
a gathered (replicated) output. Embedders, the final norm and ``proj_out`` stay replicated:
they are small and run once per step.

:func:`register_tp_plan` adds a plan under a class-name prefix (the longest prefix wins);
:func:`tp_plan_for` finds the plan of a transformer.
"""

from __future__ import annotations

from torch import nn

from ditkit_interfaces.registry import NameRegistry

from .plan import BlockPlan, Colwise, Modulation, Rowwise, TensorParallelPlan

__all__ = [
    "COGVIDEOX_PLAN",
    "FLUX2_PLAN",
    "FLUX_PLAN",
    "HUNYUAN_VIDEO_PLAN",
    "LTX_PLAN",
    "QWEN_IMAGE_PLAN",
    "TP_PLANS",
    "WAN_PLAN",
    "ZIMAGE_PLAN",
    "register_tp_plan",
    "registered_tp_prefixes",
    "tp_plan_for",
]

COL, ROW, MOD = Colwise(), Rowwise(), Modulation()
FFN_IN, FFN_OUT = Colwise(("ffn",)), Rowwise(("ffn",))


def _attention(prefix: str, added: bool = False, out: str = "to_out.0") -> dict:
    """q/k/v colwise and the output rowwise (plus the text stream's projections if ``added``)."""
    layers = {f"{prefix}.to_{name}": COL for name in "qkv"}
    if out:
        layers[f"{prefix}.{out}"] = ROW
    if added:
        layers.update({f"{prefix}.add_{name}_proj": COL for name in "qkv"})
        layers[f"{prefix}.to_add_out"] = ROW
    return layers


def _mlp(prefix: str) -> dict:
    """A diffusers ``FeedForward``: ``net.0.proj`` colwise, ``net.2`` rowwise."""
    return {f"{prefix}.net.0.proj": FFN_IN, f"{prefix}.net.2": FFN_OUT}


def _single_stream(prefix: str = "single_transformer_blocks.*") -> BlockPlan:
    """Flux-style single block: ``proj_out`` reads ``[attention | mlp]`` and is packed."""
    return BlockPlan(
        prefix,
        {
            **_attention("attn", out=""),
            "proj_mlp": FFN_IN,
            "proj_out": Rowwise(("heads", "ffn")),
            "norm.linear": MOD,
        },
        attrs={"mlp_hidden_dim": "ffn"},
    )


#: FLUX.1 (and Chroma, whose pruned AdaLN norms have no linear: those entries are skipped).
FLUX_PLAN = TensorParallelPlan(
    "Flux",
    (
        BlockPlan(
            "transformer_blocks.*",
            {
                **_attention("attn", added=True),
                **_mlp("ff"),
                **_mlp("ff_context"),
                "norm1.linear": MOD,
                "norm1_context.linear": MOD,
            },
        ),
        _single_stream(),
    ),
)

#: FLUX.2: SwiGLU MLPs whose input projection is ``[gate | up]``; single blocks fuse
#: ``[q | k | v | gate | up]`` in one projection and read ``[attention | mlp]`` in ``to_out``.
#: The modulations are shared by all blocks (computed once at the top) and stay replicated.
FLUX2_PLAN = TensorParallelPlan(
    "Flux2",
    (
        BlockPlan(
            "transformer_blocks.*",
            {
                **_attention("attn", added=True),
                **{f"{ff}.linear_in": Colwise(("ffn", "ffn")) for ff in ("ff", "ff_context")},
                **{f"{ff}.linear_out": FFN_OUT for ff in ("ff", "ff_context")},
            },
            attrs={"mlp_hidden_dim": "ffn"},
        ),
        BlockPlan(
            "single_transformer_blocks.*",
            {
                "attn.to_qkv_mlp_proj": Colwise(("heads", "heads", "heads", "ffn", "ffn")),
                "attn.to_out": Rowwise(("heads", "ffn")),
            },
            attrs={"attn.mlp_hidden_dim": "ffn"},
        ),
    ),
    notes="the three Flux2Modulation linears are shared by all blocks and stay replicated",
)

QWEN_IMAGE_PLAN = TensorParallelPlan(
    "QwenImage",
    (
        BlockPlan(
            "transformer_blocks.*",
            {
                **_attention("attn", added=True),
                **_mlp("img_mlp"),
                **_mlp("txt_mlp"),
                "img_mod.1": MOD,
                "txt_mod.1": MOD,
            },
        ),
    ),
)

#: Wan 2.1 / 2.2 (T2V, I2V): self- and cross-attention; ``norm_q``/``norm_k`` are RMSNorms
#: over all heads and become :class:`~.norms.ShardedRMSNorm`. The I2V image projections
#: (``attn2.add_k_proj``/``add_v_proj``) exist only in I2V models.
WAN_PLAN = TensorParallelPlan(
    "Wan",
    (
        BlockPlan(
            "blocks.*",
            {
                **_attention("attn1"),
                **_attention("attn2"),
                "attn2.add_k_proj": COL,
                "attn2.add_v_proj": COL,
                **_mlp("ffn"),
            },
            attention=("attn1", "attn2"),
        ),
    ),
    notes="the per-block scale_shift_table is a parameter (no linear) and stays replicated",
)

#: HunyuanVideo: Flux-like double and single blocks plus the text token refiner.
HUNYUAN_VIDEO_PLAN = TensorParallelPlan(
    "HunyuanVideo",
    (
        FLUX_PLAN.blocks[0],
        _single_stream(),
        BlockPlan(
            "context_embedder.token_refiner.refiner_blocks.*",
            {**_attention("attn"), **_mlp("ff"), "norm_out.linear": MOD},
        ),
    ),
)

COGVIDEOX_PLAN = TensorParallelPlan(
    "CogVideoX",
    (
        BlockPlan(
            "transformer_blocks.*",
            {**_attention("attn1"), **_mlp("ff"), "norm1.linear": MOD, "norm2.linear": MOD},
            attention=("attn1",),
        ),
    ),
)

#: LTX-Video: query/key RMSNorms over all heads, and a rotary embedding over all heads that
#: each rank slices to its own heads.
LTX_PLAN = TensorParallelPlan(
    "LTX",
    (
        BlockPlan(
            "transformer_blocks.*",
            {**_attention("attn1"), **_attention("attn2"), **_mlp("ff")},
            attention=("attn1", "attn2"),
        ),
    ),
    head_outputs=("rope",),
    notes="the per-block scale_shift_table is a parameter (no linear) and stays replicated",
)


def _zimage_block(pattern: str, required: bool = True) -> BlockPlan:
    return BlockPlan(
        pattern,
        {
            **_attention("attention"),
            "feed_forward.w1": FFN_IN,
            "feed_forward.w3": FFN_IN,
            "feed_forward.w2": FFN_OUT,
            "adaLN_modulation.0": MOD,
        },
        attention=("attention",),
        required=required,
    )


#: Z-Image: SwiGLU MLP with separate ``w1``/``w3`` (colwise) and ``w2`` (rowwise); the noise,
#: context (and Omni's SigLIP) refiners are blocks of the same class.
ZIMAGE_PLAN = TensorParallelPlan(
    "ZImage",
    (
        _zimage_block("layers.*"),
        _zimage_block("noise_refiner.*"),
        _zimage_block("context_refiner.*"),
        _zimage_block("siglip_refiner.*", required=False),
    ),
)

#: class-name prefix → plan (the longest matching prefix wins).
TP_PLANS: NameRegistry[TensorParallelPlan] = NameRegistry("tensor-parallel plans")
for _prefix, _plan in (
    ("FluxTransformer2DModel", FLUX_PLAN),
    ("ChromaTransformer2DModel", FLUX_PLAN),
    ("Flux2Transformer2DModel", FLUX2_PLAN),
    ("QwenImageTransformer2DModel", QWEN_IMAGE_PLAN),
    ("WanTransformer3DModel", WAN_PLAN),
    ("HunyuanVideoTransformer3DModel", HUNYUAN_VIDEO_PLAN),
    ("CogVideoXTransformer3DModel", COGVIDEOX_PLAN),
    ("LTXVideoTransformer3DModel", LTX_PLAN),
    ("ZImageTransformer2DModel", ZIMAGE_PLAN),
):
    TP_PLANS.add(_prefix, _plan)


def register_tp_plan(prefix: str, plan: TensorParallelPlan, *, replace: bool = False) -> None:
    """Use ``plan`` for transformers whose class name starts with ``prefix``."""
    TP_PLANS.add(prefix, plan, replace=replace)


def registered_tp_prefixes() -> list[str]:
    """The class-name prefixes that have a plan."""
    return TP_PLANS.prefixes()


def tp_plan_for(model: nn.Module) -> TensorParallelPlan | None:
    """The registered plan of ``model``'s class (or of a base class), or ``None``."""
    for cls in type(model).__mro__:
        plan = TP_PLANS.match(cls.__name__)
        if plan is not None:
            return plan
    return None
