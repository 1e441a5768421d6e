"""Every example in ditkit-calibrators' docstrings runs and prints what it says."""

import doctest
import importlib
import pkgutil

import pytest

import ditkit_calibrators

MODULES = ["ditkit_calibrators"] + [
    f"ditkit_calibrators.{info.name}" for info in pkgutil.iter_modules(ditkit_calibrators.__path__)
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert name.endswith("__about__") or result.attempted > 0
