"""Every docstring `Example:` and the README's Python example run as written."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

MODULES = [
    "ditkit_testing",
    "ditkit_testing.cogvideox",
    "ditkit_testing.components",
    "ditkit_testing.flux",
    "ditkit_testing.flux2",
    "ditkit_testing.parallel_cases",
    "ditkit_testing.hunyuan_video",
    "ditkit_testing.ltx",
    "ditkit_testing.qwen_image",
    "ditkit_testing.registry",
    "ditkit_testing.sd3",
    "ditkit_testing.tokenizers",
    "ditkit_testing.wan",
    "ditkit_testing.zimage",
]
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


def test_readme_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "README.md has no python example"
    exec(compile(blocks[0], str(README), "exec"), {})
