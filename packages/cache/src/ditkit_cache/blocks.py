"""``CachedBlocks``: the one module that stands in for a whole block list during a cached forward.

While a cached transformer runs, each cached block list is replaced by a one-element list that
holds a :class:`CachedBlocks`. The transformer's own loop therefore calls it once, with the
first block's arguments; it runs the real blocks itself — the first ``Fn`` always, the middle
``Mn`` only when the context decides to compute, the last ``Bn`` always — and returns what one
block of the list's :class:`~ditkit_interfaces.ForwardPattern` returns.

Patterns 0–2 take ``(hidden_states, encoder_hidden_states, *args)``; patterns 3–5 take
``(hidden_states, *args)`` and may emit a new encoder stream. A block may return a tensor, a
1-tuple, an ``(h, e)`` or ``(e, h)`` pair, or ``(tensor, non-tensor)``.

The streams keep the memory layout the blocks give them (no ``.contiguous()`` copy, unlike
cache-dit): a computed step hands the last blocks exactly what the uncached loop would, so a model
whose stream is not contiguous (ACE-Step's comes out of a transposed convolution) rounds the same
way; a cached step's sum takes the layout of the stream it is added to.

Example:
    >>> import torch
    >>> from ditkit_interfaces import DBCacheConfig, ForwardPattern
    >>> from ditkit_cache.context import CacheContext
    >>> blocks = [torch.nn.Identity() for _ in range(3)]
    >>> ctx = CacheContext("b", DBCacheConfig(Fn_compute_blocks=1, max_warmup_steps=1))
    >>> wrapper = CachedBlocks("b", blocks, ForwardPattern.Pattern_3, lambda: ctx)
    >>> wrapper(torch.ones(1, 2)).shape
    torch.Size([1, 2])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ditkit_interfaces import ForwardPattern

from .context import CacheContext

__all__ = ["CachedBlocks", "pack_output", "run_blocks", "split_block_output", "take_encoder"]

Residual = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def split_block_output(
    pattern: ForwardPattern, output: Any, encoder: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(hidden_states, encoder_hidden_states)`` from one block's output."""
    return _split(pattern.Return_H_First, output, encoder)


def _split(
    hidden_first: bool, output: Any, encoder: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(output, torch.Tensor):
        return output, encoder
    if len(output) == 1:
        return output[0], encoder
    first, second = output[0], output[1]
    if not isinstance(second, torch.Tensor):  # (tensor, non-tensor): patterns 3-5
        return first, encoder
    return (first, second) if hidden_first else (second, first)


def run_blocks(
    pattern: ForwardPattern,
    blocks: Sequence[torch.nn.Module],
    hidden: torch.Tensor,
    encoder: torch.Tensor | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run ``blocks`` in order, threading the streams as the pattern says."""
    takes_encoder, hidden_first = pattern.takes_encoder, pattern.Return_H_First
    for block in blocks:
        if takes_encoder:
            output = block(hidden, encoder, *args, **kwargs)
        else:
            output = block(hidden, *args, **kwargs)
        hidden, encoder = _split(hidden_first, output, encoder)
    return hidden, encoder


def take_encoder(
    pattern: ForwardPattern, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[torch.Tensor | None, tuple[Any, ...]]:
    """Split the encoder stream off a wrapper's arguments (patterns 0-2 take it second)."""
    if not pattern.takes_encoder:
        return None, args
    if args:
        return args[0], args[1:]
    return kwargs.pop("encoder_hidden_states", None), args


def pack_output(pattern: ForwardPattern, hidden: torch.Tensor, encoder: torch.Tensor | None) -> Any:
    """What one block of ``pattern`` returns."""
    if pattern.Return_H_Only:
        return hidden
    return (hidden, encoder) if pattern.Return_H_First else (encoder, hidden)


def _plain_residual(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    return after - before.to(after.device)


class CachedBlocks(torch.nn.Module):
    """Runs one block list with DBCache.

    Args:
        name (`str`): the block list's context name.
        blocks (`Sequence[nn.Module]`): the real blocks, in order (not registered as children:
            they stay registered where they live in the transformer).
        pattern (`ForwardPattern`): how the blocks are called and what they return.
        context (`Callable[[], CacheContext]`): returns the context for the current call (the
            owner may replace it between requests).
        residual (`Callable`, *optional*): computes the Fn residual from the list's input and the
            Fn output (parallelism re-shards the input here).
    """

    def __init__(
        self,
        name: str,
        blocks: Sequence[torch.nn.Module],
        pattern: ForwardPattern,
        context: Callable[[], CacheContext],
        residual: Residual | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        object.__setattr__(self, "blocks", tuple(blocks))  # not children: no double registration
        self.pattern = pattern
        self.returns_encoder = pattern.returns_encoder
        self.context = context
        self.residual = residual or _plain_residual

    def extra_repr(self) -> str:
        return f"name={self.name!r}, blocks={len(self.blocks)}, pattern={self.pattern.name}"

    @torch.compiler.disable(recursive=False)
    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        encoder, args = take_encoder(self.pattern, args, kwargs)
        hidden, encoder = self._cached_forward(hidden_states, encoder, args, kwargs)
        return pack_output(self.pattern, hidden, encoder)

    def _cached_forward(
        self,
        hidden: torch.Tensor,
        encoder: torch.Tensor | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        ctx = self.context()
        config = ctx.config
        count = len(self.blocks)
        first, last = config.Fn_compute_blocks, count - config.Bn_compute_blocks
        pattern, returns_encoder = self.pattern, self.returns_encoder
        original = hidden
        hidden, encoder = run_blocks(pattern, self.blocks[:first], hidden, encoder, args, kwargs)
        if original.shape != hidden.shape:
            # context parallelism split the sequence inside the first blocks: compare the Fn
            # residual on this rank's piece of the input (the reducer knows how it was cut)
            match = getattr(ctx.reducer, "match_shard", None)
            if match is not None:
                original = match(original, hidden)
        fn_residual = self.residual(original, hidden)
        del original
        # what a cached call combines with stored values: a shape change forces a compute
        shapes = (fn_residual.shape, None if encoder is None else encoder.shape)
        ctx.mark_step_begin()
        hit = ctx.can_cache(fn_residual, shapes=shapes)
        if ctx.request.restart:  # the timestep rose: this call starts a new request
            ctx = self.context()
            ctx.mark_step_begin()
            hit = ctx.can_cache(fn_residual, shapes=shapes)
        residual_mode = ctx.cache_residual
        if hit:
            ctx.add_cached_step()
            del fn_residual
            stored = ctx.recall("Bn", "hidden")
            hidden = hidden + stored if residual_mode else stored
            if encoder is not None and returns_encoder:
                stored_encoder = ctx.recall("Bn_encoder", "encoder")
                if stored_encoder is not None:
                    encoder = encoder + stored_encoder if residual_mode else stored_encoder
        else:
            ctx.branch.buffers["Fn"] = fn_residual
            del fn_residual
            hidden_fn, encoder_fn = hidden, encoder
            hidden, encoder = run_blocks(
                pattern, self.blocks[first:last], hidden, encoder, args, kwargs
            )
            ctx.store("Bn", "hidden", hidden - hidden_fn if residual_mode else hidden)
            stores_encoder = encoder_fn is not None or not residual_mode
            if encoder is not None and returns_encoder and stores_encoder:
                value = encoder - encoder_fn if residual_mode else encoder
                ctx.store("Bn_encoder", "encoder", value)
            del hidden_fn, encoder_fn
        return run_blocks(pattern, self.blocks[last:], hidden, encoder, args, kwargs)
