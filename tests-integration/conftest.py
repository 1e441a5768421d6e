"""Fixtures shared by the cross-package tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_FOLDERS = sorted(
    p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists()
)


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with one wheel per package: the nox ``all`` session's, or freshly built."""
    given = os.environ.get("DITKIT_WHEELHOUSE")
    if given and any(Path(given).glob("*.whl")):
        return Path(given)
    out = tmp_path_factory.mktemp("wheelhouse")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(out),
            *map(str, PACKAGE_FOLDERS),
        ],
        check=True,
    )
    return out
