"""``ditkit.set_compile_configs``: the measured ``torch.compile`` recipe for DiT inference.

What ditkit measured on an H100 (FLUX.1-dev-sized transformer, bf16, 1024², one uncached step;
docs/benchmarks/gpu-cache.md, data in docs/benchmarks/data/gpu-profile-h100-*.json):

=====================================================  =========  =========
recipe                                                  ms/step    GEMMs ms
=====================================================  =========  =========
eager (native SDPA, which picks cuDNN attention)        181
regional compile (``block.compile()`` on every block)   132        84
regional + ``coordinate_descent_tuning=True``           132.3      82.5
regional + ``mode="max-autotune-no-cudagraphs"``        134.6
=====================================================  =========  =========

So the recipe is: regional compile of the transformer blocks (:func:`compile_repeated_blocks`)
plus inductor's coordinate descent tuning (GEMMs 84 → 82.5 ms, kernel sum 128 → 125 ms; the
step time is within noise), and native attention. cache-dit's other inductor tweaks
(``epilogue_fusion=False``, ``max_fusion_size``, ``conv_1x1_as_mm``, …) were not measured to
help, so ditkit leaves them at torch's defaults.

Every option is written through :func:`apply_compile_options`, which records the old value, so
:func:`restore_compile_configs` undoes a call exactly. An option the installed torch lacks is
skipped with a warning that names it.
"""

from __future__ import annotations

import difflib
import importlib
import warnings
from collections.abc import Mapping
from typing import Any

import torch

from ditkit_interfaces.errors import AdapterError, ConfigError

from .attention_backend import transformer_targets

__all__ = [
    "apply_compile_options",
    "compile_options",
    "compile_repeated_blocks",
    "read_compile_option",
    "restore_compile_configs",
    "set_compile_configs",
]

_CONFIG_MODULES = {"dynamo": "torch._dynamo.config", "inductor": "torch._inductor.config"}
_PARAMETERS = (
    "descent_tuning",
    "cuda_graphs",
    "force_disable_compile_caches",
    "fx_graph_cache",
    "fx_graph_remote_cache",
    "autotune_local_cache",
    "use_fast_math",
    "compute_comm_overlap",
    "ulysses_anything",
    "capture_scalar_outputs",
    "capture_dynamic_output_shape_ops",
    "cutedsl_enable_autotuning",
)
# extra keywords cache-dit reads from **kwargs
_KNOWN_KWARGS = ("epilogue_prologue_fusion",)

Changes = dict[str, tuple[Any, Any]]


def _locate(path: str) -> tuple[Any, str] | None:
    """The config object and attribute name for ``"inductor.triton.cudagraphs"``, or None."""
    head, *rest = path.split(".")
    if head not in _CONFIG_MODULES or not rest:
        raise KeyError(f"unknown compile option {path!r}; it must start with dynamo. or inductor.")
    *middle, attribute = rest
    owner: Any = importlib.import_module(_CONFIG_MODULES[head])
    for part in middle:
        if not hasattr(owner, part):
            return None
        owner = getattr(owner, part)
    if not hasattr(owner, attribute):
        return None
    return owner, attribute


def read_compile_option(path: str) -> Any:
    """The current value of a dynamo/inductor option (``"dynamo.recompile_limit"``)."""
    located = _locate(path)
    if located is None:
        raise KeyError(f"this torch ({torch.__version__}) has no compile option {path!r}")
    owner, attribute = located
    return getattr(owner, attribute)


def apply_compile_options(options: Mapping[str, Any]) -> Changes:
    """Set each ``"dynamo.x"`` / ``"inductor.a.b"`` option; return ``{path: (old, new)}``.

    Only options whose value changes are listed. An option the installed torch lacks is skipped;
    when its value would have switched something on, a warning names it.

    Example:
        >>> changes = apply_compile_options({"inductor.coordinate_descent_tuning": True})
        >>> changes
        {'inductor.coordinate_descent_tuning': (False, True)}
        >>> restore_compile_configs(changes)
        >>> read_compile_option("inductor.coordinate_descent_tuning")
        False
    """
    changes: Changes = {}
    targets = {path: _locate(path) for path in options}  # a bad path raises before any change
    for path, value in options.items():
        located = targets[path]
        if located is None:
            if value:
                warnings.warn(
                    f"ditkit.set_compile_configs: torch {torch.__version__} has no option "
                    f"{path!r}; skipped",
                    RuntimeWarning,
                    stacklevel=3,
                )
            continue
        owner, attribute = located
        old = getattr(owner, attribute)
        if old == value and type(old) is type(value):
            continue
        setattr(owner, attribute, value)
        changes[path] = (old, value)
    return changes


def restore_compile_configs(changes: Mapping[str, tuple[Any, Any]]) -> None:
    """Undo :func:`set_compile_configs` (or :func:`apply_compile_options`): set each old value."""
    for path, (old, _new) in reversed(list(changes.items())):
        located = _locate(path)
        if located is not None:
            setattr(located[0], located[1], old)


