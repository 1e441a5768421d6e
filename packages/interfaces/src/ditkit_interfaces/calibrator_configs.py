"""Calibrator configs: which step forecaster refines the cached residuals, and its options.

A calibrator predicts the residual of a cached step from the residuals of computed steps
instead of reusing the last one as is. The configs live here so that ``ditkit_cache`` can accept
them without importing ``ditkit_calibrators``; fields, defaults and run tags follow cache-dit 1.5.3.

Example:
    >>> from ditkit_interfaces.calibrator_configs import (
    ...     DMDCalibratorConfig, TaylorSeerCalibratorConfig)
    >>> TaylorSeerCalibratorConfig(taylorseer_order=2).strify()
    'T1O2'
    >>> DMDCalibratorConfig(dmd_svd_precision="high").to_kwargs()
    {'history': 6, 'rank': 0, 'ridge': 1e-08, 'svd_precision': 'high'}
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .config import ConfigBase, check_choice, check_float, check_int
from .errors import ConfigError

__all__ = [
    "CALIBRATOR_TYPES",
    "CalibratorConfig",
    "DMDCalibratorConfig",
    "FoCaCalibratorConfig",
    "TaylorSeerCalibratorConfig",
]

CALIBRATOR_TYPES = ("taylorseer", "dmd", "foca")
CALIBRATOR_CACHE_TYPES = ("residual", "hidden_states")
DMD_SVD_PRECISIONS = ("low", "medium", "high")


@dataclasses.dataclass
class CalibratorConfig(ConfigBase):
    """The calibrator base config.

    Args:
        enable_calibrator (`bool`, defaults to `False`): forecast the hidden-states stream.
        enable_encoder_calibrator (`bool`, defaults to `False`): forecast the encoder stream too.
        calibrator_type (`str`, defaults to `"taylorseer"`): ``taylorseer``, ``dmd`` or ``foca``.
        calibrator_cache_type (`str`, defaults to `"residual"`): forecast the Mn residual
            (``"residual"``) or the Mn output itself (``"hidden_states"``).
        calibrator_kwargs (`dict`, defaults to `{}`): extra keyword arguments for the calibrator.
    """

    enable_calibrator: bool = False
    enable_encoder_calibrator: bool = False
    calibrator_type: str = "taylorseer"
    calibrator_cache_type: str = "residual"
    calibrator_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def _constant_fields(cls) -> frozenset[str]:
        return frozenset({"calibrator_type"})

    def _normalize(self) -> None:
        if isinstance(self.calibrator_type, str):
            self.calibrator_type = self.calibrator_type.lower()

    def __post_init__(self) -> None:
        self._normalize()
        super().__post_init__()

    def validate(self) -> None:
        check_choice(self, "calibrator_type", CALIBRATOR_TYPES)
        check_choice(self, "calibrator_cache_type", CALIBRATOR_CACHE_TYPES)
        for flag in ("enable_calibrator", "enable_encoder_calibrator"):
            value = getattr(self, flag)
            if value is not None and not isinstance(value, bool):
                raise ConfigError(f"{type(self).__name__}.{flag}", value, "True or False")
        if self.calibrator_kwargs is not None and not isinstance(self.calibrator_kwargs, dict):
            raise ConfigError(
                f"{type(self).__name__}.calibrator_kwargs", self.calibrator_kwargs, "a dict"
            )

    def strify(self, details: bool = False) -> str:
        return "CalibratorBase"

    def to_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the calibrator implementation (a copy)."""
        return dict(self.calibrator_kwargs or {})


@dataclasses.dataclass
class TaylorSeerCalibratorConfig(CalibratorConfig):
    """TaylorSeer: extrapolate the residual with a Taylor series of order ``taylorseer_order``.

    Args:
        taylorseer_order (`int`, defaults to 1): the number of derivatives kept (>= 0).
    """

    enable_calibrator: bool = True
    enable_encoder_calibrator: bool = True
    calibrator_type: str = "taylorseer"
    taylorseer_order: int = 1

    def validate(self) -> None:
        super().validate()
        check_int(self, "taylorseer_order", minimum=0)

    def strify(self, details: bool = False) -> str:
        if not self.taylorseer_order:
            return "NONE"
        return (
            f"TaylorSeer_O({self.taylorseer_order})" if details else f"T1O{self.taylorseer_order}"
        )

    def to_kwargs(self) -> dict[str, Any]:
        kwargs = super().to_kwargs()
        kwargs["n_derivatives"] = self.taylorseer_order
        return kwargs


@dataclasses.dataclass
class FoCaCalibratorConfig(CalibratorConfig):
    """FoCa: a second-order forecast from the last two computed and last two seen residuals."""

    enable_calibrator: bool = True
    enable_encoder_calibrator: bool = True
    calibrator_type: str = "foca"

    def strify(self, details: bool = False) -> str:
        return "FoCa"

    def to_kwargs(self) -> dict[str, Any]:
        return {}


@dataclasses.dataclass
class DMDCalibratorConfig(CalibratorConfig):
    """DMD: fit a linear propagator to the last snapshots and extrapolate by eigenvalue powers.

    Dynamic Mode Decomposition (an SVD-regularised Prony method), not distribution matching
    distillation.

    Args:
        dmd_history (`int`, defaults to 6): snapshots kept (>= 2; fits need 4 uniform ones).
        dmd_rank (`int`, defaults to 0): SVD rank; 0 picks it from the singular values.
        dmd_ridge (`float`, defaults to 1e-8): Tikhonov term added to the singular values.
        dmd_svd_precision (`str`, defaults to `"medium"`): ``low`` (randomised), ``medium`` (full
            SVD) or ``high`` (float64 gesvd).
    """

    enable_calibrator: bool = True
    enable_encoder_calibrator: bool = True
    calibrator_type: str = "dmd"
    dmd_history: int = 6
    dmd_rank: int = 0
    dmd_ridge: float = 1e-8
    dmd_svd_precision: str = "medium"

    def validate(self) -> None:
        super().validate()
        check_int(self, "dmd_history", minimum=2)
        check_int(self, "dmd_rank", minimum=0)
        check_float(self, "dmd_ridge", minimum=0.0)
        check_choice(self, "dmd_svd_precision", DMD_SVD_PRECISIONS)

    def strify(self, details: bool = False) -> str:
        if details:
            return f"DMD_H({self.dmd_history}, {self.dmd_svd_precision})"
        suffix = "" if self.dmd_svd_precision == "medium" else self.dmd_svd_precision[0]
        return f"DMDH{self.dmd_history}{suffix}"

    def to_kwargs(self) -> dict[str, Any]:
        kwargs = super().to_kwargs()
        kwargs.update(
            history=self.dmd_history,
            rank=self.dmd_rank,
            ridge=self.dmd_ridge,
            svd_precision=self.dmd_svd_precision,
        )
        return kwargs
