"""Tiny random-weight :class:`~diffusers.ZImagePipeline` (Z-Image layout, built offline).

Real classes with tiny configs: a :class:`~diffusers.ZImageTransformer2DModel` with 4 main layers
and 1 noise + 1 context refiner layer (2 heads × 16 dims), a :class:`~transformers.Qwen3Model`
text encoder (2 layers, grouped-query attention) with a local :class:`~transformers.Qwen2Tokenizer`
that carries Qwen3's chat template, the FLUX-style :class:`~diffusers.AutoencoderKL` of
:mod:`ditkit_testing.flux` (16 latent channels, spatial factor 4; Z-Image uses the FLUX.1 VAE),
and Z-Image's shift-3 :class:`~diffusers.FlowMatchEulerDiscreteScheduler`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .components import build_component, seeded_generator
from .flux import VAE_CONFIG
from .tokenizers import build_qwen3_tokenizer

if TYPE_CHECKING:
    from diffusers import ZImagePipeline, ZImageTransformer2DModel

__all__ = [
    "PIPELINE_CLASS",
    "SCHEDULER_CONFIG",
    "TEXT_CONFIG",
    "TRANSFORMER_CONFIG",
    "VAE_CONFIG",
    "build_pipeline",
    "build_transformer",
    "call_kwargs",
]

#: the diffusers pipeline class :func:`build_pipeline` returns (the registry matches its name).
PIPELINE_CLASS = "ZImagePipeline"

#: :class:`~diffusers.ZImageTransformer2DModel` config: 4 layers, hidden 32, QK norm.
TRANSFORMER_CONFIG: dict[str, Any] = {
    "all_patch_size": (2,),
    "all_f_patch_size": (1,),
    "in_channels": 16,
    "dim": 32,
    "n_layers": 4,
    "n_refiner_layers": 1,
    "n_heads": 2,
    "n_kv_heads": 2,
    "norm_eps": 1e-5,
    "qk_norm": True,
    "cap_feat_dim": 32,  # = text encoder hidden size
    "rope_theta": 256.0,
    "t_scale": 1000.0,
    "axes_dims": [4, 6, 6],  # sums to the head dim
    "axes_lens": [1024, 512, 512],
}

#: :class:`~transformers.Qwen3Config` of the text encoder (vocabulary comes from the tokenizer).
TEXT_CONFIG: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 16,
    "max_position_embeddings": 2048,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
}

#: Z-Image's :class:`~diffusers.FlowMatchEulerDiscreteScheduler` config (static shift 3).
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": False,
}


def build_transformer(seed: int = 0, dtype: torch.dtype | None = None) -> ZImageTransformer2DModel:
    """The tiny :class:`~diffusers.ZImageTransformer2DModel` alone (the pipeline's weights).

    Example:
        >>> t = build_transformer(seed=0)
        >>> len(t.layers), len(t.noise_refiner), len(t.context_refiner)
        (4, 1, 1)
    """
    from diffusers import ZImageTransformer2DModel

    return build_component(
        lambda: ZImageTransformer2DModel(**TRANSFORMER_CONFIG), seed, "transformer", dtype
    )


def build_pipeline(seed: int = 0, dtype: torch.dtype | None = None) -> ZImagePipeline:
    """A tiny :class:`~diffusers.ZImagePipeline` with random weights fixed by ``seed``.

    Example:
        >>> pipe = build_pipeline(seed=0)
        >>> tuple(pipe(**call_kwargs(num_inference_steps=2)).images.shape)
        (1, 3, 64, 64)
    """
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImagePipeline
    from transformers import Qwen3Config, Qwen3Model

    tokenizer = build_qwen3_tokenizer()
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **TEXT_CONFIG,
    )
    return ZImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG),
        vae=build_component(lambda: AutoencoderKL(**VAE_CONFIG), seed, "vae", dtype),
        text_encoder=build_component(lambda: Qwen3Model(config), seed, "text_encoder", dtype),
        tokenizer=tokenizer,
        transformer=build_transformer(seed, dtype),
    )


def call_kwargs(num_inference_steps: int = 28, seed: int = 0) -> dict[str, Any]:
    """Standard call arguments: 64×64 image, the pipeline's CFG 5.0 batched into one call a step.

    (Z-Image-Turbo runs ``guidance_scale=0.0``; the base model and the pipeline default use CFG.)

    Example:
        >>> kwargs = call_kwargs(num_inference_steps=4)
        >>> kwargs["guidance_scale"] > 0 and bool(kwargs["negative_prompt"])
        True
    """
    return {
        "prompt": "a photo of a cute cat sitting in a garden, detailed",
        "negative_prompt": "blurry, low quality, watermark",
        "height": 64,
        "width": 64,
        "num_inference_steps": num_inference_steps,
        "guidance_scale": 5.0,
        "max_sequence_length": 64,
        "generator": seeded_generator(seed),
        "output_type": "pt",
    }
