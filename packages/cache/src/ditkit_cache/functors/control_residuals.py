"""Per-block control residuals: move a control net's additions from the forward's loop into blocks.

Many diffusers transformers add a control net's residual to the stream *inside* their block loop,
by block index (``hidden_states = hidden_states + samples[index // interval]``). While cached, a
block list holds one stand-in that runs every real block, so the loop runs once and would add one
residual (sample 0) instead of one per block. :func:`patch_control_residuals` takes the samples out
of each call (the original forward sees ``None``, so its loop adds nothing), keeps them for the
call, and gives every real block a forward that adds its own sample to its own output: the same
addition, in the same order, so outputs are bit-identical to the uncached model. A call without
samples runs exactly the original computation.

A :class:`ControlList` says, for one block list, which forward parameter holds its samples,
which sample block ``i`` takes (:data:`Pick`) and how it is added to the block's output
(:data:`Add`); a :class:`ControlResidualsPatchFunctor` subclass lists them for one model.

Example:
    >>> import torch
    >>> class Loop(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.blocks = torch.nn.ModuleList(torch.nn.Identity() for _ in range(4))
    ...     def forward(self, x, samples=None):
    ...         for index, block in enumerate(self.blocks):
    ...             x = block(x)
    ...             if samples is not None:
    ...                 x = x + samples[every_interval(index, 4, len(samples), {})]
    ...         return x
    >>> model, samples = Loop(), [torch.ones(1), 10 * torch.ones(1)]
    >>> expected = model(torch.zeros(1), samples)
    >>> patch_control_residuals(model, [ControlList("blocks", "samples", every_interval)])
    >>> model.blocks = torch.nn.ModuleList([torch.nn.Sequential(*model.blocks)])  # a stand-in
    >>> bool(torch.equal(model(torch.zeros(1), samples), expected)), float(expected)
    (True, 22.0)
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..patch_functor import PatchFunctor
from ._forwards import Argument, Forward, wrap_forward

__all__ = [
    "Add",
    "ControlList",
    "ControlResidualsPatchFunctor",
    "Pick",
    "add_after_text",
    "add_to_hidden",
    "every_interval",
    "patch_control_residuals",
    "take_samples",
]

#: ``(block index, blocks in the list, samples given, this call's options) -> sample index`` (or
#: ``None``: this block takes no sample).
Pick = Callable[[int, int, int, Mapping[str, Any]], "int | None"]
#: ``(block output, sample, this call's options) -> block output with the sample added``.
Add = Callable[[Any, torch.Tensor, Mapping[str, Any]], Any]

_TEXT = "encoder_hidden_states"
#: key of :func:`take_samples`' call state holding the text stream's length
TEXT_LENGTH = "text_length"


def every_interval(index: int, blocks: int, samples: int, call: Mapping[str, Any]) -> int:
    """FLUX's rule: ``index // ceil(blocks / samples)`` (each sample serves an interval)."""
    return index // math.ceil(blocks / samples)


def add_to_hidden(output: Any, sample: torch.Tensor, call: Mapping[str, Any]) -> Any:
    """Add to the hidden stream of a tensor output or of an ``(encoder, hidden)`` pair."""
    if isinstance(output, torch.Tensor):
        return output + sample
    encoder, hidden, *rest = output
    return (encoder, hidden + sample, *rest)


def add_after_text(output: Any, sample: torch.Tensor, call: Mapping[str, Any]) -> Any:
    """Add to the hidden stream's tokens after the first ``text_length`` ones.

    The forward writes ``hidden[:, text:] = hidden[:, text:] + sample`` in place; the same sums,
    joined out of place, leave the block's own output tensor untouched.
    """
    if not isinstance(output, torch.Tensor):
        encoder, hidden, *rest = output
        return (encoder, add_after_text(hidden, sample, call), *rest)
    text = call[TEXT_LENGTH]
    return torch.cat((output[:, :text], output[:, text:] + sample), dim=1)


