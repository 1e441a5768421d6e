"""Registry of the tiny pipelines and the public API that dispatches through it.

Importing this module is cheap: each builder module (and with it torch, diffusers and
transformers) is imported on first use.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline

__all__ = [
    "TINY_PIPELINES",
    "build_tiny_pipeline",
    "build_tiny_transformer",
    "run_tiny_pipeline",
    "save_and_reload",
    "tiny_call_kwargs",
    "tiny_pipeline_names",
]

#: Name → module that defines ``build_pipeline``, ``build_transformer`` and ``call_kwargs``.
_MODULES: dict[str, str] = {
    "flux": "ditkit_testing.flux",
    "qwen_image": "ditkit_testing.qwen_image",
    "wan": "ditkit_testing.wan",
    "flux2": "ditkit_testing.flux2",
    "hunyuan_video": "ditkit_testing.hunyuan_video",
    "ltx": "ditkit_testing.ltx",
    "cogvideox": "ditkit_testing.cogvideox",
    "sd3": "ditkit_testing.sd3",
    "zimage": "ditkit_testing.zimage",
}


def _unknown(name: str, choices: Iterable[str]) -> KeyError:
    listed = ", ".join(map(repr, choices))
    return KeyError(f"unknown tiny pipeline {name!r}; choose one of {listed}")


def _module(name: str) -> ModuleType:
    if name not in _MODULES:
        raise _unknown(name, _MODULES)
    return importlib.import_module(_MODULES[name])


def _lazy_builder(name: str) -> Callable[..., DiffusionPipeline]:
    def build(seed: int = 0, dtype: torch.dtype | None = None) -> DiffusionPipeline:
        return _module(name).build_pipeline(seed=seed, dtype=dtype)

    build.__name__ = build.__qualname__ = f"build_{name}_pipeline"
    build.__doc__ = f"Build the tiny {name!r} pipeline (imports {_MODULES[name]} on first call)."
    return build


#: Name → pipeline builder ``(seed: int = 0, dtype: torch.dtype | None = None) -> pipeline``.
TINY_PIPELINES: dict[str, Callable[..., DiffusionPipeline]] = {
    name: _lazy_builder(name) for name in _MODULES
}


def tiny_pipeline_names() -> tuple[str, ...]:
    """Names accepted by :func:`build_tiny_pipeline`, in registry order.

    Example:
        >>> tiny_pipeline_names()  # doctest: +NORMALIZE_WHITESPACE
        ('flux', 'qwen_image', 'wan', 'flux2', 'hunyuan_video', 'ltx', 'cogvideox', 'sd3',
         'zimage')
    """
    return tuple(TINY_PIPELINES)


def build_tiny_pipeline(
    name: str, seed: int = 0, dtype: torch.dtype | None = None
) -> DiffusionPipeline:
    """Build a tiny random-weight diffusers pipeline, fully offline.

    Same ``seed`` ⇒ bit-identical weights in every process; ``dtype=None`` keeps float32.
    Progress bars are disabled.

    Example:
        >>> from ditkit_testing import build_tiny_pipeline, tiny_call_kwargs
        >>> pipe = build_tiny_pipeline("flux", seed=0)
        >>> out = pipe(**tiny_call_kwargs("flux", num_inference_steps=2))
        >>> tuple(out.images.shape)
        (1, 3, 64, 64)
    """
    if name not in TINY_PIPELINES:
        raise _unknown(name, TINY_PIPELINES)
    pipe = TINY_PIPELINES[name](seed=seed, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_tiny_transformer(
    name: str, seed: int = 0, dtype: torch.dtype | None = None
) -> torch.nn.Module:
    """Build only the transformer of a tiny pipeline (the same weights as in the pipeline).

    Example:
        >>> import torch
        >>> t = build_tiny_transformer("wan", seed=3)
        >>> p = build_tiny_pipeline("wan", seed=3)
        >>> all(torch.equal(a, b) for a, b in zip(t.state_dict().values(),
        ...                                       p.transformer.state_dict().values()))
        True
    """
    return _module(name).build_transformer(seed=seed, dtype=dtype)


def tiny_call_kwargs(name: str, num_inference_steps: int = 28, seed: int = 0) -> dict[str, Any]:
    """Standard ``pipe(**kwargs)`` arguments for a tiny pipeline, with a fresh seeded generator.

    Small resolution, ``output_type="pt"``, and the guidance the real model uses: Flux, FLUX.2 and
    HunyuanVideo embed guidance (one transformer call per step); SD3, Z-Image, LTX and CogVideoX
    batch CFG (one call per step on a batch of two); Qwen-Image (true CFG) and Wan (CFG) make a
    second, unconditional transformer call per step.

    Example:
        >>> kw = tiny_call_kwargs("qwen_image", num_inference_steps=10, seed=1)
        >>> kw["num_inference_steps"], kw["true_cfg_scale"], kw["output_type"]
        (10, 4.0, 'pt')
    """
    return _module(name).call_kwargs(num_inference_steps=num_inference_steps, seed=seed)


def save_and_reload(pipe: DiffusionPipeline, directory: str | Path) -> DiffusionPipeline:
    """Save ``pipe`` as safetensors into ``directory`` and load it back through diffusers.

    The reload goes through :meth:`diffusers.DiffusionPipeline.from_pretrained` (it reads
    ``model_index.json``) with ``local_files_only=True`` and the transformer's dtype.
    Tensors loaded from safetensors can sit at addresses that are not 64-byte aligned, and on CPU
    such weights take another SIMD path with last-bit different results; the reload copies those
    tensors into fresh storage (:func:`~ditkit_testing.components.realign`), so the reloaded
    pipeline's output is bit-identical.

    Example:
        >>> import tempfile, torch
        >>> pipe = build_tiny_pipeline("flux")
        >>> with tempfile.TemporaryDirectory() as d:
        ...     again = save_and_reload(pipe, d)
        >>> type(again).__name__, torch.equal(again.vae.decoder.conv_out.weight,
        ...                                   pipe.vae.decoder.conv_out.weight)
        ('FluxPipeline', True)
    """
    import torch
    from diffusers import DiffusionPipeline

    from .components import quiet_loading, realign

    with quiet_loading(), warnings.catch_warnings():
        # newer diffusers prefer `dtype=`; older ones only know `torch_dtype=`
        warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
        pipe.save_pretrained(str(directory), safe_serialization=True)
        reloaded = DiffusionPipeline.from_pretrained(
            str(directory), torch_dtype=_main_dtype(pipe), local_files_only=True
        )
    for component in reloaded.components.values():
        if isinstance(component, torch.nn.Module):
            realign(component)
    reloaded.set_progress_bar_config(disable=True)
    return reloaded


def _main_dtype(pipe: DiffusionPipeline) -> torch.dtype:
    """The dtype the pipeline was built in: its transformer's (``pipe.dtype`` as a fallback)."""
    transformer = getattr(pipe, "transformer", None)
    return transformer.dtype if transformer is not None else pipe.dtype


def run_tiny_pipeline(
    pipe: DiffusionPipeline,
    name: str,
    num_inference_steps: int = 28,
    seed: int = 0,
    **overrides: Any,
) -> torch.Tensor:
    """Call a tiny pipeline with :func:`tiny_call_kwargs` (plus ``overrides``); return its pixels.

    The images (``[B, 3, H, W]``) or, for video pipelines, the frames tensor.

    Example:
        >>> pipe = build_tiny_pipeline("flux")
        >>> tuple(run_tiny_pipeline(pipe, "flux", num_inference_steps=2, height=32, width=32).shape)
        (1, 3, 32, 32)
    """
    kwargs = tiny_call_kwargs(name, num_inference_steps=num_inference_steps, seed=seed)
    kwargs.update(overrides)
    output = pipe(**kwargs)
    frames = getattr(output, "frames", None)
    return frames if frames is not None else output.images
