"""Where the packages of the monorepo live and how to read their versions and pins.

Shared by ``bump_version.py`` and ``check_pins.py``; standard library only (Python 3.11+).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
VERSION_LINE = re.compile(r'^__version__ = "([^"]+)"$', re.M)


@dataclass(frozen=True)
class Package:
    """One distribution of the monorepo."""

    folder: Path
    distribution: str
    about: Path

    @property
    def pyproject(self) -> Path:
        return self.folder / "pyproject.toml"

    def version(self) -> str:
        match = VERSION_LINE.search(self.about.read_text())
        if match is None:
            raise ValueError(f"{self.about}: no __version__ line")
        return match.group(1)

    def requirements(self) -> list[str]:
        """Runtime and optional requirements, as written in pyproject.toml."""
        project = tomllib.loads(self.pyproject.read_text())["project"]
        reqs = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            reqs.extend(extra)
        return reqs


def packages(root: Path = ROOT) -> list[Package]:
    """Every package folder (packages/* and kernels-cu13), sorted by distribution name."""
    folders = sorted(p for p in (root / "packages").iterdir() if (p / "pyproject.toml").exists())
    folders.append(root / "kernels-cu13")
    found = []
    for folder in folders:
        name = tomllib.loads((folder / "pyproject.toml").read_text())["project"]["name"]
        import_name = name.replace("-", "_")
        found.append(Package(folder, name, folder / "src" / import_name / "__about__.py"))
    return sorted(found, key=lambda p: p.distribution)


def sibling_pins(requirement: str) -> tuple[str, str] | None:
    """``("ditkit-x", "==0.1.0")`` for a requirement on a sibling, else ``None``."""
    match = re.match(r"^(ditkit(?:-[a-z0-9-]+)?)(\[[^\]]*\])?\s*([^;]*)", requirement.strip())
    if match is None:
        return None
    return match.group(1), match.group(3).strip()
