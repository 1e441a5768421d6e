"""``ditkit.set_attn_backend``: pick the attention kernel of every transformer in a pipeline.

cache-dit names its backends itself (``native``, ``flash``, ``_flash_3``, ``_sdpa_cudnn``, …) and
registers its own kernels into diffusers' dispatcher. ditkit registers nothing: it maps each
cache-dit name to the diffusers 0.42 ``AttentionBackendName`` that runs the same kernel and calls
``transformer.set_attention_backend``. diffusers' own names are accepted as they are.

The name, the kernel's package and every target are checked *before* any transformer changes,
so a typo or a missing ``flash-attn`` leaves the pipeline exactly as it was.

On an H100 (FLUX.1-dev-sized transformer, bf16, 1024²) PyTorch's ``native`` SDPA already picks
the cuDNN kernel: attention took 23 ms of a 181 ms step, against 46 ms when forced to ``flash``
and 91 ms to ``efficient`` (docs/benchmarks/gpu-cache.md). ``native`` is ditkit's default.

Example:
    >>> from ditkit.attention_backend import resolve_attn_backend
    >>> resolve_attn_backend("_sdpa_cudnn"), resolve_attn_backend("native")
    ('_native_cudnn', 'native')
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

import torch

from ditkit_interfaces.errors import AdapterError, ConfigError, MissingComponentError

__all__ = [
    "CACHE_DIT_ALIASES",
    "UNSUPPORTED",
    "resolve_attn_backend",
    "set_attn_backend",
    "transformer_targets",
    "valid_attn_backends",
]

# cache-dit backend name -> diffusers AttentionBackendName value running the same kernel
CACHE_DIT_ALIASES: dict[str, str] = {
    "native": "native",
    "flash": "flash",
    "flash_varlen": "flash_varlen",
    "_flash_3": "_flash_3",
    "_sdpa_cudnn": "_native_cudnn",
    "sage": "sage",
    "_native_npu": "_native_npu",
}

# cache-dit backends that ship their own kernels, which diffusers 0.42 does not have
UNSUPPORTED: dict[str, str] = {
    "sage3": "use 'sage_blackwell_hub' (pip install kernels) or 'sage'",
    "ffpa": "use 'native' (cuDNN SDPA) or '_flash_3'",
    "ffpa_fp8": "use 'native' (cuDNN SDPA) or '_flash_3'",
    "ffpa_fp4": "use 'native' (cuDNN SDPA) or '_flash_3'",
    "ffpa_fp8_per_block": "use 'native' (cuDNN SDPA) or '_flash_3'",
    "_npu_fia": "use '_native_npu'",
    "_mindiesd_laser": "use '_native_npu'",
}

# diffusers backend -> (package to install, pip line) for the kernels that need one
_PACKAGES: dict[str, tuple[str, str]] = {
    "flash": ("flash-attn", "pip install flash-attn --no-build-isolation"),
    "flash_varlen": ("flash-attn", "pip install flash-attn --no-build-isolation"),
    "_flash_3": ("flash-attn-3", "build FlashAttention-3 from source (flash-attention/hopper)"),
    "_flash_varlen_3": (
        "flash-attn-3",
        "build FlashAttention-3 from source (flash-attention/hopper)",
    ),
    "_native_npu": ("torch_npu", "pip install torch_npu"),
    "_native_xla": ("torch_xla", "pip install torch_xla"),
    "xformers": ("xformers", "pip install xformers"),
}


def _diffusers_names() -> list[str]:
    from diffusers.models.attention_dispatch import AttentionBackendName

    return [member.value for member in AttentionBackendName]


def valid_attn_backends() -> list[str]:
    """Every name :func:`set_attn_backend` accepts: cache-dit's aliases, then diffusers' names.

    Example:
        >>> names = valid_attn_backends()
        >>> "_sdpa_cudnn" in names and "_native_cudnn" in names
        True
    """
    names = list(CACHE_DIT_ALIASES)
    names += [name for name in _diffusers_names() if name not in names]
    return names


def resolve_attn_backend(name: str) -> str:
    """The diffusers ``AttentionBackendName`` value for a cache-dit or diffusers backend name.

    Raises:
        ConfigError: the name is neither (the message lists the valid names), or it is a
            cache-dit backend with its own kernel that ditkit does not carry.
    """
    if not isinstance(name, str):
        raise ConfigError("attention_backend", name, "a backend name such as 'native'")
    key = name.strip().lower()
    if key in CACHE_DIT_ALIASES:
        return CACHE_DIT_ALIASES[key]
    if key in UNSUPPORTED:
        raise ConfigError(
            "attention_backend",
            name,
            "a backend diffusers 0.42 can run (cache-dit's own kernel is not part of ditkit)",
            fix=UNSUPPORTED[key],
        )
    if key in _diffusers_names():
        return key
    valid = valid_attn_backends()
    close = difflib.get_close_matches(key, valid, n=1)
    fix = f"did you mean {close[0]!r}?" if close else None
    raise ConfigError("attention_backend", name, "one of " + ", ".join(valid), fix=fix)


def _check_kernel_installed(backend: str) -> None:
    from diffusers.models.attention_dispatch import (
        AttentionBackendName,
        _check_attention_backend_requirements,
    )

    try:
        _check_attention_backend_requirements(AttentionBackendName(backend))
    except RuntimeError as err:
        package, pip_line = _PACKAGES.get(backend, ("", ""))
        if backend.startswith("sage"):
            package, pip_line = "sageattention", "pip install sageattention"
        elif backend.endswith("_hub"):
            package, pip_line = "kernels", "pip install -U kernels"
        raise MissingComponentError(
            f"attention backend {backend!r}",
            package or "a kernel package",
            pip_line or None,
            reason=str(err),
        ) from err


def transformer_targets(pipe_or_adapter: Any) -> list[Any]:
    """The transformers a pipeline, adapter or module holds (Wan 2.2's ``transformer_2`` too)."""
    holder = pipe_or_adapter
    found: list[Any] = []
    for attribute in ("transformer", "transformer_2"):
        value = getattr(holder, attribute, None)
        if value is None and getattr(holder, "pipe", None) is not None:
            value = getattr(holder.pipe, attribute, None)
        if isinstance(value, (list, tuple)):
            found.extend(v for v in value if v is not None)
        elif value is not None:
            found.append(value)
    if not found:
        found.append(pipe_or_adapter)
    unique: list[Any] = []
    for module in found:
        if all(module is not seen for seen in unique):
            unique.append(module)
    return unique


def _processors(module: torch.nn.Module) -> Iterator[Any]:
    for submodule in module.modules():
        processor = getattr(submodule, "processor", None)
        if processor is not None and hasattr(processor, "_attention_backend"):
            yield processor


def _check_target(module: Any, backend: str) -> None:
    if not isinstance(module, torch.nn.Module):
        raise AdapterError(
            f"set_attn_backend found no transformer in {type(module).__name__}: pass a "
            "pipeline with .transformer, a transformer (ModelMixin) or a BlockAdapter"
        )
    if not hasattr(module, "set_attention_backend") and next(_processors(module), None) is None:
        raise AdapterError(
            f"{type(module).__name__} has no diffusers attention processors to switch to "
            f"{backend!r}"
        )
    uses_cp = any(getattr(p, "_parallel_config", None) is not None for p in _processors(module))
    if uses_cp:
        from diffusers.models.attention_dispatch import _AttentionBackendRegistry

        supported = _AttentionBackendRegistry._supports_context_parallel
        allowed = sorted(str(getattr(b, "value", b)) for b in supported)
        if backend not in allowed:
            raise ConfigError(
                "attention_backend",
                backend,
                "a backend that supports context parallelism: " + ", ".join(allowed),
            )


def set_attn_backend(pipe_or_adapter: Any, attention_backend: str | None = None) -> None:
    """Select the attention kernel of every transformer (cache-dit's ``set_attn_backend``).

    Args:
        pipe_or_adapter: a ``DiffusionPipeline`` (each of ``transformer``/``transformer_2``), a
            transformer (``ModelMixin``) or a ``BlockAdapter``-like object with ``.transformer``.
        attention_backend (`str`, *optional*): a cache-dit name (``native``, ``flash``,
            ``flash_varlen``, ``_flash_3``, ``_sdpa_cudnn``, ``sage``, ``_native_npu``) or any
            diffusers ``AttentionBackendName`` value. ``None`` changes nothing. As diffusers'
            ``set_attention_backend`` does, it also becomes the process-wide active backend.

    Raises:
        ConfigError: an unknown name (the message lists the valid ones); nothing changed.
        MissingComponentError: the kernel's package is not installed (the message names the
            pip line); nothing changed.
        AdapterError: a target has no diffusers attention processors; nothing changed.

    Example:
        >>> import ditkit
        >>> from ditkit_testing import build_tiny_pipeline
        >>> pipe = build_tiny_pipeline("flux")
        >>> ditkit.set_attn_backend(pipe, "native")
        >>> {p._attention_backend.value for p in pipe.transformer.attn_processors.values()}
        {'native'}
    """
    if attention_backend is None:
        return
    backend = resolve_attn_backend(attention_backend)
    _check_kernel_installed(backend)
    targets = transformer_targets(pipe_or_adapter)
    for module in targets:
        _check_target(module, backend)
    for module in targets:
        if hasattr(module, "set_attention_backend"):
            module.set_attention_backend(backend)
            continue
        from diffusers.models.attention_dispatch import AttentionBackendName

        for processor in _processors(module):
            processor._attention_backend = AttentionBackendName(backend)
