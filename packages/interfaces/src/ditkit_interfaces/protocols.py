"""Protocols through which the feature packages meet without importing each other.

- :class:`Calibrator`: the cache's step forecaster (``ditkit_calibrators`` implements it, the
  cache drives it).
- :class:`DecisionReducer`: makes every parallel rank take the same cache decision
  (``ditkit_parallel`` implements an all-reduce; :class:`LocalDecisionReducer` serves one rank).
- :class:`Quantizer` and :class:`Metric`.

Tensors are typed as ``Any`` here so that this module never imports torch.

Example:
    >>> from ditkit_interfaces.protocols import DecisionReducer, LocalDecisionReducer
    >>> reducer = LocalDecisionReducer()
    >>> isinstance(reducer, DecisionReducer), reducer.world_size, reducer.mean_across_ranks(3.0)
    (True, 1, 3.0)
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Calibrator",
    "CalibratorFactory",
    "DecisionReducer",
    "LocalDecisionReducer",
    "Metric",
    "Quantizer",
]

Tensor = Any  # a torch.Tensor; kept abstract so that importing this module needs no torch


@runtime_checkable
class Calibrator(Protocol):
    """Forecasts one stream's cached value (a residual or hidden states) at skipped steps.

    One instance holds the state of one stream: the hidden or encoder stream of one block list
    in one CFG branch. The cache calls, for every transformer call of that branch:

    1. :meth:`mark_step_begin` with the denoising step index (the true index, so no lag);
    2. on a computed step, :meth:`update` with the freshly computed value;
    3. on a cached step, :meth:`approximate` for the value to use instead of the stored one.

    :meth:`reset` drops all history (a new request, or a change of shape).

    Optional: a calibrator with ``set_static_schedule(total_steps: int | None)`` is told, at the
    start of every request, the request's step count when a static steps mask fixes every step
    in advance, else ``None`` (TaylorSeer damps its curvature early in such a schedule).
    """

    def reset(self) -> None: ...

    def mark_step_begin(self, step: int) -> None: ...

    def update(self, value: Tensor) -> None: ...

    def approximate(self) -> Tensor: ...


@runtime_checkable
class CalibratorFactory(Protocol):
    """Builds a fresh :class:`Calibrator` from a ``CalibratorConfig``."""

    def __call__(self, config: Any) -> Calibrator: ...


@runtime_checkable
class DecisionReducer(Protocol):
    """Averages a cache statistic over the ranks that share one transformer call.

    The cache's relative-L1 diff is ``mean|prev - cur| / mean|prev|``; under context or tensor
    parallelism each rank sees only its shard, so both means are averaged over the ranks before
    the division and every rank reaches the same decision.
    """

    @property
    def world_size(self) -> int: ...

    def mean_across_ranks(self, value: Tensor) -> Tensor:
        """The element-wise mean of ``value`` over all ranks (same shape as ``value``)."""
        ...

    # Optional (the cache calls it when present): ``match_shard(full, local) -> Tensor`` returns
    # this rank's piece of ``full`` cut like ``local``, for a block list whose input arrives
    # full-length while its first block returns a shard (a context-parallel plan that splits at
    # block 0): the Fn residual is then compared on matching shards.


class LocalDecisionReducer:
    """The single-process :class:`DecisionReducer`: the mean over one rank is the value itself."""

    @property
    def world_size(self) -> int:
        return 1

    def mean_across_ranks(self, value: Tensor) -> Tensor:
        return value

    def match_shard(self, full: Tensor, local: Tensor) -> Tensor:
        """One rank holds everything: ``full`` is already the matching piece."""
        return full

    def __repr__(self) -> str:
        return "LocalDecisionReducer()"


@runtime_checkable
class Quantizer(Protocol):
    """Quantizes a module in place according to a ``QuantizeConfig``."""

    def supports(self, config: Any) -> bool: ...

    def quantize(self, module: Any, config: Any) -> Any: ...


@runtime_checkable
class Metric(Protocol):
    """A quality metric between a reference and a test image/video batch."""

    name: str
    higher_is_better: bool

    def __call__(self, reference: Any, test: Any) -> float: ...
