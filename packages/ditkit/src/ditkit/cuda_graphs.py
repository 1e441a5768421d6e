"""``ditkit.enable_cuda_graphs``: replay a transformer's whole call as one CUDA graph.

A compiled DiT step launches a few thousand kernels; one GPU hides the launches behind its work,
several GPUs (each with a quarter of it) cannot. Captured once and replayed, the whole call —
module hooks (context-parallel splits and gathers), compiled blocks, NCCL collectives — costs one
launch. Measured with the bench's capture of the same call (docs/benchmarks/parallel.md): FLUX.1
1024², 28 steps, Ulysses-4 on 4×H200, 2.19 s compiled → 1.29 s compiled and graphed; one H200
uncached 135.1 → 132.9 ms per step.

How a call runs:

1. Its arguments are flattened (``torch.utils._pytree``); the *key* is the structure, every
   tensor's shape/dtype/device and every other value (``return_dict``, ``None``, ...).
2. The first ``warmup_calls`` calls of a key run eagerly (compile, the context-parallel first
   forward, cuBLAS and NCCL initialise there, not inside the capture).
3. The next call copies its tensors into static input buffers, captures the module's
   ``__call__`` into a graph (all graphs of one module share a memory pool), replays it and
   returns clones of the outputs (clones: a second call of the same key — a CFG branch — must not
   overwrite the first one's result). Later calls of the key copy and replay.

Calls run eagerly, with one warning naming the reason, when: gradients are being recorded, an
input is not a CUDA tensor, a non-tensor argument is unhashable, more than ``max_graphs`` keys
were seen, or the capture of that key failed (e.g. a host sync inside the forward).

What a graph freezes: the addresses of the weights and the host-side decisions made while it was
captured. So a ditkit cache (per-step decisions) and CPU offloading that moves the weights in
and out on every call (accelerate's ``enable_model_cpu_offload`` / sequential offload hooks,
diffusers' group offloading) are refused with a :class:`ConfigError`; after replacing weights
(``load_state_dict`` into new tensors, LoRA fusing, ``.to()``) call :func:`reset_cuda_graphs`.
A key also records whether inference mode is on (a static input made in inference mode cannot
be written outside it).
:func:`disable_cuda_graphs` restores the module's class, so its behaviour is the original's.

Example:
    >>> import ditkit, torch
    >>> layer = torch.nn.Linear(4, 4)
    >>> ditkit.enable_cuda_graphs(layer) is layer, type(layer).__name__
    (True, 'Linear')
    >>> import warnings
    >>> with torch.no_grad(), warnings.catch_warnings(record=True):   # CPU: eager, warned once
    ...     y = layer(torch.ones(1, 4))
    >>> ditkit.cuda_graph_stats(layer)["eager_calls"], ditkit.cuda_graph_stats(layer)["graphs"]
    (1, 0)
    >>> ditkit.disable_cuda_graphs(layer) is layer, type(layer) is torch.nn.Linear
    (True, True)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

from ditkit_interfaces.errors import ConfigError

from .attention_backend import transformer_targets

__all__ = [
    "CudaGraphRunner",
    "cuda_graph_stats",
    "disable_cuda_graphs",
    "enable_cuda_graphs",
    "reset_cuda_graphs",
]

RUNNER_ATTRIBUTE = "_ditkit_cuda_graphs"
_CACHE_ATTRIBUTE = "_ditkit_cache"  # ditkit_cache.state.ATTRIBUTE (no import: cache is optional)


class _CudaGraph:
    """One ``torch.cuda.CUDAGraph`` in a shared memory pool (tests swap in a CPU stand-in)."""

    def __init__(self, pool: Any) -> None:
        self.graph = torch.cuda.CUDAGraph()
        self.pool = pool

    def capture(self, call: Callable[[], Any]) -> Any:
        try:
            with torch.cuda.graph(self.graph, pool=self.pool):
                return call()
        except BaseException:
            _stop_allocating_to(self.pool)
            raise

    def replay(self) -> None:
        self.graph.replay()


def _new_pool() -> Any:
    return torch.cuda.graph_pool_handle()


def _stop_allocating_to(pool: Any) -> bool:
    """After a failed capture, stop routing the capture stream's allocations into ``pool``.

    ``torch.cuda.graph`` ends that routing only when ``cudaStreamEndCapture`` succeeds; after
    a failed capture the allocator still counts one underway and the process aborts at exit
    (``captures_underway.empty()`` in ``CUDACachingAllocator.cpp``, seen on 2×H200 when a
    capture met unjoined side-stream work). Returns whether a routing was ended.
    """
    end = getattr(torch._C, "_cuda_endAllocateToPool", None)
    if end is None or pool is None:
        return False
    try:
        end(torch.cuda.current_device(), pool)
    except RuntimeError:  # nothing routed: the capture never began, or torch ended it
        return False
    return True


def _graphable_device(tensor: torch.Tensor) -> bool:
    return tensor.is_cuda


@dataclass
class _Entry:
    """The graph of one key: its warm-up count, static inputs and outputs."""

    calls: int = 0
    graph: Any = None
    inputs: list[torch.Tensor] = field(default_factory=list)
    output: Any = None
    failure: str | None = None


class CudaGraphRunner:
    """Runs one module's calls through per-key CUDA graphs (see the module docstring).

    Args:
        module: the ``torch.nn.Module`` whose ``__call__`` is graphed.
        call: the original ``__call__`` bound to ``module`` (eager path and capture).
        warmup_calls: eager calls of each key before its capture.
        max_graphs: at most this many keys get a graph; later keys run eagerly.
    """

    def __init__(
        self, module: torch.nn.Module, call: Callable[..., Any], warmup_calls: int, max_graphs: int
    ) -> None:
        self.module = module
        self.call = call
        self.warmup_calls = warmup_calls
        self.max_graphs = max_graphs
        self.entries: dict[Any, _Entry] = {}
        self.pool: Any = None
        self.replays = 0
        self.eager_calls = 0
        self._warned: set[str] = set()

    # -- the call --------------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if vars(self.module).get(_CACHE_ATTRIBUTE) is not None:
            raise _cache_conflict(self.module)
        leaves, spec = tree_flatten((args, kwargs))
        key, reason = self._key(leaves, spec)
        if key is None:
            return self._eager(reason, args, kwargs)
        entry = self.entries.get(key)
        if entry is None:
            if len(self.entries) >= self.max_graphs:
                reason = f"more than max_graphs={self.max_graphs} input layouts"
                return self._eager(reason, args, kwargs)
            entry = self.entries[key] = _Entry()
        if entry.failure is not None:
            return self._eager(entry.failure, args, kwargs)
        if entry.graph is None and entry.calls < self.warmup_calls:
            entry.calls += 1
            return self.call(*args, **kwargs)
        tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
        if entry.graph is None:
            try:
                self._capture(entry, leaves, spec)
            except Exception as error:  # any capture failure: this key runs eagerly
                entry.failure = f"its capture failed ({type(error).__name__}: {error})"
                entry.graph, entry.inputs, entry.output = None, [], None
                return self._eager(entry.failure, args, kwargs)
        for static, value in zip(entry.inputs, tensors, strict=True):
            if static.data_ptr() != value.data_ptr():
                static.copy_(value)
        entry.graph.replay()
        self.replays += 1
        return tree_map(_clone_tensor, entry.output)

    def _key(self, leaves: list[Any], spec: Any) -> tuple[Any, str]:
        parts: list[Any] = [spec, torch.is_inference_mode_enabled()]
        for leaf in leaves:
            if isinstance(leaf, torch.Tensor):
                if not _graphable_device(leaf):
                    return None, f"an input is on {leaf.device}, not on a CUDA device"
                parts.append((tuple(leaf.shape), leaf.dtype, leaf.device))
            else:
                try:
                    hash(leaf)
                except TypeError:
                    return None, f"an argument of type {type(leaf).__name__} is not hashable"
                parts.append((type(leaf), leaf))
        if torch.is_grad_enabled():
            tensors = (leaf for leaf in leaves if isinstance(leaf, torch.Tensor))
            if any(t.requires_grad for t in (*tensors, *self.module.parameters())):
                return None, "gradients are being recorded (call it under torch.no_grad())"
        return tuple(parts), ""

    def _capture(self, entry: _Entry, leaves: list[Any], spec: Any) -> None:
        if self.pool is None:
            self.pool = _new_pool()
        static = [leaf.clone() if isinstance(leaf, torch.Tensor) else leaf for leaf in leaves]
        entry.inputs = [leaf for leaf in static if isinstance(leaf, torch.Tensor)]
        args, kwargs = tree_unflatten(static, spec)
        graph = _CudaGraph(self.pool)
        entry.output = graph.capture(lambda: self.call(*args, **kwargs))
        entry.graph = graph

    def _eager(self, reason: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.eager_calls += 1
        if reason not in self._warned:
            self._warned.add(reason)
            warnings.warn(
                f"ditkit CUDA graphs: {type(self.module).__name__} runs eagerly because {reason}",
                RuntimeWarning,
                stacklevel=3,
            )
        return self.call(*args, **kwargs)

    # -- introspection ---------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Graphs captured, replays, eager calls, and the keys whose capture failed."""
        return {
            "graphs": sum(entry.graph is not None for entry in self.entries.values()),
            "replays": self.replays,
            "eager_calls": self.eager_calls,
            "failed": [entry.failure for entry in self.entries.values() if entry.failure],
        }

    def reset(self) -> None:
        """Forget every graph (after the weights were replaced); warm-up starts again."""
        self.entries.clear()
        self.pool = None


