"""Each package installs from its wheel with only ditkit-interfaces beside it, and imports alone.

The check runs in a subprocess whose import system can see third-party packages but only the
ditkit modules of one target folder: any import of a sibling that was not installed there fails.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

DISTRIBUTIONS = [
    "ditkit-interfaces",
    "ditkit-testing",
    "ditkit-cache",
    "ditkit-calibrators",
    "ditkit-parallel",
    "ditkit-svdquant",
    "ditkit-offload",
    "ditkit-metrics",
    "ditkit",
]

PROBE = textwrap.dedent(
    """
    import importlib, importlib.machinery, json, pkgutil, sys
    target, top = sys.argv[1], sys.argv[2]

    class OnlyTarget:
        # ditkit* modules come from the target folder or not at all
        def find_spec(self, name, path=None, target_=None):
            if not name.split(".")[0].startswith("ditkit"):
                return None
            search = [target] if "." not in name else path
            spec = importlib.machinery.PathFinder.find_spec(name, search)
            if spec is None:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return spec

    sys.meta_path.insert(0, OnlyTarget())
    module = importlib.import_module(top)
    names = [top] + [f"{top}.{m.name}" for m in pkgutil.iter_modules(module.__path__)]
    for name in names:
        if name.endswith("__main__"):
            continue
        importlib.import_module(name)
    loaded = sorted({m.split(".")[0] for m in sys.modules if m.startswith("ditkit")})
    result = {"loaded": loaded, "modules": len(names), "file": module.__file__}
    if top == "ditkit":
        import ditkit
        result["config_tag"] = ditkit.DBCacheConfig().strify()
        try:
            ditkit.enable_cache(None)
        except ImportError as err:
            result["enable_cache_error"] = str(err)
    print(json.dumps(result))
    """
)


def _wheel(wheelhouse: Path, distribution: str) -> Path:
    stem = distribution.replace("-", "_")
    found = sorted(wheelhouse.glob(f"{stem}-*.whl"))
    assert found, f"no wheel for {distribution} in {wheelhouse}"
    return found[-1]


def _requires(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(meta).decode()
    return [
        line.split(":", 1)[1].strip()
        for line in text.splitlines()
        if line.startswith("Requires-Dist:")
    ]


def _install_into(target: Path, wheels) -> Path:
    """pip-install ``wheels`` (no dependencies) into the folder ``target``."""
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile"]
    subprocess.run([*command, "--target", str(target), *map(str, wheels)], check=True)
    return target


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_package_installs_and_imports_alone(distribution, wheelhouse, tmp_path):
    wheels = {_wheel(wheelhouse, distribution), _wheel(wheelhouse, "ditkit-interfaces")}
    target = _install_into(tmp_path / "site", wheels)
    top = distribution.replace("-", "_")
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(target), top], capture_output=True, text=True
    )
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result["file"].startswith(str(target))
    allowed = {top, "ditkit_interfaces"}
    assert set(result["loaded"]) <= allowed, result["loaded"]
    assert result["modules"] >= 1

    runtime = [r for r in _requires(_wheel(wheelhouse, distribution)) if "extra ==" not in r]
    names = [re.match(r"[A-Za-z0-9._-]+", r).group() for r in runtime]
    siblings = sorted(n for n in names if n.startswith("ditkit"))
    if distribution == "ditkit":
        assert siblings == ["ditkit-cache", "ditkit-calibrators", "ditkit-interfaces"]
        assert result["config_tag"] == "DBCache_F8B0_W8I1M0MC0_R0.08"
        assert "pip install ditkit-cache" in result["enable_cache_error"]
    elif distribution in ("ditkit-interfaces", "ditkit-testing"):
        assert siblings == []
    else:
        assert siblings == ["ditkit-interfaces"]


def test_probe_would_catch_a_sibling_import(wheelhouse, tmp_path):
    # Guard against a vacuous check: with only interfaces installed, the umbrella cannot import.
    target = _install_into(tmp_path / "site", [_wheel(wheelhouse, "ditkit-interfaces")])
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(target), "ditkit_cache"], capture_output=True, text=True
    )
    assert probe.returncode != 0
    assert "No module named 'ditkit_cache'" in probe.stderr
