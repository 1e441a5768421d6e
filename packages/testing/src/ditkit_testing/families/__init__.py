"""Tiny transformer configs for every model family the cache registers (transformer-only tests).

Each entry builds one diffusers transformer class with a tiny config and returns it with the
keyword arguments of one forward call. :data:`IMAGE_CASES` is keyed by the registry's family
prefix (builders in ``image_dual``, ``image_single``, ``image_functors``); :data:`VIDEO_CASES`
by a case name (builders in ``video``, ``video_recent``, ``video_functors``).
"""

from .image import IMAGE_CASES
from .video import VIDEO_CASES

__all__ = ["IMAGE_CASES", "VIDEO_CASES"]
