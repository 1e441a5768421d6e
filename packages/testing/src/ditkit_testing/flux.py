"""Tiny random-weight :class:`~diffusers.FluxPipeline` (FLUX.1-dev layout, built offline).

Real diffusers and transformers classes with tiny configs: a
:class:`~diffusers.FluxTransformer2DModel` with 2 double-stream and 4 single-stream blocks
(2 heads × 16 dims, guidance embedding as in FLUX.1-dev), a :class:`~transformers.CLIPTextModel`
and a :class:`~transformers.T5EncoderModel` with local tokenizers, an
:class:`~diffusers.AutoencoderKL` with 16 latent channels and a spatial factor of 4, and
FLUX.1-dev's dynamic-shift :class:`~diffusers.FlowMatchEulerDiscreteScheduler`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .components import TINY_T5_ENCODER_CONFIG, build_component, seeded_generator
from .tokenizers import build_clip_tokenizer, build_t5_tokenizer

if TYPE_CHECKING:
    from diffusers import FluxPipeline, FluxTransformer2DModel

__all__ = [
    "CLIP_CONFIG",
    "PIPELINE_CLASS",
    "SCHEDULER_CONFIG",
    "T5_CONFIG",
    "TRANSFORMER_CONFIG",
    "VAE_CONFIG",
    "build_pipeline",
    "build_transformer",
    "call_kwargs",
]

#: the diffusers pipeline class :func:`build_pipeline` returns (the registry matches its name).
PIPELINE_CLASS = "FluxPipeline"

#: :class:`~diffusers.FluxTransformer2DModel` config: 2 double + 4 single blocks, hidden 32.
TRANSFORMER_CONFIG: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 64,  # 16 latent channels packed 2×2, as in FLUX.1
    "out_channels": None,
    "num_layers": 2,
    "num_single_layers": 4,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": 32,  # = T5 d_model
    "pooled_projection_dim": 32,  # = CLIP hidden size
    "guidance_embeds": True,
    "axes_dims_rope": (4, 6, 6),  # sums to attention_head_dim
}

#: :class:`~transformers.CLIPTextConfig` (vocabulary and special ids come from the tokenizer).
CLIP_CONFIG: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "max_position_embeddings": 77,
    "projection_dim": 32,
    "hidden_act": "quick_gelu",
}

#: The T5 v1.1-style text encoder (gated GELU); shared with Wan's UMT5.
T5_CONFIG: dict[str, Any] = TINY_T5_ENCODER_CONFIG

#: :class:`~diffusers.AutoencoderKL` config: 16 latent channels, spatial factor 4.
VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 3,
    "up_block_types": ("UpDecoderBlock2D",) * 3,
    "block_out_channels": (8, 16, 16),
    "layers_per_block": 1,
    "latent_channels": 16,
    "norm_num_groups": 4,
    "sample_size": 64,
    "scaling_factor": 0.3611,  # FLUX.1 values
    "shift_factor": 0.1159,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "mid_block_add_attention": True,
}

#: FLUX.1-dev's :class:`~diffusers.FlowMatchEulerDiscreteScheduler` config.
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
}


def build_transformer(seed: int = 0, dtype: torch.dtype | None = None) -> FluxTransformer2DModel:
    """The tiny :class:`~diffusers.FluxTransformer2DModel` alone (same weights as in the pipeline).

    Example:
        >>> t = build_transformer(seed=0)
        >>> len(t.transformer_blocks), len(t.single_transformer_blocks)
        (2, 4)
    """
    from diffusers import FluxTransformer2DModel

    return build_component(
        lambda: FluxTransformer2DModel(**TRANSFORMER_CONFIG), seed, "transformer", dtype
    )


def build_pipeline(seed: int = 0, dtype: torch.dtype | None = None) -> FluxPipeline:
    """A tiny :class:`~diffusers.FluxPipeline` with random weights fixed by ``seed``.

    Example:
        >>> pipe = build_pipeline(seed=0)
        >>> image = pipe(**call_kwargs(num_inference_steps=2)).images
        >>> tuple(image.shape)
        (1, 3, 64, 64)
    """
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    tokenizer = build_clip_tokenizer()
    tokenizer_2 = build_t5_tokenizer()
    clip_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **CLIP_CONFIG,
    )
    t5_config = T5Config(
        vocab_size=len(tokenizer_2),
        pad_token_id=tokenizer_2.pad_token_id,
        eos_token_id=tokenizer_2.eos_token_id,
        decoder_start_token_id=tokenizer_2.pad_token_id,
        **T5_CONFIG,
    )
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG),
        vae=build_component(lambda: AutoencoderKL(**VAE_CONFIG), seed, "vae", dtype),
        text_encoder=build_component(
            lambda: CLIPTextModel(clip_config), seed, "text_encoder", dtype
        ),
        tokenizer=tokenizer,
        text_encoder_2=build_component(
            lambda: T5EncoderModel(t5_config), seed, "text_encoder_2", dtype
        ),
        tokenizer_2=tokenizer_2,
        transformer=build_transformer(seed, dtype),
    )


def call_kwargs(num_inference_steps: int = 28, seed: int = 0) -> dict[str, Any]:
    """Standard call arguments: 64×64 image, FLUX.1-dev guidance 3.5 (embedded, one call per step).

    Example:
        >>> kwargs = call_kwargs(num_inference_steps=4, seed=1)
        >>> kwargs["height"], kwargs["width"], kwargs["output_type"]
        (64, 64, 'pt')
    """
    return {
        "prompt": "a photo of a red cat sitting on a wooden table",
        "height": 64,
        "width": 64,
        "num_inference_steps": num_inference_steps,
        "guidance_scale": 3.5,
        "max_sequence_length": 32,
        "generator": seeded_generator(seed),
        "output_type": "pt",
    }
