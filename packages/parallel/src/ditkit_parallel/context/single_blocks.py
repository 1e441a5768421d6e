"""Flux single blocks under async Ulysses: the MLP runs while the all-to-alls are on the wire.

A Flux single-stream block computes attention and an MLP from the same normalised input and
mixes them with one projection: ``proj_out(cat(attn(n), act(proj_mlp(n))))``. diffusers runs the
MLP first, so under Ulysses nothing is left to do while the exchanges of Q, K, V and of the
attention output are in flight, and those exchanges are exposed. With
``ParallelismConfig(ulysses_async=True)`` this forward (installed per block, undone with the
rest of context parallelism) reorders the same work around them:

1. the processor projects V, Q and K and starts their all-to-alls
   (:class:`~.async_qkv.FluxAsyncUlyssesProcessor`);
2. ``act(proj_mlp(n))`` runs while they travel (:attr:`~.async_qkv.Beside.before`);
3. the attention runs and its output's all-to-all starts;
4. the MLP's share of the output projection, ``mlp @ W[:, D:]ᵀ + b``, runs while that travels
   (:attr:`~.async_qkv.Beside.after`);
5. ``x + gate * (that + attn @ W[:, :D]ᵀ)``.

Steps 4 and 5 split one matmul over a concatenation into two (the same sum, rounded in another
order). Single blocks are 38 of FLUX.1's 57. A block whose MLP or output projection is not a
plain ``nn.Linear`` without hooks (tensor-parallel shards, LoRA, quantised weights) keeps
diffusers' forward.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.models.transformers.transformer_flux import FluxSingleTransformerBlock
from torch.nn.functional import linear

from .async_qkv import Beside, FluxAsyncUlyssesProcessor

__all__ = ["FluxSingleBlockOverlap", "overlappable_single_blocks"]


def _plain_linear(module: Any) -> bool:
    return (
        type(module) is torch.nn.Linear
        and not module._forward_hooks
        and not module._forward_pre_hooks
        and type(module.weight) in (torch.nn.Parameter, torch.Tensor)
    )


def overlappable_single_blocks(transformer: torch.nn.Module) -> list[FluxSingleTransformerBlock]:
    """The Flux single blocks whose attention runs the async processor and whose MLP and
    output projection are plain linear layers."""
    return [
        block
        for block in transformer.modules()
        if type(block) is FluxSingleTransformerBlock
        and isinstance(block.attn.processor, FluxAsyncUlyssesProcessor)
        and _plain_linear(block.proj_mlp)
        and _plain_linear(block.proj_out)
    ]


class FluxSingleBlockOverlap:
    """``FluxSingleTransformerBlock.forward`` with the MLP beside the all-to-alls.

    Installed as the block's instance ``forward``; same signature and results as diffusers'
    (up to the split output projection's rounding).

    Args:
        block: the block whose forward this replaces.
    """

    def __init__(self, block: FluxSingleTransformerBlock) -> None:
        self.block = block

    def __call__(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        temb: torch.Tensor,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        joint_attention_kwargs: dict[str, Any] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        block = self.block
        n_text = encoder_hidden_states.shape[1]
        hidden = torch.cat([encoder_hidden_states, hidden_states], dim=1)
        normed, gate = block.norm(hidden, emb=temb)
        weight, bias = block.proj_out.weight, block.proj_out.bias
        split = weight.shape[1] - block.mlp_hidden_dim  # the attention's share of the inputs
        beside = Beside(
            before=lambda: block.act_mlp(block.proj_mlp(normed)),
            after=lambda mlp: linear(mlp, weight[:, split:], bias),
        )
        attn_out, mixed = block.attn(
            hidden_states=normed,
            image_rotary_emb=image_rotary_emb,
            beside=beside,
            **(joint_attention_kwargs or {}),
        )
        mixed = mixed + linear(attn_out, weight[:, :split])
        hidden = hidden + gate.unsqueeze(1) * mixed
        if hidden.dtype == torch.float16:
            hidden = hidden.clip(-65504, 65504)
        return hidden[:, :n_text], hidden[:, n_text:]
