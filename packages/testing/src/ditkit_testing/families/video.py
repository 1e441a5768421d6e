"""Tiny video transformers: name -> builder of (transformer, forward kwargs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["VIDEO_CASES"]

VIDEO_CASES: dict[str, Callable[[int], tuple[Any, dict[str, Any]]]] = {}
