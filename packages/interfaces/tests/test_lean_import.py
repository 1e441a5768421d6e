"""``import ditkit_interfaces`` (every submodule) must not import torch or any heavy library."""

import subprocess
import sys
import textwrap

HEAVY = ("torch", "numpy", "diffusers", "transformers", "yaml")


def test_importing_every_submodule_imports_no_heavy_library():
    script = textwrap.dedent(
        f"""
        import importlib, pkgutil, sys

        class Forbid:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {HEAVY!r}:
                    raise ImportError("ditkit_interfaces imported " + name)
                return None

        sys.meta_path.insert(0, Forbid())
        import ditkit_interfaces
        for info in pkgutil.iter_modules(ditkit_interfaces.__path__):
            importlib.import_module("ditkit_interfaces." + info.name)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
        assert not loaded, loaded
        print("ok", len(list(pkgutil.iter_modules(ditkit_interfaces.__path__))))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")
    assert int(result.stdout.split()[1]) >= 10  # the forbidding hook really saw the submodules


def test_forbidding_hook_would_catch_a_torch_import():
    # Guard against a vacuous test: the same hook must fail when something does import torch.
    script = textwrap.dedent(
        """
        import sys
        class Forbid:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ImportError("imported " + name)
        sys.meta_path.insert(0, Forbid())
        import torch
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode != 0
    assert "imported torch" in result.stderr
