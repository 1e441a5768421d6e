"""Cosmos (``CosmosTransformer3DModel``, Cosmos-Transfer): control residuals go into the blocks.

The forward maps ``block_controlnet_hidden_states[k]`` to block ``k * controlnet_block_every_n``
and passes each block its residual as the ``controlnet_residual`` argument (the block adds it
before returning). While cached, the list holds one stand-in that hands every real block the
arguments of block 0, so every block would add block 0's residual. The functor takes the samples
out of the call and gives each block a forward that passes its own residual (or ``None``), as the
uncached loop does: outputs are bit-identical, and a call without samples is untouched.

Sana-Video's rule is Sana's (:class:`~ditkit_cache.functors.image_controlnet.
SanaControlNetPatchFunctor`, which the ``SanaVideo`` family applies).
"""

from __future__ import annotations

from typing import Any

import torch

from ..patch_functor import PatchFunctor
from ._forwards import Argument, Forward, wrap_forward
from .control_residuals import take_samples

__all__ = ["CosmosControlNetPatchFunctor"]

_SAMPLES = "block_controlnet_hidden_states"
_RESIDUAL = "controlnet_residual"


class CosmosControlNetPatchFunctor(PatchFunctor):
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        every = transformer.config.controlnet_block_every_n
        if every is None:  # no control net fits: a call with samples fails as it did
            return transformer
        call = take_samples(transformer, [_SAMPLES])
        for index, block in enumerate(transformer.transformer_blocks):
            own = index // every if index % every == 0 else None
            wrap_forward(block, lambda forward, own=own: _own_residual(forward, own, call))
        return transformer


def _own_residual(forward: Forward, own: int | None, call: dict[str, Any]) -> Forward:
    residual = Argument(forward, _RESIDUAL)

    def patched(*args: Any, **kwargs: Any) -> Any:
        samples = call.get(_SAMPLES)
        if samples is None:
            return forward(*args, **kwargs)
        value = None if own is None else samples[own]
        args, kwargs = residual.replace(args, kwargs, value)
        return forward(*args, **kwargs)

    return patched
