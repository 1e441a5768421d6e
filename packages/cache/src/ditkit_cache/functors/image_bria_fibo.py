"""Bria Fibo (``BriaFiboTransformer2DModel``): the per-block text-encoder layer moves into blocks.

Before block ``k`` (of both lists) the forward replaces the second half of the text stream's
channels with the projection of text-encoder layer ``k``; before a single-stream block it also
joins ``[text, image]`` into one sequence and splits it after. A cached stand-in would see only
the first block's replacement.

The functor records each projected layer as ``caption_projection[k]`` computes it, and gives
every block a forward that makes its own replacement first: on the encoder stream of a
double-stream block (Pattern_1), on the text tokens at the head of a single-stream block's joint
sequence (Pattern_3: the stream between single blocks is ``[text, image]``, which the forward
splits after the loop). Replacing channels that were already replaced with the same values
changes nothing, so uncached outputs are bit-identical; the transformer's own forward is kept.
"""

from __future__ import annotations

from typing import Any

import torch

from ..patch_functor import PatchFunctor
from ._forwards import Forward, wrap_forward

__all__ = ["BriaFiboPatchFunctor"]


class BriaFiboPatchFunctor(PatchFunctor):
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        layers: dict[int, torch.Tensor] = {}
        half = transformer.inner_dim // 2
        wrap_forward(transformer, lambda forward: _forgetting(forward, layers))
        for index, projection in enumerate(transformer.caption_projection):
            wrap_forward(projection, lambda f, i=index: _recording(f, i, layers))
        doubles = transformer.transformer_blocks
        for index, block in enumerate(doubles):
            wrap_forward(block, lambda f, i=index: _double(f, i, half, layers))
        for index, block in enumerate(transformer.single_transformer_blocks, start=len(doubles)):
            wrap_forward(block, lambda f, i=index: _single(f, i, half, layers))
        return transformer


def _forgetting(forward: Forward, layers: dict[int, torch.Tensor]) -> Forward:
    def patched(*args: Any, **kwargs: Any) -> Any:
        layers.clear()
        try:
            return forward(*args, **kwargs)
        finally:
            layers.clear()

    return patched


def _recording(forward: Forward, index: int, layers: dict[int, torch.Tensor]) -> Forward:
    def patched(*args: Any, **kwargs: Any) -> torch.Tensor:
        layers[index] = output = forward(*args, **kwargs)
        return output

    return patched


def _layer(layers: dict[int, torch.Tensor], index: int) -> torch.Tensor:
    if index not in layers:
        raise ValueError(f"BriaFibo block {index} has no text-encoder layer in this call")
    return layers[index]


def _double(forward: Forward, index: int, half: int, layers: dict[int, torch.Tensor]) -> Forward:
    def patched(
        hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> Any:
        text = torch.cat([encoder_hidden_states[:, :, :half], _layer(layers, index)], dim=-1)
        return forward(hidden_states, text, *args, **kwargs)

    return patched


def _single(forward: Forward, index: int, half: int, layers: dict[int, torch.Tensor]) -> Forward:
    def patched(hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        layer = _layer(layers, index)
        tokens = layer.shape[1]
        text = torch.cat([hidden_states[:, :tokens, :half], layer], dim=-1)
        return forward(torch.cat([text, hidden_states[:, tokens:]], dim=1), *args, **kwargs)

    return patched
