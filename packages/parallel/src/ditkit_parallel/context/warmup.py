"""Run the first forward of every new sequence layout eagerly, so ``torch.compile`` never
traces a length exchange.

Context-parallel attention learns every rank's local lengths once per layout (one small
all-gather through :class:`~ditkit_parallel.mesh.SeqLenTable`) and answers from the table
afterwards. The all-gather cannot be traced: if ``torch.compile`` meets it (the first forward
of a compiled model), dynamo breaks the graph there, and the compiled code *keeps* that
break after the table is full — every block then runs as several graphs with Python between
them (measured on 2×H200: 1024² Ulysses-2 compiled at 0.66 of its floor).

So a parallelized transformer's forward checks, after its inputs are split, whether this
layout (the shapes of its tensor inputs and the :class:`~.hooks.ForwardState` signature; plans
that split inside the blocks record nothing before the blocks run) has been seen since the
table's last reset. If not, that one forward runs under
``torch.compiler.set_stance("force_eager")``: the table fills eagerly, and the next forward
compiles with every lookup a hit — no graph break, no exchange, one graph per block. Eager
users pay a set lookup per forward.

When the transformer itself is inside the compiled region (``torch.compile(transformer)``),
the hooks are traced and cannot change the stance; run one forward before compiling there
(regional compile, ``block.compile()``, needs nothing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.utils.hooks import RemovableHandle

if TYPE_CHECKING:
    from .hooks import ForwardState

__all__ = ["EagerFirstForward", "install_eager_first_forward"]


class EagerFirstForward:
    """Per-transformer record of the layouts seen, and the stance of the forward in flight."""

    def __init__(self, state: ForwardState) -> None:
        self.state = state
        self.seen: set[tuple[Any, ...]] = set()  # (table generation, input shapes, signature)
        self.pending: tuple[Any, tuple[Any, ...]] | None = None  # (stance context, layout)
        self.eager_forwards = 0  # for tests and diagnostics

    def _layout(self, args: tuple, kwargs: dict[str, Any]) -> tuple[Any, ...]:
        shapes = tuple(
            (name, tuple(value.shape))
            for name, value in [*enumerate(args), *kwargs.items()]
            if isinstance(value, torch.Tensor)
        )
        return (self.state.mesh.seq_lens.generation, shapes, self.state.signature())

    def before(self, module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        """Forward pre-hook, after the split hooks: force eager on an unseen layout."""
        if self.pending is not None or torch.compiler.is_compiling():
            return
        layout = self._layout(args, kwargs)
        if layout in self.seen:
            return
        stance = torch.compiler.set_stance("force_eager")
        stance.__enter__()
        self.pending = (stance, layout)
        self.eager_forwards += 1

    def after(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        """Forward hook (also called when the forward raises): restore the stance."""
        if self.pending is None:
            return
        stance, layout = self.pending
        self.pending = None
        stance.__exit__(None, None, None)
        if layout[0] == self.state.mesh.seq_lens.generation:
            self.seen.add(layout)


def install_eager_first_forward(
    transformer: torch.nn.Module, state: ForwardState
) -> tuple[EagerFirstForward, list[RemovableHandle]]:
    """Register the check as the transformer's last pre-hook; return it and its handles."""
    guard = EagerFirstForward(state)
    handles = [
        transformer.register_forward_pre_hook(guard.before, with_kwargs=True),
        transformer.register_forward_hook(guard.after, always_call=True),
    ]
    return guard, handles
