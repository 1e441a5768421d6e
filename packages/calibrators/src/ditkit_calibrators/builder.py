"""``build_calibrator``: a calibrator config in, a fresh :class:`~ditkit_interfaces.Calibrator` out.

The dispatch is keyed on the config's class through a
:class:`~ditkit_interfaces.TypeRegistry` (MRO-aware: a subclass of a concrete config uses its
parent's builder). The base :class:`~ditkit_interfaces.CalibratorConfig` is dispatched on its
``calibrator_type`` string, as cache-dit's ``Calibrator(config)`` factory does. The options come
from ``config.to_kwargs()``, which merges ``calibrator_kwargs`` with the config's own fields; an
option the calibrator does not know is a :class:`~ditkit_interfaces.ConfigError` (FoCa has no
options, so any ``calibrator_kwargs`` on a FoCa config is one).

This function is the ``build_calibrator`` entry point of the ``ditkit.calibrators`` group that
``ditkit_cache`` loads when ``enable_cache`` gets a ``calibrator_config`` and no builder.

Example:
    >>> from ditkit_interfaces import DMDCalibratorConfig, TaylorSeerCalibratorConfig
    >>> build_calibrator(TaylorSeerCalibratorConfig(taylorseer_order=2))
    TaylorSeerCalibrator(n_derivatives=2)
    >>> build_calibrator(DMDCalibratorConfig(dmd_history=8, calibrator_kwargs={"n_derivatives": 2}))
    DMDCalibrator(history=8, rank=0, ridge=1e-08, svd_precision='medium')
    >>> build_calibrator("taylorseer")
    Traceback (most recent call last):
    ...
    ditkit_interfaces.errors.ConfigError: calibrator_config='str' is invalid: ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ditkit_interfaces import (
    Calibrator,
    CalibratorConfig,
    ConfigError,
    DMDCalibratorConfig,
    FoCaCalibratorConfig,
    TaylorSeerCalibratorConfig,
    TypeRegistry,
)

from .dmd import DMDCalibrator
from .foca import FoCaCalibrator
from .taylorseer import TaylorSeerCalibrator

__all__ = ["CALIBRATOR_BUILDERS", "CALIBRATOR_CLASSES", "build_calibrator"]

#: ``calibrator_type`` string -> implementation (the base config's dispatch).
CALIBRATOR_CLASSES: dict[str, Callable[..., Calibrator]] = {
    "taylorseer": TaylorSeerCalibrator,
    "foca": FoCaCalibrator,
    "dmd": DMDCalibrator,
}

#: Config class -> ``builder(config) -> Calibrator``.
CALIBRATOR_BUILDERS: TypeRegistry[Callable[[Any], Calibrator]] = TypeRegistry("calibrator builders")


@CALIBRATOR_BUILDERS.register(TaylorSeerCalibratorConfig)
def _build_taylorseer(config: TaylorSeerCalibratorConfig) -> Calibrator:
    return TaylorSeerCalibrator(**config.to_kwargs())


@CALIBRATOR_BUILDERS.register(FoCaCalibratorConfig)
def _build_foca(config: FoCaCalibratorConfig) -> Calibrator:
    # FoCaCalibratorConfig.to_kwargs() drops calibrator_kwargs (cache-dit's); pass them on so
    # that an option given there is refused instead of silently ignored
    return FoCaCalibrator(**{**(config.calibrator_kwargs or {}), **config.to_kwargs()})


@CALIBRATOR_BUILDERS.register(DMDCalibratorConfig)
def _build_dmd(config: DMDCalibratorConfig) -> Calibrator:
    return DMDCalibrator(**config.to_kwargs())


@CALIBRATOR_BUILDERS.register(CalibratorConfig)
def _build_by_type_name(config: CalibratorConfig) -> Calibrator:
    implementation = CALIBRATOR_CLASSES.get(config.calibrator_type)
    if implementation is None:
        raise ConfigError(
            f"{type(config).__name__}.calibrator_type",
            config.calibrator_type,
            "one of " + ", ".join(map(repr, CALIBRATOR_CLASSES)),
        )
    return implementation(**config.to_kwargs())


def build_calibrator(config: CalibratorConfig) -> Calibrator:
    """A fresh calibrator for ``config`` (one per stream, CFG branch and block list).

    Raises:
        ConfigError: ``config`` is not a ``CalibratorConfig``, names an unknown
            ``calibrator_type``, or carries options the calibrator does not take.
    """
    builder = CALIBRATOR_BUILDERS.get(config)
    if builder is None:
        raise ConfigError(
            "calibrator_config",
            type(config).__name__,
            "a CalibratorConfig (TaylorSeerCalibratorConfig, FoCaCalibratorConfig or "
            "DMDCalibratorConfig)",
            fix="pass calibrator_config=TaylorSeerCalibratorConfig(...) (or FoCa/DMD)",
        )
    return builder(config)
