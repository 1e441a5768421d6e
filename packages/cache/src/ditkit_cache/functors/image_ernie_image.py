"""ERNIE-Image (``ErnieImageTransformer2DModel``): nothing between its layers needs moving.

cache-dit 1.5.3 rewrites this forward to build the per-layer modulation list before the loop
instead of inside it. In diffusers 0.42.1 that list is rebuilt from the same six tensors in every
iteration, so a cached stand-in (called once, with the first iteration's list) hands every layer
the same values the loop would: the ``ErnieImage`` family needs no functor. This class exists so
that code written for cache-dit (``patch_functor=ErnieImagePatchFunctor()``) runs unchanged; it
leaves the transformer as it is.
"""

from __future__ import annotations

from typing import Any

import torch

from ..patch_functor import PatchFunctor

__all__ = ["ErnieImagePatchFunctor"]


class ErnieImagePatchFunctor(PatchFunctor):
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        return transformer
