"""Chroma (``ChromaTransformer2DModel``): each block's modulation is sliced inside the loop.

The forward cuts every block's ``temb`` out of one ``pooled_temb`` tensor at offsets computed
from the block index and the lengths of both block lists. While cached, both lists hold a single
stand-in, so those offsets are wrong. The functor keeps the ``pooled_temb`` of the current call
(a wrapper around ``distilled_guidance_layer``) and gives each real block a forward that slices
its own modulation by its real index, ignoring the ``temb`` it is passed. Uncached, the slices
are the ones the original loop takes, so outputs are bit-identical.

Under a control net the loop also adds ``controlnet_block_samples`` after each double block and
``controlnet_single_block_samples`` to the image tokens after each single block (FLUX's rules);
the functor moves those additions into the blocks too (:mod:`.control_residuals`).
"""

from __future__ import annotations

from typing import Any

import torch

from ..patch_functor import PatchFunctor
from .control_residuals import ControlList, add_after_text, every_interval, patch_control_residuals
from .image_controlnet import FLUX_CONTROL

__all__ = ["ChromaPatchFunctor"]


class ChromaPatchFunctor(PatchFunctor):
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        current: dict[str, torch.Tensor] = {}
        approximator = transformer.distilled_guidance_layer
        approximate = approximator.forward

        def keep_pooled_temb(*inputs: Any, **options: Any) -> torch.Tensor:
            current["pooled_temb"] = approximate(*inputs, **options)
            return current["pooled_temb"]

        approximator.forward = keep_pooled_temb
        doubles, singles = transformer.transformer_blocks, transformer.single_transformer_blocks
        img_offset = 3 * len(singles)
        txt_offset = img_offset + 6 * len(doubles)

        def double_temb(pooled: torch.Tensor, index: int) -> torch.Tensor:
            img, txt = img_offset + 6 * index, txt_offset + 6 * index
            return torch.cat((pooled[:, img : img + 6], pooled[:, txt : txt + 6]), dim=1)

        def single_temb(pooled: torch.Tensor, index: int) -> torch.Tensor:
            return pooled[:, 3 * index : 3 * index + 3]

        for blocks, slicer in ((doubles, double_temb), (singles, single_temb)):
            for index, block in enumerate(blocks):
                block.forward = _with_own_temb(block.forward, slicer, index, current)
        patch_control_residuals(transformer, _CONTROL, ("controlnet_blocks_repeat",))
        return transformer


_CONTROL = (
    FLUX_CONTROL[0],
    ControlList(
        "single_transformer_blocks",
        "controlnet_single_block_samples",
        every_interval,
        add_after_text,
    ),
)


def _with_own_temb(forward: Any, slicer: Any, index: int, current: dict) -> Any:
    def patched(*args: Any, **kwargs: Any) -> Any:
        if "temb" in kwargs and "pooled_temb" in current:
            kwargs["temb"] = slicer(current["pooled_temb"], index)
        return forward(*args, **kwargs)

    return patched
