"""Tiny random-weight :class:`~diffusers.CogVideoXPipeline` (CogVideoX-2b layout, offline).

Real classes with tiny configs: a :class:`~diffusers.CogVideoXTransformer3DModel` with 4 blocks
(2 heads × 16 dims, 3D sin-cos position embeddings as in CogVideoX-2b, 226 text positions), a
:class:`~transformers.T5EncoderModel` with a local :class:`~transformers.T5TokenizerFast`, an
:class:`~diffusers.AutoencoderKLCogVideoX` with 16 latent channels (temporal factor 4, spatial
factor 4), and CogVideoX-2b's v-prediction :class:`~diffusers.CogVideoXDDIMScheduler`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .components import TINY_T5_ENCODER_CONFIG, build_component, seeded_generator
from .tokenizers import build_t5_tokenizer

if TYPE_CHECKING:
    from diffusers import CogVideoXPipeline, CogVideoXTransformer3DModel

__all__ = [
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
PIPELINE_CLASS = "CogVideoXPipeline"

#: :class:`~diffusers.CogVideoXTransformer3DModel` config: 4 blocks, hidden 32; the sample size
#: is the standard call's (64×64 pixels → 16×16 latents, 9 frames), so the sin-cos table is
#: never recomputed.
TRANSFORMER_CONFIG: dict[str, Any] = {
    "num_attention_heads": 2,
    "attention_head_dim": 16,
    "in_channels": 16,
    "out_channels": 16,
    "time_embed_dim": 32,
    "text_embed_dim": 32,  # = T5 d_model
    "num_layers": 4,
    "sample_width": 16,
    "sample_height": 16,
    "sample_frames": 9,
    "patch_size": 2,
    "temporal_compression_ratio": 4,
    "max_text_seq_length": 226,  # the pipeline pads every prompt to this many T5 tokens
    "use_rotary_positional_embeddings": False,
}

#: The shared tiny T5 v1.1-style encoder (gated GELU).
T5_CONFIG: dict[str, Any] = TINY_T5_ENCODER_CONFIG

#: :class:`~diffusers.AutoencoderKLCogVideoX` config: 16 latent channels, 3 levels; the first
#: two halve space and time.
VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("CogVideoXDownBlock3D",) * 3,
    "up_block_types": ("CogVideoXUpBlock3D",) * 3,
    "block_out_channels": (8, 16, 16),
    "latent_channels": 16,
    "layers_per_block": 1,
    "norm_num_groups": 4,
    "temporal_compression_ratio": 4,
    "sample_height": 64,
    "sample_width": 64,
    "scaling_factor": 1.15258426,  # CogVideoX-2b value
}

#: CogVideoX-2b's :class:`~diffusers.CogVideoXDDIMScheduler` config.
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": True,
    "steps_offset": 0,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "snr_shift_scale": 3.0,
    "timestep_spacing": "trailing",
}


def build_transformer(
    seed: int = 0, dtype: torch.dtype | None = None
) -> CogVideoXTransformer3DModel:
    """The tiny :class:`~diffusers.CogVideoXTransformer3DModel` alone (the pipeline's weights).

    Example:
        >>> len(build_transformer(seed=0).transformer_blocks)
        4
    """
    from diffusers import CogVideoXTransformer3DModel

    return build_component(
        lambda: CogVideoXTransformer3DModel(**TRANSFORMER_CONFIG), seed, "transformer", dtype
    )


def build_pipeline(seed: int = 0, dtype: torch.dtype | None = None) -> CogVideoXPipeline:
    """A tiny :class:`~diffusers.CogVideoXPipeline` with random weights fixed by ``seed``.

    Example:
        >>> pipe = build_pipeline(seed=0)
        >>> tuple(pipe(**call_kwargs(num_inference_steps=2)).frames.shape)
        (1, 9, 3, 64, 64)
    """
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline
    from transformers import T5Config, T5EncoderModel

    tokenizer = build_t5_tokenizer()
    t5_config = T5Config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        **T5_CONFIG,
    )
    return CogVideoXPipeline(
        tokenizer=tokenizer,
        text_encoder=build_component(
            lambda: T5EncoderModel(t5_config), seed, "text_encoder", dtype
        ),
        vae=build_component(lambda: AutoencoderKLCogVideoX(**VAE_CONFIG), seed, "vae", dtype),
        transformer=build_transformer(seed, dtype),
        scheduler=CogVideoXDDIMScheduler(**SCHEDULER_CONFIG),
    )


def call_kwargs(num_inference_steps: int = 28, seed: int = 0) -> dict[str, Any]:
    """Standard call arguments: 9 frames of 64×64, CFG 6.0 batched into one call per step.

    Example:
        >>> kwargs = call_kwargs(num_inference_steps=4)
        >>> kwargs["num_frames"], kwargs["guidance_scale"]
        (9, 6.0)
    """
    return {
        "prompt": "a cat walking on the beach at night, cinematic camera motion",
        "negative_prompt": "blurry, low quality, static, watermark",
        "height": 64,
        "width": 64,
        "num_frames": 9,  # 3 latent frames
        "num_inference_steps": num_inference_steps,
        "guidance_scale": 6.0,
        "generator": seeded_generator(seed),
        "output_type": "pt",
    }
