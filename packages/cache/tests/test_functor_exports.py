"""Every patch functor is exported, under cache-dit 1.5.3's class name where cache-dit has one.

Code written for cache-dit imports functors from ``cache_dit.caching.patch_functors`` (the
umbrella re-exports ``ditkit_cache.functors`` as ``ditkit.caching.patch_functors``) and passes
them as ``BlockAdapter(patch_functor=...)``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import ditkit_cache
from ditkit_cache import functors
from ditkit_cache.registry import FAMILY_SPECS

#: ``cache_dit.caching.patch_functors`` of cache-dit 1.5.3 (its functor classes, by name).
CACHE_DIT_FUNCTORS = (
    "BriaFiboPatchFunctor",
    "ChromaPatchFunctor",
    "Cosmos3OmniPatchFunctor",
    "DiTPatchFunctor",
    "ErnieImagePatchFunctor",
    "FluxPatchFunctor",
    "GlmImagePatchFunctor",
    "HiDreamPatchFunctor",
    "HunyuanDiTPatchFunctor",
    "LTX2PatchFunctor",
    "QwenImageControlNetPatchFunctor",
    "WanVACEPatchFunctor",
    "ZImageControlNetPatchFunctor",
)
#: cache-dit functors without a ditkit counterpart (FluxPatchFunctor and
#: QwenImageControlNetPatchFunctor now move FLUX's and Qwen-Image's control residuals into blocks).
NOT_YET: set[str] = set()


def _defined() -> dict[str, type]:
    """Every PatchFunctor subclass defined in a ``ditkit_cache.functors`` module."""
    found = {}
    for info in pkgutil.iter_modules(functors.__path__):
        module = importlib.import_module(f"{functors.__name__}.{info.name}")
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, functors.PatchFunctor)
                and value.__module__ == module.__name__
            ):
                found[name] = value
    return found


def test_every_functor_class_is_exported_by_both_modules():
    defined = _defined()
    assert len(defined) >= 17
    for name, cls in defined.items():
        assert name in functors.__all__ and getattr(functors, name) is cls
        assert name in ditkit_cache.__all__ and getattr(ditkit_cache, name) is cls
    assert set(functors.__all__) == {*defined, "PatchFunctor"}
    assert functors.PatchFunctor is ditkit_cache.PatchFunctor


def test_cache_dit_names():
    exported = set(functors.__all__)
    assert set(CACHE_DIT_FUNCTORS) - exported == NOT_YET
    # ditkit's own, for families cache-dit 1.5.3 does not register
    own = {"WanAnimatePatchFunctor", "LattePatchFunctor", "AceStepPatchFunctor"}
    own |= {"SD3ControlNetPatchFunctor", "SanaControlNetPatchFunctor", "BriaControlNetPatchFunctor"}
    own |= {"CosmosControlNetPatchFunctor", "ControlResidualsPatchFunctor"}
    assert own | {"MotifVideoPatchFunctor", "QwenImage21PatchFunctor"} <= exported


@pytest.mark.parametrize(
    "prefix", sorted(p for p, spec in FAMILY_SPECS.items() if spec.patch_functor)
)
def test_spec_functors_are_the_exported_classes(prefix):
    module, _, name = FAMILY_SPECS[prefix].patch_functor.partition(":")
    cls = getattr(importlib.import_module(module), name)
    assert getattr(functors, name) is cls is getattr(ditkit_cache, name)