def _clone_tensor(value: Any) -> Any:
    return value.clone() if isinstance(value, torch.Tensor) else value


def _cache_conflict(module: torch.nn.Module) -> ConfigError:
    return ConfigError(
        "enable_cuda_graphs",
        type(module).__name__,
        "a transformer without a ditkit cache (a graph would freeze the cache's per-step "
        "decisions)",
        fix="call disable_cache(...) first, or leave CUDA graphs off for cached pipelines",
    )


def _offload_hook(module: torch.nn.Module) -> str | None:
    """The name of a hook that moves ``module``'s weights on every call, or None."""
    for sub in module.modules():
        hook = getattr(sub, "_hf_hook", None)  # accelerate
        hooks = getattr(hook, "hooks", None) or ([hook] if hook is not None else [])
        for one in hooks:
            name = type(one).__name__
            if "Offload" in name or getattr(one, "offload", False):
                return f"accelerate's {name}"
        registry = getattr(sub, "_diffusers_hook", None)  # diffusers' HookRegistry
        for key in getattr(registry, "hooks", {}) or {}:
            if "offload" in key:
                return f"diffusers' {key} hook"
    return None


def _modules(pipe_or_transformer: Any) -> list[torch.nn.Module]:
    modules = transformer_targets(pipe_or_transformer)
    for module in modules:
        if not isinstance(module, torch.nn.Module):
            raise ConfigError(
                "pipe_or_transformer",
                type(module).__name__,
                "a pipeline with .transformer, a transformer or another torch.nn.Module",
            )
    return modules


