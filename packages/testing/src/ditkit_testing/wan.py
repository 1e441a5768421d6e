"""Tiny random-weight :class:`~diffusers.WanPipeline` (Wan 2.1 text-to-video layout, offline).

Real classes with tiny configs: a :class:`~diffusers.WanTransformer3DModel` with 4 blocks
(2 heads × 16 dims), a :class:`~transformers.UMT5EncoderModel` with a local
:class:`~transformers.T5TokenizerFast`, an :class:`~diffusers.AutoencoderKLWan` with 16 latent
channels (temporal factor 4, spatial factor 4), and Wan 2.1's flow-prediction
:class:`~diffusers.UniPCMultistepScheduler`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .components import TINY_T5_ENCODER_CONFIG, build_component, seeded_generator
from .tokenizers import build_t5_tokenizer

if TYPE_CHECKING:
    from diffusers import WanPipeline, WanTransformer3DModel

__all__ = [
    "PIPELINE_CLASS",
    "SCHEDULER_CONFIG",
    "TRANSFORMER_CONFIG",
    "UMT5_CONFIG",
    "VAE_CONFIG",
    "build_pipeline",
    "build_transformer",
    "call_kwargs",
]

#: the diffusers pipeline class :func:`build_pipeline` returns (the registry matches its name).
PIPELINE_CLASS = "WanPipeline"

#: :class:`~diffusers.WanTransformer3DModel` config: 4 blocks, hidden 32.
TRANSFORMER_CONFIG: dict[str, Any] = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 2,
    "attention_head_dim": 16,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 32,  # = UMT5 d_model
    "freq_dim": 256,
    "ffn_dim": 64,
    "num_layers": 4,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 1024,
}

#: :class:`~transformers.UMT5Config` of the text encoder: the same tiny gated-GELU T5 as Flux's.
UMT5_CONFIG: dict[str, Any] = TINY_T5_ENCODER_CONFIG

#: :class:`~diffusers.AutoencoderKLWan` config: 16 latent channels, 2 down levels (both also
#: temporal), so the temporal and spatial factors are 4. ``latents_mean`` / ``latents_std`` keep
#: the real model's defaults.
VAE_CONFIG: dict[str, Any] = {
    "base_dim": 8,
    "z_dim": 16,
    "dim_mult": [1, 2, 2],
    "num_res_blocks": 1,
    "temperal_downsample": [True, True],
    "scale_factor_temporal": 4,
    "scale_factor_spatial": 4,
}

#: Wan 2.1's :class:`~diffusers.UniPCMultistepScheduler` config (flow prediction, shift 3).
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "prediction_type": "flow_prediction",
    "use_flow_sigmas": True,
    "flow_shift": 3.0,
    "solver_order": 2,
    "solver_type": "bh2",
    "predict_x0": True,
    "lower_order_final": True,
    "final_sigmas_type": "zero",
    "timestep_spacing": "linspace",
}


def build_transformer(seed: int = 0, dtype: torch.dtype | None = None) -> WanTransformer3DModel:
    """The tiny :class:`~diffusers.WanTransformer3DModel` alone (same weights as the pipeline's).

    Example:
        >>> len(build_transformer(seed=0).blocks)
        4
    """
    from diffusers import WanTransformer3DModel

    return build_component(
        lambda: WanTransformer3DModel(**TRANSFORMER_CONFIG), seed, "transformer", dtype
    )


def build_pipeline(seed: int = 0, dtype: torch.dtype | None = None) -> WanPipeline:
    """A tiny :class:`~diffusers.WanPipeline` with random weights fixed by ``seed``.

    Example:
        >>> pipe = build_pipeline(seed=0)
        >>> tuple(pipe(**call_kwargs(num_inference_steps=2)).frames.shape)
        (1, 9, 3, 64, 64)
    """
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = build_t5_tokenizer()
    umt5_config = UMT5Config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        **UMT5_CONFIG,
    )
    return WanPipeline(
        tokenizer=tokenizer,
        text_encoder=build_component(
            lambda: UMT5EncoderModel(umt5_config), seed, "text_encoder", dtype
        ),
        vae=build_component(lambda: AutoencoderKLWan(**VAE_CONFIG), seed, "vae", dtype),
        scheduler=UniPCMultistepScheduler(**SCHEDULER_CONFIG),
        transformer=build_transformer(seed, dtype),
    )


def call_kwargs(num_inference_steps: int = 28, seed: int = 0) -> dict[str, Any]:
    """Standard call arguments: 9 frames of 64×64, CFG 5.0 (a separate transformer call per step).

    Example:
        >>> kwargs = call_kwargs(num_inference_steps=4)
        >>> kwargs["num_frames"], kwargs["guidance_scale"]
        (9, 5.0)
    """
    return {
        "prompt": "a cat walking on the beach at night, cinematic camera motion",
        "negative_prompt": "blurry, low quality, static, watermark",
        "height": 64,
        "width": 64,
        "num_frames": 9,  # 3 latent frames
        "num_inference_steps": num_inference_steps,
        "guidance_scale": 5.0,
        "max_sequence_length": 64,
        "generator": seeded_generator(seed),
        "output_type": "pt",
    }
