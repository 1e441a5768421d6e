"""Shared helpers of the tiny pipeline builders: per-component seeds, dtype, storage alignment."""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch

__all__ = [
    "build_component",
    "component_seed",
    "quiet_loading",
    "realign",
    "reload_in_dtype",
    "seeded_generator",
    "state_digest",
]

M = TypeVar("M", bound=torch.nn.Module)

#: A tiny T5 v1.1-style encoder (gated GELU) config, used by Flux (T5) and Wan (UMT5).
TINY_T5_ENCODER_CONFIG: dict[str, Any] = {
    "d_model": 32,
    "d_kv": 16,
    "d_ff": 64,
    "num_layers": 2,
    "num_heads": 2,
    "relative_attention_num_buckets": 8,
    "relative_attention_max_distance": 32,
    "feed_forward_proj": "gated-gelu",
    "dropout_rate": 0.0,
    "is_encoder_decoder": False,
    "use_cache": False,
}


def component_seed(seed: int, component: str) -> int:
    """A stable 63-bit seed for one named component (independent of build order and process).

    Example:
        >>> component_seed(0, "transformer") == component_seed(0, "transformer")
        True
        >>> component_seed(0, "transformer") != component_seed(0, "vae")
        True
    """
    digest = hashlib.sha256(f"ditkit-testing:{seed}:{component}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def build_component(
    factory: Callable[[], M], seed: int, component: str, dtype: torch.dtype | None = None
) -> M:
    """Run ``factory`` under its own seed; return the model in eval mode and in ``dtype``.

    Each component's weights depend only on ``(seed, component)`` (so ``build_tiny_transformer``
    gives the same weights as the transformer inside ``build_tiny_pipeline``), and the caller's
    global RNG is left untouched. Models are built in float32; another ``dtype`` is reached by
    a ``save_pretrained`` / ``from_pretrained(dtype)`` round trip through a temporary folder, so
    per-module dtype rules (Wan's float32 norms, float32 rotary buffers) match a real checkpoint.

    Example:
        >>> a = build_component(lambda: torch.nn.Linear(2, 2), 0, "x")
        >>> b = build_component(lambda: torch.nn.Linear(2, 2), 0, "x")
        >>> bool(torch.equal(a.weight, b.weight))
        True
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(component_seed(seed, component))
        module = factory()
    module.eval()
    if dtype is not None and dtype != torch.float32:
        module = reload_in_dtype(module, dtype)
    return module


def reload_in_dtype(model: M, dtype: torch.dtype) -> M:
    """Save a diffusers / transformers model and load it back in ``dtype`` (local files only)."""
    with tempfile.TemporaryDirectory(prefix="ditkit-testing-") as directory, quiet_loading():
        model.save_pretrained(directory, safe_serialization=True)
        cls = type(model)
        if cls.__module__.startswith("transformers."):
            loaded = cls.from_pretrained(directory, dtype=dtype, local_files_only=True)
        else:
            with warnings.catch_warnings():  # newer diffusers prefer `dtype=`, older need this
                warnings.filterwarnings("ignore", ".*torch_dtype.*", FutureWarning)
                loaded = cls.from_pretrained(directory, torch_dtype=dtype, local_files_only=True)
    realign(loaded)
    return loaded.eval()


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Hide the diffusers and transformers progress bars of save / load; restore them after.

    Example:
        >>> from diffusers.utils import logging
        >>> with quiet_loading():
        ...     logging.is_progress_bar_enabled()
        False
    """
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    states = [(m, m.is_progress_bar_enabled()) for m in (diffusers_logging, transformers_logging)]
    for module, _ in states:
        module.disable_progress_bar()
    try:
        yield
    finally:
        for module, enabled in states:
            if enabled:
                module.enable_progress_bar()


def realign(module: torch.nn.Module, alignment: int = 64) -> None:
    """Copy the parameters and buffers of ``module`` that are not ``alignment``-byte aligned.

    Tensors loaded from safetensors can sit at unaligned addresses; on CPU such weights take
    another SIMD path and give last-bit different results than freshly allocated ones.

    Example:
        >>> t = torch.nn.Linear(4, 4)
        >>> t.weight.data = torch.zeros(17)[1:].view(4, 4)  # 4-byte offset
        >>> realign(t)
        >>> t.weight.data_ptr() % 64
        0
    """
    for tensor in [*module.parameters(), *module.buffers()]:
        if tensor.data_ptr() % alignment:
            tensor.data = tensor.data.clone()


def state_digest(obj: Any) -> str:
    """SHA-256 over the exact bytes, dtypes and shapes of a tensor, module or pipeline's modules.

    Use it to check bit-identity across processes. A pipeline (anything with a ``components``
    dict) is hashed component by component in name order; a module by its ``state_dict``.

    Example:
        >>> a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
        >>> state_digest(a) == state_digest(a), state_digest(a) == state_digest(b)
        (True, False)
        >>> state_digest(torch.tensor(1.0)) != state_digest(torch.tensor(1.0, dtype=torch.bfloat16))
        True
    """
    sha = hashlib.sha256()
    _update_digest(sha, "", obj)
    return sha.hexdigest()


def _update_digest(sha: Any, name: str, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        tensor = obj.detach().cpu()
        sha.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        if tensor.numel():
            sha.update(tensor.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, torch.nn.Module):
        for key, value in obj.state_dict().items():
            _update_digest(sha, f"{name}.{key}", value)
    elif isinstance(getattr(obj, "components", None), dict):
        for key in sorted(obj.components):
            if isinstance(obj.components[key], torch.nn.Module):
                _update_digest(sha, key, obj.components[key])
    else:
        raise TypeError(f"state_digest takes a tensor, a module or a pipeline, not {type(obj)}")


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (latents drawn on CPU match on every device).

    Example:
        >>> bool(torch.equal(torch.randn(2, generator=seeded_generator(1)),
        ...                  torch.randn(2, generator=seeded_generator(1))))
        True
    """
    return torch.Generator(device="cpu").manual_seed(seed)
