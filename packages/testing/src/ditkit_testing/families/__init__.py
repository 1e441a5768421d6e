"""Tiny transformer configs for every model family the cache registers (transformer-only tests).

Each entry builds one diffusers transformer class with a tiny config and returns it with the
keyword arguments of one forward call (``family_cases()`` lists them).
"""

from .image import IMAGE_CASES
from .video import VIDEO_CASES

__all__ = ["IMAGE_CASES", "VIDEO_CASES"]
