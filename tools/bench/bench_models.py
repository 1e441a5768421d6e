"""The transformers the GPU benchmarks run: FLUX.1-dev-sized and Wan-2.1-14B-sized, random bf16.

A :class:`ModelSpec` builds its model (full size on the GPU, or a tiny fp32 one for CPU
checks), makes inputs for a size, calls the transformer at a sigma (a ``(1,)`` tensor) and says
what the Ulysses floor needs (tokens in the attention, heads, head dim, self-attention calls per
step).
(The CUDA-graph phase of ``gpu_parallel.py`` uses ``ditkit.enable_cuda_graphs``.)

- ``flux``: sizes are image sides in pixels (``1024`` = 4096 image + 512 text tokens; every
  attention is joint, all 57 are context-parallel);
- ``wan``: sizes are ``FRAMESxHEIGHTxWIDTH`` in pixels (``81x480x832`` = 21 x 30 x 52 = 32760
  video tokens after the VAE's 4x8x8 and the 1x2x2 patch); 40 self-attentions are
  context-parallel, the 40 cross-attentions over the 512 text tokens stay local.

Example::

    spec = MODELS["wan"]
    model = spec.build(torch.device("cuda"))
    data = spec.inputs(torch.device("cuda"), "81x480x832")
    latents, events = denoise(spec, model, data, steps=4)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from gpu_cache import FLUX_DEV, flux_call
from gpu_cache import inputs as flux_inputs
from gpu_cache import sigmas as flux_sigmas

TINY_FLUX = {
    **FLUX_DEV,
    "num_layers": 2,
    "num_single_layers": 2,
    "attention_head_dim": 16,
    "num_attention_heads": 4,
    "axes_dims_rope": (4, 6, 6),
}
WAN_14B = {  # Wan-AI/Wan2.1-T2V-14B-Diffusers, transformer/config.json
    "patch_size": (1, 2, 2),
    "num_attention_heads": 40,
    "attention_head_dim": 128,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 13824,
    "num_layers": 40,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 1024,
}
TINY_WAN = {
    **WAN_14B,
    "num_attention_heads": 4,
    "attention_head_dim": 16,
    "text_dim": 32,
    "freq_dim": 32,
    "ffn_dim": 64,
    "num_layers": 2,
}
TEXT_TOKENS = 512


def _random_init(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    model = model.to(dtype)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.02)
    return model.eval().requires_grad_(False)


@dataclass(frozen=True)
class ModelSpec:
    """How a benchmark drives one transformer family (see the module docstring)."""

    name: str
    config: dict[str, Any]
    tiny_config: dict[str, Any]
    default_sizes: tuple[str, ...]
    tiny_sizes: tuple[str, ...]
    model_class: str
    make_inputs: Callable[[torch.device, str, dict[str, Any]], dict[str, Any]]
    call: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, dict[str, Any]], torch.Tensor]
    attention_tokens: Callable[[str, dict[str, Any]], int]
    schedule: Callable[[int, torch.Tensor], list[float]]
    block_lists: tuple[str, ...]
    cp_attentions: Callable[[dict[str, Any]], int]

    def build(self, device: torch.device, tiny: bool = False) -> torch.nn.Module:
        import diffusers

        torch.manual_seed(0)
        cls = getattr(diffusers, self.model_class)
        with torch.device(device):
            model = cls(**(self.tiny_config if tiny else self.config))
        return _random_init(model, torch.float32 if tiny else torch.bfloat16)

    def inputs(self, device: torch.device, size: str, tiny: bool = False) -> dict[str, Any]:
        data = self.make_inputs(device, size, self.tiny_config if tiny else self.config)
        if tiny:
            data = {k: v.float() if v.is_floating_point() else v for k, v in data.items()}
        return data

    def blocks(self, model: torch.nn.Module) -> list[torch.nn.Module]:
        return [block for name in self.block_lists for block in getattr(model, name)]

    def heads_and_dim(self, tiny: bool = False) -> tuple[int, int]:
        config = self.tiny_config if tiny else self.config
        return config["num_attention_heads"], config["attention_head_dim"]


# -- FLUX.1-dev ------------------------------------------------------------------------
def _flux_inputs(device: torch.device, size: str, config: dict[str, Any]) -> dict[str, Any]:
    return flux_inputs(device, int(size))  # the tiny config keeps FLUX.1-dev's input widths


# -- Wan 2.1 ---------------------------------------------------------------------------
def wan_latent_shape(size: str) -> tuple[int, int, int]:
    """``FRAMESxHEIGHTxWIDTH`` pixels -> latent ``(frames, height, width)`` (VAE 4x8x8)."""
    frames, height, width = (int(v) for v in size.lower().split("x"))
    if (frames - 1) % 4 or height % 16 or width % 16:
        raise ValueError(f"wan size {size!r}: frames 4k+1, height and width multiples of 16")
    return (frames - 1) // 4 + 1, height // 8, width // 8


def _wan_tokens(size: str, config: dict[str, Any]) -> int:
    frames, height, width = wan_latent_shape(size)
    p_t, p_h, p_w = config["patch_size"]
    return (frames // p_t) * (height // p_h) * (width // p_w)


def _wan_inputs(device: torch.device, size: str, config: dict[str, Any]) -> dict[str, Any]:
    generator = torch.Generator(device=device).manual_seed(1)
    shape = (1, config["in_channels"], *wan_latent_shape(size))
    text = (1, TEXT_TOKENS, config["text_dim"])
    return {
        "latents": torch.randn(shape, device=device, generator=generator).bfloat16(),
        "encoder_hidden_states": torch.randn(text, device=device, generator=generator).bfloat16(),
    }


def _wan_call(model, latents, sigma, data):
    return model(
        hidden_states=latents,
        timestep=sigma * 1000.0,
        encoder_hidden_states=data["encoder_hidden_states"],
        return_dict=False,
    )[0]


def _wan_schedule(steps: int, latents: torch.Tensor, shift: float = 5.0) -> list[float]:
    """Flow-matching sigmas from 1 to 1/steps, shifted as Wan's pipelines do (shift 5)."""
    linear = [1.0 - i * (1.0 - 1.0 / steps) / max(steps - 1, 1) for i in range(steps)]
    return [*(shift * s / (1 + (shift - 1) * s) for s in linear), 0.0]


