"""Version of ditkit-kernels-cu13 (one lockstep version for every ditkit package)."""

__version__ = "0.1.0"
