"""Image transformers whose loop adds control-net residuals by block index (diffusers 0.42.1).

Each functor moves those additions into the blocks (:mod:`.control_residuals`), so a cached
forward adds one residual per real block, as the uncached loop does, and a call without control
samples is untouched. The rules, read from the forwards:

- FLUX (``FluxTransformer2DModel``): after double block ``i``, ``controlnet_block_samples[i //
  ceil(N / n)]`` (``[i % n]`` with ``controlnet_blocks_repeat``, XLabs' control nets); after
  single block ``i``, ``controlnet_single_block_samples[i // ceil(N / n)]``.
- Qwen-Image: the FLUX rule on ``transformer_blocks``.
- SD3: ``block_controlnet_hidden_states[int(i / (N / n))]`` after every block but the last,
  context-only one.
- Sana: ``controlnet_block_samples[i - 1]`` after blocks ``1..n``.
- Bria: the FLUX rule; the single-stream sample goes to the image tokens from the text length on.

Chroma's rule (FLUX's, the single sample after the text tokens) is applied by
:class:`~ditkit_cache.functors.image_chroma.ChromaPatchFunctor`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .control_residuals import (
    ControlList,
    ControlResidualsPatchFunctor,
    add_after_text,
    every_interval,
)

__all__ = [
    "FLUX_CONTROL",
    "BriaControlNetPatchFunctor",
    "FluxPatchFunctor",
    "QwenImageControlNetPatchFunctor",
    "SD3ControlNetPatchFunctor",
    "SanaControlNetPatchFunctor",
    "flux_double_pick",
]

_DOUBLE, _SINGLE = "controlnet_block_samples", "controlnet_single_block_samples"
_REPEAT = "controlnet_blocks_repeat"


def flux_double_pick(index: int, blocks: int, samples: int, call: Mapping[str, Any]) -> int:
    """FLUX's double-stream rule, with XLabs' ``controlnet_blocks_repeat``."""
    return index % samples if call.get(_REPEAT) else every_interval(index, blocks, samples, call)


def _sd3_pick(index: int, blocks: int, samples: int, call: Mapping[str, Any]) -> int:
    return int(index / (blocks / samples))


def _sana_pick(index: int, blocks: int, samples: int, call: Mapping[str, Any]) -> int | None:
    return index - 1 if 0 < index <= samples else None


#: FLUX's two lists (Chroma's functor reuses the double-stream one).
FLUX_CONTROL = (
    ControlList("transformer_blocks", _DOUBLE, flux_double_pick),
    ControlList("single_transformer_blocks", _SINGLE, every_interval),
)


class FluxPatchFunctor(ControlResidualsPatchFunctor):
    """FLUX.1 (and VisualCloze): both lists' control residuals, per block."""

    lists = FLUX_CONTROL
    options = (_REPEAT,)


class QwenImageControlNetPatchFunctor(ControlResidualsPatchFunctor):
    lists = (ControlList("transformer_blocks", _DOUBLE, every_interval),)


class SD3ControlNetPatchFunctor(ControlResidualsPatchFunctor):
    lists = (
        ControlList(
            "transformer_blocks",
            "block_controlnet_hidden_states",
            _sd3_pick,
            takes=lambda block: block.context_pre_only is False,
        ),
    )


class SanaControlNetPatchFunctor(ControlResidualsPatchFunctor):
    """Sana, and Sana-Video (the same rule on ``SanaVideoTransformer3DModel``)."""

    lists = (ControlList("transformer_blocks", _DOUBLE, _sana_pick),)


class BriaControlNetPatchFunctor(ControlResidualsPatchFunctor):
    lists = (
        ControlList("transformer_blocks", _DOUBLE, every_interval),
        ControlList("single_transformer_blocks", _SINGLE, every_interval, add_after_text),
    )
