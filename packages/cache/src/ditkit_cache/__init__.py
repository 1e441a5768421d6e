"""ditkit-cache.

DBCache, DBPrune, the steps computation mask, block adapters and the cache-dit compatible API.

The implementation lands with the cache-core issue (#3); the configs it will take already live in
``ditkit_interfaces``. Until then this package provides its version only, so that the
monorepo's install, pin and isolation checks cover it from the first day.

Example:
    >>> import ditkit_cache
    >>> ditkit_cache.__version__ == __import__("ditkit_interfaces").__version__
    True
"""

from .__about__ import __version__

__all__ = ["__version__"]