@dataclass(frozen=True)
class ControlList:
    """One block list whose loop adds control residuals after its blocks.

    Attributes:
        blocks: the block list's attribute on the transformer (``"transformer_blocks"``).
        samples: the forward parameter that holds this list's samples.
        pick: which sample block ``i`` adds (:data:`Pick`).
        add: how it is added to the block's output (:data:`Add`).
        takes: which blocks take a sample at all (SD3 skips its last, context-only block).
    """

    blocks: str
    samples: str
    pick: Pick
    add: Add = add_to_hidden
    takes: Callable[[torch.nn.Module], bool] = lambda block: True


def take_samples(
    transformer: torch.nn.Module, names: Sequence[str], options: Sequence[str] = ()
) -> dict[str, Any]:
    """Wrap the forward to take the ``names`` samples out of each call; return the call state.

    During a call that passes samples, the state maps each given parameter to its samples, each
    of ``options`` to its value in the call, and ``"text_length"`` to the sequence length of the
    ``encoder_hidden_states`` argument (when the forward has one); it is empty between calls.
    Parameters the forward does not have are left out (no call can pass them).
    """
    call: dict[str, Any] = {}
    parameters = inspect.signature(transformer.forward).parameters
    present = [name for name in names if name in parameters]
    if present:
        wrap_forward(
            transformer,
            lambda forward: _taking(forward, present, [*options, _TEXT], call),
        )
    return call


def _taking(forward: Forward, names: list[str], options: list[str], call: dict) -> Forward:
    samples = [Argument(forward, name) for name in names]
    params = inspect.signature(forward).parameters
    kept = [Argument(forward, name) for name in options if name in params]

    def patched(*args: Any, **kwargs: Any) -> Any:
        given = {a.name: a.get(args, kwargs) for a in samples}
        given = {name: value for name, value in given.items() if value is not None}
        if not given:
            return forward(*args, **kwargs)
        for argument in samples:
            args, kwargs = argument.replace(args, kwargs, None)
        call.update(given)
        call.update({a.name: a.get(args, kwargs) for a in kept})
        text = call.pop(_TEXT, None)
        if isinstance(text, torch.Tensor):
            call[TEXT_LENGTH] = text.shape[1]
        try:
            return forward(*args, **kwargs)
        finally:
            call.clear()

    return patched


def patch_control_residuals(
    transformer: torch.nn.Module, lists: Sequence[ControlList], options: Sequence[str] = ()
) -> None:
    """Give every block of ``lists`` a forward that adds its own control sample (see module).

    ``options`` names further forward parameters the picks read (FLUX's
    ``controlnet_blocks_repeat``); they reach the original forward unchanged.
    """
    call = take_samples(transformer, [control.samples for control in lists], options)
    for control in lists:
        blocks = getattr(transformer, control.blocks)
        for index, block in enumerate(blocks):
            if control.takes(block):
                wrap_forward(block, _adder(control, index, len(blocks), call))


def _adder(
    control: ControlList, index: int, blocks: int, call: dict
) -> Callable[[Forward], Forward]:
    return lambda forward: _adding(forward, control, index, blocks, call)


def _adding(forward: Forward, control: ControlList, index: int, blocks: int, call: dict) -> Forward:
    def patched(*args: Any, **kwargs: Any) -> Any:
        output = forward(*args, **kwargs)
        samples = call.get(control.samples)
        if samples is None:
            return output
        chosen = control.pick(index, blocks, len(samples), call)
        if chosen is None:
            return output
        return control.add(output, samples[chosen], call)

    return patched


class ControlResidualsPatchFunctor(PatchFunctor):
    """Base of the per-model functors: apply :func:`patch_control_residuals` with ``lists``."""

    lists: ClassVar[tuple[ControlList, ...]] = ()
    #: further forward parameters the picks read (passed on unchanged)
    options: ClassVar[tuple[str, ...]] = ()

    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        patch_control_residuals(transformer, self.lists, self.options)
        return transformer
