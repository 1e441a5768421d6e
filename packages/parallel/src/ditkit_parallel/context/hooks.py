"""Forward hooks that apply a :class:`~.plan.CPPlan`: split inputs, split outputs, gather outputs.

Every hook is a plain ``torch.nn.Module`` hook (``register_forward_pre_hook`` with kwargs and
``register_forward_hook``), so removing the handles leaves the modules exactly as they were.
One :class:`ForwardState` per parallelized transformer records the full length of every
sequence the hooks split during the current forward; the transformer's own pre-hook clears
it when a forward starts. Gathers learn every rank's piece length once per distinct set of
split lengths (one small all-gather through the mesh's
:class:`~ditkit_parallel.mesh.SeqLenTable`, keyed by full lengths so every rank hits or misses
together) and reuse it, so a denoising loop with fixed shapes never syncs the host in steady
state.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.hooks import RemovableHandle

from ditkit_interfaces import ConfigError

from ..comm import all_gather_uneven
from .plan import CPPlan, Gather, ModulePlan, Split
from .sharding import first_tensor, map_tensors, piece_lengths, split_piece

if TYPE_CHECKING:
    from ..mesh import CPMesh

__all__ = ["ForwardState", "install_plan_hooks"]


class ForwardState:
    """The split lengths seen in the current forward of one parallelized transformer."""

    def __init__(self, mesh: CPMesh) -> None:
        self.mesh = mesh
        self.lengths: dict[str, int] = {}  # "site:arg" -> full length, in split order
        self.by_name: dict[str, int] = {}  # "arg" -> full length (for Split.segments)
        self._signature: tuple[tuple[str, int], ...] | None = ()

    def reset(self) -> None:
        self.lengths.clear()
        self.by_name.clear()
        self._signature = ()

    def record(self, site: str, name: str | None, n: int) -> None:
        if self.lengths.get(site) != n:
            self.lengths[site] = n
            self._signature = None
        if name is not None:
            self.by_name[name] = n

    def signature(self) -> tuple[tuple[str, int], ...]:
        """Identical on every rank (full lengths), so it keys caches consistently."""
        if self._signature is None:
            self._signature = tuple(self.lengths.items())
        return self._signature


def site_label(path: str) -> str:
    """A module path with block indices as ``*``: every block's split records one site."""
    return ".".join("*" if part.isdigit() else part for part in path.split("."))


def _parameter_names(module: torch.nn.Module) -> list[str]:
    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in params if p.kind in kinds]


def _merge(path: str, specs: list[ModulePlan]) -> ModulePlan:
    """One module matched by several patterns: union of their specs (no key twice)."""
    inputs: dict[str | int, Split] = {}
    outputs: dict[int, Split] = {}
    gather: Gather | None = None
    for spec in specs:
        for key, split in spec.inputs.items():
            if key in inputs and inputs[key] != split:
                field = f"ParallelismConfig.cp_plan[{path!r}]"
                raise ConfigError(field, key, "one split per input")
            inputs[key] = split
        outputs.update(spec.outputs)
        gather = spec.gather or gather
    # plain splits first: segment splits read the lengths they record
    ordered = dict(sorted(inputs.items(), key=lambda kv: bool(kv[1].segments)))
    return ModulePlan(inputs=ordered, outputs=outputs, gather=gather)


