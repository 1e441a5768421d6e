"""Tiny random-weight :class:`~diffusers.Flux2Pipeline` (FLUX.2-dev layout, built offline).

Real classes with tiny configs: a :class:`~diffusers.Flux2Transformer2DModel` with 2 double-stream
and 4 single-stream blocks (2 heads × 16 dims, guidance embedding, 4-axis RoPE), a
:class:`~transformers.Mistral3ForConditionalGeneration` text encoder (30 Mistral layers of width
32, so the pipeline's default ``text_encoder_out_layers=(10, 20, 30)`` exist; a 1-layer Pixtral
vision tower that the pipeline never calls), an :class:`~diffusers.AutoencoderKLFlux2` with 16
latent channels and a spatial factor of 4, and FLUX.2's
:class:`~diffusers.FlowMatchEulerDiscreteScheduler`.

The tokenizer is a local :class:`~transformers.LlamaTokenizerFast` with Mistral's chat template
(:func:`~ditkit_testing.tokenizers.build_mistral_tokenizer`): FLUX.2 names a ``PixtralProcessor``,
which transformers builds only with torchvision installed, and the pipeline only calls its
``apply_chat_template``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .components import build_component, seeded_generator
from .tokenizers import build_mistral_tokenizer

if TYPE_CHECKING:
    from diffusers import Flux2Pipeline, Flux2Transformer2DModel

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
PIPELINE_CLASS = "Flux2Pipeline"

#: :class:`~diffusers.Flux2Transformer2DModel` config: 2 double + 4 single blocks, hidden 32.
TRANSFORMER_CONFIG: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 64,  # 16 latent channels patchified 2×2, as in FLUX.2
    "out_channels": None,
    "num_layers": 2,
    "num_single_layers": 4,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": 96,  # 3 stacked text encoder layers × hidden 32
    "timestep_guidance_channels": 256,
    "mlp_ratio": 3.0,
    "axes_dims_rope": (4, 4, 4, 4),  # (T, H, W, L); sums to attention_head_dim
    "rope_theta": 2000,
    "guidance_embeds": True,
}

#: Text part of the :class:`~transformers.Mistral3Config` (vocabulary comes from the tokenizer).
TEXT_CONFIG: dict[str, Any] = {
    "model_type": "mistral",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 30,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 16,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000000.0},
    "sliding_window": None,
}

#: Vision part of the :class:`~transformers.Mistral3Config` (present for the class, never run).
VISION_CONFIG: dict[str, Any] = {
    "model_type": "pixtral",
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "head_dim": 8,
    "image_size": 32,
    "patch_size": 8,
}

#: :class:`~diffusers.AutoencoderKLFlux2` config: 16 latent channels, spatial factor 4; the
#: batch norm over the 2×2-patchified latents keeps its identity statistics.
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
    "use_quant_conv": True,
    "use_post_quant_conv": True,
    "mid_block_add_attention": True,
    "patch_size": (2, 2),
}

#: FLUX.2's :class:`~diffusers.FlowMatchEulerDiscreteScheduler` config (the pipeline passes its
#: own empirical ``mu``).
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
    "time_shift_type": "exponential",
}


def build_transformer(seed: int = 0, dtype: torch.dtype | None = None) -> Flux2Transformer2DModel:
    """The tiny :class:`~diffusers.Flux2Transformer2DModel` alone (same weights as the pipeline's).

    Example:
        >>> t = build_transformer(seed=0)
        >>> len(t.transformer_blocks), len(t.single_transformer_blocks)
        (2, 4)
    """
    from diffusers import Flux2Transformer2DModel

    return build_component(
        lambda: Flux2Transformer2DModel(**TRANSFORMER_CONFIG), seed, "transformer", dtype
    )


def build_pipeline(seed: int = 0, dtype: torch.dtype | None = None) -> Flux2Pipeline:
    """A tiny :class:`~diffusers.Flux2Pipeline` with random weights fixed by ``seed``.

    Example:
        >>> pipe = build_pipeline(seed=0)
        >>> tuple(pipe(**call_kwargs(num_inference_steps=2)).images.shape)
        (1, 3, 64, 64)
    """
    from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2Pipeline
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    tokenizer = build_mistral_tokenizer()
    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = Mistral3Config(
        text_config={**TEXT_CONFIG, "vocab_size": len(tokenizer), **ids},
        vision_config=dict(VISION_CONFIG),
        image_token_index=tokenizer.convert_tokens_to_ids("[IMG]"),
    )
    return Flux2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG),
        vae=build_component(lambda: AutoencoderKLFlux2(**VAE_CONFIG), seed, "vae", dtype),
        text_encoder=build_component(
            lambda: Mistral3ForConditionalGeneration(config), seed, "text_encoder", dtype
        ),
        tokenizer=tokenizer,
        transformer=build_transformer(seed, dtype),
    )


def call_kwargs(num_inference_steps: int = 28, seed: int = 0) -> dict[str, Any]:
    """Standard call arguments: 64×64 image, FLUX.2-dev guidance 4.0 (embedded, one call a step).

    The chat-formatted prompt (system message included) is 43 tokens, padded to 64.

    Example:
        >>> kwargs = call_kwargs(num_inference_steps=4, seed=1)
        >>> kwargs["guidance_scale"], kwargs["max_sequence_length"]
        (4.0, 64)
    """
    return {
        "prompt": "a photo of a red cat sitting on a wooden table",
        "height": 64,
        "width": 64,
        "num_inference_steps": num_inference_steps,
        "guidance_scale": 4.0,
        "max_sequence_length": 64,
        "generator": seeded_generator(seed),
        "output_type": "pt",
    }
