"""Qwen-Image 2.1 (``QwenImage21Transformer2DModel``): per-block KV caches and processor lookup.

Two things in the forward depend on the real block list: it hands block ``i`` the layer cache
``kv_cache.get_layer(i)`` (the pipeline's prefix KV cache, on by default), and before a prefill it
reads ``block.attn.processor`` of every block to choose the attention-mask form. While cached, the
list holds one stand-in, which has no ``attn`` and would get layer 0's cache for every block.

The functor gives each block a forward that takes its own layer cache, and rebinds the
transformer's forward to one that reads the processors from the real blocks and keeps the call's
``kv_cache`` for them; everything else computes what diffusers 0.42.1's forward computes, in the
same order, so outputs are bit-identical.

With the prefix KV cache the first call of each CFG branch runs the whole joint sequence and later
calls only the target tokens: the cache sees a shape change at step 1 and computes that step (a
static steps mask must not cache step 1).
"""

from __future__ import annotations

import math
import types
from typing import Any

import torch

from ..patch_functor import PatchFunctor
from ._forwards import Argument, Forward, wrap_forward

__all__ = ["QwenImage21PatchFunctor"]


class QwenImage21PatchFunctor(PatchFunctor):
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        from diffusers.utils.peft_utils import apply_lora_scale

        current: dict[str, Any] = {}
        blocks = transformer.transformer_blocks
        for index, block in enumerate(blocks):
            wrap_forward(block, lambda f, i=index: _own_layer_cache(f, i, current))
        forward = apply_lora_scale("attention_kwargs")(_make_forward(blocks, current))
        transformer.forward = types.MethodType(forward, transformer)
        return transformer


def _own_layer_cache(forward: Forward, index: int, current: dict[str, Any]) -> Forward:
    cache_argument = Argument(forward, "layer_cache")

    def patched(*args: Any, **kwargs: Any) -> Any:
        cache = current.get("kv_cache")
        if cache is not None:
            args, kwargs = cache_argument.replace(args, kwargs, cache.get_layer(index))
        return forward(*args, **kwargs)

    return patched


def _check(config: Any, kv_cache: Any, kv_cache_mode: str | None) -> None:
    if kv_cache is not None and not config.causal_condition:
        raise ValueError("kv_cache requires `causal_condition=True`.")
    if kv_cache is not None and kv_cache_mode not in ("extract", "cached"):
        raise ValueError(f"kv_cache_mode must be 'extract' or 'cached', got {kv_cache_mode!r}.")
    if kv_cache is None and kv_cache_mode is not None:
        raise ValueError(f"kv_cache_mode is {kv_cache_mode!r} but no kv_cache was passed.")


def _make_forward(blocks: torch.nn.ModuleList, current: dict[str, Any]) -> Forward:
    from diffusers.models.modeling_outputs import Transformer2DModelOutput
    from diffusers.models.transformers import transformer_qwenimage21 as qwen21

    def forward(
        self: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        img_shapes: list[list[tuple[int, int, int]]],
        img_mask: torch.Tensor,
        encoder_hidden_states_mask: torch.Tensor | None = None,
        attention_kwargs: dict[str, Any] | None = None,
        kv_cache: Any = None,
        kv_cache_mode: str | None = None,
        return_dict: bool = True,
    ) -> Any:
        """``QwenImage21Transformer2DModel.forward``, reading block facts from the real blocks."""
        batch_size, device = hidden_states.shape[0], hidden_states.device
        _check(self.config, kv_cache, kv_cache_mode)
        hidden_states = self.img_in(hidden_states)
        encoder_hidden_states = self.txt_in(encoder_hidden_states)
        # condition-image slots of the VLM sequence stand for 2x2 latent tokens each
        repeats = torch.where(img_mask, qwen21._IMG_TOKENS_PER_SLOT, 1)[0]
        image_pad_mask = torch.repeat_interleave(img_mask[0], repeats)
        target_slots = math.prod(img_shapes[0][-1]) // 4
        channels = encoder_hidden_states.shape[2]
        slots = encoder_hidden_states.new_zeros(batch_size, target_slots, channels)
        joint = torch.cat([encoder_hidden_states, slots], dim=1).repeat_interleave(repeats, dim=1)
        joint[:, image_pad_mask] = hidden_states
        rotary_emb = self.pos_embed(img_shapes[0], image_pad_mask, device=device)
        image_ids, target_token_mask = self.build_token_metadata(image_pad_mask, img_shapes[0])

        timestep = timestep.to(hidden_states.dtype)
        modulation_mask = None
        if self.config.causal_condition:  # one more row, t = 0, for text and condition tokens
            timestep = torch.cat([timestep, timestep.new_zeros(1)], dim=0)
            modulation_mask = target_token_mask
        temb = self.time_text_embed(timestep, hidden_states)
        modulation = self.modulation(temb)

        key_valid = None
        if encoder_hidden_states_mask is not None:
            length = image_pad_mask.shape[0]
            key_valid = torch.ones(batch_size, length, dtype=torch.bool, device=device)
            text_positions = (~image_pad_mask).nonzero(as_tuple=True)[0]
            vlm_text = ~img_mask[0][: encoder_hidden_states_mask.shape[1]]
            key_valid[:, text_positions] = encoder_hidden_states_mask.bool()[:, vlm_text]
        prefix_len = int((~target_token_mask).sum())
        if kv_cache_mode == "cached":  # only the target tokens' queries are recomputed
            joint = joint[:, prefix_len:]
            rotary_emb = rotary_emb[prefix_len:]
            modulation_mask = modulation_mask[prefix_len:]
            attention_mask = None if key_valid is None else key_valid[:, None, None, :]
            write_slice = segments = block_key_valid = None
        else:
            flex = [
                isinstance(b.attn.processor, qwen21.QwenImage21FlexAttnProcessor) for b in blocks
            ]
            attention_mask = (
                qwen21.build_qwenimage21_block_causal_mask(image_ids, key_valid, batch_size, device)
                if any(flex)
                else None
            )
            segments = (
                None if all(flex) else qwen21._qwenimage21_prefix_segments(image_ids, prefix_len)
            )
            write_slice = slice(0, prefix_len) if kv_cache_mode == "extract" else None
            block_key_valid = key_valid

        current["kv_cache"] = kv_cache
        try:
            for block in self.transformer_blocks:
                inputs = (joint, modulation, rotary_emb, attention_mask, modulation_mask, None)
                options = (kv_cache_mode, write_slice, segments, block_key_valid)
                if torch.is_grad_enabled() and self.gradient_checkpointing:
                    joint = self._gradient_checkpointing_func(block, *inputs, *options)
                else:
                    joint = block(
                        hidden_states=joint,
                        modulation=modulation,
                        rotary_emb=rotary_emb,
                        attention_mask=attention_mask,
                        target_token_mask=modulation_mask,
                        layer_cache=None,  # each block takes its own (see _own_layer_cache)
                        kv_cache_mode=kv_cache_mode,
                        cache_write_slice=write_slice,
                        segments=segments,
                        key_valid=block_key_valid,
                    )
        finally:
            current.clear()
        output = self.proj_out(self.norm_out(joint, temb, modulation_mask))
        return (output,) if not return_dict else Transformer2DModelOutput(sample=output)

    return forward
