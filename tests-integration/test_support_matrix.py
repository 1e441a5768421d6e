"""docs/support-matrix.md is generated, current, and agrees with the registry and the tests."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "support-matrix.md"


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location(
        "gen_support_matrix", ROOT / "tools" / "gen_support_matrix.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data(gen):
    return gen.collect()


@pytest.fixture(scope="module")
def page() -> str:
    return PAGE.read_text()


def _supported_rows(page: str) -> list[str]:
    section = page.split("\n## Supported", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


def test_page_is_up_to_date(gen, data, page):
    assert page == gen.render(data), "stale: run python tools/gen_support_matrix.py"


def test_every_registered_family_has_a_row(page):
    from ditkit_cache.families import IMAGE_FAMILIES, VIDEO_FAMILIES

    assert sorted(_supported_rows(page)) == sorted({*IMAGE_FAMILIES, *VIDEO_FAMILIES})


def test_supported_pipelines_agree_with_the_page(page):
    import ditkit

    count, names = ditkit.supported_pipelines()
    rows = _supported_rows(page)
    assert count == len(rows)
    assert sorted(names) == sorted(f"{row}*" for row in rows)


def test_every_refused_family_has_a_reason(page):
    from ditkit_cache.families import IMAGE_FAMILIES, UNSUPPORTED, VIDEO_FAMILIES

    section = page.split("\n## Refused or missing", 1)[1].split("\n## ", 1)[0]
    refused = dict(re.findall(r"^\| `([^`]+)` \| refused \| [^|]* \| (.+) \|$", section, re.M))
    expected = {p for p in UNSUPPORTED if p not in {*IMAGE_FAMILIES, *VIDEO_FAMILIES}}
    assert set(refused) == expected
    assert all(reason.strip() for reason in refused.values())


def test_every_registered_family_is_tested(data):
    untested = sorted(p for p in data["families"] if p not in data["cases"] | data["full"])
    assert not untested, f"registered families without a tiny case or full pipeline: {untested}"
    assert not data["unmapped_cases"], "tiny cases that exercise no registered family"