MODELS = {
    "flux": ModelSpec(
        name="flux",
        config=FLUX_DEV,
        tiny_config=TINY_FLUX,
        default_sizes=("1024", "2048"),
        tiny_sizes=("128", "256"),
        model_class="FluxTransformer2DModel",
        make_inputs=_flux_inputs,
        call=flux_call,
        attention_tokens=lambda size, config: (int(size) // 16) ** 2 + TEXT_TOKENS,
        schedule=lambda steps, latents: flux_sigmas(steps, latents.shape[1]),
        block_lists=("transformer_blocks", "single_transformer_blocks"),
        cp_attentions=lambda config: config["num_layers"] + config["num_single_layers"],
    ),
    "wan": ModelSpec(
        name="wan",
        config=WAN_14B,
        tiny_config=TINY_WAN,
        default_sizes=("81x480x832",),
        tiny_sizes=("9x64x64",),
        model_class="WanTransformer3DModel",
        make_inputs=_wan_inputs,
        call=_wan_call,
        attention_tokens=_wan_tokens,
        schedule=_wan_schedule,
        block_lists=("blocks",),
        cp_attentions=lambda config: config["num_layers"],
    ),
}


def denoise(
    spec: ModelSpec,
    model: torch.nn.Module,
    data: dict[str, Any],
    steps: int,
    call: Callable[..., torch.Tensor] | None = None,
) -> tuple:
    """One request: ``steps`` transformer calls with Euler updates; per-step CUDA events.
    ``call`` replaces ``spec.call``."""
    call = call or spec.call
    latents = data["latents"].clone()
    schedule = spec.schedule(steps, latents)
    sigmas = torch.tensor(schedule[:-1], device=latents.device, dtype=torch.float32)
    events = []
    with torch.inference_mode():
        for i in range(steps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            velocity = call(model, latents, sigmas[i : i + 1], data)
            latents = latents + (schedule[i + 1] - schedule[i]) * velocity
            end.record()
            events.append((start, end))
    return latents, events


def first_velocity(spec: ModelSpec, model, data: dict[str, Any], steps: int) -> torch.Tensor:
    """The transformer's output at the loop's first step (sigma = 1)."""
    latents = data["latents"]
    sigma = torch.full((1,), spec.schedule(steps, latents)[0], device=latents.device)
    with torch.inference_mode():
        return spec.call(model, latents, sigma, data)


__all__ = ["MODELS", "ModelSpec", "denoise", "first_velocity", "wan_latent_shape"]
