"""Wan-Animate (``WanAnimateTransformer3DModel``): a face adapter runs between blocks in the loop.

After block ``i`` with ``i % inject_face_latents_blocks == 0`` the loop adds
``face_adapter[i // inject_face_latents_blocks](hidden_states, motion_vec)`` to the hidden states,
where ``motion_vec`` is the face encoder's output with a zero frame prepended. While cached,
``blocks`` holds one stand-in, so the loop would apply only the first adapter, after the whole
list. The functor moves each adapter into its block:

* the face encoder's forward keeps this call's padded ``motion_vec`` (computed as the loop does);
* each face adapter, as the loop calls it, returns a zero, so the loop's addition adds nothing;
* block ``i`` (an injecting one) runs the adapter's own forward on its output and adds it.

Uncached, the adapters run on the same inputs in the same order, so outputs are bit-identical.
"""

from __future__ import annotations

from typing import Any

import torch

from ..patch_functor import PatchFunctor
from .video_calls import Forward, PerCall, wrap_forward

__all__ = ["WanAnimatePatchFunctor"]


class WanAnimatePatchFunctor(PatchFunctor):
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        state = PerCall()
        every = transformer.config.inject_face_latents_blocks
        adapters = [adapter.forward for adapter in transformer.face_adapter]
        wrap_forward(transformer.face_encoder, lambda original: _keeping_motion(original, state))
        for adapter in transformer.face_adapter:
            wrap_forward(adapter, lambda original: _silent_in_loop(original, state))
        for index, block in enumerate(transformer.blocks):
            if index % every == 0 and index // every < len(adapters):
                run = adapters[index // every]
                wrap_forward(block, lambda original, run=run: _with_face(original, run, state))
        original_forward = transformer.forward

        def forward(*args: Any, **kwargs: Any) -> Any:
            with state.call():
                state["active"] = True
                return original_forward(*args, **kwargs)

        wrap_forward(transformer, lambda _: forward)
        return transformer


def _keeping_motion(original: Forward, state: PerCall) -> Forward:
    def forward(*args: Any, **kwargs: Any) -> Any:
        motion = original(*args, **kwargs)
        if state.get("active"):
            state["motion"] = torch.cat([torch.zeros_like(motion[:, :1]), motion], dim=1)
        return motion

    return forward


def _silent_in_loop(original: Forward, state: PerCall) -> Forward:
    def forward(hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if state.get("active"):  # the block already added this adapter's output
            return hidden_states.new_zeros(())
        return original(hidden_states, *args, **kwargs)

    return forward


def _with_face(original: Forward, adapter: Forward, state: PerCall) -> Forward:
    def forward(*args: Any, **kwargs: Any) -> Any:
        hidden_states = original(*args, **kwargs)
        motion = state.get("motion")
        if motion is None:
            return hidden_states
        face = adapter(hidden_states, motion).to(device=hidden_states.device)
        return face + hidden_states

    return forward
