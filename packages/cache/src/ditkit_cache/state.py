"""``TransformerCache``: everything the cache adds to one transformer, in one object.

It lives on the transformer as ``transformer._ditkit_cache`` (per instance: no class is
patched, no module global holds state) and owns:

- the cached block lists (:class:`BlockList`) and one :class:`CacheContext` per list;
- the instance-level ``forward`` wrapper, which swaps each cached list for a one-element list
  holding its :class:`~ditkit_cache.blocks.CachedBlocks` (and each dummy list for an empty one)
  for the duration of the call, then puts the real lists back;
- new-request detection: a pipeline call boundary (set by the pipeline wrapper), the announced
  step count, or — for transformer-only use — a rise of the timestep between two calls;
- the name of the diffusers ``cache_context`` each call runs in: the transformer's
  ``cache_context`` (diffusers' ``CacheMixin``) is wrapped per instance, so a pipeline's
  ``with transformer.cache_context("uncond"):`` call is known to be the CFG branch.

:meth:`TransformerCache.uninstall` restores the original ``forward`` and ``cache_context`` exactly.

Example:
    >>> import torch
    >>> from ditkit_interfaces import DBCacheConfig, ForwardPattern
    >>> class Tiny(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.blocks = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(3))
    ...     def forward(self, x, timestep=None):
    ...         for block in self.blocks:
    ...             x = block(x)
    ...         return x
    >>> model = Tiny()
    >>> lists = [BlockList("blocks", "blocks", ForwardPattern.Pattern_3, DBCacheConfig())]
    >>> cache = TransformerCache(model, lists, persistent=True).install()
    >>> model(torch.ones(1, 4)).shape, model.blocks[0].__class__.__name__
    (torch.Size([1, 4]), 'Linear')
    >>> cache.uninstall(); hasattr(model, "_ditkit_cache")
    False
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import torch

from ditkit_interfaces import (
    CalibratorConfig,
    DBCacheConfig,
    DBPruneConfig,
    DecisionReducer,
    ForwardPattern,
)

from .blocks import CachedBlocks
from .context import CacheContext, RequestSignal
from .prune import PruneContext, PrunedBlocks

__all__ = [
    "ATTRIBUTE",
    "PIPELINE_ATTRIBUTE",
    "BlockList",
    "TransformerCache",
    "get_cache",
    "pipeline_caches",
]

#: The attribute under which a transformer carries its cache state.
ATTRIBUTE = "_ditkit_cache"
#: The attribute under which a cached pipeline lists the caches ``enable_cache`` installed.
PIPELINE_ATTRIBUTE = "_ditkit_pipeline_caches"

CalibratorBuilder = Callable[[CalibratorConfig], Any]


@dataclasses.dataclass
class BlockList:
    """One cached list of blocks and how to cache it.

    Args:
        name (`str`): the context name (unique within the transformer).
        attribute (`str`): dotted path of the ``nn.ModuleList`` that the transformer's forward
            iterates; it is swapped during the call.
        pattern (`ForwardPattern`): the blocks' I/O contract.
        cache_config (`DBCacheConfig`): the resolved config of this list.
        blocks (`list[nn.Module]`, *optional*): the blocks to run; defaults to the list at
            ``attribute`` (a merged list, e.g. Flux's double + single blocks, is given here).
        dummy_attributes (`tuple[str, ...]`): lists emptied during the call (their blocks run
            inside this list's wrapper).
        calibrator_config (`CalibratorConfig`, *optional*): forecasts cached values.
    """

    name: str
    attribute: str
    pattern: ForwardPattern
    cache_config: DBCacheConfig
    blocks: list[torch.nn.Module] | None = None
    dummy_attributes: tuple[str, ...] = ()
    calibrator_config: CalibratorConfig | None = None


def get_cache(module: Any) -> TransformerCache | None:
    """The :class:`TransformerCache` installed on ``module``, or ``None``."""
    return getattr(module, ATTRIBUTE, None)


def pipeline_caches(pipe: Any) -> list[TransformerCache]:
    """The caches ``enable_cache(pipe)`` installed on ``pipe``'s transformers, still installed."""
    recorded = vars(pipe).get(PIPELINE_ATTRIBUTE, ()) if hasattr(pipe, "__dict__") else ()
    return [cache for cache in recorded if get_cache(cache.transformer) is cache]


def _resolve(root: torch.nn.Module, path: str) -> tuple[torch.nn.Module, str]:
    parent = root
    *parents, leaf = path.split(".")
    for part in parents:
        parent = getattr(parent, part)
    return parent, leaf


class TransformerCache:
    """The cache installed on one transformer (see the module docstring).

    Args:
        transformer (`nn.Module`): the transformer.
        block_lists (`list[BlockList]`): the lists to cache, in call order.
        persistent (`bool`): transformer-only use: contexts live across requests and a new
            request is detected from the step count when the steps per request are known
            (``num_inference_steps`` or a steps mask; no sync), else from a rise of the
            timestep (read with the call's diff). No pipeline call wraps it.
        calibrator_builder (*optional*): builds a calibrator from a ``CalibratorConfig``.
        reducer (`DecisionReducer`, *optional*): cross-rank reduction of the diff.
    """

    def __init__(
        self,
        transformer: torch.nn.Module,
        block_lists: list[BlockList],
        persistent: bool = False,
        calibrator_builder: CalibratorBuilder | None = None,
        reducer: DecisionReducer | None = None,
    ) -> None:
        self.transformer = transformer
        self.block_lists = block_lists
        self.persistent = persistent
        self.calibrator_builder = calibrator_builder
        self.reducer = reducer
        self.request = RequestSignal()
        self.contexts: dict[str, CacheContext] = {}
        self.wrappers: dict[str, CachedBlocks] = {}
        self.new_request_pending = True
        self.last_timestep: torch.Tensor | float | None = None
        self._original_forward: Any = None
        self._had_instance_forward = False
        self._original_cache_context: Any = None
        self._had_instance_cache_context = False
        self._timestep_index = self._find_timestep_parameter(transformer.forward)
        for block_list in block_lists:
            blocks = block_list.blocks
            if blocks is None:
                parent, leaf = _resolve(transformer, block_list.attribute)
                blocks = list(getattr(parent, leaf))
            getter = self._context_getter(block_list.name)
            if isinstance(block_list.cache_config, DBPruneConfig):
                wrapper: torch.nn.Module = PrunedBlocks(
                    block_list.name, blocks, block_list.pattern, getter
                )
            else:
                wrapper = CachedBlocks(block_list.name, blocks, block_list.pattern, getter)
            self.wrappers[block_list.name] = wrapper
        # the lists put in place during a call, built once
        self._stand_ins = {n: torch.nn.ModuleList([w]) for n, w in self.wrappers.items()}
        self._empty = torch.nn.ModuleList()

    # -- contexts and requests ----------------------------------------------------------------
    def _context_getter(self, name: str) -> Callable[[], CacheContext]:
        def current() -> CacheContext:
            if self.request.restart:
                self.start_request()
            return self.contexts[name]

        return current

    def new_context(self, block_list: BlockList) -> CacheContext:
        config = block_list.cache_config
        calibrator_config = block_list.calibrator_config
        cache_residual = True
        builder = None
        if calibrator_config is not None and self.calibrator_builder is not None:
            cache_residual = calibrator_config.calibrator_cache_type != "hidden_states"
            builder = functools.partial(self.calibrator_builder, calibrator_config)
        common = dict(reducer=self.reducer, cache_residual=cache_residual, request=self.request)
        if isinstance(config, DBPruneConfig):
            # DBPrune keeps one calibrator per block, created on first use
            return PruneContext(block_list.name, config, calibrator_builder=builder, **common)
        streams = None
        if builder is not None and calibrator_config is not None:
            streams = functools.partial(_calibrator_streams, builder, calibrator_config)
        return CacheContext(block_list.name, config, calibrators=streams, **common)

    def start_request(self) -> None:
        """Fresh contexts for every list: the next call is step 0 of a new request."""
        self.request.pending = None
        self.request.restart = False
        self.contexts = {bl.name: self.new_context(bl) for bl in self.block_lists}

    @torch.compiler.disable
    def _detect_new_request(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self.new_request_pending:  # a pipeline call started, or a refresh was asked for
            self.new_request_pending = False
            self.start_request()
            self._remember_timestep(args, kwargs)
            return
        if not self.persistent:
            return
        for context in self.contexts.values():
            if context.request_done():
                self.start_request()
                self._remember_timestep(args, kwargs)
                return
        if all(context.request_steps is not None for context in self.contexts.values()):
            # Requests of a known length end by count; comparing device timesteps would cost a
            # host-device sync on every call that fetches no diff (every call of a static
            # mask). A transformer-only loop stopped early calls refresh_context before the next.
            return
        previous = self.last_timestep
        current = self._remember_timestep(args, kwargs)
        if previous is None or current is None:
            return
        if isinstance(current, torch.Tensor) or isinstance(previous, torch.Tensor):
            # a device-side flag, read in the same transfer as the call's diff
            rose = torch.as_tensor(current).max() > torch.as_tensor(previous).max()
            self.request.pending = rose.to(self._device(current, previous))
        elif current > previous:
            self.start_request()

    @staticmethod
    def _device(*values: Any) -> torch.device:
        for value in values:
            if isinstance(value, torch.Tensor):
                return value.device
        return torch.device("cpu")

    def _remember_timestep(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        timestep = kwargs.get("timestep")
        index = self._timestep_index
        if timestep is None and index is not None and index < len(args):
            timestep = args[index]
        if isinstance(timestep, torch.Tensor):
            timestep = timestep.detach()
        elif not isinstance(timestep, int | float):
            timestep = None
        self.last_timestep = timestep
        return timestep

    @staticmethod
    def _find_timestep_parameter(forward: Callable[..., Any]) -> int | None:
        try:
            names = list(inspect.signature(forward).parameters)
        except (TypeError, ValueError):
            return None
        return names.index("timestep") if "timestep" in names else None

    # -- installing the forward wrapper ---------------------------------------------------------
    def install(self) -> TransformerCache:
        transformer = self.transformer
        if get_cache(transformer) is not None:
            raise RuntimeError("a ditkit cache is already installed on this transformer")
        self._had_instance_forward = "forward" in vars(transformer)
        self._original_forward = transformer.forward
        object.__setattr__(transformer, ATTRIBUTE, self)
        transformer.forward = self._cached_forward
        original = getattr(transformer, "cache_context", None)
        if callable(original):  # diffusers' CacheMixin: observe the names of the calls
            self._had_instance_cache_context = "cache_context" in vars(transformer)
            self._original_cache_context = original
            object.__setattr__(transformer, "cache_context", self._named_call)
        return self

    @contextlib.contextmanager
    def _named_call(self, name: str, *args: Any, **kwargs: Any) -> Iterator[None]:
        """The transformer's ``cache_context``, which also tells the cache the call's name."""
        request = self.request
        previous, request.call_name = request.call_name, name
        try:
            with self._original_cache_context(name, *args, **kwargs):
                yield
        finally:
            request.call_name = previous

    def uninstall(self) -> None:
        """Restore the transformer's own ``forward`` and forget every buffer."""
        transformer = self.transformer
        if vars(transformer).get("forward") == self._cached_forward:
            if self._had_instance_forward:
                transformer.forward = self._original_forward
            else:
                del transformer.forward
        else:  # someone wrapped our forward afterwards (e.g. accelerate): become a pass-through
            self.block_lists = []
        if self._original_cache_context is not None:
            if vars(transformer).get("cache_context") == self._named_call:
                if self._had_instance_cache_context:
                    object.__setattr__(transformer, "cache_context", self._original_cache_context)
                else:
                    delattr(transformer, "cache_context")
            self._original_cache_context = None
        self.request.call_name = None
        self.contexts = {}
        if vars(transformer).get(ATTRIBUTE) is self:
            delattr(transformer, ATTRIBUTE)

    @torch.compiler.disable
    def _swap_in(self) -> list[tuple[torch.nn.Module, str, torch.nn.Module]]:
        """Put each cached list's wrapper (and an empty list for each dummy) in place."""
        transformer = self.transformer
        saved: list[tuple[torch.nn.Module, str, torch.nn.Module]] = []
        try:
            for block_list in self.block_lists:
                parent, leaf = _resolve(transformer, block_list.attribute)
                saved.append((parent, leaf, parent._modules[leaf]))
                parent._modules[leaf] = self._stand_ins[block_list.name]
                for dummy in block_list.dummy_attributes:
                    dummy_parent, dummy_leaf = _resolve(transformer, dummy)
                    saved.append((dummy_parent, dummy_leaf, dummy_parent._modules[dummy_leaf]))
                    dummy_parent._modules[dummy_leaf] = self._empty
        except BaseException:
            self._swap_out(saved)
            raise
        return saved

    @staticmethod
    @torch.compiler.disable
    def _swap_out(saved: list[tuple[torch.nn.Module, str, torch.nn.Module]]) -> None:
        for parent, leaf, original in reversed(saved):
            parent._modules[leaf] = original

    @torch.compiler.disable(recursive=False)
    def _cached_forward(self, *args: Any, **kwargs: Any) -> Any:
        if not self.block_lists:
            return self._original_forward(*args, **kwargs)
        self._detect_new_request(args, kwargs)
        saved = self._swap_in()
        try:
            return self._original_forward(*args, **kwargs)
        finally:
            self._swap_out(saved)

    # -- refresh -------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Start a new request at the next call (with the block lists' current configs)."""
        self.new_request_pending = True
        self.start_request()


def _calibrator_streams(builder: Callable[[], Any], config: CalibratorConfig) -> dict[str, Any]:
    """One branch's calibrators, by stream."""
    streams = {}
    if config.enable_calibrator:
        streams["hidden"] = builder()
    if config.enable_encoder_calibrator:
        streams["encoder"] = builder()
    return streams