class _ModuleHooks:
    """Applies one (merged) :class:`ModulePlan` to one module."""

    def __init__(self, path: str, module: torch.nn.Module, spec: ModulePlan, state: ForwardState):
        self.path = path
        self.site = site_label(path)
        self.spec = spec
        self.state = state
        self.names = _parameter_names(module)

    # -- splitting ---------------------------------------------------------------------
    def _split(self, value: Any, split: Split, site: str, name: str | None) -> Any:
        mesh = self.state.mesh
        head = first_tensor(value)
        if head is None or (split.ndim is not None and head.ndim != split.ndim):
            return value
        if split.segments:
            return map_tensors(value, lambda t: self._split_segments(t, split))
        self.state.record(site, name, head.shape[split.dim])
        return map_tensors(
            value,
            lambda t: (
                t
                if split.ndim is not None and t.ndim != split.ndim
                else split_piece(t, split.dim, mesh.cp_size, mesh.cp_rank)
            ),
        )

    def _split_segments(self, x: torch.Tensor, split: Split) -> torch.Tensor:
        mesh = self.state.mesh
        missing = [n for n in split.segments if n not in self.state.by_name]
        if missing:
            raise ConfigError(
                f"ParallelismConfig.cp_plan[{self.path!r}] segments",
                split.segments,
                f"names split earlier in the forward (not split yet: {missing})",
            )
        full = [self.state.by_name[n] for n in split.segments]
        local = [piece_lengths(n, mesh.cp_size)[mesh.cp_rank] for n in full]
        if x.shape[split.dim] == sum(local) and sum(local) != sum(full):
            return x  # already this rank's piece
        if x.shape[split.dim] != sum(full):
            raise ValueError(
                f"{self.path}: a tensor of length {x.shape[split.dim]} on dim {split.dim} "
                f"cannot be the concatenation of {dict(zip(split.segments, full, strict=True))}"
            )
        parts = x.split(full, dim=split.dim)
        pieces = [split_piece(p, split.dim, mesh.cp_size, mesh.cp_rank) for p in parts]
        return torch.cat(pieces, dim=split.dim)

    def pre(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        args, kwargs = list(args), dict(kwargs)
        for key, split in self.spec.inputs.items():
            name = key if isinstance(key, str) else None
            site = f"{self.site}:{key}"
            if isinstance(key, str) and key in kwargs:
                kwargs[key] = self._split(kwargs[key], split, site, name)
                continue
            index = key if isinstance(key, int) else None
            if index is None and key in self.names:
                index = self.names.index(key)
            if index is not None and index < len(args):
                args[index] = self._split(args[index], split, site, name)
        return tuple(args), kwargs

    # -- outputs -----------------------------------------------------------------------
    def post(self, module: torch.nn.Module, args: tuple, output: Any) -> Any:
        if self.spec.outputs:
            if isinstance(output, torch.Tensor):
                if 0 in self.spec.outputs:
                    output = self._split(output, self.spec.outputs[0], f"{self.site}:out0", None)
            else:
                items = list(output)
                for index, split in self.spec.outputs.items():
                    site = f"{self.site}:out{index}"
                    items[index] = self._split(items[index], split, site, None)
                output = type(output)(items) if isinstance(output, list) else tuple(items)
        if self.spec.gather is not None:
            output = map_tensors(output, self._gather)
        return output

    def _gather(self, x: torch.Tensor) -> torch.Tensor:
        gather = self.spec.gather
        assert gather is not None
        if gather.ndim is not None and x.ndim != gather.ndim:
            return x
        mesh = self.state.mesh
        if mesh.cp_size == 1:
            return x
        n = x.shape[gather.dim]
        # the key is derived from full lengths, so every rank hits or misses the table together
        key = ("gather", self.site, x.ndim, self.state.signature())
        lengths, _ = mesh.seq_lens.lengths(n, n, mesh.cp_group, key=key)
        return all_gather_uneven(x, lengths, gather.dim, mesh.cp_group)


def install_plan_hooks(
    transformer: torch.nn.Module, plan: CPPlan, state: ForwardState
) -> list[RemovableHandle]:
    """Register the plan's hooks (plus the state reset) and return every handle."""
    grouped: dict[str, tuple[torch.nn.Module, list[ModulePlan]]] = {}
    for path, module, spec in plan.resolve(transformer):
        grouped.setdefault(path, (module, []))[1].append(spec)

    def reset(module: torch.nn.Module, args: tuple) -> None:
        state.reset()

    handles = [transformer.register_forward_pre_hook(reset, prepend=True)]
    for path, (module, specs) in grouped.items():
        hooks = _ModuleHooks(path, module, _merge(path, specs), state)
        if hooks.spec.inputs:
            pre: Callable[..., Any] = hooks.pre
            handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        if hooks.spec.outputs or hooks.spec.gather is not None:
            handles.append(module.register_forward_hook(hooks.post))
    return handles
