"""Version of the ditkit-offload distribution (one lockstep version for every ditkit package)."""

__version__ = "0.1.0"
