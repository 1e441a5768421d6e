# /// script
# dependencies = ["nox>=2024.4.15"]
# ///
"""The one source of truth for installing, testing, linting, documenting and building ditkit.

    python3 -m pip install nox
    python3 -m nox              # lint, every package alone, all packages from wheels, docs
    python3 -m nox -s demo      # README command 1
    python3 -m nox -s kernels   # build the CUDA 13 kernels wheel (needs nvcc) and test it on CPU
    python3 -m nox -l           # list the sessions

Every environment installs third-party packages under ``constraints/ci.txt`` (torch 2.13.0 CPU,
the tested diffusers and transformers), so nothing can pull a CUDA build or an untested release.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.needs_version = ">=2024.4.15"
nox.options.sessions = ["lint", "tests", "all", "docs"]
nox.options.error_on_external_run = True

ROOT = Path(__file__).resolve().parent
CONSTRAINTS = str(ROOT / "constraints" / "ci.txt")
WHEELHOUSE = ROOT / "build" / "wheelhouse"
# packages/<folder>: the folders, in dependency order
FEATURES = ["cache", "calibrators", "parallel", "svdquant", "offload", "metrics"]
PACKAGES = ["interfaces", "testing", *FEATURES, "ditkit"]
# siblings a package's own test session needs beside interfaces (its runtime pins or test extra)
TEST_SIBLINGS = {
    "cache": ["testing"],
    "parallel": ["testing"],
    "offload": ["testing"],
    "ditkit": ["cache", "calibrators", "testing", "metrics"],
}
NOT_SLOW = "not slow and not gpu and not multi_gpu"


def _install(session: nox.Session, *args: str) -> None:
    """pip install under the CI constraints, without byte-compiling (much faster for torch)."""
    session.install("-c", CONSTRAINTS, *args, env={"PIP_NO_COMPILE": "1"})


def _pytest(session: nox.Session, *args: str) -> None:
    session.run("python", "-m", "pytest", *args, *session.posargs)


def _drop_venv(session: nox.Session) -> None:
    """Delete a one-shot session's venv once it has run (each holds its own torch, about 1.3 GB:
    eleven of them filled the CI disk). ``DITKIT_KEEP_NOX_VENVS=1`` keeps them for debugging."""
    if os.environ.get("DITKIT_KEEP_NOX_VENVS") == "1":
        return
    location = getattr(session.virtualenv, "location", None)
    if location and Path(location).is_dir():
        shutil.rmtree(location, ignore_errors=True)


@nox.session(reuse_venv=True)
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, and the lockstep version / sibling pin check."""
    _install(session, "ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("python", "tools/check_pins.py")


@nox.session
@nox.parametrize("package", PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """One package (plus interfaces) in a fresh venv: install it from source, run its fast tests."""
    folder = ROOT / "packages" / package
    siblings = [] if package == "interfaces" else ["interfaces", *TEST_SIBLINGS.get(package, [])]
    paths = [str(ROOT / "packages" / s) for s in siblings]
    try:
        _install(session, "pytest", *paths, f"{folder}[test]")
        if package == "interfaces":  # its promise: no torch, no heavy dependency at all
            no_torch = "import importlib.util as u; assert u.find_spec('torch') is None"
            session.run("python", "-c", no_torch)
        _pytest(session, str(folder / "tests"), "-m", NOT_SLOW)
    finally:
        _drop_venv(session)


@nox.session(name="all")
def all_packages(session: nox.Session) -> None:
    """Every package from built wheels (not editable): all tests, slow ones included, and
    tests-integration/ (each package installs and imports alone, composed features)."""
    shutil.rmtree(WHEELHOUSE, ignore_errors=True)
    WHEELHOUSE.mkdir(parents=True)
    folders = [str(ROOT / "packages" / p) for p in PACKAGES]
    session.run("pip", "wheel", "--no-deps", "-q", "-w", str(WHEELHOUSE), *folders)
    wheels = sorted(f"{w}[test]" for w in WHEELHOUSE.glob("*.whl"))  # with their test extras
    try:
        _install(session, "pytest", *wheels)
        session.env["DITKIT_WHEELHOUSE"] = str(WHEELHOUSE)
        tests = [str(ROOT / "packages" / p / "tests") for p in PACKAGES]
        _pytest(session, *tests, str(ROOT / "tools" / "tests"), str(ROOT / "tests-integration"))
    finally:
        _drop_venv(session)


@nox.session(reuse_venv=True)
def docs(session: nox.Session) -> None:
    """Build the documentation site with mkdocs --strict (broken links fail)."""
    _install(session, "mkdocs", "mkdocs-material")
    site = str(ROOT / "build" / "site")
    session.run("mkdocs", "build", "--strict", "--site-dir", site, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def demo(session: nox.Session) -> None:
    """README command 1: the trained fixture uncached vs cached: speed, quality, images, plot."""
    packages = ["interfaces", "testing", "cache", "calibrators", "metrics", "ditkit"]
    _install(session, *(str(ROOT / "packages" / p) for p in packages))
    output = os.environ.get("DITKIT_DEMO_OUTPUT", str(ROOT / "demo-output"))
    session.run("ditkit", "demo", "--output", output, *session.posargs)


@nox.session(default=False)
def kernels(session: nox.Session) -> None:
    """Build the ditkit-kernels-cu13 wheel (needs nvcc 13) and run its CPU tests."""
    if shutil.which("nvcc") is None:
        session.error("nvcc was not found: the kernels need the CUDA 13 toolkit on PATH")
    out = ROOT / "build" / "kernels-wheel"
    shutil.rmtree(out, ignore_errors=True)
    session.run("pip", "wheel", "--no-deps", "-w", str(out), str(ROOT / "kernels-cu13"))
    wheel = str(next(out.glob("ditkit_kernels_cu13-*.whl")))
    try:
        _install(session, "pytest", "torch", wheel)
        _pytest(session, str(ROOT / "kernels-cu13" / "tests"))
    finally:
        _drop_venv(session)
