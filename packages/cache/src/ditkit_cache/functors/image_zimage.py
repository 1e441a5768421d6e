"""Z-Image under a control net (``ZImageTransformer2DModel``): control residuals move into layers.

The forward adds ``controlnet_block_samples[i]`` to the stream after layer ``i``, between layers.
While cached, ``layers`` holds one stand-in that runs every real layer, so that addition would
happen once, after all of them, with sample 0. The functor takes the samples out of the call (the
original forward sees ``None``) and gives each layer a forward that adds its own sample to its
output: the same addition at the same place, so outputs are bit-identical.

Without control samples the patched model computes exactly what the original does, so the
``ZImage`` family applies this functor to every Z-Image transformer.
"""

from __future__ import annotations

from typing import Any

import torch

from ..patch_functor import PatchFunctor
from ._forwards import Argument, Forward, wrap_forward

__all__ = ["ZImageControlNetPatchFunctor"]

_SAMPLES = "controlnet_block_samples"


class ZImageControlNetPatchFunctor(PatchFunctor):
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        current: dict[str, Any] = {}
        wrap_forward(transformer, lambda forward: _taking_samples(forward, current))
        for index, layer in enumerate(transformer.layers):
            wrap_forward(
                layer, lambda forward, index=index: _adding_sample(forward, index, current)
            )
        return transformer


def _taking_samples(forward: Forward, current: dict[str, Any]) -> Forward:
    samples_argument = Argument(forward, _SAMPLES)

    def patched(*args: Any, **kwargs: Any) -> Any:
        samples = samples_argument.get(args, kwargs)
        if samples is None:
            return forward(*args, **kwargs)
        args, kwargs = samples_argument.replace(args, kwargs, None)
        current[_SAMPLES] = samples
        try:
            return forward(*args, **kwargs)
        finally:
            current.pop(_SAMPLES, None)

    return patched


def _adding_sample(forward: Forward, index: int, current: dict[str, Any]) -> Forward:
    def patched(*args: Any, **kwargs: Any) -> Any:
        output = forward(*args, **kwargs)
        samples = current.get(_SAMPLES)
        if samples is not None and index in samples:
            output = output + samples[index]
        return output

    return patched
