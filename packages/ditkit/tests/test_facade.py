"""The umbrella: cheap import, cache-dit aliases, lazy forwarding, missing-component errors."""

import importlib
import json
import subprocess
import sys

import pytest

import ditkit
from ditkit import MissingComponentError
from ditkit._lazy import FORWARDED
from ditkit.api import required_components


def test_import_is_cheap():
    code = (
        "import sys, time; t = time.perf_counter(); import ditkit; "
        "dt = time.perf_counter() - t; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'diffusers', 'transformers', 'numpy'} or "
        "(m.startswith('ditkit_') and m.split('.')[0] != 'ditkit_interfaces')); "
        "print(repr((heavy, dt)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, seconds = eval(out.stdout)
    assert heavy == []
    assert seconds < 1.0


def test_cache_dit_aliases():
    assert ditkit.DBCache is ditkit.CacheType.DBCache
    assert ditkit.DBPrune is ditkit.CacheType.DBPrune
    assert ditkit.NONE is ditkit.CacheType.NONE
    for i in range(6):
        assert getattr(ditkit, f"Pattern_{i}") is ditkit.ForwardPattern(i)
    assert ditkit.version_tuple == tuple(int(x) for x in ditkit.__version__.split("."))
    assert ditkit.DBCacheConfig().strify() == "DBCache_F8B0_W8I1M0MC0_R0.08"


def test_dir_lists_forwarded_names_and_unknown_names_fail():
    assert set(FORWARDED) <= set(dir(ditkit))
    assert "steps_mask" in ditkit.__all__
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = ditkit.no_such_thing


@pytest.mark.parametrize("name", sorted(FORWARDED))
def test_forwarded_names_resolve_or_name_the_pip_line(name):
    component, attribute = FORWARDED[name]
    try:
        module = importlib.import_module(f"ditkit_{component}")
    except ModuleNotFoundError:
        module = None
    if module is not None and hasattr(module, attribute):
        assert getattr(ditkit, name) is getattr(module, attribute)
        return
    with pytest.raises(MissingComponentError) as err:
        getattr(ditkit, name)
    assert f"ditkit-{component}" in str(err.value)
    assert "pip install" in str(err.value)
    assert name in str(err.value)


def test_required_components():
    assert required_components() == ["cache"]
    assert required_components(cache_config=1, parallelism_config=1) == ["cache", "parallel"]
    assert required_components(parallelism_config=1) == ["parallel"]
    assert required_components(quantize_config=1) == ["svdquant"]
    assert required_components(calibrator_config=1) == ["cache"]


def test_cli_info():
    out = subprocess.run(
        [sys.executable, "-m", "ditkit", "info"], capture_output=True, text=True, check=True
    )
    info = json.loads(out.stdout)
    assert info["ditkit"] == ditkit.__version__
    assert info["components"]["ditkit-interfaces"] == ditkit.__version__


def test_cli_rejects_bad_arguments():
    result = subprocess.run(
        [sys.executable, "-m", "ditkit", "demo", "--steps", "0"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "--steps" in result.stderr


def test_cache_dit_module_path_to_patch_functors():
    import ditkit as cache_dit
    from ditkit_cache.functors import HiDreamPatchFunctor

    assert cache_dit.caching.patch_functors.HiDreamPatchFunctor is HiDreamPatchFunctor
