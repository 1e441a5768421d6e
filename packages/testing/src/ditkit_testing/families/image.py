"""Tiny image transformers: name -> builder of (transformer, forward kwargs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["IMAGE_CASES"]

IMAGE_CASES: dict[str, Callable[[int], tuple[Any, dict[str, Any]]]] = {}
