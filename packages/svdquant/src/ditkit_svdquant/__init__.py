"""ditkit-svdquant.

SVDQuant W4A4 quantization (PTQ and dynamic), the converter CLI, and torchao FP8/INT8.

The implementation lands with the quantization issues (after the parallel work); the configs it
will take already live in ``ditkit_interfaces``. Until then this package provides its version
only, so that the monorepo's install, pin and isolation checks cover it from the first day.

Example:
    >>> import ditkit_svdquant
    >>> ditkit_svdquant.__version__ == __import__("ditkit_interfaces").__version__
    True
"""

from .__about__ import __version__

__all__ = ["__version__"]
