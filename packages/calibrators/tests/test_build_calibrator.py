"""build_calibrator: type-keyed dispatch, calibrator_kwargs, errors, the entry point."""

import dataclasses
import importlib.metadata

import pytest

import ditkit_calibrators
from ditkit_calibrators import (
    DMDCalibrator,
    FoCaCalibrator,
    TaylorSeerCalibrator,
    build_calibrator,
)
from ditkit_interfaces import (
    Calibrator,
    CalibratorConfig,
    CalibratorFactory,
    ConfigError,
    DBCacheConfig,
    DMDCalibratorConfig,
    FoCaCalibratorConfig,
    TaylorSeerCalibratorConfig,
)


def test_each_config_builds_its_calibrator_with_its_options():
    seer = build_calibrator(TaylorSeerCalibratorConfig(taylorseer_order=3))
    assert type(seer) is TaylorSeerCalibrator and seer.n_derivatives == 3
    assert type(build_calibrator(FoCaCalibratorConfig())) is FoCaCalibrator
    dmd = build_calibrator(
        DMDCalibratorConfig(dmd_history=9, dmd_rank=2, dmd_ridge=0.0, dmd_svd_precision="high")
    )
    assert type(dmd) is DMDCalibrator
    assert (dmd.history, dmd.rank, dmd.ridge, dmd.svd_precision) == (9, 2, 0.0, "high")
    assert dmd.n_derivatives == 1  # the fixed Taylor fallback order


def test_calibrator_kwargs_are_honoured():
    dmd = build_calibrator(DMDCalibratorConfig(calibrator_kwargs={"n_derivatives": 3}))
    assert dmd.n_derivatives == 3
    seer = build_calibrator(CalibratorConfig(enable_calibrator=True, calibrator_kwargs={}))
    assert type(seer) is TaylorSeerCalibrator and seer.n_derivatives == 1
    # the config's own field wins over calibrator_kwargs (cache-dit's to_kwargs order)
    seer = build_calibrator(
        TaylorSeerCalibratorConfig(taylorseer_order=2, calibrator_kwargs={"n_derivatives": 5})
    )
    assert seer.n_derivatives == 2


@pytest.mark.parametrize(
    ("config", "match"),
    [
        (TaylorSeerCalibratorConfig(calibrator_kwargs={"n_derivative": 2}), "n_derivative="),
        (DMDCalibratorConfig(calibrator_kwargs={"histroy": 2}), "histroy"),
        (FoCaCalibratorConfig(calibrator_kwargs={"order": 2}), "no options"),
        (DMDCalibratorConfig(calibrator_kwargs={"n_derivatives": -1}), "n_derivatives"),
    ],
)
def test_unknown_or_bad_calibrator_kwargs_are_config_errors(config, match):
    with pytest.raises(ConfigError, match=match):
        build_calibrator(config)


def test_the_base_config_dispatches_on_calibrator_type():
    for name, cls in (("taylorseer", TaylorSeerCalibrator), ("foca", FoCaCalibrator)):
        assert type(build_calibrator(CalibratorConfig(calibrator_type=name))) is cls
    dmd = build_calibrator(CalibratorConfig(calibrator_type="DMD", calibrator_kwargs={"rank": 3}))
    assert type(dmd) is DMDCalibrator and dmd.rank == 3


def test_subclasses_use_their_parent_builder():
    @dataclasses.dataclass
    class MyTaylor(TaylorSeerCalibratorConfig):
        pass

    assert build_calibrator(MyTaylor(taylorseer_order=2)).n_derivatives == 2


@pytest.mark.parametrize("config", [DBCacheConfig(), "taylorseer", None, {"type": "dmd"}])
def test_unknown_config_types_are_config_errors(config):
    with pytest.raises(ConfigError, match=r"calibrator_config=.*expected a CalibratorConfig"):
        build_calibrator(config)


def test_an_unknown_type_name_smuggled_past_validation_is_a_config_error():
    config = CalibratorConfig()
    object.__setattr__(config, "calibrator_type", "seer")
    with pytest.raises(ConfigError, match="calibrator_type"):
        build_calibrator(config)


def test_every_build_is_a_fresh_protocol_instance():
    config = TaylorSeerCalibratorConfig()
    a, b = build_calibrator(config), build_calibrator(config)
    assert a is not b
    assert isinstance(a, Calibrator) and isinstance(build_calibrator, CalibratorFactory)


def test_entry_point_loads_build_calibrator():
    entries = [
        e
        for e in importlib.metadata.entry_points(group="ditkit.calibrators")
        if e.name == "build_calibrator"
    ]
    assert len(entries) == 1
    assert entries[0].load() is ditkit_calibrators.build_calibrator
