"""HunyuanDiT (``HunyuanDiT2DModel``): long skip connections move into the blocks.

The forward keeps a stack inside its loop: blocks of the first half push their outputs, blocks of
the second half pop one as ``skip`` (plus a control-net residual popped from
``controlnet_block_samples``, which must hold exactly one per skip). While cached, ``blocks``
holds one stand-in, so nothing would be pushed or popped. The functor works the stack out once, by
block index: each source block records its output, each consumer block takes the recorded output
of its source (plus the control residual of the same pop, same addition order) as ``skip``.
Uncached, every source runs before its consumer in the same call, so outputs are bit-identical.

A consumer whose source did not run in this call (the cache served the middle blocks, or DBPrune
pruned the source) takes the source's output from the last call that computed it, like every
other cached value. The control samples are read, not popped: the caller's list is left as is.
"""

from __future__ import annotations

from typing import Any

import torch

from ..patch_functor import PatchFunctor
from ._forwards import Argument, Forward, wrap_forward

__all__ = ["HunyuanDiTPatchFunctor", "skip_plan"]

_SAMPLES = "controlnet_block_samples"


def skip_plan(num_layers: int) -> tuple[dict[int, int], dict[int, int]]:
    """``(source of each consumer, pop order of each consumer)`` for the forward's skip stack.

    Example:
        >>> skip_plan(6)
        ({4: 1, 5: 0}, {4: 0, 5: 1})
    """
    half, stack = num_layers // 2, []
    source: dict[int, int] = {}
    order: dict[int, int] = {}
    for layer in range(num_layers):
        if layer > half:
            if not stack:
                raise ValueError(
                    f"HunyuanDiT2DModel with {num_layers} layers pops an empty skip stack"
                )
            order[layer] = len(order)
            source[layer] = stack.pop()
        if layer < half - 1:
            stack.append(layer)
    return source, order


class HunyuanDiTPatchFunctor(PatchFunctor):
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        source, order = skip_plan(transformer.config.num_layers)
        if len(transformer.blocks) != transformer.config.num_layers:
            raise ValueError("HunyuanDiT2DModel.blocks does not hold config.num_layers blocks")
        state: dict[str, Any] = {"outputs": {}, "controls": None}
        wrap_forward(transformer, lambda forward: _taking_controls(forward, state, len(order)))
        sources = set(source.values())
        for index, block in enumerate(transformer.blocks):
            plan = (source.get(index), order.get(index), index in sources)
            wrap_forward(
                block,
                lambda forward, plan=plan, index=index: _skipping(forward, *plan, index, state),
            )
        return transformer


def _taking_controls(forward: Forward, state: dict[str, Any], pops: int) -> Forward:
    samples_argument = Argument(forward, _SAMPLES)

    def patched(*args: Any, **kwargs: Any) -> Any:
        samples = samples_argument.get(args, kwargs)
        if samples is None:
            return forward(*args, **kwargs)
        if len(samples) != pops:
            raise ValueError(
                "The number of controls is not equal to the number of skip connections."
            )
        args, kwargs = samples_argument.replace(args, kwargs, None)
        state["controls"] = list(samples)
        try:
            return forward(*args, **kwargs)
        finally:
            state["controls"] = None

    return patched


def _skipping(
    forward: Forward,
    source: int | None,
    pop: int | None,
    records: bool,
    index: int,
    state: dict[str, Any],
) -> Forward:
    def patched(hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if source is not None:
            skip = state["outputs"][source]
            controls = state["controls"]
            if controls is not None:
                skip = skip + controls[len(controls) - 1 - pop]
            kwargs["skip"] = skip
        output = forward(hidden_states, *args, **kwargs)
        if records:
            state["outputs"][index] = output
        return output

    return patched
