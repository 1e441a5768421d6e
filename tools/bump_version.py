"""Bump the one lockstep version of every package and rewrite the sibling pins to match.

Usage: ``python tools/bump_version.py 0.2.0`` (then ``python tools/check_pins.py``).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _workspace import ROOT, VERSION_LINE, packages
from check_pins import interfaces_range

SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def bump(new: str, root: Path = ROOT) -> list[Path]:
    """Write ``new`` into every ``__about__.py`` and every sibling pin; return the files changed."""
    if not SEMVER.match(new):
        raise ValueError(f"version {new!r} is not MAJOR.MINOR.PATCH")
    changed = []
    found = packages(root)
    for package in found:
        text = package.about.read_text()
        updated = VERSION_LINE.sub(f'__version__ = "{new}"', text)
        if updated != text:
            package.about.write_text(updated)
            changed.append(package.about)
    ranged = ("ditkit-interfaces", "ditkit-testing")
    pin = re.compile(r'"(ditkit(?:-[a-z0-9-]+)?)(\[[^\]]*\])?(==|>=)([0-9.]+)(,<[0-9.]+)?"')

    def rewrite(match: re.Match[str], umbrella: bool) -> str:
        name, extras, op = match.group(1), match.group(2) or "", match.group(3)
        if op == ">=" and name in ranged and not umbrella:
            return f'"{name}{extras}{interfaces_range(new)}"'
        return f'"{name}{extras}=={new}"'

    for package in found:
        text = package.pyproject.read_text()
        umbrella = package.distribution == "ditkit"
        updated = pin.sub(lambda m, u=umbrella: rewrite(m, u), text)
        if updated != text:
            package.pyproject.write_text(updated)
            changed.append(package.pyproject)
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("version", help="the new version, MAJOR.MINOR.PATCH")
    args = parser.parse_args()
    for path in bump(args.version):
        print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
