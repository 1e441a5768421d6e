"""Cosmos 3 (``Cosmos3OmniTransformer``): mixture-of-transformers layers over two streams.

Each decoder layer takes and returns ``(und_seq, gen_seq)``: the understanding stream (the text
prefix, nearly constant across denoising steps) first, the generation stream (the noisy vision,
sound and action tokens) second. A cached list decides on its first stream, which would make
nearly every step look cacheable. The functor makes the generation stream the hidden stream of
Pattern_0:

* each real layer gets a forward ``(hidden_states=gen, encoder_hidden_states=und, rotary_emb)``
  returning ``(gen, und)``, which calls the layer's own forward with the streams swapped back;
* for each call of the transformer, a call site in front of ``layers`` turns the loop's
  ``layer(und, gen, rotary_emb)`` into ``layer(gen, und, rotary_emb)`` and swaps the result back.

Both swaps only reorder references, so uncached outputs are bit-identical.
"""

from __future__ import annotations

from typing import Any

import torch

from ..patch_functor import PatchFunctor
from .video_calls import Forward, call_sites, wrap_forward

__all__ = ["Cosmos3OmniPatchFunctor"]


class Cosmos3OmniPatchFunctor(PatchFunctor):
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        for layer in transformer.layers:
            layer.forward = _generation_first(layer.forward)
        original_forward = transformer.forward

        def forward(*args: Any, **kwargs: Any) -> Any:
            with call_sites(transformer, "layers", _swapped):
                return original_forward(*args, **kwargs)

        wrap_forward(transformer, lambda _: forward)
        return transformer


def _generation_first(original: Forward) -> Forward:
    def forward(
        hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        und_seq, gen_seq = original(encoder_hidden_states, hidden_states, *args, **kwargs)
        return gen_seq, und_seq

    return forward


def _swapped(layer: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    und_seq, gen_seq, *rest = args
    gen_out, und_out = layer(gen_seq, und_seq, *rest, **kwargs)
    return und_out, gen_out
