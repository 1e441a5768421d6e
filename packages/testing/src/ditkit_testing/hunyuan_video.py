"""Tiny random-weight :class:`~diffusers.HunyuanVideoPipeline` (HunyuanVideo layout, offline).

Real classes with tiny configs: a :class:`~diffusers.HunyuanVideoTransformer3DModel` with 2
dual-stream and 2 single-stream blocks and 1 token-refiner block (2 heads × 16 dims, guidance
embedding), a :class:`~transformers.LlamaModel` text encoder with a local
:class:`~transformers.LlamaTokenizerFast` (Llama 3 chat tokens), a
:class:`~transformers.CLIPTextModel` for the pooled embedding, an
:class:`~diffusers.AutoencoderKLHunyuanVideo` with 16 latent channels (temporal factor 4,
spatial factor 4), and HunyuanVideo's shift-7 :class:`~diffusers.FlowMatchEulerDiscreteScheduler`.

The pipeline wraps the prompt in a template and drops the first ``crop_start = 95`` positions of
the Llama output; the tiny tokenizer encodes that template prefix as exactly 95 tokens too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .components import build_component, seeded_generator
from .flux import CLIP_CONFIG
from .tokenizers import build_clip_tokenizer, build_llama3_tokenizer

if TYPE_CHECKING:
    from diffusers import HunyuanVideoPipeline, HunyuanVideoTransformer3DModel

__all__ = [
    "CLIP_CONFIG",
    "LLAMA_CONFIG",
    "PIPELINE_CLASS",
    "SCHEDULER_CONFIG",
    "TRANSFORMER_CONFIG",
    "VAE_CONFIG",
    "build_pipeline",
    "build_transformer",
    "call_kwargs",
]

#: the diffusers pipeline class :func:`build_pipeline` returns (the registry matches its name).
PIPELINE_CLASS = "HunyuanVideoPipeline"

#: :class:`~diffusers.HunyuanVideoTransformer3DModel` config: 2 dual + 2 single blocks, hidden 32.
TRANSFORMER_CONFIG: dict[str, Any] = {
    "in_channels": 16,
    "out_channels": 16,
    "num_attention_heads": 2,
    "attention_head_dim": 16,
    "num_layers": 2,
    "num_single_layers": 2,
    "num_refiner_layers": 1,
    "mlp_ratio": 4.0,
    "patch_size": 2,
    "patch_size_t": 1,
    "qk_norm": "rms_norm",
    "guidance_embeds": True,
    "text_embed_dim": 32,  # = Llama hidden size
    "pooled_projection_dim": 32,  # = CLIP hidden size (the pooler output)
    "rope_theta": 256.0,
    "rope_axes_dim": (4, 6, 6),  # sums to attention_head_dim
}

#: :class:`~transformers.LlamaConfig` of the text encoder (3 layers: the pipeline takes the
#: hidden state 2 layers before the last, as HunyuanVideo does).
LLAMA_CONFIG: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0},
}

#: :class:`~diffusers.AutoencoderKLHunyuanVideo` config: 16 latent channels, 3 levels; the first
#: two halve space and time, so both factors are 4.
VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 16,
    "down_block_types": ("HunyuanVideoDownBlock3D",) * 3,
    "up_block_types": ("HunyuanVideoUpBlock3D",) * 3,
    "block_out_channels": (8, 16, 16),
    "layers_per_block": 1,
    "norm_num_groups": 4,
    "scaling_factor": 0.476986,  # HunyuanVideo value
    "spatial_compression_ratio": 4,
    "temporal_compression_ratio": 4,
    "mid_block_add_attention": True,
}

#: HunyuanVideo's :class:`~diffusers.FlowMatchEulerDiscreteScheduler` config (static shift 7).
SCHEDULER_CONFIG: dict[str, Any] = {"num_train_timesteps": 1000, "shift": 7.0}


def build_transformer(
    seed: int = 0, dtype: torch.dtype | None = None
) -> HunyuanVideoTransformer3DModel:
    """The tiny :class:`~diffusers.HunyuanVideoTransformer3DModel` alone (the pipeline's weights).

    Example:
        >>> t = build_transformer(seed=0)
        >>> len(t.transformer_blocks), len(t.single_transformer_blocks)
        (2, 2)
    """
    from diffusers import HunyuanVideoTransformer3DModel

    return build_component(
        lambda: HunyuanVideoTransformer3DModel(**TRANSFORMER_CONFIG), seed, "transformer", dtype
    )


def build_pipeline(seed: int = 0, dtype: torch.dtype | None = None) -> HunyuanVideoPipeline:
    """A tiny :class:`~diffusers.HunyuanVideoPipeline` with random weights fixed by ``seed``.

    Example:
        >>> pipe = build_pipeline(seed=0)
        >>> tuple(pipe(**call_kwargs(num_inference_steps=2)).frames.shape)
        (1, 9, 3, 64, 64)
    """
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideoPipeline,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel

    tokenizer, tokenizer_2 = build_llama3_tokenizer(), build_clip_tokenizer()
    llama_config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **LLAMA_CONFIG,
    )
    clip_config = CLIPTextConfig(
        vocab_size=len(tokenizer_2),
        bos_token_id=tokenizer_2.bos_token_id,
        eos_token_id=tokenizer_2.eos_token_id,
        pad_token_id=tokenizer_2.pad_token_id,
        **CLIP_CONFIG,
    )
    return HunyuanVideoPipeline(
        text_encoder=build_component(lambda: LlamaModel(llama_config), seed, "text_encoder", dtype),
        tokenizer=tokenizer,
        transformer=build_transformer(seed, dtype),
        vae=build_component(lambda: AutoencoderKLHunyuanVideo(**VAE_CONFIG), seed, "vae", dtype),
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG),
        text_encoder_2=build_component(
            lambda: CLIPTextModel(clip_config), seed, "text_encoder_2", dtype
        ),
        tokenizer_2=tokenizer_2,
    )


def call_kwargs(num_inference_steps: int = 28, seed: int = 0) -> dict[str, Any]:
    """Standard call arguments: 9 frames of 64×64, embedded guidance 6.0 (one call per step).

    Example:
        >>> kwargs = call_kwargs(num_inference_steps=4)
        >>> kwargs["num_frames"], kwargs["guidance_scale"], "negative_prompt" in kwargs
        (9, 6.0, False)
    """
    return {
        "prompt": "a cat walking on the beach at night, cinematic camera motion",
        "height": 64,
        "width": 64,
        "num_frames": 9,  # 3 latent frames
        "num_inference_steps": num_inference_steps,
        "guidance_scale": 6.0,
        "max_sequence_length": 64,
        "generator": seeded_generator(seed),
        "output_type": "pt",
    }
