"""Eager tensor parallelism without DTensor dispatch: sharded linears on their local shards.

``parallelize_module`` makes every sharded ``nn.Linear`` a DTensor computation: a pre-hook
wraps the input in a DTensor, the linear dispatches through DTensor's sharding propagation and
a post-hook redistributes and unwraps the output. Eagerly that costs milliseconds of host time
per block (profiled on tiny Flux: ``redistribute``, ``from_local`` and autograd-function calls
around every linear); on 2×H200 eager TP-2 ran at 0.23× one GPU at 1024². Under
``torch.compile`` it traces away (TP-2 compiled 1.80× at 2048²).

:func:`localize` keeps the DTensor parameters (state dicts, :func:`~.apply.gather_full_state_dict`)
but gives each sharded linear a forward that, when not compiling, runs ``F.linear`` on the
rank's plain shards and does the one collective the style needs itself:

- colwise: ``y_r = x W_r^T + b_r``, the output stays this rank's slice (no communication);
- rowwise: ``y = all_reduce_sum(x_r W_r^T) + b`` (the bias is replicated, added once);
- modulation (AdaLN, output replicated): ``y = all_gather_last_dim(x W_r^T + b_r)``.

While compiling it calls the DTensor path exactly as ``parallelize_module`` set it up, so the
compiled graphs are the ones measured before. The local shards are views of the DTensors'
local tensors, taken once (no copy): in-place weight loads (``copy_``, ``load_state_dict``)
reach them, replacing a parameter object afterwards does not (reload a TP model instead).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.nn import functional

from ..comm import all_gather_uneven, all_reduce_sum, wait

__all__ = ["LocalLinearForward", "localize"]


def _local(param: torch.Tensor | None) -> torch.Tensor | None:
    if param is None:
        return None
    return param.to_local() if hasattr(param, "to_local") else param


class LocalLinearForward:
    """The ``forward`` of one sharded linear: local shards eagerly, DTensor when compiling."""

    def __init__(
        self,
        module: nn.Linear,
        style: str,
        mesh: DeviceMesh,
        pre_hooks: list[Callable[..., Any]],
        post_hooks: list[Callable[..., Any]],
    ) -> None:
        self.module = module
        self.style = style
        self.group = mesh.get_group()
        self.size = mesh.size()
        self.pre_hooks = pre_hooks
        self.post_hooks = post_hooks
        self.dtensor_forward = type(module).forward.__get__(module)
        self.weight = _local(module.weight)
        self.bias = _local(module.bias)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():
            return self._dtensor(x)
        if self.style == "rowwise":
            partial = functional.linear(x, self.weight)
            y = all_reduce_sum(partial, self.group)
            return y if self.bias is None else y + self.bias
        y = functional.linear(x, self.weight, self.bias)
        if self.style == "modulation":
            y = wait(all_gather_uneven(y, [y.shape[-1]] * self.size, -1, self.group))
        return y

    def _dtensor(self, x: torch.Tensor) -> torch.Tensor:
        """What ``parallelize_module``'s hooks and the DTensor linear did."""
        inputs: tuple[Any, ...] = (x,)
        for hook in self.pre_hooks:
            result = hook(self.module, inputs)
            if result is not None:
                inputs = result if isinstance(result, tuple) else (result,)
        out = self.dtensor_forward(*inputs)
        for hook in self.post_hooks:
            result = hook(self.module, inputs, out)
            if result is not None:
                out = result
        return out


def hook_keys(module: nn.Module) -> tuple[set[int], set[int]]:
    """The ids of ``module``'s forward pre-hooks and forward hooks (to find new ones)."""
    return set(module._forward_pre_hooks), set(module._forward_hooks)


def localize(
    module: nn.Linear, style: str, mesh: DeviceMesh, before: tuple[set[int], set[int]]
) -> None:
    """Replace the hooks ``parallelize_module`` added to ``module`` (those not in ``before``,
    from :func:`hook_keys`) by a :class:`LocalLinearForward` of ``style``."""
    pre_ids = [k for k in module._forward_pre_hooks if k not in before[0]]
    post_ids = [k for k in module._forward_hooks if k not in before[1]]
    pre = [module._forward_pre_hooks.pop(k) for k in pre_ids]
    post = [module._forward_hooks.pop(k) for k in post_ids]
    for extra in ("_forward_pre_hooks_with_kwargs", "_forward_hooks_with_kwargs"):
        for k in pre_ids + post_ids:
            getattr(module, extra, {}).pop(k, None)
    if any(k in getattr(module, "_forward_hooks_always_called", {}) for k in post_ids):
        raise RuntimeError(f"{type(module).__name__}: unexpected always-called TP hook")
    module.forward = LocalLinearForward(module, style, mesh, pre, post)
