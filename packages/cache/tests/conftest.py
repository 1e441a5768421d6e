"""Tiny offline pipelines for the cache tests (no downloads)."""

import os
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def tiny():
    """``tiny(name, seed=0)`` builds a tiny pipeline."""
    from ditkit_testing import build_tiny_pipeline

    return lambda name, seed=0: build_tiny_pipeline(name, seed=seed)


@pytest.fixture(autouse=True)
def _one_thread():
    """The tiny models run 10-50x steadier with one thread on a shared 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# helper modules shared by several test files (cache_test_toys.py) import by name
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
