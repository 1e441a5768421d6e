"""GLM-Image (``GlmImageTransformer2DModel``): each block finds its own KV cache by index.

For image editing the pipeline passes ``kv_caches`` (a ``GlmImageKVCache``) and the forward hands
block ``i`` ``kv_caches[i]``. A cached stand-in would hand every block ``kv_caches[0]``. The
functor keeps the call's ``kv_caches`` and gives each block a forward that takes its own layer
cache, as the loop does; uncached outputs are bit-identical.

A call in ``"write"`` mode (the pipeline's pass over the condition images, before denoising) must
run every block, or the caches of skipped blocks stay empty; it is not a denoising step either.
Such a call runs the real block list, not the cache's stand-in: it is neither cached nor counted
as a step, so the steps and CFG branches the cache sees are the denoising calls only.
"""

from __future__ import annotations

from typing import Any

import torch

from ..patch_functor import PatchFunctor
from ._forwards import Argument, Forward, wrap_forward

__all__ = ["GlmImagePatchFunctor"]

_CACHES = "kv_caches"


class GlmImagePatchFunctor(PatchFunctor):
    def _apply(self, transformer: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        current: dict[str, Any] = {}
        blocks = transformer.transformer_blocks
        wrap_forward(
            transformer, lambda forward: _keeping_caches(forward, transformer, blocks, current)
        )
        for index, block in enumerate(blocks):
            wrap_forward(block, lambda f, i=index: _own_cache(f, i, current))
        return transformer


def _writing(caches: Any) -> bool:
    return any(layer.mode == "write" for layer in getattr(caches, "caches", ()))


def _keeping_caches(
    forward: Forward,
    transformer: torch.nn.Module,
    blocks: torch.nn.ModuleList,
    current: dict[str, Any],
) -> Forward:
    caches_argument = Argument(forward, _CACHES)

    def patched(*args: Any, **kwargs: Any) -> Any:
        caches = caches_argument.get(args, kwargs)
        if caches is None:
            return forward(*args, **kwargs)
        current[_CACHES] = caches
        in_place = transformer._modules["transformer_blocks"]
        if _writing(caches):  # run the real blocks, past any stand-in the cache swapped in
            transformer._modules["transformer_blocks"] = blocks
        try:
            return forward(*args, **kwargs)
        finally:
            transformer._modules["transformer_blocks"] = in_place
            current.clear()

    return patched


def _own_cache(forward: Forward, index: int, current: dict[str, Any]) -> Forward:
    cache_argument = Argument(forward, "kv_cache")

    def patched(*args: Any, **kwargs: Any) -> Any:
        caches = current.get(_CACHES)
        if caches is not None:
            args, kwargs = cache_argument.replace(args, kwargs, caches[index])
        return forward(*args, **kwargs)

    return patched
