"""Tiny random-weight :class:`~diffusers.StableDiffusion3Pipeline` (SD3-medium layout, offline).

Real classes with tiny configs: an :class:`~diffusers.SD3Transformer2DModel` with 4 joint blocks
(2 heads × 16 dims), two :class:`~transformers.CLIPTextModelWithProjection` (hidden 16 each, so
their concatenated penultimate states fill the T5 width exactly) and a
:class:`~transformers.T5EncoderModel` with local tokenizers, an :class:`~diffusers.AutoencoderKL`
with 16 latent channels and a spatial factor of 4, and SD3's shift-3
:class:`~diffusers.FlowMatchEulerDiscreteScheduler`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .components import TINY_T5_ENCODER_CONFIG, build_component, seeded_generator
from .tokenizers import build_clip_tokenizer, build_t5_tokenizer

if TYPE_CHECKING:
    from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline

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
PIPELINE_CLASS = "StableDiffusion3Pipeline"

#: :class:`~diffusers.SD3Transformer2DModel` config: 4 joint blocks, hidden 32, no QK norm.
TRANSFORMER_CONFIG: dict[str, Any] = {
    "sample_size": 16,  # latent size of the default 64×64 image
    "patch_size": 2,
    "in_channels": 16,
    "out_channels": 16,
    "num_layers": 4,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": 32,  # = T5 d_model = 2 × CLIP hidden
    "caption_projection_dim": 32,  # = hidden size, as in SD3
    "pooled_projection_dim": 32,  # = 2 × CLIP projection_dim
    "pos_embed_max_size": 24,  # 1.5 × sample_size, as in SD3-medium (192 for 128)
}

#: Both :class:`~transformers.CLIPTextConfig` (the pipeline takes their penultimate hidden states
#: and their projected pooled outputs).
CLIP_CONFIG: dict[str, Any] = {
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "max_position_embeddings": 77,
    "projection_dim": 16,
    "hidden_act": "quick_gelu",
}

#: The shared tiny T5 v1.1-style encoder (gated GELU).
T5_CONFIG: dict[str, Any] = TINY_T5_ENCODER_CONFIG

#: :class:`~diffusers.AutoencoderKL` config: 16 latent channels, spatial factor 4, SD3's scaling.
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
    "scaling_factor": 1.5305,  # SD3 values
    "shift_factor": 0.0609,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
}

#: SD3's :class:`~diffusers.FlowMatchEulerDiscreteScheduler` config (static shift 3).
SCHEDULER_CONFIG: dict[str, Any] = {"num_train_timesteps": 1000, "shift": 3.0}


def build_transformer(seed: int = 0, dtype: torch.dtype | None = None) -> SD3Transformer2DModel:
    """The tiny :class:`~diffusers.SD3Transformer2DModel` alone (same weights as the pipeline's).

    Example:
        >>> len(build_transformer(seed=0).transformer_blocks)
        4
    """
    from diffusers import SD3Transformer2DModel

    return build_component(
        lambda: SD3Transformer2DModel(**TRANSFORMER_CONFIG), seed, "transformer", dtype
    )


def build_pipeline(seed: int = 0, dtype: torch.dtype | None = None) -> StableDiffusion3Pipeline:
    """A tiny :class:`~diffusers.StableDiffusion3Pipeline` with random weights fixed by ``seed``.

    Example:
        >>> pipe = build_pipeline(seed=0)
        >>> tuple(pipe(**call_kwargs(num_inference_steps=2)).images.shape)
        (1, 3, 64, 64)
    """
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    tokenizer, tokenizer_2, tokenizer_3 = (
        build_clip_tokenizer(),
        build_clip_tokenizer(),
        build_t5_tokenizer(),
    )
    clip_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **CLIP_CONFIG,
    )
    t5_config = T5Config(
        vocab_size=len(tokenizer_3),
        pad_token_id=tokenizer_3.pad_token_id,
        eos_token_id=tokenizer_3.eos_token_id,
        decoder_start_token_id=tokenizer_3.pad_token_id,
        **T5_CONFIG,
    )

    def clip(name: str) -> CLIPTextModelWithProjection:
        return build_component(lambda: CLIPTextModelWithProjection(clip_config), seed, name, dtype)

    return StableDiffusion3Pipeline(
        transformer=build_transformer(seed, dtype),
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG),
        vae=build_component(lambda: AutoencoderKL(**VAE_CONFIG), seed, "vae", dtype),
        text_encoder=clip("text_encoder"),
        tokenizer=tokenizer,
        text_encoder_2=clip("text_encoder_2"),
        tokenizer_2=tokenizer_2,
        text_encoder_3=build_component(
            lambda: T5EncoderModel(t5_config), seed, "text_encoder_3", dtype
        ),
        tokenizer_3=tokenizer_3,
    )


def call_kwargs(num_inference_steps: int = 28, seed: int = 0) -> dict[str, Any]:
    """Standard call arguments: 64×64 image, CFG 7.0 batched into one transformer call per step.

    Example:
        >>> kwargs = call_kwargs(num_inference_steps=4)
        >>> kwargs["guidance_scale"], kwargs["max_sequence_length"]
        (7.0, 32)
    """
    return {
        "prompt": "a photo of a small robot holding a sign that says ditkit",
        "negative_prompt": "blurry, low quality, watermark",
        "height": 64,
        "width": 64,
        "num_inference_steps": num_inference_steps,
        "guidance_scale": 7.0,
        "max_sequence_length": 32,  # T5 tokens after the 77 CLIP tokens
        "generator": seeded_generator(seed),
        "output_type": "pt",
    }
