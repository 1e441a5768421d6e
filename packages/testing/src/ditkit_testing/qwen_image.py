"""Tiny random-weight :class:`~diffusers.QwenImagePipeline` (Qwen-Image layout, built offline).

Real classes with tiny configs: a :class:`~diffusers.QwenImageTransformer2DModel` with 4 blocks
(2 heads × 16 dims), a :class:`~transformers.Qwen2_5_VLForConditionalGeneration` text encoder
(2 layers, grouped-query attention, multimodal RoPE, a 1-block vision tower that the pipeline
never calls) with a local :class:`~transformers.Qwen2Tokenizer`, an
:class:`~diffusers.AutoencoderKLQwenImage` with 16 latent channels and a spatial factor of 4,
and Qwen-Image's exponential-shift :class:`~diffusers.FlowMatchEulerDiscreteScheduler`.

The tokenizer encodes the prompt template's prefix as exactly 34 tokens, like the real one, so
the pipeline's ``prompt_template_encode_start_idx = 34`` drops the template and keeps the prompt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .components import build_component, seeded_generator
from .tokenizers import build_qwen2_tokenizer

if TYPE_CHECKING:
    from diffusers import QwenImagePipeline, QwenImageTransformer2DModel

__all__ = [
    "PIPELINE_CLASS",
    "SCHEDULER_CONFIG",
    "TEXT_CONFIG",
    "TRANSFORMER_CONFIG",
    "VAE_CONFIG",
    "VISION_CONFIG",
    "build_pipeline",
    "build_transformer",
    "call_kwargs",
]

#: the diffusers pipeline class :func:`build_pipeline` returns (the registry matches its name).
PIPELINE_CLASS = "QwenImagePipeline"

#: :class:`~diffusers.QwenImageTransformer2DModel` config: 4 blocks, hidden 32.
TRANSFORMER_CONFIG: dict[str, Any] = {
    "patch_size": 2,
    "in_channels": 64,  # 16 latent channels packed 2×2, as in Qwen-Image
    "out_channels": 16,
    "num_layers": 4,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": 32,  # = text encoder hidden size
    "guidance_embeds": False,
    "axes_dims_rope": (4, 6, 6),  # sums to attention_head_dim
}

#: Text part of the :class:`~transformers.Qwen2_5_VLConfig` (vocabulary comes from the tokenizer).
TEXT_CONFIG: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 2048,
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 1000000.0,
        "mrope_section": [2, 3, 3],
    },
}

#: Vision part of the :class:`~transformers.Qwen2_5_VLConfig` (present for the class, never run).
VISION_CONFIG: dict[str, Any] = {
    "depth": 1,
    "hidden_size": 16,
    "intermediate_size": 16,
    "num_heads": 2,
    "out_hidden_size": 32,
    "fullatt_block_indexes": [0],
}

#: :class:`~diffusers.AutoencoderKLQwenImage` config: 16 latent channels, spatial factor 4.
#: ``latents_mean`` / ``latents_std`` keep the real model's defaults.
VAE_CONFIG: dict[str, Any] = {
    "base_dim": 8,
    "z_dim": 16,
    "dim_mult": [1, 2, 2],
    "num_res_blocks": 1,
    "temperal_downsample": [False, True],
}

#: Qwen-Image's :class:`~diffusers.FlowMatchEulerDiscreteScheduler` config.
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 0.9,
    "base_image_seq_len": 256,
    "max_image_seq_len": 8192,
    "shift_terminal": 0.02,
    "time_shift_type": "exponential",
}


def build_transformer(
    seed: int = 0, dtype: torch.dtype | None = None
) -> QwenImageTransformer2DModel:
    """The tiny :class:`~diffusers.QwenImageTransformer2DModel` alone (the pipeline's weights).

    Example:
        >>> len(build_transformer(seed=0).transformer_blocks)
        4
    """
    from diffusers import QwenImageTransformer2DModel

    return build_component(
        lambda: QwenImageTransformer2DModel(**TRANSFORMER_CONFIG), seed, "transformer", dtype
    )


def build_pipeline(seed: int = 0, dtype: torch.dtype | None = None) -> QwenImagePipeline:
    """A tiny :class:`~diffusers.QwenImagePipeline` with random weights fixed by ``seed``.

    Example:
        >>> pipe = build_pipeline(seed=0)
        >>> tuple(pipe(**call_kwargs(num_inference_steps=2)).images.shape)
        (1, 3, 64, 64)
    """
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImagePipeline
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    tokenizer = build_qwen2_tokenizer()
    ids = {name: tokenizer.convert_tokens_to_ids(f"<|{name}|>") for name in _VISION_TOKENS}
    config = Qwen2_5_VLConfig(
        text_config={
            **TEXT_CONFIG,
            "vocab_size": len(tokenizer),
            "bos_token_id": tokenizer.eos_token_id,
            "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config=VISION_CONFIG,
        image_token_id=ids["image_pad"],
        video_token_id=ids["video_pad"],
        vision_start_token_id=ids["vision_start"],
        vision_end_token_id=ids["vision_end"],
    )
    return QwenImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG),
        vae=build_component(lambda: AutoencoderKLQwenImage(**VAE_CONFIG), seed, "vae", dtype),
        text_encoder=build_component(
            lambda: Qwen2_5_VLForConditionalGeneration(config), seed, "text_encoder", dtype
        ),
        tokenizer=tokenizer,
        transformer=build_transformer(seed, dtype),
    )


_VISION_TOKENS = ("image_pad", "video_pad", "vision_start", "vision_end")


def call_kwargs(num_inference_steps: int = 28, seed: int = 0) -> dict[str, Any]:
    """Standard call arguments: 64×64 image, true CFG 4.0 (a separate transformer call per step).

    Example:
        >>> kwargs = call_kwargs(num_inference_steps=4)
        >>> kwargs["true_cfg_scale"] > 1 and bool(kwargs["negative_prompt"])
        True
    """
    return {
        "prompt": "a photo of a small robot holding a sign that says ditkit",
        "negative_prompt": "blurry, low quality, watermark",
        "true_cfg_scale": 4.0,
        "height": 64,
        "width": 64,
        "num_inference_steps": num_inference_steps,
        "generator": seeded_generator(seed),
        "output_type": "pt",
    }
