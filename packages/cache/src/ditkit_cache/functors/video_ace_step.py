"""ACE-Step (``AceStepTransformer1DModel``): each layer's attention mask depends on its index.

The loop passes ``attention_mask=sliding_mask`` to the layers whose ``layer_types`` entry is
``"sliding_attention"`` and ``None`` to the ``"full_attention"`` ones (the sliding mask is ``None``
too on a flash-attention backend, which takes the window itself). While cached, ``layers`` holds
one stand-in that hands every real layer the first layer's mask. The functor gives each real layer
a forward that picks its own mask: ``None`` for a full-attention layer, the mask it is given for a
sliding layer when the first layer is a sliding one too (the default interleaving), and otherwise
the sliding mask built as the forward builds it.

Two more things keep the cached model exact:

* the forward reads ``layers[0].self_attn.processor`` (to skip the mask on flash attention), so
  for each call a call site in front of the list carries the real first layer's ``self_attn``;
* the hidden stream comes out of a transposed convolution and is not contiguous, and every layer
  keeps that layout, while the cache hands on contiguous copies; the layers round differently
  on the other layout, so each layer (and the list's output) gets its stream back in the layout
  the loop's input has.

Uncached, every layer gets the mask and layout the loop gives it, so outputs are bit-identical.
"""

from __future__ import annotations

from typing import Any

import torch

from ..patch_functor import PatchFunctor
from .video_calls import Forward, PerCall, call_sites, like, wrap_forward

__all__ = ["AceStepPatchFunctor"]

_SLIDING = "sliding_attention"


class AceStepPatchFunctor(PatchFunctor):
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        state = PerCall()
        kinds = list(transformer.layer_types)
        first = transformer.layers[0]  # the real one: while cached, 'layers' holds a stand-in
        build = None if kinds[0] == _SLIDING else _sliding_mask_builder(transformer, first)
        for layer, kind in zip(transformer.layers, kinds, strict=True):
            mask = _no_mask if kind != _SLIDING else build
            wrap_forward(layer, lambda original, mask=mask: _layer(original, mask, state))
        original_forward = transformer.forward

        def site(layer: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            hidden_states = _hidden(args, kwargs)
            if state.get("stream") is None:
                state["stream"] = hidden_states
            output = layer(*args, **kwargs)
            if isinstance(hidden_states, torch.Tensor) and isinstance(output, torch.Tensor):
                return like(hidden_states, output)
            return output

        def forward(*args: Any, **kwargs: Any) -> Any:
            with state.call(), call_sites(transformer, "layers", site, self_attn=first.self_attn):
                return original_forward(*args, **kwargs)

        wrap_forward(transformer, lambda _: forward)
        return transformer


def _hidden(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return kwargs["hidden_states"] if "hidden_states" in kwargs else (args[0] if args else None)


def _no_mask(hidden_states: torch.Tensor) -> None:
    return None


def _sliding_mask_builder(transformer: torch.nn.Module, first: torch.nn.Module) -> Any:
    """The sliding mask as the forward builds it from the stream entering the layers."""
    from diffusers.models.transformers import ace_step_transformer as ace

    def build(hidden_states: torch.Tensor) -> torch.Tensor | None:
        if ace._is_flash_attention_backend(first.self_attn.processor):
            return None
        return ace._create_4d_mask(
            seq_len=hidden_states.shape[1],
            dtype=hidden_states.dtype,
            device=hidden_states.device,
            sliding_window=transformer.config.sliding_window,
            is_sliding_window=True,
            is_causal=False,
        )

    return build


def _layer(original: Forward, mask: Any, state: PerCall) -> Forward:
    """A real layer: its own mask (``mask is None``: keep the one given) and the loop's layout."""

    def forward(*args: Any, **kwargs: Any) -> Any:
        stream = state.get("stream")
        hidden_states = _hidden(args, kwargs)
        if isinstance(stream, torch.Tensor) and isinstance(hidden_states, torch.Tensor):
            hidden_states = like(stream, hidden_states)
            if "hidden_states" in kwargs:
                kwargs["hidden_states"] = hidden_states
            else:
                args = (hidden_states, *args[1:])
        if mask is not None and "attention_mask" in kwargs:
            kwargs["attention_mask"] = mask(hidden_states)
        return original(*args, **kwargs)

    return forward
