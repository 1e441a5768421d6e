"""Context-parallel plans as data: where a transformer's sequences are split and gathered.

A :class:`CPPlan` maps module paths of a transformer (``""`` is the transformer itself;
``*`` matches one path component, so ``"transformer_blocks.*"`` is every block) to a
:class:`ModulePlan`: which inputs to split before the module runs (by argument name or
position), which outputs to split after it runs (rotary tables computed for the full
sequence), and whether to gather the output back to the full sequence. Splits always use
``torch.tensor_split(x, cp_size, dim)`` and keep the piece of this rank's context-parallel
rank, so lengths that do not divide the world size are fine.

Example:
    >>> plan = CPPlan(
    ...     {
    ...         "": ModulePlan(inputs={"hidden_states": Split(1, ndim=3)}),
    ...         "proj_out": ModulePlan(gather=Gather(1, ndim=3)),
    ...     },
    ...     name="toy",
    ... )
    >>> matches_path("blocks.*", "blocks.3"), matches_path("blocks.*", "blocks.3.attn")
    (True, False)
    >>> sorted(plan.modules)
    ['', 'proj_out']
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterator, Mapping
from typing import Any

from ditkit_interfaces import ConfigError

__all__ = [
    "CPPlan",
    "Gather",
    "ModulePlan",
    "Split",
    "as_cp_plan",
    "matches_path",
]

_PLAN_FIELD = "ParallelismConfig.cp_plan"


@dataclasses.dataclass(frozen=True)
class Split:
    """Keep this rank's piece of a tensor (or of every tensor in a list, tuple or dict).

    Args:
        dim (`int`): the sequence dimension (negative counts from the end).
        ndim (`int`, *optional*): split only tensors of this rank; others pass unchanged
            (diffusers' ``expected_dims``: e.g. Wan's 1-D timestep is left alone, its 2-D
            per-token timestep of Wan 2.2 TI2V is split).
        segments (`tuple[str, ...]`): the dimension concatenates these earlier-split inputs
            (by argument name), in order; each segment is split on its own and the pieces are
            concatenated again. For masks built over ``cat([image, text])`` of full lengths.
    """

    dim: int
    ndim: int | None = None
    segments: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Gather:
    """All-gather a module's output (every tensor of a tuple output) along ``dim``."""

    dim: int
    ndim: int | None = None


@dataclasses.dataclass(frozen=True)
class ModulePlan:
    """What happens around one module (or every module a wildcard path matches).

    Args:
        inputs: argument name or position -> :class:`Split`, applied before ``forward``.
        outputs: output position -> :class:`Split`, applied after ``forward`` (position 0 is
            the output itself when the module returns a single tensor).
        gather: a :class:`Gather` applied to the output after the output splits.
    """

    inputs: Mapping[str | int, Split] = dataclasses.field(default_factory=dict)
    outputs: Mapping[int, Split] = dataclasses.field(default_factory=dict)
    gather: Gather | None = None

    def __post_init__(self) -> None:
        for key, spec in self.inputs.items():
            if not isinstance(spec, Split):
                raise ConfigError(f"{_PLAN_FIELD} input {key!r}", spec, "a Split")
        for key, spec in self.outputs.items():
            if not isinstance(key, int) or not isinstance(spec, Split):
                raise ConfigError(
                    f"{_PLAN_FIELD} output {key!r}", spec, "an int position mapped to a Split"
                )
        if self.gather is not None and not isinstance(self.gather, Gather):
            raise ConfigError(f"{_PLAN_FIELD} gather", self.gather, "a Gather or None")


