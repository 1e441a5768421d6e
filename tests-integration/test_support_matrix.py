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
    from ditkit_cache.registry import FAMILY_SPECS, PIPELINE_ONLY

    rows = _supported_rows(page)
    assert sorted(rows) == sorted(FAMILY_SPECS)
    assert {*IMAGE_FAMILIES, *VIDEO_FAMILIES, *PIPELINE_ONLY} == set(rows)


def test_supported_pipelines_agree_with_the_page(page):
    import ditkit

    count, names = ditkit.supported_pipelines()
    rows = _supported_rows(page)
    assert count == len(rows)
    assert sorted(names) == sorted(f"{row}*" for row in rows)


def test_every_refused_family_has_a_reason(page):
    from ditkit_cache.families import UNSUPPORTED
    from ditkit_cache.registry import FAMILY_SPECS

    section = page.split("\n## Refused or missing", 1)[1].split("\n## ", 1)[0]
    refused = dict(re.findall(r"^\| `([^`]+)` \| refused \| [^|]* \| (.+) \|$", section, re.M))
    expected = {p for p in UNSUPPORTED if p not in FAMILY_SPECS}
    assert set(refused) == expected
    assert all(reason.strip() for reason in refused.values())


def test_every_registered_family_is_tested(gen, data):
    untested = sorted(p for p in data["families"] if not gen.is_tested(p, data))
    assert not untested, f"registered families without a tiny case or full pipeline: {untested}"
    assert not data["unmapped_cases"], "tiny cases that exercise no registered family"


def test_enough_distinct_transformer_classes_are_tested(gen, data, page):
    classes = data["tested_classes"]
    assert len(classes) >= gen.MIN_TESTED_CLASSES == 40
    assert f"**{len(classes)} distinct diffusers transformer classes are tested**" in page
    tested = {p for p in data["families"] if p in data["cases"] or p in data["full"]}
    assert set(classes) == {data["families"][p].transformer_class for p in tested}


def test_tiny_pipelines_map_by_their_pipeline_class(data):
    """The registry's longest-prefix match on the pipeline class, not the tiny pipeline's name."""
    full = {name: family for family, names in data["full"].items() for name in names}
    assert full == {
        "flux": "Flux",
        "qwen_image": "QwenImage",
        "wan": "Wan",
        "flux2": "Flux2",
        "hunyuan_video": "HunyuanVideo",
        "ltx": "LTX",
        "cogvideox": "CogVideoX",
        "sd3": "StableDiffusion3",
        "zimage": "ZImage",
    }


@pytest.mark.parametrize("name", ["sd3", "ltx", "flux2"])
def test_pipeline_class_constant_is_what_the_builder_returns(data, name):
    from ditkit_testing import build_tiny_pipeline

    assert type(build_tiny_pipeline(name)).__name__ == data["pipeline_classes"][name]


def test_pipeline_only_prefixes_are_listed_with_their_family(data, page):
    from ditkit_cache.registry import FAMILY_SPECS, PIPELINE_ONLY

    section = page.split("\n## Pipeline-only prefixes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \| ([^|]+) \|", section, flags=re.M)
    listed = {prefix: owner for prefix, owner, _ in rows}
    assert set(listed) == set(PIPELINE_ONLY) == set(data["pipeline_only"])
    for prefix, owner, spec in rows:
        assert owner not in PIPELINE_ONLY
        assert FAMILY_SPECS[prefix].transformer_class == FAMILY_SPECS[owner].transformer_class
        assert FAMILY_SPECS[prefix].blocks == FAMILY_SPECS[owner].blocks
        assert (spec == f"`{owner}`'s") is (FAMILY_SPECS[prefix] is FAMILY_SPECS[owner])
    assert {"SanaImageToVideo": "SanaVideo", "Wan22Vace": "WanVACE"}.items() <= listed.items()
