"""LTX-2 (``LTX2VideoTransformer3DModel``): video and audio streams through one block list.

Each block takes and returns ``(hidden_states, audio_hidden_states)``; its second positional
parameter is the audio stream, so the audio plays the encoder stream of Pattern_0 (the text,
``encoder_hidden_states``, stays a keyword argument every block receives unchanged). The loop,
however, passes both streams by keyword, and a cached list's stand-in would take the text for
the encoder stream. The functor puts, for each call, a call site in front of the list that
passes the two streams by position (the stand-in then threads and caches the audio; uncached,
each real block gets exactly the loop's arguments).

The pipelines also call the transformer for guidance branches that perturb some blocks
(spatio-temporal guidance: ``spatio_temporal_guidance_blocks``) or cut the audio-video cross
attention (``isolate_modalities=True``), with other batch sizes, several times per step. Those
calls run uncached on the real blocks: their residuals belong to another computation than the
main call's, so only the main (conditional/unconditional batch) call is cached.
"""

from __future__ import annotations

from typing import Any

import torch

from ..patch_functor import PatchFunctor
from .video_calls import as_called, bind_arguments, call_sites, wrap_forward

__all__ = ["LTX2PatchFunctor"]


class LTX2PatchFunctor(PatchFunctor):
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        real_blocks = transformer.transformer_blocks
        original_forward = transformer.forward

        def forward(*args: Any, **kwargs: Any) -> Any:
            named = bind_arguments(original_forward, args, kwargs)
            if named.get("isolate_modalities") or named.get("spatio_temporal_guidance_blocks"):
                with call_sites(transformer, "transformer_blocks", as_called, real_blocks):
                    return original_forward(*args, **kwargs)
            with call_sites(transformer, "transformer_blocks", _streams_by_position):
                return original_forward(*args, **kwargs)

        wrap_forward(transformer, lambda _: forward)
        return transformer


def _streams_by_position(
    block: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if args:  # gradient checkpointing passes everything by position already
        return block(*args, **kwargs)
    kwargs = dict(kwargs)
    video = kwargs.pop("hidden_states")
    audio = kwargs.pop("audio_hidden_states")
    return block(video, audio, **kwargs)
