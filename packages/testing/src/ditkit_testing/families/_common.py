"""Seeding and input helpers shared by the tiny case modules.

Image cases build inside ``_build(seed, make)``; video cases are ``make()`` functions decorated
with ``@_seeded``. Both fork the global RNG and seed it, so a case's weights and inputs depend
only on its seed, never on what ran before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

#: (transformer, keyword arguments of one forward call)
Case = tuple[Any, dict[str, Any]]
#: ``seed -> Case``
Builder = Callable[[int], Case]

HEADS, HEAD_DIM, TEXT_DIM, TEXT_LEN = 2, 8, 16, 6


def _build(seed: int, make: Callable[[], Case]) -> Case:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer, kwargs = make()
    transformer.eval()
    kwargs.setdefault("return_dict", False)
    return transformer, kwargs


def _unzero(model: torch.nn.Module) -> torch.nn.Module:
    """Give zero-initialised weights (adaLN-zero gates, zero output layers) small random values,
    so that every block changes the output of a freshly built model."""
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.numel() > 1 and not parameter.any():
                parameter.normal_(0.0, 0.2)
    return model


def _ids(height: int, width: int, text: int, axes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Flux-style position ids: image (h*w, axes) and text (text, axes)."""
    img = torch.zeros(height, width, axes)
    img[..., 1] = torch.arange(height)[:, None]
    img[..., 2] = torch.arange(width)[None, :]
    return img.reshape(height * width, axes), torch.zeros(text, axes)


def _flux_like_inputs(channels: int, text_dim: int, guidance: bool = False) -> dict[str, Any]:
    img_ids, txt_ids = _ids(4, 4, 6)
    kwargs = dict(
        hidden_states=torch.randn(1, 16, channels),
        encoder_hidden_states=torch.randn(1, 6, text_dim),
        timestep=torch.tensor([0.999]),
        img_ids=img_ids,
        txt_ids=txt_ids,
    )
    if guidance:
        kwargs["guidance"] = torch.tensor([3.5])
    return kwargs


def _seeded(make: Callable[[], Case]) -> Builder:
    def build(seed: int = 0) -> Case:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model, kwargs = make()
        return model.eval(), kwargs

    build.__name__ = make.__name__
    build.__doc__ = make.__doc__
    return build


def _video(channels: int = 4, frames: int = 2, size: int = 8) -> torch.Tensor:
    return torch.randn(1, channels, frames, size, size)


def _text(length: int = TEXT_LEN, dim: int = TEXT_DIM) -> torch.Tensor:
    return torch.randn(1, length, dim)


def _timestep() -> torch.Tensor:
    return torch.tensor([999.0])


def _wan_like(cls_name: str, **extra: Any) -> tuple[Any, dict[str, Any]]:
    import diffusers

    model = getattr(diffusers, cls_name)(
        patch_size=(1, 2, 2),
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        in_channels=4,
        out_channels=4,
        text_dim=TEXT_DIM,
        freq_dim=16,
        ffn_dim=32,
        num_layers=4,
        **extra,
    )
    kwargs = dict(hidden_states=_video(), timestep=_timestep(), encoder_hidden_states=_text())
    return model, kwargs
