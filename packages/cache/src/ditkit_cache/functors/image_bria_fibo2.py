"""Bria Fibo 2 (``BriaFibo2Transformer2DModel``): injection layers pick their own text bundle.

The forward's main loop hands layer ``k`` the text bundle ``encoder_hidden_states[:, b(k)]`` when
``k`` is one of ``config.injection_layer_ids`` (``b`` counts them from 1; bundle 0 feeds the
Perceiver) and ``None`` otherwise. A cached stand-in would hand every layer layer 0's choice.

The functor keeps the call's ``encoder_hidden_states`` and gives each layer a forward that takes
its own bundle (the same slice the loop takes), so uncached outputs are bit-identical. The
refiner layers (``noise_refiner``) are left alone.
"""

from __future__ import annotations

from typing import Any

import torch

from ..patch_functor import PatchFunctor
from ._forwards import Argument, Forward, wrap_forward

__all__ = ["BriaFibo2PatchFunctor"]

_TEXT = "encoder_hidden_states"


class BriaFibo2PatchFunctor(PatchFunctor):
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        current: dict[str, torch.Tensor] = {}
        bundles = {layer: n + 1 for n, layer in enumerate(transformer.config.injection_layer_ids)}
        wrap_forward(transformer, lambda forward: _keeping_text(forward, current))
        for index, layer in enumerate(transformer.layers):
            bundle = bundles.get(index)
            wrap_forward(layer, lambda f, b=bundle: _own_bundle(f, b, current))
        return transformer


def _keeping_text(forward: Forward, current: dict[str, torch.Tensor]) -> Forward:
    text_argument = Argument(forward, _TEXT)

    def patched(*args: Any, **kwargs: Any) -> Any:
        current[_TEXT] = text_argument.get(args, kwargs)
        try:
            return forward(*args, **kwargs)
        finally:
            current.clear()

    return patched


def _own_bundle(forward: Forward, bundle: int | None, current: dict[str, torch.Tensor]) -> Forward:
    text_argument = Argument(forward, _TEXT)

    def patched(*args: Any, **kwargs: Any) -> Any:
        text = current.get(_TEXT)
        if text is not None:  # called from the transformer's forward: take the own bundle
            args, kwargs = text_argument.replace(
                args, kwargs, None if bundle is None else text[:, bundle]
            )
        return forward(*args, **kwargs)

    return patched
