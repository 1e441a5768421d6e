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

from typing import Any

import torch

__all__ = ["PatchFunctor"]

_MISSING = object()
_RECORD = "_ditkit_patch_record"


class PatchFunctor:
    """Base class: subclasses implement :meth:`_apply` (and may use any instance patching)."""

    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        raise NotImplementedError(f"{type(self).__name__} must implement _apply(transformer)")

    def apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        """Patch ``transformer`` once (a second call is a no-op) and record how to undo it."""
        if getattr(transformer, _RECORD, None) is not None:
            return transformer
        before = _snapshot(transformer)
        patched = self._apply(transformer, *args, **kwargs)
        if patched is not transformer:
            raise TypeError(f"{type(self).__name__}._apply must patch and return the transformer")
        after = _snapshot(transformer)
        record = {
            key: value for key, value in before.items() if after.get(key, _MISSING) is not value
        }
        record.update({key: _MISSING for key in after if key not in before})
        object.__setattr__(transformer, _RECORD, record)
        return transformer

    @staticmethod
    def restore(transformer: torch.nn.Module) -> torch.nn.Module:
        """Undo what :meth:`apply` changed on ``transformer`` and its submodules."""
        record = vars(transformer).pop(_RECORD, None)
        if not record:
            return transformer
        modules = dict(transformer.named_modules())
        for (path, attribute), value in record.items():
            module = modules.get(path)
            if module is None:
                continue
            if value is _MISSING:
                vars(module).pop(attribute, None)
            else:
                vars(module)[attribute] = value
        return transformer

    @staticmethod
    def is_patched(transformer: torch.nn.Module) -> bool:
        return getattr(transformer, _RECORD, None) is not None


def _snapshot(transformer: torch.nn.Module) -> dict[tuple[str, str], Any]:
    """Plain instance attributes (not parameters, buffers or submodules) of every module."""
    snapshot = {}
    for path, module in transformer.named_modules():
        for attribute, value in vars(module).items():
            if attribute.startswith("_"):
                continue
            snapshot[(path, attribute)] = value
    return snapshot
