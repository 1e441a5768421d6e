"""Motif-Video (``MotifVideoTransformer3DModel``): decoder layers are sliced off the single list.

With ``num_decoder_layers = N > 0`` the forward runs ``single_transformer_blocks[:len - N]`` as
encoder layers and ``single_transformer_blocks[-N:]`` as decoder layers on other streams (the
decoder's hidden stream starts from the embedded input; the encoder output becomes its context).
While cached, the list holds one stand-in, so both slices would be wrong. No forward rewrite
keeps both loops over one cached list, so this functor changes nothing for ``N == 0`` (the
default, where both block lists fit Pattern_0 as they are) and refuses ``N > 0`` before anything
is patched, naming the fix: cache ``transformer_blocks`` alone with a ``BlockAdapter``.
"""

from __future__ import annotations

from typing import Any

import torch

from ditkit_interfaces import UnsupportedModelError

from ..patch_functor import PatchFunctor

__all__ = ["MotifVideoPatchFunctor"]


class MotifVideoPatchFunctor(PatchFunctor):
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        decoders = int(getattr(transformer, "num_decoder_layers", 0) or 0)
        if decoders > 0:
            raise UnsupportedModelError(
                f"{type(transformer).__name__} with num_decoder_layers={decoders}: its forward "
                "slices the last layers off single_transformer_blocks and runs them as a decoder, "
                "which a cached list cannot do; cache the dual-stream blocks alone with "
                "BlockAdapter(transformer=t, blocks=t.transformer_blocks, "
                "forward_pattern=ForwardPattern.Pattern_0, check_forward_pattern=False)"
            )
        return transformer
