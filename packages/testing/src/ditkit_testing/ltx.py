"""Tiny random-weight :class:`~diffusers.LTXPipeline` (LTX-Video 0.9 text-to-video, offline).

Real classes with tiny configs: an :class:`~diffusers.LTXVideoTransformer3DModel` with 4 blocks
(2 heads × 16 dims, patch 1 as in LTX-Video), a :class:`~transformers.T5EncoderModel` with a
local :class:`~transformers.T5TokenizerFast`, an :class:`~diffusers.AutoencoderKLLTXVideo` with
16 latent channels that patchifies 2×2 and halves space and time twice (spatial factor 8,
temporal factor 4), and LTX-Video's dynamic-shift
:class:`~diffusers.FlowMatchEulerDiscreteScheduler`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .components import TINY_T5_ENCODER_CONFIG, build_component, seeded_generator
from .tokenizers import build_t5_tokenizer

if TYPE_CHECKING:
    from diffusers import LTXPipeline, LTXVideoTransformer3DModel

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
PIPELINE_CLASS = "LTXPipeline"

#: :class:`~diffusers.LTXVideoTransformer3DModel` config: 4 blocks, hidden 32.
TRANSFORMER_CONFIG: dict[str, Any] = {
    "in_channels": 16,
    "out_channels": 16,
    "patch_size": 1,
    "patch_size_t": 1,
    "num_attention_heads": 2,
    "attention_head_dim": 16,
    "cross_attention_dim": 32,  # = hidden size, as in LTX-Video
    "num_layers": 4,
    "qk_norm": "rms_norm_across_heads",
    "caption_channels": 32,  # = T5 d_model
}

#: The shared tiny T5 v1.1-style encoder (gated GELU).
T5_CONFIG: dict[str, Any] = TINY_T5_ENCODER_CONFIG

#: :class:`~diffusers.AutoencoderKLLTXVideo` config (LTX-Video 0.9.0 style: no timestep
#: conditioning): 16 latent channels, patch 2, two space-and-time down/up levels.
VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 16,
    "block_out_channels": (8, 16, 16),
    "down_block_types": ("LTXVideoDownBlock3D",) * 3,
    "decoder_block_out_channels": (8, 16, 16),
    "layers_per_block": (1, 1, 1, 1),
    "decoder_layers_per_block": (1, 1, 1, 1),
    "spatio_temporal_scaling": (True, True, False),
    "decoder_spatio_temporal_scaling": (True, True, False),
    "decoder_inject_noise": (False, False, False, False),
    "downsample_type": ("conv", "conv", "conv"),
    "upsample_residual": (False, False, False),
    "upsample_factor": (1, 1, 1),
    "timestep_conditioning": False,
    "patch_size": 2,
    "patch_size_t": 1,
    "encoder_causal": True,
    "decoder_causal": False,
}

#: LTX-Video's :class:`~diffusers.FlowMatchEulerDiscreteScheduler` config.
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.95,
    "max_shift": 2.05,
    "base_image_seq_len": 1024,
    "max_image_seq_len": 4096,
    "shift_terminal": 0.1,
}


def build_transformer(
    seed: int = 0, dtype: torch.dtype | None = None
) -> LTXVideoTransformer3DModel:
    """The tiny :class:`~diffusers.LTXVideoTransformer3DModel` alone (the pipeline's weights).

    Example:
        >>> len(build_transformer(seed=0).transformer_blocks)
        4
    """
    from diffusers import LTXVideoTransformer3DModel

    return build_component(
        lambda: LTXVideoTransformer3DModel(**TRANSFORMER_CONFIG), seed, "transformer", dtype
    )


def build_pipeline(seed: int = 0, dtype: torch.dtype | None = None) -> LTXPipeline:
    """A tiny :class:`~diffusers.LTXPipeline` with random weights fixed by ``seed``.

    Example:
        >>> pipe = build_pipeline(seed=0)
        >>> tuple(pipe(**call_kwargs(num_inference_steps=2)).frames.shape)
        (1, 9, 3, 64, 64)
    """
    from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXPipeline
    from transformers import T5Config, T5EncoderModel

    tokenizer = build_t5_tokenizer()
    t5_config = T5Config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        **T5_CONFIG,
    )
    return LTXPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG),
        vae=build_component(lambda: AutoencoderKLLTXVideo(**VAE_CONFIG), seed, "vae", dtype),
        text_encoder=build_component(
            lambda: T5EncoderModel(t5_config), seed, "text_encoder", dtype
        ),
        tokenizer=tokenizer,
        transformer=build_transformer(seed, dtype),
    )


def call_kwargs(num_inference_steps: int = 28, seed: int = 0) -> dict[str, Any]:
    """Standard call arguments: 9 frames of 64×64, CFG 3.0 batched into one call per step.

    Example:
        >>> kwargs = call_kwargs(num_inference_steps=4)
        >>> kwargs["num_frames"], kwargs["guidance_scale"], kwargs["frame_rate"]
        (9, 3.0, 25)
    """
    return {
        "prompt": "a cat walking on the beach at night, cinematic camera motion",
        "negative_prompt": "worst quality, blurry, distorted, static",
        "height": 64,
        "width": 64,
        "num_frames": 9,  # 3 latent frames of 8×8
        "frame_rate": 25,
        "num_inference_steps": num_inference_steps,
        "guidance_scale": 3.0,
        "max_sequence_length": 32,
        "generator": seeded_generator(seed),
        "output_type": "pt",
    }
