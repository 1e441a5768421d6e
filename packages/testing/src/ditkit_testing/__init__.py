"""ditkit-testing: tiny offline diffusers pipelines for testing ditkit without weights or GPUs.

Each tiny pipeline is a real diffusers pipeline (real transformer, text encoders, VAE, scheduler
and tokenizers) with tiny configs and random weights fixed by a seed, built without any download
and running 28 steps on CPU in well under a second.

Example:
    >>> from ditkit_testing import build_tiny_pipeline, tiny_call_kwargs
    >>> pipe = build_tiny_pipeline("qwen_image", seed=0)
    >>> image = pipe(**tiny_call_kwargs("qwen_image", num_inference_steps=4)).images
    >>> tuple(image.shape)
    (1, 3, 64, 64)

``import ditkit_testing`` is light: torch, diffusers and transformers are imported by the
builder modules (:mod:`ditkit_testing.flux`, :mod:`ditkit_testing.qwen_image`,
:mod:`ditkit_testing.wan`) on first use.
"""

from .__about__ import __version__
from .registry import (
    TINY_PIPELINES,
    build_tiny_pipeline,
    build_tiny_transformer,
    run_tiny_pipeline,
    save_and_reload,
    tiny_call_kwargs,
    tiny_pipeline_names,
)

__all__ = [
    "TINY_PIPELINES",
    "__version__",
    "build_tiny_pipeline",
    "build_tiny_transformer",
    "realign",
    "run_tiny_pipeline",
    "save_and_reload",
    "state_digest",
    "tiny_call_kwargs",
    "tiny_pipeline_names",
]

_LAZY = {"realign": "components", "state_digest": "components"}


def __getattr__(name: str) -> object:
    """Import the torch-dependent helpers (``realign``, ``state_digest``) on first access."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
