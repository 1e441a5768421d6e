"""Check the lockstep version and the pins between siblings; exit 1 with a list of problems.

Rules (docs/contributing.md):
- every package has the same ``__version__``;
- the ``ditkit`` umbrella (and any extra that names a sibling) pins siblings exactly: ``==V``;
- feature packages depend on ``ditkit-interfaces`` by the compatible range ``>=V,<0.(minor+1)``
  (``>=V,<(major+1)`` from 1.0) and on no other feature package; their ``test`` extras name
  ``ditkit-testing`` by the same range; other extras (``svdquant[cu13]``) pin exactly.

Usage: ``python tools/check_pins.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

import tomllib

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _workspace import ROOT, Package, packages, sibling_pins


def interfaces_range(version: str) -> str:
    major, minor, *_ = (int(x) for x in version.split("."))
    upper = f"0.{minor + 1}" if major == 0 else f"{major + 1}"
    return f">={version},<{upper}"


def problems(root: Path = ROOT) -> list[str]:
    found = packages(root)
    versions = {p.distribution: p.version() for p in found}
    expected = versions.get("ditkit-interfaces")
    issues = [
        f"{name} is at {version}, ditkit-interfaces at {expected} (one lockstep version)"
        for name, version in versions.items()
        if version != expected
    ]
    known = set(versions)
    for package in found:
        issues.extend(_check_package(package, known, expected))
    return issues


def _check_package(package: Package, known: set[str], version: str | None) -> list[str]:
    issues = []
    data = tomllib.loads(package.pyproject.read_text())["project"]
    runtime = data.get("dependencies", [])
    optional = [r for extra in data.get("optional-dependencies", {}).values() for r in extra]
    for requirement, is_runtime in [(r, True) for r in runtime] + [(r, False) for r in optional]:
        pin = sibling_pins(requirement)
        if pin is None:
            continue
        sibling, spec = pin
        where = f"{package.distribution}: {requirement!r}"
        if sibling not in known:
            issues.append(f"{where} names no package of this repo")
            continue
        umbrella = package.distribution == "ditkit"
        ranged = sibling == "ditkit-interfaces" if is_runtime else sibling == "ditkit-testing"
        if umbrella or (not is_runtime and not ranged):
            if spec != f"=={version}":
                issues.append(f"{where} should pin exactly: {sibling}=={version}")
        elif ranged:
            if spec != interfaces_range(version or ""):
                issues.append(f"{where} should be {sibling}{interfaces_range(version or '')}")
        else:
            issues.append(f"{where}: feature packages must not depend on {sibling}")
    return issues


def main() -> int:
    found = problems()
    for line in found:
        print(f"pin drift: {line}")
    if not found:
        print(f"pins ok: {len(packages())} packages at {packages()[0].version()}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
