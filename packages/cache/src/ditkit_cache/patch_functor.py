"""``PatchFunctor``: reshape a model's forward so that its blocks fit a forward pattern.

Some transformers do work between blocks inside their loop, or call blocks in a way no pattern
describes. A patch functor rewrites such a model before caching (cache-dit's concept). ditkit
records what a functor changes — instance attributes of the transformer and of every submodule —
and :meth:`PatchFunctor.restore` puts it all back, so ``disable_cache`` stays exact.

Example:
    >>> import torch
    >>> class DoubleOutput(PatchFunctor):
    ...     def _apply(self, transformer, **kwargs):
    ...         original = transformer.forward
    ...         transformer.forward = lambda x: 2 * original(x)
    ...         return transformer
    >>> model = torch.nn.Identity()
    >>> functor = DoubleOutput()
    >>> float(functor.apply(model)(torch.ones(1))), float(functor.restore(model)(torch.ones(1)))
    (2.0, 1.0)
"""

from __future__ import annotations

import abc
from typing import Any

import torch

__all__ = ["PatchFunctor"]

_MISSING = object()
_RECORD = "_ditkit_patch_record"


class PatchFunctor(abc.ABC):
    """Base class: subclasses implement :meth:`_apply` (and may use any instance patching)."""

    @abc.abstractmethod
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        """Patch ``transformer`` in place and return it."""

    def apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        """Patch ``transformer`` once (a second call is a no-op) and record how to undo it."""
        if getattr(transformer, _RECORD, None) is not None:
            return transformer
        before = _snapshot(transformer)
        try:
            patched = self._apply(transformer, *args, **kwargs)
            if patched is not transformer:
                name = type(self).__name__
                raise TypeError(f"{name}._apply must patch and return the transformer")
        except BaseException:
            _restore(transformer, _changes(before, _snapshot(transformer)))  # nothing half-done
            raise
        object.__setattr__(transformer, _RECORD, _changes(before, _snapshot(transformer)))
        return transformer

    @staticmethod
    def restore(transformer: torch.nn.Module) -> torch.nn.Module:
        """Undo what :meth:`apply` changed on ``transformer`` and its submodules."""
        record = vars(transformer).pop(_RECORD, None)
        if record:
            _restore(transformer, record)
        return transformer

    @staticmethod
    def is_patched(transformer: torch.nn.Module) -> bool:
        return getattr(transformer, _RECORD, None) is not None


def _snapshot(transformer: torch.nn.Module) -> dict[tuple[str, str, str], Any]:
    """Every module's public instance attributes and its child modules, by module path."""
    snapshot: dict[tuple[str, str, str], Any] = {}
    for path, module in transformer.named_modules(remove_duplicate=False):
        for attribute, value in vars(module).items():
            if not attribute.startswith("_"):
                snapshot[(path, "attr", attribute)] = value
        for name, child in module._modules.items():
            snapshot[(path, "child", name)] = child
    return snapshot


def _changes(before: dict, after: dict) -> dict:
    """What to put back: changed or removed entries keep their old value, new ones go."""
    record = {key: value for key, value in before.items() if after.get(key, _MISSING) is not value}
    record.update({key: _MISSING for key in after if key not in before})
    return record


def _restore(transformer: torch.nn.Module, record: dict) -> None:
    # children first: attribute paths below a replaced child resolve once it is back
    for (path, kind, name), value in sorted(record.items(), key=lambda item: item[0][1] != "child"):
        module = _module_at(transformer, path)
        if module is None:
            continue
        store = module._modules if kind == "child" else vars(module)
        if value is _MISSING:
            store.pop(name, None)
        else:
            store[name] = value


def _module_at(root: torch.nn.Module, path: str) -> torch.nn.Module | None:
    module: Any = root
    for part in path.split(".") if path else []:
        module = module._modules.get(part) if isinstance(module, torch.nn.Module) else None
        if module is None:
            return None
    return module
