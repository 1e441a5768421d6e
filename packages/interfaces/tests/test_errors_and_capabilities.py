import pytest

from ditkit_interfaces import (
    COMPONENTS,
    ConfigError,
    LocalDecisionReducer,
    MissingComponentError,
    installed_components,
    is_installed,
    require,
)
from ditkit_interfaces.capabilities import Component, cuda_device_count, distribution_version
from ditkit_interfaces.protocols import Calibrator, DecisionReducer


def test_config_error_message():
    err = ConfigError("X.y", 3, "an even number", fix="use 4")
    assert str(err) == "X.y=3 is invalid: expected an even number. Fix: use 4."
    assert isinstance(err, ValueError)


def test_components_cover_every_package():
    assert set(COMPONENTS) == {
        "interfaces",
        "cache",
        "calibrators",
        "parallel",
        "svdquant",
        "offload",
        "metrics",
        "testing",
        "kernels-cu13",
    }
    assert COMPONENTS["kernels-cu13"].import_name == "ditkit_kernels_cu13"
    assert COMPONENTS["parallel"].pip_line == "pip install ditkit-parallel"


def test_require_missing_component_names_the_pip_line(monkeypatch):
    monkeypatch.setitem(
        COMPONENTS,
        "ghost",
        Component("ghost", "ditkit_ghost_xyz", "ditkit-ghost", "pip install ditkit-ghost"),
    )
    assert not is_installed("ghost")
    assert "ghost" not in installed_components()
    with pytest.raises(MissingComponentError) as err:
        require("ghost", "enable_ghost")
    assert "pip install ditkit-ghost" in str(err.value)
    assert "enable_ghost" in str(err.value)
    assert isinstance(err.value, ImportError)


def test_require_present_component_and_missing_attribute():
    module = require("interfaces", "contracts")
    assert module.__name__ == "ditkit_interfaces"
    with pytest.raises(MissingComponentError, match="does not provide no_such_feature"):
        require("interfaces", "a feature", attribute="no_such_feature")


def test_unknown_component_is_a_key_error():
    with pytest.raises(KeyError, match="known"):
        is_installed("cachez")


def test_versions_and_devices():
    assert distribution_version("ditkit-interfaces") is not None
    assert distribution_version("surely-not-installed-dist") is None
    assert cuda_device_count() >= 0


def test_protocols_are_runtime_checkable():
    assert isinstance(LocalDecisionReducer(), DecisionReducer)

    class Forecaster:
        def reset(self):
            pass

        def mark_step_begin(self, step):
            pass

        def update(self, value):
            pass

        def approximate(self):
            return 0

    assert isinstance(Forecaster(), Calibrator)
    assert not isinstance(object(), Calibrator)
