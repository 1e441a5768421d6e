"""Version of the ditkit-metrics distribution (one lockstep version for every ditkit package)."""

__version__ = "0.1.0"
