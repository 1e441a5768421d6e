"""The version bump and the pin-drift check, on a copy of the repository's package metadata."""

import shutil
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOOLS))

import bump_version  # noqa: E402
import check_pins  # noqa: E402
from _workspace import ROOT, packages  # noqa: E402


@pytest.fixture
def repo(tmp_path):
    """A copy of every package's pyproject.toml and __about__.py."""
    for package in packages(ROOT):
        for path in (package.pyproject, package.about):
            target = tmp_path / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    return tmp_path


def test_the_repository_has_no_pin_drift():
    assert check_pins.problems(ROOT) == []
    names = {p.distribution for p in packages(ROOT)}
    assert {"ditkit", "ditkit-interfaces", "ditkit-cache", "ditkit-kernels-cu13"} <= names
    assert len(names) == 10


def test_bump_keeps_everything_consistent(repo):
    changed = bump_version.bump("0.2.0", repo)
    assert len(changed) >= 10
    assert {p.version() for p in packages(repo)} == {"0.2.0"}
    assert check_pins.problems(repo) == []
    umbrella = (repo / "packages/ditkit/pyproject.toml").read_text()
    assert '"ditkit-cache==0.2.0"' in umbrella
    cache = (repo / "packages/cache/pyproject.toml").read_text()
    assert '"ditkit-interfaces>=0.2.0,<0.3"' in cache


def test_check_detects_each_kind_of_drift(repo):
    about = repo / "packages/metrics/src/ditkit_metrics/__about__.py"
    about.write_text(about.read_text().replace("0.1.0", "0.1.1"))
    umbrella = repo / "packages/ditkit/pyproject.toml"
    umbrella.write_text(
        umbrella.read_text().replace('"ditkit-cache==0.1.0"', '"ditkit-cache>=0.1"')
    )
    cache = repo / "packages/cache/pyproject.toml"
    cache.write_text(
        cache.read_text().replace(
            '"ditkit-interfaces>=0.1.0,<0.2",',
            '"ditkit-interfaces>=0.1.0,<0.2",\n  "ditkit-offload",',
        )
    )
    found = check_pins.problems(repo)
    assert any("ditkit-metrics is at 0.1.1" in p for p in found)
    assert any("pin exactly: ditkit-cache==0.1.0" in p for p in found)
    assert any("must not depend on ditkit-offload" in p for p in found)


def test_bump_rejects_bad_versions(repo):
    with pytest.raises(ValueError, match=r"MAJOR\.MINOR\.PATCH"):
        bump_version.bump("1.0", repo)
