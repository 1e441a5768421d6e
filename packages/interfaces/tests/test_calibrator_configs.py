import pytest

from ditkit_interfaces import (
    CalibratorConfig,
    ConfigError,
    DMDCalibratorConfig,
    FoCaCalibratorConfig,
    TaylorSeerCalibratorConfig,
)


def test_base_defaults():
    cfg = CalibratorConfig()
    assert cfg.as_dict() == {
        "enable_calibrator": False,
        "enable_encoder_calibrator": False,
        "calibrator_type": "taylorseer",
        "calibrator_cache_type": "residual",
        "calibrator_kwargs": {},
    }
    assert cfg.strify() == "CalibratorBase"


def test_taylorseer():
    cfg = TaylorSeerCalibratorConfig()
    assert (cfg.enable_calibrator, cfg.enable_encoder_calibrator, cfg.taylorseer_order) == (
        True,
        True,
        1,
    )
    assert cfg.strify() == "T1O1"
    assert TaylorSeerCalibratorConfig(taylorseer_order=3).strify(details=True) == "TaylorSeer_O(3)"
    assert TaylorSeerCalibratorConfig(taylorseer_order=0).strify() == "NONE"
    assert cfg.to_kwargs() == {"n_derivatives": 1}
    kwargs = TaylorSeerCalibratorConfig(calibrator_kwargs={"x": 1}).to_kwargs()
    assert kwargs == {"x": 1, "n_derivatives": 1}


def test_dmd():
    cfg = DMDCalibratorConfig()
    assert (cfg.dmd_history, cfg.dmd_rank, cfg.dmd_ridge, cfg.dmd_svd_precision) == (
        6,
        0,
        1e-8,
        "medium",
    )
    assert cfg.strify() == "DMDH6"
    assert DMDCalibratorConfig(dmd_svd_precision="low").strify() == "DMDH6l"
    assert DMDCalibratorConfig(dmd_history=8, dmd_svd_precision="high").strify() == "DMDH8h"
    assert cfg.strify(details=True) == "DMD_H(6, medium)"
    assert cfg.to_kwargs() == {"history": 6, "rank": 0, "ridge": 1e-8, "svd_precision": "medium"}


def test_foca():
    cfg = FoCaCalibratorConfig()
    assert cfg.calibrator_type == "foca" and cfg.enable_calibrator
    assert cfg.strify() == "FoCa"
    assert cfg.to_kwargs() == {}


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [
        (CalibratorConfig, dict(calibrator_type="magic"), "calibrator_type"),
        (CalibratorConfig, dict(calibrator_cache_type="both"), "calibrator_cache_type"),
        (TaylorSeerCalibratorConfig, dict(taylorseer_order=-1), "taylorseer_order"),
        (DMDCalibratorConfig, dict(dmd_history=1), "dmd_history"),
        (DMDCalibratorConfig, dict(dmd_rank=-1), "dmd_rank"),
        (DMDCalibratorConfig, dict(dmd_ridge=-1e-3), "dmd_ridge"),
        (DMDCalibratorConfig, dict(dmd_svd_precision="ultra"), "dmd_svd_precision"),
        (CalibratorConfig, dict(calibrator_kwargs=[1]), "calibrator_kwargs"),
    ],
)
def test_invalid(cls, kwargs, field):
    with pytest.raises(ConfigError, match=field):
        cls(**kwargs)


def test_calibrator_type_is_case_insensitive_and_reset_keeps_it():
    assert CalibratorConfig(calibrator_type="DMD").calibrator_type == "dmd"
    partial = DMDCalibratorConfig().reset(dmd_history=4)
    assert partial.calibrator_type == "dmd"
    assert partial.dmd_history == 4
    assert partial.dmd_rank is None
