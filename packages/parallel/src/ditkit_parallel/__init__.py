"""ditkit-parallel.

Ulysses/Ring/USP context parallelism and DTensor tensor parallelism, composed with the cache.

The implementation lands with the parallel issue (#8); the configs it will take already live in
``ditkit_interfaces``. Until then this package provides its version only, so that the
monorepo's install, pin and isolation checks cover it from the first day.

Example:
    >>> import ditkit_parallel
    >>> ditkit_parallel.__version__ == __import__("ditkit_interfaces").__version__
    True
"""

from .__about__ import __version__

__all__ = ["__version__"]