def _torch_at_least(major: int, minor: int) -> bool:
    release = torch.__version__.split("+")[0].split(".")
    numbers = tuple(int(part) for part in release[:2] if part.isdigit())
    return numbers >= (major, minor)


def _device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return ""


def _check_kwargs(kwargs: Mapping[str, Any]) -> None:
    unknown = sorted(set(kwargs) - set(_KNOWN_KWARGS))
    if not unknown:
        return
    valid = [*_PARAMETERS, *_KNOWN_KWARGS]
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, valid, n=1)
        if close:
            hints.append(f"{close[0]!r} instead of {name!r}")
    raise ConfigError(
        ", ".join(unknown),
        tuple(kwargs[name] for name in unknown) if len(unknown) > 1 else kwargs[unknown[0]],
        "a set_compile_configs parameter: " + ", ".join(valid),
        fix=("did you mean " + ", ".join(hints) + "?") if hints else "remove it",
    )


def compile_options(
    descent_tuning: bool = True,
    cuda_graphs: bool = False,
    force_disable_compile_caches: bool = False,
    fx_graph_cache: bool = True,
    fx_graph_remote_cache: bool = False,
    autotune_local_cache: bool = False,
    use_fast_math: bool = False,
    compute_comm_overlap: bool = True,
    ulysses_anything: bool = False,
    capture_scalar_outputs: bool | None = None,
    capture_dynamic_output_shape_ops: bool | None = None,
    cutedsl_enable_autotuning: bool | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """The options :func:`set_compile_configs` writes, without writing them.

    Example:
        >>> options = compile_options(descent_tuning=False)
        >>> options["dynamo.recompile_limit"], "inductor.coordinate_descent_tuning" in options
        (1024, False)
    """
    _check_kwargs(kwargs)
    options: dict[str, Any] = {
        "dynamo.recompile_limit": 1024,  # torch's default 8 is too few for dynamic shapes
        "dynamo.accumulated_recompile_limit": 8192,
    }
    if capture_scalar_outputs is None and ulysses_anything and _torch_at_least(2, 10):
        capture_scalar_outputs = True  # Ulysses-anything reads sizes with Tensor.item()
    if capture_scalar_outputs is not None:
        options["dynamo.capture_scalar_outputs"] = capture_scalar_outputs
    if capture_dynamic_output_shape_ops is not None:
        options["dynamo.capture_dynamic_output_shape_ops"] = capture_dynamic_output_shape_ops
    options["inductor.fx_graph_cache"] = fx_graph_cache
    options["inductor.fx_graph_remote_cache"] = fx_graph_remote_cache
    options["inductor.autotune_local_cache"] = autotune_local_cache
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        options["inductor.reorder_for_compute_comm_overlap"] = compute_comm_overlap
        if compute_comm_overlap:  # GB/s: L20 over PCIe, otherwise NVLink
            options["inductor.intra_node_bw"] = 64 if "L20" in _device_name() else 300
            # keep the graph's order: these two passes moved every all-to-all's wait right
            # after it and the independent compute after the waits (docs/benchmarks/parallel.md)
            options["inductor.reorder_for_peak_memory"] = False
            options["inductor.reorder_for_locality"] = False
    if cutedsl_enable_autotuning is not None:
        options["inductor.cutedsl_enable_autotuning"] = cutedsl_enable_autotuning
    options["inductor.triton.cudagraphs"] = cuda_graphs
    if descent_tuning:
        options["inductor.coordinate_descent_tuning"] = True
    if kwargs.get("epilogue_prologue_fusion", False):
        options["inductor.epilogue_fusion"] = True
        options["inductor.prologue_fusion"] = True
        options["inductor.epilogue_fusion_first"] = True
    if force_disable_compile_caches:
        options["inductor.force_disable_caches"] = True
        options["inductor.fx_graph_cache"] = False
        options["inductor.fx_graph_remote_cache"] = False
        options["inductor.autotune_local_cache"] = False
    fast_math = [p for p in ("inductor.use_fast_math", "inductor.cuda.use_fast_math") if _locate(p)]
    for path in fast_math or ["inductor.use_fast_math"]:
        options[path] = use_fast_math
    return options


def set_compile_configs(
    descent_tuning: bool = True,
    cuda_graphs: bool = False,
    force_disable_compile_caches: bool = False,
    fx_graph_cache: bool = True,
    fx_graph_remote_cache: bool = False,
    autotune_local_cache: bool = False,
    use_fast_math: bool = False,
    compute_comm_overlap: bool = True,
    ulysses_anything: bool = False,
    capture_scalar_outputs: bool | None = None,
    capture_dynamic_output_shape_ops: bool | None = None,
    cutedsl_enable_autotuning: bool | None = None,
    **kwargs: Any,
) -> Changes:
    """Apply ditkit's measured ``torch.compile`` recipe (cache-dit's ``set_compile_configs``).

    Regional compile + coordinate descent tuning measured 132 ms per FLUX.1-dev step on an H100
    against 181 ms eager; ``max-autotune-no-cudagraphs`` measured 134.6 ms (module docstring).
    Call it once before compiling, then compile the blocks with
    :func:`compile_repeated_blocks`.

    Args:
        descent_tuning: inductor's ``coordinate_descent_tuning`` (longer compile, faster GEMMs).
        cuda_graphs: ``triton.cudagraphs`` inside inductor's kernels.
        force_disable_compile_caches: ``force_disable_caches`` and every cache below off.
        fx_graph_cache / fx_graph_remote_cache / autotune_local_cache: inductor's caches.
        use_fast_math: inductor's fast-math flags where this torch has them.
        compute_comm_overlap: reorder for compute/communication overlap, and keep the order
            in which ditkit issues collectives and independent compute (inductor's
            ``reorder_for_peak_memory`` and ``reorder_for_locality`` off: they serialised it);
            only applied when ``torch.distributed`` is initialised.
        ulysses_anything: uneven Ulysses splits read sizes with ``Tensor.item()``, so on torch
            >= 2.10 ``capture_scalar_outputs`` defaults to True.
        capture_scalar_outputs / capture_dynamic_output_shape_ops: dynamo overrides (None: keep).
        cutedsl_enable_autotuning: inductor's CuTe DSL autotuning (None: keep).
        **kwargs: only ``epilogue_prologue_fusion`` (as in cache-dit); any other name raises.

    Returns:
        ``{"inductor.coordinate_descent_tuning": (False, True), …}``: every option that changed,
        old -> new; pass it to :func:`restore_compile_configs` to undo the call.

    Raises:
        ConfigError: an unknown keyword (a typo); nothing changed.

    Example:
        >>> import ditkit
        >>> changes = ditkit.set_compile_configs()
        >>> changes["dynamo.recompile_limit"], changes["inductor.coordinate_descent_tuning"]
        ((8, 1024), (False, True))
        >>> ditkit.restore_compile_configs(changes)
        >>> import torch
        >>> torch._dynamo.config.recompile_limit
        8
    """
    options = compile_options(
        descent_tuning=descent_tuning,
        cuda_graphs=cuda_graphs,
        force_disable_compile_caches=force_disable_compile_caches,
        fx_graph_cache=fx_graph_cache,
        fx_graph_remote_cache=fx_graph_remote_cache,
        autotune_local_cache=autotune_local_cache,
        use_fast_math=use_fast_math,
        compute_comm_overlap=compute_comm_overlap,
        ulysses_anything=ulysses_anything,
        capture_scalar_outputs=capture_scalar_outputs,
        capture_dynamic_output_shape_ops=capture_dynamic_output_shape_ops,
        cutedsl_enable_autotuning=cutedsl_enable_autotuning,
        **kwargs,
    )
    return apply_compile_options(options)


def _flatten_blocks(value: Any) -> list[torch.nn.Module]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, torch.nn.ModuleList)):
        return [block for item in value for block in _flatten_blocks(item)]
    return [value] if isinstance(value, torch.nn.Module) else []


