"""ditkit-offload: bucket-style layerwise CPU offload with async prefetch.

The implementation lands with the offload issue (later in the roadmap); the configs it will take
already live in
``ditkit_interfaces``. Until then this package provides its version only, so that the
monorepo's install, pin and isolation checks cover it from the first day.

Example:
    >>> import ditkit_offload
    >>> ditkit_offload.__version__ == __import__("ditkit_interfaces").__version__
    True
"""

from .__about__ import __version__

__all__ = ["__version__"]