@dataclasses.dataclass(frozen=True)
class CPPlan:
    """A whole transformer's context-parallel plan.

    Args:
        modules: module path pattern -> :class:`ModulePlan`.
        attention: module path patterns of the attention modules whose processors run
            context-parallel attention; ``None`` routes every processor that diffusers made
            parallel-aware (it has ``_parallel_config``) or that ditkit knows how to replace.
        name: a label for messages (usually the class-name prefix).
    """

    modules: Mapping[str, ModulePlan]
    attention: tuple[str, ...] | None = None
    name: str = ""

    def __post_init__(self) -> None:
        for path, spec in self.modules.items():
            if not isinstance(path, str) or not isinstance(spec, ModulePlan):
                raise ConfigError(
                    f"{_PLAN_FIELD}[{path!r}]", spec, "a module path mapped to a ModulePlan"
                )
        if not any(spec.gather is not None for spec in self.modules.values()):
            raise ConfigError(
                _PLAN_FIELD,
                self.name or "plan",
                "a plan with at least one Gather (the output must return to full length)",
                fix="add e.g. 'proj_out': ModulePlan(gather=Gather(1))",
            )

    def resolve(self, root: Any) -> Iterator[tuple[str, Any, ModulePlan]]:
        """``(path, module, plan)`` for every module of ``root`` a pattern matches.

        Raises:
            ConfigError: a pattern matches no module (the plan does not fit this model).
        """
        named = list(root.named_modules())
        for pattern, spec in self.modules.items():
            hits = [(name, mod) for name, mod in named if matches_path(pattern, name)]
            if not hits:
                raise ConfigError(
                    f"{_PLAN_FIELD}[{pattern!r}]",
                    type(root).__name__,
                    "a module path of this transformer",
                    fix="check the plan against transformer.named_modules()",
                )
            for name, mod in hits:
                yield name, mod, spec


def matches_path(pattern: str, path: str) -> bool:
    """Whether a module path matches a pattern, component by component (``*`` is one part)."""
    if pattern == "" or path == "":
        return pattern == path
    parts, names = pattern.split("."), path.split(".")
    return len(parts) == len(names) and all(
        fnmatch.fnmatchcase(n, p) for p, n in zip(parts, names, strict=True)
    )


def _convert_entry(path: str, entry: Any) -> ModulePlan:
    """One cache-dit / diffusers style entry -> :class:`ModulePlan` (duck-typed)."""
    if isinstance(entry, ModulePlan):
        return entry
    if hasattr(entry, "gather_dim"):
        return ModulePlan(gather=Gather(entry.gather_dim, getattr(entry, "expected_dims", None)))
    if isinstance(entry, list | tuple):
        merged: dict[str, Any] = {"inputs": {}, "outputs": {}, "gather": None}
        for sub in entry:
            part = _convert_entry(path, sub)
            merged["inputs"].update(part.inputs)
            merged["outputs"].update(part.outputs)
            merged["gather"] = part.gather or merged["gather"]
        return ModulePlan(**merged)
    if isinstance(entry, Mapping):
        inputs: dict[str | int, Split] = {}
        outputs: dict[int, Split] = {}
        for key, spec in entry.items():
            if isinstance(spec, Split):
                inputs[key] = spec
                continue
            if isinstance(spec, list | tuple):  # cache-dit: one spec per element of a tuple
                spec = spec[0]
            if not hasattr(spec, "split_dim"):
                raise ConfigError(f"{_PLAN_FIELD}[{path!r}][{key!r}]", spec, "a split spec")
            split = Split(spec.split_dim, getattr(spec, "expected_dims", None))
            if getattr(spec, "split_output", False):
                outputs[int(key)] = split
            else:
                inputs[key] = split
        return ModulePlan(inputs=inputs, outputs=outputs)
    raise ConfigError(f"{_PLAN_FIELD}[{path!r}]", entry, "a ModulePlan, a split dict or a Gather")


def as_cp_plan(plan: Any, name: str = "") -> CPPlan:
    """Normalise a user plan: a :class:`CPPlan`, or a dict of module path -> entry.

    Entries may be :class:`ModulePlan`, or cache-dit / diffusers style objects: a dict of
    argument -> object with ``split_dim``/``expected_dims``/``split_output``, an object with
    ``gather_dim``, or a list of those.

    Example:
        >>> as_cp_plan({"": {"x": Split(1)}, "out": Gather(1)}).modules["out"].gather
        Gather(dim=1, ndim=None)
    """
    if isinstance(plan, CPPlan):
        return plan
    if not isinstance(plan, Mapping):
        raise ConfigError(_PLAN_FIELD, plan, "a CPPlan or a dict of module path -> entry")
    modules = {}
    for path, entry in plan.items():
        modules[path] = (
            ModulePlan(gather=entry) if isinstance(entry, Gather) else _convert_entry(path, entry)
        )
    return CPPlan(modules, name=name or "cp_plan")
