"""ditkit-metrics: PSNR, SSIM, MSE, LPIPS, FID, CLIP score and ImageReward, with a CLI.

The implementation lands with the fixture/metrics issue (#6); the configs it will take already
live in
``ditkit_interfaces``. Until then this package provides its version only, so that the
monorepo's install, pin and isolation checks cover it from the first day.

Example:
    >>> import ditkit_metrics
    >>> ditkit_metrics.__version__ == __import__("ditkit_interfaces").__version__
    True
"""

from .__about__ import __version__

__all__ = ["__version__"]