def compile_repeated_blocks(pipe_or_transformer: Any, **compile_kwargs: Any) -> list[str]:
    """Regional compile: ``block.compile(**compile_kwargs)`` on every repeated transformer block.

    Uses the transformer's diffusers ``_repeated_blocks`` (``ModelMixin.compile_repeated_blocks``);
    for a ``BlockAdapter``-like object it compiles the blocks of each of its ``blocks`` lists.

    Returns:
        The class names of the transformers compiled.

    Raises:
        AdapterError: a transformer declares no repeated blocks and no adapter names them.

    Example:
        >>> import ditkit
        >>> from ditkit_testing import build_tiny_pipeline
        >>> pipe = build_tiny_pipeline("flux")
        >>> ditkit.compile_repeated_blocks(pipe, backend="eager")
        ['FluxTransformer2DModel']
    """
    if not isinstance(pipe_or_transformer, torch.nn.Module):
        blocks = _flatten_blocks(getattr(pipe_or_transformer, "blocks", None))
        if blocks:  # a BlockAdapter that names its block lists
            for block in blocks:
                block.compile(**compile_kwargs)
            return [type(t).__name__ for t in transformer_targets(pipe_or_transformer)]
    names = []
    targets = transformer_targets(pipe_or_transformer)
    for transformer in targets:
        if not getattr(transformer, "_repeated_blocks", None) or not hasattr(
            transformer, "compile_repeated_blocks"
        ):
            raise AdapterError(
                f"{type(transformer).__name__} declares no _repeated_blocks; pass a BlockAdapter "
                "with its blocks, or call block.compile() on each block"
            )
    for transformer in targets:
        transformer.compile_repeated_blocks(**compile_kwargs)
        names.append(type(transformer).__name__)
    return names
