"""Tiny offline pipelines for the cache tests (no downloads)."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def tiny():
    """``tiny(name, seed=0)`` builds a tiny pipeline."""
    from ditkit_testing import build_tiny_pipeline

    return lambda name, seed=0: build_tiny_pipeline(name, seed=seed)
