"""Version of the ditkit-calibrators distribution (lockstep with all ditkit packages)."""

__version__ = "0.1.0"
