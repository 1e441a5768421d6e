"""WanVACE (``WanVACETransformer3DModel``): control hints are added between blocks in the loop.

The forward first runs ``vace_blocks`` over the control video, collecting one hint per VACE
block, then runs ``blocks`` and, after block ``i`` for each ``i`` in ``config.vace_layers``, adds
the next hint times its scale. While cached, ``blocks`` holds one stand-in, so the loop would add
a single hint after the whole list. The functor moves the additions into the blocks:

* each VACE block's forward records its hint for this call and hands the loop a zero in its
  place, so the loop's own addition adds nothing;
* block ``i`` in ``vace_layers`` adds hint ``k`` (``k`` counts the VACE layers before ``i``, the
  order in which the loop pops them) times scale ``k`` after its own forward;
* the transformer's forward computes the scales as the original does and scopes the hints to the
  call.

Uncached, every block does exactly what the loop did, in the same order, so outputs are
bit-identical (the loop's extra ``+ 0`` changes no value).
"""

from __future__ import annotations

from typing import Any

import torch

from ..patch_functor import PatchFunctor
from .video_calls import Forward, PerCall, bind_arguments, wrap_forward

__all__ = ["WanVACEPatchFunctor"]


class WanVACEPatchFunctor(PatchFunctor):
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        state = PerCall()
        vace_layers = list(transformer.config.vace_layers)
        for block in transformer.vace_blocks:
            wrap_forward(block, lambda original: _recording_hint(original, state))
        for index, block in enumerate(transformer.blocks):
            if index in vace_layers:
                rank = sum(1 for earlier in range(index) if earlier in vace_layers)
                wrap_forward(block, lambda original, k=rank: _adding_hint(original, state, k))
        original_forward = transformer.forward

        def forward(*args: Any, **kwargs: Any) -> Any:
            named = bind_arguments(original_forward, args, kwargs)
            scales = named.get("control_hidden_states_scale")
            control = named.get("control_hidden_states")
            if scales is None and control is not None:
                scales = control.new_ones(len(vace_layers))
            with state.call():
                state["hints"] = []
                state["scales"] = torch.unbind(scales) if scales is not None else ()
                return original_forward(*args, **kwargs)

        wrap_forward(transformer, lambda _: forward)
        return transformer


def _recording_hint(original: Forward, state: PerCall) -> Forward:
    def forward(*args: Any, **kwargs: Any) -> Any:
        hint, control = original(*args, **kwargs)
        hints = state.get("hints")
        if hints is None:  # called outside the transformer's forward: leave it alone
            return hint, control
        hints.append(hint)
        return hint.new_zeros(()), control

    return forward


def _adding_hint(original: Forward, state: PerCall, rank: int) -> Forward:
    def forward(*args: Any, **kwargs: Any) -> Any:
        hidden_states = original(*args, **kwargs)
        hints = state.get("hints")
        if hints is None:
            return hidden_states
        hint, scale = hints[rank], state["scales"][rank]
        return hidden_states + hint.to(hidden_states.device) * scale

    return forward
