"""The package surface: light import, device status, extension checks, version."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest
import torch

import ditkit_kernels_cu13 as k
from ditkit_kernels_cu13 import _ext


def test_import_loads_neither_torch_nor_the_ops() -> None:
    code = (
        "import sys, ditkit_kernels_cu13 as k\n"
        "status = k.device_status(); k.available(); k.diagnostics()\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'ditkit_kernels_cu13.ops' not in sys.modules\n"
        "print(status)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == k.device_status()


def test_the_compiled_extension_is_installed() -> None:
    assert k.extension_error() is None, k.extension_error()
    ext = k.load_extension()
    assert ext.ABI_VERSION == _ext.EXPECTED_ABI_VERSION
    assert 13000 <= ext.runtime_version() < 14000  # static cudart of CUDA 13
    assert {"80-real", "89-real", "90"} <= set(k.compiled_archs())


def test_status_agrees_with_torch() -> None:
    n = torch.cuda.device_count()
    if n == 0:  # a CPU-only machine
        assert k.device_status() == "no device"
        assert k.available() is False
        assert k.diagnostics()["device_count"] == 0
    else:
        assert k.device_status() == f"ok: {n} device(s)"
        assert k.available() is True
        assert k.device_count() == n


def test_missing_extension_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ext, "_load", lambda: (None, "no _C here"))
    assert k.device_status() == "no extension: no _C here"
    assert k.available() is False
    assert k.compiled_archs() == ()
    with pytest.raises(k.ExtensionMissingError, match="no _C here"):
        k.load_extension()


def test_raw_abi_validates_shapes_before_launching() -> None:
    ext = k.load_extension()
    with pytest.raises(ValueError, match=r"cols .* must be even, got 3"):
        ext.pack_int4(0, 0, 1, 3, 0)
    with pytest.raises(ValueError, match="must be >= 0"):
        ext.unpack_int4(0, 0, -1, 2, 0)
    ext.pack_int4(0, 0, 0, 2, 0)  # nothing to do: returns without touching CUDA


def test_version_is_lockstep_and_matches_the_metadata() -> None:
    assert k.__version__ == "0.1.0"
    assert importlib.metadata.version("ditkit-kernels-cu13") == k.__version__


def test_lazy_attributes() -> None:
    assert callable(k.pack_int4)
    assert "unpack_int4" in dir(k)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = k.nope
