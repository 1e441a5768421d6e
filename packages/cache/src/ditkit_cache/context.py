"""``CacheContext``: the state and the decisions of DBCache for one list of blocks.

One context serves one block list of one transformer. It counts transformer calls and denoising
steps, tells the conditional and the CFG branch apart, keeps each branch's buffers (the Fn
residual the next step is compared with, the Mn residuals a cached step adds back) and
statistics, and decides, step by step, whether the middle blocks may be skipped. The rules are
cache-dit 1.5.3's (reference §3.2–§3.4), in the same order:

1. a warmup step computes;
2. with a steps mask, a 1 computes, a 0 under the ``"static"`` policy caches;
3. ``max_cached_steps``, ``max_continuous_cached_steps`` and the accumulated-diff cap stop caching;
4. a threshold ``<= 0`` computes, ``>= 1`` caches, otherwise the relative L1 change of the Fn
   residual, ``mean|prev - cur| / mean|prev|``, must be strictly below the threshold.

Two rules are ditkit's own. A call whose shapes differ from the branch's last computed call (a
resolution change, a prefix KV cache that shortens the sequence) computes, whatever rules 2-4
say: the stored residuals do not fit it. And without separate CFG, a call that the pipeline runs
inside diffusers' ``transformer.cache_context("uncond")`` (true CFG in Flux or HunyuanVideo) is the
CFG branch of the current step, not a step of its own.

The diff costs one host-device synchronisation; it is the only one per transformer call (shapes
are host metadata: comparing them costs nothing).

Example:
    >>> import torch
    >>> from ditkit_interfaces import DBCacheConfig
    >>> ctx = CacheContext("blocks", DBCacheConfig(max_warmup_steps=1, residual_diff_threshold=0.5))
    >>> r = torch.ones(2, 4)
    >>> for step in range(3):
    ...     ctx.mark_step_begin()
    ...     hit = ctx.can_cache(r * (1 + 0.1 * step))
    ...     if hit:
    ...         ctx.add_cached_step()
    ...     else:
    ...         ctx.branch.buffers["Fn"] = r * (1 + 0.1 * step)
    >>> ctx.branch.cached_steps, {k: round(v, 3) for k, v in ctx.branch.residual_diffs.items()}
    ([1, 2], {1: 0.1, 2: 0.2})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from ditkit_interfaces import Calibrator, DBCacheConfig, DecisionReducer, LocalDecisionReducer

__all__ = ["UNCOND_CALL", "BranchState", "CacheContext", "RequestSignal"]

#: The diffusers ``cache_context`` name of a pipeline's unconditional (CFG) transformer call.
UNCOND_CALL = "uncond"

CalibratorStreams = Callable[[], dict[str, Calibrator]]


@dataclasses.dataclass
class RequestSignal:
    """What the host knows about the current call, shared by a transformer's block lists.

    ``pending`` holds a device tensor (``True`` when the timestep rose) that is read together with
    the call's diff, so detecting a new request costs no extra host-device synchronisation.
    ``restart`` is set once it reads ``True``; the owner then starts fresh contexts.
    ``call_name`` is the name of the diffusers ``cache_context`` the call runs in (``None``
    outside one).
    """

    pending: torch.Tensor | None = None
    restart: bool = False
    call_name: str | None = None


@dataclasses.dataclass
class BranchState:
    """What one CFG branch (conditional, or the separate CFG call) remembers between steps."""

    cached_steps: list[int] = dataclasses.field(default_factory=list)
    residual_diffs: dict[int, float] = dataclasses.field(default_factory=dict)
    accumulated_residual_diff: float = 0.0
    continuous_cached_steps: int = 0
    accumulated_cached_steps: int = 0
    buffers: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)
    calibrators: dict[str, Calibrator] = dataclasses.field(default_factory=dict)
    #: per compared key: the shapes of the branch's last computed call (host metadata)
    shapes: dict[str, tuple[Any, ...]] = dataclasses.field(default_factory=dict)
    #: the step of the branch's latest call (-1: none in this request)
    last_step: int = -1

    def clear_history(self) -> None:
        """Forget the cached steps and diffs of the previous request (counters accumulate)."""
        self.cached_steps.clear()
        self.residual_diffs.clear()
        self.last_step = -1

    def reset_calibrators(self) -> None:
        for calibrator in self.calibrators.values():
            calibrator.reset()


class CacheContext:
    """DBCache state and decisions for one block list.

    Args:
        name (`str`): the block list's name, used in stats.
        cache_config (`DBCacheConfig`): a fully resolved config (no ``None`` in the fields the
            rules read; ``enable_separate_cfg`` resolved to a bool).
        calibrators (`Callable`, *optional*): builds one branch's calibrators, by stream
            (``"hidden"``, ``"encoder"``); called for the conditional branch, and for the CFG
            branch when separate CFG is on or its first ``"uncond"`` call comes.
        reducer (`DecisionReducer`, *optional*): averages the diff's means over parallel ranks.
        cache_residual (`bool`, defaults to `True`): cached steps add the stored Mn residual;
            ``False`` (a calibrator's ``"hidden_states"`` type) replaces the Mn output instead.
        request (`RequestSignal`, *optional*): the new-request signal shared with the other
            block lists of the same transformer.
    """

    #: a CFG call may reuse the conditional call's diff (``cfg_diff_compute_separate=False``)
    shares_cfg_diff = True

    def __init__(
        self,
        name: str,
        cache_config: DBCacheConfig,
        calibrators: CalibratorStreams | None = None,
        reducer: DecisionReducer | None = None,
        cache_residual: bool = True,
        request: RequestSignal | None = None,
    ) -> None:
        self.name = name
        self.config = cache_config
        self.reducer: DecisionReducer = reducer or LocalDecisionReducer()
        self.cache_residual = cache_residual
        self.request = request or RequestSignal()
        self.separate_cfg = bool(cache_config.enable_separate_cfg)
        self.cfg_compute_first = bool(cache_config.cfg_compute_first)
        self.executed_steps = 0
        self.transformer_executed_steps = 0
        self.accumulated_executed_steps = 0
        self.accumulated_transformer_executed_steps = 0
        self.cond = BranchState()
        self.cfg = BranchState()
        self.calibrator_streams = calibrators
        if calibrators is not None:
            self.cond.calibrators.update(calibrators())
            if self.separate_cfg:
                self.cfg.calibrators.update(calibrators())
        self.warmup_steps = frozenset(self._warmup_steps())
        self.threshold = _as_float(cache_config.residual_diff_threshold)
        self.branch = self.cond

    # -- step accounting ----------------------------------------------------------------------
    def _warmup_steps(self) -> range:
        limit = self.config.max_warmup_steps
        mask = self.config.steps_computation_mask
        if mask is not None:
            leading_ones = next((i for i, m in enumerate(mask) if m != 1), len(mask))
            limit = min(limit, leading_ones)
        return range(0, limit, self.config.warmup_interval)

    @property
    def current_step(self) -> int:
        """The denoising step of the current call (0-based)."""
        return self.executed_steps - 1

    @property
    def current_transformer_step(self) -> int:
        """The transformer call index within the request (0-based)."""
        return self.transformer_executed_steps - 1

    def is_cfg_step(self) -> bool:
        """Whether the current call is the CFG (unconditional) one.

        With separate CFG, every other call is (cache-dit's rule); without it, a call that the
        pipeline runs inside ``transformer.cache_context("uncond")`` is.
        """
        if not self.separate_cfg:
            return self.request.call_name == UNCOND_CALL
        parity = self.current_transformer_step % 2
        return parity == 0 if self.cfg_compute_first else parity == 1

    def _starts_step(self, is_cfg: bool) -> bool:
        """Whether the current call is the first of a denoising step."""
        if self.separate_cfg:
            return is_cfg == self.cfg_compute_first
        # named calls: a branch's call joins the step the other branch opened, if it has not
        # run in that step itself (either order); unnamed calls are all conditional: one a step
        mine, other = (self.cfg, self.cond) if is_cfg else (self.cond, self.cfg)
        step = self.current_step
        return not (step >= 0 and other.last_step == step and mine.last_step != step)

    @property
    def request_steps(self) -> int | None:
        """Steps per request when known: ``num_inference_steps``, else the steps mask's length."""
        if self.config.num_inference_steps is not None:
            return self.config.num_inference_steps
        mask = self.config.steps_computation_mask
        return len(mask) if mask else None

    def request_done(self) -> bool:
        """Whether the known steps per request (:attr:`request_steps`) are all done, so the next
        call (the current one, when called from a call's start) begins a new request."""
        steps = self.request_steps
        if steps is None:
            return False
        if self.separate_cfg:
            return self.transformer_executed_steps >= 2 * steps
        # the coming call (not counted yet) would open a step after the last one
        return self.executed_steps >= steps and self._starts_step(self.is_cfg_step())

    @property
    def static_schedule_steps(self) -> int | None:
        """The request's step count when a static steps mask fixes every step in advance."""
        mask = self.config.steps_computation_mask
        if mask and self.config.steps_computation_policy == "static":
            return len(mask)
        return None

    def _tell_schedule(self, calibrators: dict[str, Any]) -> None:
        """Give calibrators that take it (``set_static_schedule``) the static schedule."""
        steps = self.static_schedule_steps
        for calibrator in calibrators.values():
            tell = getattr(calibrator, "set_static_schedule", None)
            if tell is not None:
                tell(steps)

    @torch.compiler.disable
    def mark_step_begin(self) -> None:
        """Advance the counters for a new transformer call and select its branch."""
        self.transformer_executed_steps += 1
        self.accumulated_transformer_executed_steps += 1
        if self.current_transformer_step == 0:
            for branch in (self.cond, self.cfg):
                branch.clear_history()
                branch.reset_calibrators()
                self._tell_schedule(branch.calibrators)
        is_cfg = self.is_cfg_step()
        if self._starts_step(is_cfg):
            self.executed_steps += 1
            self.accumulated_executed_steps += 1
        self.branch = self.cfg if is_cfg else self.cond
        self.branch.last_step = self.current_step
        if is_cfg and not self.cfg.calibrators and self.calibrator_streams is not None:
            self.cfg.calibrators.update(self.calibrator_streams())  # the first "uncond" call
            self._tell_schedule(self.cfg.calibrators)
        previous = self.current_step - 1
        if not self.branch.cached_steps or self.branch.cached_steps[-1] != previous:
            self.branch.continuous_cached_steps = 0
        for calibrator in self.branch.calibrators.values():
            calibrator.mark_step_begin(self.current_step)

    @torch.compiler.disable
    def add_cached_step(self) -> None:
        branch = self.branch
        branch.continuous_cached_steps += 1
        branch.cached_steps.append(self.current_step)
        branch.accumulated_cached_steps += 1

    def add_residual_diff(self, diff: float) -> None:
        """Record the step's diff once per branch; positive diffs accumulate."""
        branch = self.branch
        if self.current_step not in branch.residual_diffs:
            branch.residual_diffs[self.current_step] = diff
            if diff > 0.0:
                branch.accumulated_residual_diff += diff

    # -- the decision -------------------------------------------------------------------------
    def limits_allow_caching(self, previous_key: str = "Fn") -> bool | None:
        """The rules before the diff: ``False``/``True`` when they decide, ``None`` otherwise."""
        config, branch, step = self.config, self.branch, self.current_step
        if step in self.warmup_steps:
            return False
        mask = config.steps_computation_mask
        if mask is not None:
            if step < len(mask) and mask[step] == 1:
                return False
            if config.steps_computation_policy == "static":
                return previous_key in branch.buffers  # nothing computed yet: compute
        if 0 <= config.max_cached_steps <= len(branch.cached_steps):
            return False
        continuous = branch.continuous_cached_steps
        if branch.cached_steps and branch.cached_steps[-1] == step:
            continuous -= 1  # a hit already recorded this step (DBPrune) is not a previous step
        if 0 <= config.max_continuous_cached_steps <= continuous:
            return False
        cap = config.max_accumulated_residual_diff_threshold
        if cap is not None and cap > 0.0 and branch.accumulated_residual_diff >= cap:
            return False
        if self.threshold <= 0.0:
            return False
        return None

    @torch.compiler.disable
    def can_cache(
        self,
        residual: torch.Tensor,
        threshold: float | None = None,
        previous_key: str = "Fn",
        shapes: tuple[Any, ...] | None = None,
    ) -> bool:
        """Decide the current call: may the middle blocks be skipped?

        ``residual`` is this call's Fn residual; it is compared with the branch's buffer
        ``previous_key`` (the residual of the last computed step; DBPrune passes a block's input).
        ``shapes`` are the shapes of every stream a cached call combines with stored values
        (default: the residual's); a call whose shapes differ from the last computed call's
        computes. A call decided ``False`` computes, and its shapes are remembered.
        """
        shapes = (residual.shape,) if shapes is None else shapes
        decision, diff = self._decide(residual, threshold, previous_key, shapes)
        if self.request.pending is not None:
            self._resolve_pending(None)
        if self.request.restart:
            return False
        if diff is not None:
            self.add_residual_diff(diff)
            decision = diff < self._threshold(threshold)
        if not decision:
            self.branch.shapes[previous_key] = shapes
        return decision

    def _threshold(self, threshold: float | None) -> float:
        return self.threshold if threshold is None or threshold <= 0.0 else threshold

    def _decide(
        self,
        residual: torch.Tensor,
        threshold: float | None,
        previous_key: str,
        shapes: tuple[Any, ...],
    ) -> tuple[bool, float | None]:
        """The decision, or ``(False, diff)`` when the diff decides (it is not recorded yet)."""
        decided = self.limits_allow_caching(previous_key)
        if decided is False:
            return False, None
        if self.branch.shapes.get(previous_key, shapes) != shapes:
            return False, None  # the stored values do not fit this call: compute, record no diff
        if decided:
            return True, None
        threshold = self._threshold(threshold)
        previous = self.branch.buffers.get(previous_key)
        if previous is None:
            return False, None
        if threshold >= 1.0:
            return True, None
        if previous.shape != residual.shape:
            return False, None  # a buffer stored without its shapes: compute
        if (
            self.shares_cfg_diff
            and self.is_cfg_step()
            and not self.config.cfg_diff_compute_separate
        ):
            shared = self.cond.residual_diffs.get(self.current_step)
            if shared is not None:
                return False, shared
        return False, self.relative_l1(previous, residual)

    def _resolve_pending(self, value: float | None) -> None:
        pending, self.request.pending = self.request.pending, None
        if value is None and pending is not None:
            value = float(pending.item())  # only when no diff was fetched this call
        self.request.restart = bool(value)

    def relative_l1(self, previous: torch.Tensor, current: torch.Tensor) -> float:
        """``mean|prev - cur| / mean|prev|`` over all elements, means averaged over ranks.

        A pending new-request flag is fetched in the same transfer: one synchronisation.
        """
        means = torch.stack(((previous - current).abs().mean(), previous.abs().mean())).float()
        means = self.reducer.mean_across_ranks(means)
        pending = self.request.pending
        if pending is not None:
            means = torch.cat((means, pending.reshape(1).to(means)))
        values = means.tolist()  # the one host-device synchronisation of the call
        if pending is not None:
            self._resolve_pending(values[2])
        mean_diff, mean_prev = values[0], values[1]
        return mean_diff / mean_prev if mean_prev > 0.0 else float("inf")

    # -- calibrated buffers -------------------------------------------------------------------
    @torch.compiler.disable
    def store(self, key: str, stream: str, value: torch.Tensor) -> None:
        """Keep a computed value for later cached steps (through the branch's calibrator)."""
        calibrator = self.branch.calibrators.get(stream)
        if calibrator is not None:
            calibrator.update(value)
        else:
            self.branch.buffers[key] = value

    @torch.compiler.disable
    def recall(self, key: str, stream: str) -> torch.Tensor | None:
        """The value a cached step uses: the calibrator's forecast, or the stored value."""
        calibrator = self.branch.calibrators.get(stream)
        if calibrator is not None:
            return calibrator.approximate()
        return self.branch.buffers.get(key)

    def stats(self) -> dict[str, Any]:
        """Plain-Python snapshot of the request's statistics."""
        return {
            "cached_steps": list(self.cond.cached_steps),
            "residual_diffs": {str(k): v for k, v in self.cond.residual_diffs.items()},
            "cfg_cached_steps": list(self.cfg.cached_steps),
            "cfg_residual_diffs": {str(k): v for k, v in self.cfg.residual_diffs.items()},
            "accumulated_cached_steps": self.cond.accumulated_cached_steps,
            "cfg_accumulated_cached_steps": self.cfg.accumulated_cached_steps,
            "accumulated_executed_steps": self.accumulated_executed_steps,
            "accumulated_transformer_executed_steps": self.accumulated_transformer_executed_steps,
        }


def _as_float(value: Any) -> float:
    return float(value.item() if isinstance(value, torch.Tensor) else value)
