"""Async Ulysses QKV (``ParallelismConfig.ulysses_async``): overlap projections and all-to-alls.

A synchronous Ulysses layer projects Q, K and V, then exchanges them. Here the processor
projects V and starts its all-to-all, projects Q (with its norm and RoPE) and starts that one,
then K, and only then waits: the projections of Q and K run while V and Q are on the wire.
The local attention runs on this rank's heads over the whole sequence and the output goes back
by one more all-to-all. Functional collectives start when called and are waited for on first
use, which is what makes the overlap.

Processors here replace diffusers' processors of the same model (registered by class in
:data:`ASYNC_PROCESSORS`) and compute the same function: Flux (``FluxAttnProcessor``),
Qwen-Image (``QwenDoubleStreamAttnProcessor2_0``) and Z-Image (``ZSingleStreamAttnProcessor``).
Key-padding masks are all-gathered once, beside the first all-to-all. Float8 all-to-all, Ring
and fused projections take the synchronous route through :class:`~.routing.ContextParallelRoute`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from diffusers.models.embeddings import apply_rotary_emb
from diffusers.models.transformers.transformer_flux import FluxAttnProcessor
from diffusers.models.transformers.transformer_qwenimage import (
    QwenDoubleStreamAttnProcessor2_0,
    apply_rotary_emb_qwen,
)
from diffusers.models.transformers.transformer_z_image import ZSingleStreamAttnProcessor

from ditkit_interfaces import TypeRegistry

from ..attention import key_padding_mask, sdpa
from ..attention.output_overlap import attend_overlapping_output, can_overlap_output
from ..attention.ulysses import gather_key_mask
from ..comm import all_to_all_heads_to_seq, all_to_all_seq_to_heads, wait
from .routing import ContextParallelRoute, RoutedProcessor

__all__ = [
    "ASYNC_PROCESSORS",
    "Beside",
    "FluxAsyncUlyssesProcessor",
    "QwenImageAsyncUlyssesProcessor",
    "UlyssesExchange",
    "ZImageAsyncUlyssesProcessor",
]

#: processor class -> ``factory(original_processor, route) -> async processor``.
ASYNC_PROCESSORS: TypeRegistry[Callable[[Any, ContextParallelRoute], Any]] = TypeRegistry(
    "async Ulysses processors"
)


class Beside(NamedTuple):
    """Work of the caller's that does not depend on the attention, run while it is exchanged:
    ``before()`` once Q, K and V are on the wire, ``after(before's result)`` once the output's
    all-to-all is (see :mod:`~.single_blocks`). The processor then returns
    ``(attention output, after's result)``."""

    before: Callable[[], Any]
    after: Callable[[Any], Any]


class UlyssesExchange:
    """One attention call's all-to-alls over the Ulysses group, started one tensor at a time.

    Args:
        route: the route whose mesh holds the Ulysses group and the length table.
        seq_len: this rank's sequence length (queries and keys alike: self-attention).
        attn_mask: a key-padding mask of this rank's keys (any form
            :func:`~ditkit_parallel.attention.key_padding_mask` reads), gathered at once.
    """

    def __init__(
        self, route: ContextParallelRoute, seq_len: int, attn_mask: torch.Tensor | None = None
    ) -> None:
        mesh = self.mesh = route.mesh
        self.group = mesh.ulysses_group
        self.rank = mesh.ulysses_rank
        self.seq_lens, _ = mesh.seq_lens.lengths(seq_len, seq_len, mesh.cp_group, route.seq_key())
        self.key_mask = None
        if attn_mask is not None:
            mask = key_padding_mask(attn_mask, attn_mask.shape[0], seq_len)
            assert mask is not None and self.group is not None
            self.key_mask = gather_key_mask(mask, self.seq_lens, self.group)

    def send(self, x: torch.Tensor) -> torch.Tensor:
        """Start ``(B, S_r, H, D) -> (B, S, H_r, D)``; :meth:`attend_and_return` waits for it."""
        return all_to_all_seq_to_heads(x, self.seq_lens, self.rank, self.group)

    def attend_and_return(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        n_heads: int,
        beside: Callable[[], Any] | None = None,
    ) -> Any:
        """Local SDPA on this rank's heads, then ``(B, S, H_r, D) -> (B, S_r, H, D)``; with
        ``beside``, ``(output, beside())`` where ``beside`` runs while the output is exchanged."""
        query, key, value = wait(query), wait(key), wait(value)
        mask = None if self.key_mask is None else wait(self.key_mask)
        # these processors' models are multi-head: as many key/value heads as query heads
        if can_overlap_output(self.mesh, n_heads, n_heads):
            out = attend_overlapping_output(
                query,
                lambda rows: sdpa(rows, key, value, mask),
                q_lens=self.seq_lens,
                n_heads=n_heads,
                rank=self.rank,
                group=self.group,
            )
            return out if beside is None else (out, beside())
        # more ranks than heads: this rank holds none and sends its empty shard
        out = query if query.shape[2] == 0 else sdpa(query, key, value, mask)
        out = out.contiguous()
        pending = all_to_all_heads_to_seq(out, self.seq_lens, n_heads, self.rank, self.group)
        if beside is None:
            return wait(pending)
        late = beside()
        return wait(pending), late


def _can_overlap(route: ContextParallelRoute) -> bool:
    mesh = route.mesh
    return not mesh.float8 and mesh.ring_size == 1 and mesh.ulysses_size > 1


class FluxAsyncUlyssesProcessor(RoutedProcessor):
    """Flux double- and single-stream attention with the V, Q, K all-to-alls overlapped."""

    is_async_qkv = True

    @staticmethod
    def _heads(x: torch.Tensor, head_dim: int) -> torch.Tensor:
        return x.unflatten(-1, (-1, head_dim))

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: Any = None,
        beside: Beside | None = None,
    ) -> Any:
        hd = attn.head_dim
        joint = encoder_hidden_states is not None and attn.added_kv_proj_dim is not None
        overlap = _can_overlap(self.route) and not attn.fused_projections
        n_text = encoder_hidden_states.shape[1] if encoder_hidden_states is not None else 0
        seq = hidden_states.shape[1] + (n_text if joint else 0)
        exchange = UlyssesExchange(self.route, seq, attention_mask) if overlap else None

        def stream(proj: str, added: str, norm: str | None, added_norm: str | None) -> torch.Tensor:
            x = self._heads(getattr(attn, proj)(hidden_states), hd)
            x = getattr(attn, norm)(x) if norm else x
            if joint:
                e = self._heads(getattr(attn, added)(encoder_hidden_states), hd)
                e = getattr(attn, added_norm)(e) if added_norm else e
                x = torch.cat([e, x], dim=1)
            return x

        def rope(x: torch.Tensor) -> torch.Tensor:
            if image_rotary_emb is None:
                return x
            return apply_rotary_emb(x, image_rotary_emb, sequence_dim=1)

        if attn.fused_projections:
            q, k, v = (self._heads(t, hd) for t in attn.to_qkv(hidden_states).chunk(3, dim=-1))
            q, k = attn.norm_q(q), attn.norm_k(k)
            if joint:
                parts = attn.to_added_qkv(encoder_hidden_states).chunk(3, dim=-1)
                eq, ek, ev = (self._heads(t, hd) for t in parts)
                eq, ek = attn.norm_added_q(eq), attn.norm_added_k(ek)
                q, k, v = (torch.cat(p, dim=1) for p in ((eq, q), (ek, k), (ev, v)))
            q, k = rope(q), rope(k)
        else:  # V, then Q, then K: each exchange starts before the next projection
            v = stream("to_v", "add_v_proj", None, None)
            v = exchange.send(v) if exchange else v
            q = rope(stream("to_q", "add_q_proj", "norm_q", "norm_added_q"))
            n_heads = q.shape[2]
            q = exchange.send(q) if exchange else q
            k = rope(stream("to_k", "add_k_proj", "norm_k", "norm_added_k"))
            k = exchange.send(k) if exchange else k
        early = beside.before() if beside is not None else None  # beside the Q/K/V exchanges
        late = None
        if exchange is not None:
            if beside is None:
                out = exchange.attend_and_return(q, k, v, n_heads)
            else:
                out, late = exchange.attend_and_return(
                    q, k, v, n_heads, lambda: beside.after(early)
                )
        else:
            out = self.route.attend(q, k, v, attention_mask)
            late = beside.after(early) if beside is not None else None
        out = out.flatten(2, 3).to(hidden_states.dtype)
        if encoder_hidden_states is None:
            return out if beside is None else (out, late)
        text_out, image_out = out.split([n_text, out.shape[1] - n_text], dim=1)
        image_out = attn.to_out[1](attn.to_out[0](image_out.contiguous()))
        return image_out, attn.to_add_out(text_out.contiguous())


class ZImageAsyncUlyssesProcessor(RoutedProcessor):
    """Z-Image single-stream attention with the V, Q, K all-to-alls overlapped."""

    is_async_qkv = True

    @staticmethod
    def _rope(x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
        pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
        return torch.view_as_real(pairs * freqs_cis.unsqueeze(2)).flatten(3).type_as(x)

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        freqs_cis: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if attention_mask is not None and attention_mask.ndim == 2:
            attention_mask = attention_mask[:, None, None, :]
        exchange = None
        if _can_overlap(self.route):
            exchange = UlyssesExchange(self.route, hidden_states.shape[1], attention_mask)

        def project(name: str, norm: Any) -> torch.Tensor:
            x = getattr(attn, name)(hidden_states).unflatten(-1, (attn.heads, -1))
            x = norm(x) if norm is not None else x
            return self._rope(x, freqs_cis) if freqs_cis is not None and name != "to_v" else x

        v = project("to_v", None)
        v = exchange.send(v) if exchange else v
        q = project("to_q", attn.norm_q)
        q = exchange.send(q) if exchange else q
        k = project("to_k", attn.norm_k)
        if exchange is not None:
            out = exchange.attend_and_return(q, exchange.send(k), v, attn.heads)
        else:
            out = self.route.attend(q, k, v, attention_mask)
        out = out.flatten(2, 3).to(hidden_states.dtype)
        out = attn.to_out[0](out)
        return attn.to_out[1](out) if len(attn.to_out) > 1 else out


class QwenImageAsyncUlyssesProcessor(RoutedProcessor):
    """Qwen-Image joint attention (``[text, image]``, text mask) with overlapped all-to-alls."""

    is_async_qkv = True

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_hidden_states_mask: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: Any = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if attention_mask is not None:
            raise ValueError("Qwen-Image attention takes encoder_hidden_states_mask, not a mask")
        n_text, head_dim = encoder_hidden_states.shape[1], attn.inner_dim // attn.heads
        if encoder_hidden_states_mask is not None:
            image_keys = torch.ones(
                hidden_states.shape[:2], dtype=torch.bool, device=hidden_states.device
            )
            attention_mask = torch.cat([encoder_hidden_states_mask.bool(), image_keys], dim=1)
        exchange = None
        if _can_overlap(self.route):
            seq = n_text + hidden_states.shape[1]
            exchange = UlyssesExchange(self.route, seq, attention_mask)

        def joint(image: str, text: str, norms: tuple[str, str] | None, rope: int) -> torch.Tensor:
            img = getattr(attn, image)(hidden_states).unflatten(-1, (-1, head_dim))
            txt = getattr(attn, text)(encoder_hidden_states).unflatten(-1, (-1, head_dim))
            if norms is not None:
                img_norm, txt_norm = (getattr(attn, n) for n in norms)
                img = img_norm(img) if img_norm is not None else img
                txt = txt_norm(txt) if txt_norm is not None else txt
            if rope and image_rotary_emb is not None:
                img_freqs, txt_freqs = image_rotary_emb
                img = apply_rotary_emb_qwen(img, img_freqs, use_real=False)
                txt = apply_rotary_emb_qwen(txt, txt_freqs, use_real=False)
            x = torch.cat([txt, img], dim=1)
            return exchange.send(x) if exchange is not None else x

        v = joint("to_v", "add_v_proj", None, rope=0)
        q = joint("to_q", "add_q_proj", ("norm_q", "norm_added_q"), rope=1)
        k = joint("to_k", "add_k_proj", ("norm_k", "norm_added_k"), rope=1)
        if exchange is not None:
            out = exchange.attend_and_return(q, k, v, attn.heads)
        else:
            mask = None if attention_mask is None else attention_mask[:, None, None, :]
            out = self.route.attend(q, k, v, mask)
        out = out.flatten(2, 3).to(hidden_states.dtype)
        text_out, image_out = out[:, :n_text], out[:, n_text:]
        image_out = attn.to_out[0](image_out.contiguous())
        if len(attn.to_out) > 1:
            image_out = attn.to_out[1](image_out)
        return image_out, attn.to_add_out(text_out.contiguous())


ASYNC_PROCESSORS.register(FluxAttnProcessor)(FluxAsyncUlyssesProcessor)
ASYNC_PROCESSORS.register(ZSingleStreamAttnProcessor)(ZImageAsyncUlyssesProcessor)
ASYNC_PROCESSORS.register(QwenDoubleStreamAttnProcessor2_0)(QwenImageAsyncUlyssesProcessor)
