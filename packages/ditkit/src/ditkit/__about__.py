"""Version of the ditkit umbrella (one lockstep version for every ditkit package)."""

__version__ = "0.1.0"
