"""HiDream (``HiDreamImageTransformer2DModel``): the per-block Llama layer moves into the blocks.

Inside both loops the forward concatenates block ``k``'s Llama hidden state onto the text stream
before the block and cuts it off after it: double-stream blocks get ``[t5 + last llama, llama_k]``
as their encoder stream and keep the first part; single-stream blocks get ``[image + text,
llama_k]`` and keep the first part. A cached stand-in would see only block 0's concatenation.

The functor gives every block a forward that does its own concatenation and cut, so the stream
between blocks keeps one shape: ``(image, text)`` for the double-stream blocks (Pattern_0) and
``image + text`` for the single-stream ones (Pattern_3). The transformer's forward is rebound to
one that builds the projected Llama states once and passes them to every block as
``llama_states``; everything else computes what diffusers 0.42.1's forward computes, in the same
order, so outputs are bit-identical.
"""

from __future__ import annotations

import types
from typing import Any

import torch

from ..patch_functor import PatchFunctor
from ._forwards import Forward, wrap_forward

__all__ = ["HiDreamPatchFunctor"]


class HiDreamPatchFunctor(PatchFunctor):
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        from diffusers.utils.peft_utils import apply_lora_scale

        doubles = transformer.double_stream_blocks
        for index, block in enumerate(doubles):
            wrap_forward(block, lambda f, i=index: _double(f, i), keep_signature=False)
        for index, block in enumerate(transformer.single_stream_blocks, start=len(doubles)):
            wrap_forward(block, lambda f, i=index: _single(f, i), keep_signature=False)
        transformer.forward = types.MethodType(
            apply_lora_scale("attention_kwargs")(_forward), transformer
        )
        return transformer


def _double(forward: Forward, index: int) -> Forward:
    def double_block(
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        hidden_states_masks: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        image_rotary_emb: torch.Tensor | None = None,
        llama_states: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden, text) -> (hidden, text); ``llama_states[index]`` joins the text inside."""
        length = encoder_hidden_states.shape[1]
        text = torch.cat([encoder_hidden_states, llama_states[index]], dim=1)
        hidden_states, text = forward(
            hidden_states=hidden_states,
            hidden_states_masks=hidden_states_masks,
            encoder_hidden_states=text,
            temb=temb,
            image_rotary_emb=image_rotary_emb,
        )
        return hidden_states, text[:, :length]

    return double_block


def _single(forward: Forward, index: int) -> Forward:
    def single_block(
        hidden_states: torch.Tensor,
        hidden_states_masks: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        image_rotary_emb: torch.Tensor | None = None,
        llama_states: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """(image + text) -> (image + text): ``llama_states[index]`` is appended for the block."""
        length = hidden_states.shape[1]
        joint = torch.cat([hidden_states, llama_states[index]], dim=1)
        joint = forward(
            hidden_states=joint,
            hidden_states_masks=hidden_states_masks,
            encoder_hidden_states=None,
            temb=temb,
            image_rotary_emb=image_rotary_emb,
        )
        return joint[:, :length]

    return single_block


def _run(model: Any, block: torch.nn.Module, *inputs: Any) -> Any:
    if torch.is_grad_enabled() and model.gradient_checkpointing:
        return model._gradient_checkpointing_func(block, *inputs)
    return block(*inputs)


def _forward(
    self: Any,
    hidden_states: torch.Tensor,
    timesteps: torch.Tensor | None = None,
    encoder_hidden_states_t5: torch.Tensor | None = None,
    encoder_hidden_states_llama3: torch.Tensor | None = None,
    pooled_embeds: torch.Tensor | None = None,
    img_ids: torch.Tensor | None = None,
    img_sizes: list[tuple[int, int]] | None = None,
    hidden_states_masks: torch.Tensor | None = None,
    attention_kwargs: dict[str, Any] | None = None,
    return_dict: bool = True,
) -> Any:
    """``HiDreamImageTransformer2DModel.forward`` with the Llama concatenation inside the blocks."""
    from diffusers.models.modeling_outputs import Transformer2DModelOutput

    if hidden_states_masks is not None and (img_ids is None or img_sizes is None):
        raise ValueError(
            "if `hidden_states_masks` is passed, `img_ids` and `img_sizes` must also be passed."
        )
    if hidden_states_masks is not None and hidden_states.ndim != 3:
        raise ValueError("if `hidden_states_masks` is passed, `hidden_states` must be a 3D tensor")
    batch_size, input_dtype = hidden_states.shape[0], hidden_states.dtype
    if hidden_states_masks is None:
        hidden_states, hidden_states_masks, img_sizes, img_ids = self.patchify(hidden_states)
    hidden_states = self.x_embedder(hidden_states)
    temb = self.t_embedder(timesteps, input_dtype) + self.p_embedder(pooled_embeds)

    texts = [encoder_hidden_states_llama3[k] for k in self.config.llama_layers]
    if self.caption_projection is not None:
        width = hidden_states.shape[-1]
        texts = [
            project(text).view(batch_size, -1, width)
            for project, text in zip(self.caption_projection, texts, strict=False)
        ]
        texts.append(
            self.caption_projection[-1](encoder_hidden_states_t5).view(batch_size, -1, width)
        )
    text_tokens = texts[-1].shape[1] + texts[-2].shape[1] + texts[0].shape[1]
    txt_ids = torch.zeros(batch_size, text_tokens, 3, device=img_ids.device, dtype=img_ids.dtype)
    image_rotary_emb = self.pe_embedder(torch.cat((img_ids, txt_ids), dim=1))

    device = hidden_states.device
    llama = [text.to(device) for text in texts]
    text = torch.cat([llama[-1], llama[-2]], dim=1)
    for block in self.double_stream_blocks:
        hidden_states, text = _run(
            self, block, hidden_states, text, hidden_states_masks, temb, image_rotary_emb, llama
        )

    image_tokens = hidden_states.shape[1]
    hidden_states = torch.cat([hidden_states, text], dim=1)
    if hidden_states_masks is not None:
        last_llama = llama[len(self.double_stream_blocks) - 1]
        ones = torch.ones(
            (batch_size, text.shape[1] + last_llama.shape[1]),
            device=hidden_states_masks.device,
            dtype=hidden_states_masks.dtype,
        )
        hidden_states_masks = torch.cat([hidden_states_masks, ones], dim=1)
    for block in self.single_stream_blocks:
        hidden_states = _run(
            self, block, hidden_states, hidden_states_masks, None, temb, image_rotary_emb, llama
        )

    output = self.final_layer(hidden_states[:, :image_tokens, ...], temb)
    output = self.unpatchify(output, img_sizes, self.training)
    return (output,) if not return_dict else Transformer2DModelOutput(sample=output)
