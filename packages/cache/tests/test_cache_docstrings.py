"""Every example in ditkit-cache's docstrings runs and prints what it says."""

import doctest
import importlib
import pkgutil

import pytest

import ditkit_cache

MODULES = ["ditkit_cache"] + [
    f"ditkit_cache.{info.name}" for info in pkgutil.iter_modules(ditkit_cache.__path__)
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
