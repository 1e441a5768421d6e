"""Latte (``LatteTransformer3DModel``): spatial and temporal blocks alternate inside one loop.

The loop zips ``transformer_blocks`` (spatial: frames as the batch) with
``temporal_transformer_blocks`` (temporal: patches as the batch): after spatial block ``i`` it
regroups the tokens by patch, adds the temporal position embedding once (``i == 0``), runs
temporal block ``i`` and regroups them by frame again. A cached list is one stand-in, so the zip
would pair the whole spatial list with the first temporal block. The functor makes each spatial
block do its whole step, and the loop's own temporal step a no-op:

* spatial block ``i`` runs its forward, then the regrouping, the embedding (``i == 0``),
  temporal block ``i``'s forward (with the temporal timestep, computed as the forward does from
  the ``adaln_single`` output it keeps) and the regrouping back;
* while the transformer runs, the temporal blocks return their input, and the position
  embedding the loop adds is a zero.

Only ``transformer_blocks`` is cached. Uncached, every operation runs in the original order on the
same values (the loop's extra regroupings are exact round trips), so outputs are bit-identical.
"""

from __future__ import annotations

from typing import Any

import torch

from ..patch_functor import PatchFunctor
from .video_calls import Forward, PerCall, bind_arguments, wrap_forward

__all__ = ["LattePatchFunctor"]

_POSITION = "temp_pos_embed"


class LattePatchFunctor(PatchFunctor):
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        state = PerCall()
        temporal = [block.forward for block in transformer.temporal_transformer_blocks]
        wrap_forward(transformer.adaln_single, lambda original: _keeping_timestep(original, state))
        for block in transformer.temporal_transformer_blocks:
            wrap_forward(block, lambda original: _idle_in_loop(original, state))
        for index, block in enumerate(transformer.transformer_blocks):
            step = _SpatialThenTemporal(index, temporal[index], state)
            wrap_forward(block, lambda original, step=step: step.wrap(original))
        original_forward = transformer.forward

        def forward(*args: Any, **kwargs: Any) -> Any:
            named = bind_arguments(original_forward, args, kwargs)
            hidden_states = named["hidden_states"]
            buffers = transformer._buffers
            position = buffers[_POSITION]
            with state.call():
                state["batch"], state["frames"] = hidden_states.shape[0], hidden_states.shape[2]
                state["temporal"] = bool(named.get("enable_temporal_attentions", True))
                state["position"] = position
                buffers[_POSITION] = position.new_zeros(())  # what the loop adds
                try:
                    return original_forward(*args, **kwargs)
                finally:
                    buffers[_POSITION] = position

        wrap_forward(transformer, lambda _: forward)
        return transformer


def _keeping_timestep(original: Forward, state: PerCall) -> Forward:
    def forward(*args: Any, **kwargs: Any) -> Any:
        timestep, embedded = original(*args, **kwargs)
        if state.get("batch") is not None:
            state["timestep"] = timestep
        return timestep, embedded

    return forward


def _idle_in_loop(original: Forward, state: PerCall) -> Forward:
    def forward(hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if state.get("batch") is not None:  # the spatial block before it ran it already
            return hidden_states
        return original(hidden_states, *args, **kwargs)

    return forward


class _SpatialThenTemporal:
    """Spatial block ``index``'s forward followed by the loop's temporal step for ``index``."""

    def __init__(self, index: int, temporal: Forward, state: PerCall) -> None:
        self.index, self.temporal, self.state = index, temporal, state

    def wrap(self, original: Forward) -> Forward:
        def forward(*args: Any, **kwargs: Any) -> Any:
            hidden_states = original(*args, **kwargs)
            if self.state.get("batch") is None or not self.state["temporal"]:
                return hidden_states
            return self.temporal_step(hidden_states)

        return forward

    def temporal_step(self, hidden_states: torch.Tensor) -> torch.Tensor:
        state = self.state
        batch, frames = state["batch"], state["frames"]
        timestep = state.get("temporal_timestep")
        if timestep is None:
            timestep = _per_patch(state["timestep"], hidden_states.shape[-2])
            state["temporal_timestep"] = timestep
        hidden_states = _regroup(hidden_states, batch)  # by patch
        if self.index == 0 and frames > 1:
            hidden_states = hidden_states + state["position"].to(hidden_states.dtype)
        hidden_states = self.temporal(hidden_states, None, None, None, timestep, None, None)
        return _regroup(hidden_states, batch)  # by frame


def _regroup(hidden_states: torch.Tensor, batch: int) -> torch.Tensor:
    """(batch * a, b, dim) -> (batch * b, a, dim), as the loop swaps frames and patches."""
    grouped = hidden_states.reshape(batch, -1, hidden_states.shape[-2], hidden_states.shape[-1])
    grouped = grouped.permute(0, 2, 1, 3)
    return grouped.reshape(-1, grouped.shape[-2], grouped.shape[-1])


def _per_patch(timestep: torch.Tensor, patches: int) -> torch.Tensor:
    repeated = timestep.repeat_interleave(patches, dim=0, output_size=timestep.shape[0] * patches)
    return repeated.view(-1, timestep.shape[-1])
