"""Context-parallel replacements for attention processors that call SDPA themselves.

diffusers 0.42's ``CogVideoXAttnProcessor2_0`` (CogVideoX, also used by ConsisID) runs
``torch.nn.functional.scaled_dot_product_attention`` directly, so no ``dispatch_attention_fn``
router can reach it. :class:`CogVideoXContextParallelProcessor` computes the same attention in
diffusers' ``(B, S, H, D)`` layout and sends it through a :class:`~.routing.ContextParallelRoute`.
It keeps the original processor so that undoing parallelism puts that very object back.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.models.attention_processor import CogVideoXAttnProcessor2_0
from diffusers.models.embeddings import apply_rotary_emb

from .routing import PROCESSOR_REPLACEMENTS, RoutedProcessor

__all__ = ["CogVideoXContextParallelProcessor"]


class CogVideoXContextParallelProcessor(RoutedProcessor):
    """CogVideoX joint attention (text tokens first, RoPE on video tokens) over the CP group."""

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n_text = encoder_hidden_states.shape[1]
        joint = torch.cat([encoder_hidden_states, hidden_states], dim=1)
        batch, seq, _ = joint.shape
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, seq, batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])

        query, key, value = attn.to_q(joint), attn.to_k(joint), attn.to_v(joint)
        head_dim = key.shape[-1] // attn.heads
        query = query.unflatten(-1, (attn.heads, head_dim))  # (B, S, H, D)
        key = key.unflatten(-1, (attn.heads, head_dim))
        value = value.unflatten(-1, (attn.heads, head_dim))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        if image_rotary_emb is not None:
            video_q = apply_rotary_emb(query[:, n_text:], image_rotary_emb, sequence_dim=1)
            query = torch.cat([query[:, :n_text], video_q], dim=1)
            if not attn.is_cross_attention:
                video_k = apply_rotary_emb(key[:, n_text:], image_rotary_emb, sequence_dim=1)
                key = torch.cat([key[:, :n_text], video_k], dim=1)

        out = self.route.attend(query, key, value, attention_mask)
        out = out.flatten(2, 3).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        encoder_out, video_out = out.split([n_text, out.shape[1] - n_text], dim=1)
        return video_out, encoder_out


PROCESSOR_REPLACEMENTS.register(CogVideoXAttnProcessor2_0)(CogVideoXContextParallelProcessor)