def enable_cuda_graphs(
    pipe_or_transformer: Any, *, warmup_calls: int = 2, max_graphs: int = 8
) -> Any:
    """Replay every call of the pipeline's transformer(s) (or of a module) as a CUDA graph.

    Enable it after ``enable_parallelism``, compiling and moving to the GPU. Each transformer's
    class is swapped for a per-instance subclass whose ``__call__`` runs through a
    :class:`CudaGraphRunner`; :func:`disable_cuda_graphs` swaps it back.

    Args:
        pipe_or_transformer: a diffusers pipeline (``transformer`` and ``transformer_2``), a
            ``BlockAdapter`` or a ``torch.nn.Module``.
        warmup_calls (`int`, defaults to 2): eager calls of each input layout before capturing
            it (2 covers regional compile under context parallelism: an eager first forward,
            then the compiling one).
        max_graphs (`int`, defaults to 8): input layouts that get a graph; later ones run eagerly.

    Returns:
        ``pipe_or_transformer``.

    Raises:
        ConfigError: a bad argument, a ditkit cache or a CPU-offload hook on the transformer,
            or graphs already enabled; nothing is changed.
    """
    if isinstance(warmup_calls, bool) or not isinstance(warmup_calls, int) or warmup_calls < 0:
        raise ConfigError("warmup_calls", warmup_calls, "an integer >= 0")
    if isinstance(max_graphs, bool) or not isinstance(max_graphs, int) or max_graphs < 1:
        raise ConfigError("max_graphs", max_graphs, "an integer >= 1")
    modules = _modules(pipe_or_transformer)
    for module in modules:
        if vars(module).get(_CACHE_ATTRIBUTE) is not None:
            raise _cache_conflict(module)
        offload = _offload_hook(module)
        if offload is not None:
            raise ConfigError(
                "enable_cuda_graphs",
                type(module).__name__,
                f"a transformer whose weights stay on the GPU ({offload} moves them each call)",
                fix="leave CPU offloading off for the transformer, or CUDA graphs off",
            )
        if RUNNER_ATTRIBUTE in vars(module):
            raise ConfigError(
                "enable_cuda_graphs",
                type(module).__name__,
                "a module without CUDA graphs",
                fix="call disable_cuda_graphs(...) before enabling them again",
            )
    for module in modules:
        cls = type(module)
        runner = CudaGraphRunner(module, cls.__call__.__get__(module), warmup_calls, max_graphs)

        def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N807
            return vars(self)[RUNNER_ATTRIBUTE](*args, **kwargs)

        namespace = {
            "__call__": __call__,
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
            "_ditkit_graphs_original_class": cls,
        }
        object.__setattr__(module, RUNNER_ATTRIBUTE, runner)
        module.__class__ = type(cls.__name__, (cls,), namespace)
    return pipe_or_transformer


def disable_cuda_graphs(pipe_or_transformer: Any) -> Any:
    """Drop the graphs and restore each transformer's own class (a no-op where none is enabled)."""
    for module in _modules(pipe_or_transformer):
        runner = vars(module).pop(RUNNER_ATTRIBUTE, None)
        if runner is not None:
            runner.reset()
            module.__class__ = type(module)._ditkit_graphs_original_class
    return pipe_or_transformer


def reset_cuda_graphs(pipe_or_transformer: Any) -> None:
    """Forget the captured graphs (call it after replacing weights); they are captured again."""
    for module in _modules(pipe_or_transformer):
        runner = vars(module).get(RUNNER_ATTRIBUTE)
        if runner is not None:
            runner.reset()


def cuda_graph_stats(pipe_or_transformer: Any) -> dict[str, Any]:
    """The first graphed transformer's :meth:`CudaGraphRunner.stats` (empty if none)."""
    for module in _modules(pipe_or_transformer):
        runner = vars(module).get(RUNNER_ATTRIBUTE)
        if runner is not None:
            return runner.stats()
    return {}
