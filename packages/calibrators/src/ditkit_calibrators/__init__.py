"""ditkit-calibrators.

The TaylorSeer, FoCa and DMD step forecasters behind the interfaces' Calibrator protocol.

The implementation lands with the calibrators issue (#4); the configs it will take already live in
``ditkit_interfaces``. Until then this package provides its version only, so that the
monorepo's install, pin and isolation checks cover it from the first day.

Example:
    >>> import ditkit_calibrators
    >>> ditkit_calibrators.__version__ == __import__("ditkit_interfaces").__version__
    True
"""

from .__about__ import __version__

__all__ = ["__version__"]
