"""cache-dit module paths that snippets import from exist under ditkit (``cache_dit.X`` ->
``ditkit.X``) and re-export the component module, the very same objects."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

import pytest

from ditkit._lazy import MODULES


@pytest.mark.parametrize("path", sorted(MODULES))
def test_module_re_exports_its_component_module(path):
    umbrella = importlib.import_module(f"ditkit.{path}")
    component = importlib.import_module(MODULES[path][1])
    assert umbrella.__all__ == component.__all__ and umbrella.__all__
    for name in umbrella.__all__:
        assert getattr(umbrella, name) is getattr(component, name)
    assert set(umbrella.__all__) <= set(dir(umbrella))
    with pytest.raises(AttributeError, match="no_such_functor"):
        _ = umbrella.no_such_functor


def test_patch_functors_as_cache_dit_users_import_them():
    namespace: dict = {}
    exec("from ditkit.caching.patch_functors import *", namespace)
    for name in ("HiDreamPatchFunctor", "WanVACEPatchFunctor", "LTX2PatchFunctor"):
        assert namespace[name].__name__ == name
    import ditkit as cache_dit

    assert cache_dit.caching.patch_functors.PatchFunctor is cache_dit.PatchFunctor


@pytest.mark.parametrize("name", ["ditkit.caching", "ditkit.caching.patch_functors"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


def test_without_the_cache_component_the_import_names_the_pip_line():
    code = (
        "import sys; sys.modules['ditkit_cache'] = None\n"
        "from ditkit import MissingComponentError\n"
        "try:\n"
        "    import ditkit.caching.patch_functors\n"
        "except MissingComponentError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install ditkit-cache" in out.stdout
    assert "ditkit.caching.patch_functors" in out.stdout
