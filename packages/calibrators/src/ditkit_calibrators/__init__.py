"""ditkit-calibrators: the TaylorSeer, FoCa and DMD step forecasters of the ditkit cache.

Each class implements the interfaces' :class:`~ditkit_interfaces.Calibrator` protocol for one
stream (the hidden or encoder stream of one block list in one CFG branch);
:func:`build_calibrator` turns a ``CalibratorConfig`` into one and is the ``build_calibrator``
entry point (group ``ditkit.calibrators``) that ``ditkit_cache`` loads. This package imports no
other ditkit feature package.

Example:
    >>> import torch
    >>> import ditkit_calibrators as dc
    >>> from ditkit_interfaces import Calibrator, TaylorSeerCalibratorConfig
    >>> seer = dc.build_calibrator(TaylorSeerCalibratorConfig(taylorseer_order=1))
    >>> isinstance(seer, Calibrator)
    True
    >>> for step in (0, 1):
    ...     seer.mark_step_begin(step); seer.update(torch.tensor([3.0 * step]))
    >>> seer.mark_step_begin(4); seer.approximate()
    tensor([12.])
"""

from .__about__ import __version__
from .builder import CALIBRATOR_BUILDERS, CALIBRATOR_CLASSES, build_calibrator
from .dmd import DMDCalibrator
from .foca import FoCaCalibrator
from .taylorseer import TaylorSeerCalibrator

__all__ = [
    "CALIBRATOR_BUILDERS",
    "CALIBRATOR_CLASSES",
    "DMDCalibrator",
    "FoCaCalibrator",
    "TaylorSeerCalibrator",
    "__version__",
    "build_calibrator",
]
