"""DiT (``DiTTransformer2DModel``): the output norm reads ``transformer_blocks[0].norm1.emb``.

The original forward takes the conditioning for its output layer from the first block after the
loop; while cached, ``transformer_blocks`` holds the cache's stand-in, which has no ``norm1``.
The functor binds a forward that keeps a reference to the first block's embedding instead (the
rest of the forward is diffusers 0.42.1's, unchanged).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional

from ..patch_functor import PatchFunctor

__all__ = ["DiTPatchFunctor"]


class DiTPatchFunctor(PatchFunctor):
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        embedding = transformer.transformer_blocks[0].norm1.emb
        model = transformer

        def forward(
            hidden_states: torch.Tensor,
            timestep: torch.Tensor | None = None,
            class_labels: torch.Tensor | None = None,
            cross_attention_kwargs: dict[str, Any] | None = None,
            return_dict: bool = True,
        ) -> Any:
            from diffusers.models.modeling_outputs import Transformer2DModelOutput

            hidden_states = model.pos_embed(hidden_states)
            for block in model.transformer_blocks:
                hidden_states = block(
                    hidden_states,
                    attention_mask=None,
                    encoder_hidden_states=None,
                    encoder_attention_mask=None,
                    timestep=timestep,
                    cross_attention_kwargs=cross_attention_kwargs,
                    class_labels=class_labels,
                )
            conditioning = embedding(timestep, class_labels, hidden_dtype=hidden_states.dtype)
            shift, scale = model.proj_out_1(functional.silu(conditioning)).chunk(2, dim=1)
            hidden_states = model.norm_out(hidden_states) * (1 + scale[:, None]) + shift[:, None]
            hidden_states = model.proj_out_2(hidden_states)
            patch, channels = model.patch_size, model.out_channels
            side = int(hidden_states.shape[1] ** 0.5)
            hidden_states = hidden_states.reshape(-1, side, side, patch, patch, channels)
            hidden_states = torch.einsum("nhwpqc->nchpwq", hidden_states)
            output = hidden_states.reshape(-1, channels, side * patch, side * patch)
            return (output,) if not return_dict else Transformer2DModelOutput(sample=output)

        transformer.forward = forward
        return transformer
