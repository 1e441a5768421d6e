"""Cache configs: ``CacheType``, ``BasicCacheConfig``/``DBCacheConfig`` and ``DBPruneConfig``.

Fields, defaults and run tags follow cache-dit 1.5.3 exactly, so a config built for cache-dit
builds the same here. Unlike cache-dit, every field is checked when the config is built (and
after every ``update``), with a message that names the field and the fix.

Example:
    >>> from ditkit_interfaces.cache_configs import DBCacheConfig
    >>> cfg = DBCacheConfig(Fn_compute_blocks=1, max_continuous_cached_steps=3,
    ...                     residual_diff_threshold=0.12, enable_separate_cfg=False)
    >>> cfg.strify()
    'DBCache_F1B0_W8I1M0MC3_R0.12_CFG0'
    >>> try:
    ...     DBCacheConfig(Fn_compute_blocks=0)
    ... except ValueError as err:
    ...     print(err.field, "|", err.fix)
    DBCacheConfig.Fn_compute_blocks | the first block must always be computed: use ...
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from .config import ConfigBase, check_choice, check_float, check_int
from .errors import ConfigError

__all__ = [
    "BasicCacheConfig",
    "CacheType",
    "DBCacheConfig",
    "DBPruneConfig",
    "cache_type",
]

STEPS_COMPUTATION_POLICIES = ("dynamic", "static")
FORCE_REFRESH_STEP_POLICIES = ("once", "repeat")


class CacheType(enum.Enum):
    """Which caching technique a config selects. ``str()`` gives the value."""

    NONE = "NONE"
    DBCache = "DBCache"
    DBPrune = "DBPrune"

    @staticmethod
    def type(type_hint: CacheType | str | None) -> CacheType:
        return cache_type(type_hint)

    def __str__(self) -> str:
        return self.value


_CACHE_TYPE_ALIASES = {
    CacheType.DBCache: ("DUAL_BLOCK_CACHE", "DB_CACHE", "DBCACHE", "DB"),
    CacheType.DBPrune: ("DYNAMIC_BLOCK_PRUNE", "DB_PRUNE", "DBPRUNE", "DBP"),
    CacheType.NONE: ("NONE", "NO_CACHE", "NOCACHE", "NC"),
}


def cache_type(type_hint: CacheType | str | None) -> CacheType:
    """Map a hint such as ``"db_cache"`` or ``"DBP"`` (any case) to a :class:`CacheType`.

    ``None`` means :attr:`CacheType.NONE`. An unknown hint raises (cache-dit silently returned
    ``NONE``, which turned a typo into "no caching"; see docs/compat.md).

    Example:
        >>> cache_type("dual_block_cache"), cache_type("dbp"), cache_type(None)
        (<CacheType.DBCache: 'DBCache'>, <CacheType.DBPrune: 'DBPrune'>, <CacheType.NONE: 'NONE'>)
    """
    if type_hint is None:
        return CacheType.NONE
    if isinstance(type_hint, CacheType):
        return type_hint
    if isinstance(type_hint, str):
        text = type_hint.strip().upper()
        for member, aliases in _CACHE_TYPE_ALIASES.items():
            if text in aliases:
                return member
    valid = ", ".join(a for aliases in _CACHE_TYPE_ALIASES.values() for a in aliases)
    raise ConfigError(
        "cache_type",
        type_hint,
        f"a CacheType or one of {valid} (any case)",
        fix="use CacheType.DBCache or CacheType.DBPrune",
    )


@dataclasses.dataclass
class BasicCacheConfig(ConfigBase):
    """DBCache: compute the first ``Fn`` and last ``Bn`` blocks every step; reuse the middle.

    At each step the residual of the first ``Fn_compute_blocks`` blocks is compared with the one
    of the last computed step (relative L1); below ``residual_diff_threshold`` the middle blocks
    are skipped and their stored residual is added instead.

    Args:
        cache_type (`CacheType`, defaults to `DBCache`): the technique.
        Fn_compute_blocks (`int`, defaults to 8): first blocks always computed (>= 1). More is
            slower and more faithful.
        Bn_compute_blocks (`int`, defaults to 0): last blocks always computed; they correct the
            approximation of the cached middle.
        residual_diff_threshold (`float`, defaults to 0.08): cache when the relative L1 change of
            the Fn residual is strictly below this. Higher is faster, lower is more faithful.
        max_accumulated_residual_diff_threshold (`float`, *optional*): stop caching once the sum
            of this branch's diffs reaches this.
        max_warmup_steps (`int`, defaults to 8): steps ``range(0, max_warmup_steps,
            warmup_interval)`` are always computed.
        warmup_interval (`int`, defaults to 1): stride of the warmup steps.
        max_cached_steps (`int`, defaults to -1): cap on cached steps per CFG branch (-1: none).
        max_continuous_cached_steps (`int`, defaults to -1): cap on consecutive cached steps.
        enable_separate_cfg (`bool`, *optional*): the pipeline runs CFG as a separate transformer
            call; ``None`` lets the model registry decide.
        cfg_compute_first (`bool`, defaults to `False`): the CFG call comes before the
            conditional one.
        cfg_diff_compute_separate (`bool`, defaults to `True`): the CFG branch computes its own
            diff instead of reusing the conditional branch's decision.
        num_inference_steps (`int`, *optional*): steps per request; lets a persistent context
            refresh itself for the next request.
        steps_computation_mask (`list[int]`, *optional*): per denoising step, 1 = always compute,
            0 = may cache (see ``steps_mask``).
        steps_computation_policy (`str`, defaults to `"dynamic"`): for mask zeros, ``"dynamic"``
            still applies the threshold; ``"static"`` caches unconditionally.
        force_refresh_step_hint (`int`, *optional*): transformer call index at which the context
            is refreshed (e.g. between the two experts of Wan 2.2).
        force_refresh_step_policy (`str`, defaults to `"once"`): ``"once"`` or ``"repeat"``.
    """

    cache_type: CacheType | str = CacheType.DBCache
    Fn_compute_blocks: int = 8
    Bn_compute_blocks: int = 0
    residual_diff_threshold: Any = 0.08
    max_accumulated_residual_diff_threshold: float | None = None
    max_warmup_steps: int = 8
    warmup_interval: int = 1
    max_cached_steps: int = -1
    max_continuous_cached_steps: int = -1
    enable_separate_cfg: bool | None = None
    cfg_compute_first: bool = False
    cfg_diff_compute_separate: bool = True
    num_inference_steps: int | None = None
    steps_computation_mask: list[int] | None = None
    steps_computation_policy: str = "dynamic"
    force_refresh_step_hint: int | None = None
    force_refresh_step_policy: str = "once"

    def __post_init__(self) -> None:
        self._normalize()
        super().__post_init__()

    @classmethod
    def _constant_fields(cls) -> frozenset[str]:
        return frozenset({"cache_type"})

    def _normalize(self) -> None:
        if self.cache_type is not None:
            self.cache_type = cache_type(self.cache_type)
        if self.steps_computation_mask is not None and not isinstance(
            self.steps_computation_mask, list
        ):
            if isinstance(self.steps_computation_mask, str):
                raise ConfigError(
                    f"{type(self).__name__}.steps_computation_mask",
                    self.steps_computation_mask,
                    "a list of 0/1 integers",
                    fix="build it with steps_mask(mask_policy=..., total_steps=...)",
                )
            self.steps_computation_mask = list(self.steps_computation_mask)

    def validate(self) -> None:
        name = type(self).__name__
        check_int(
            self,
            "Fn_compute_blocks",
            minimum=1,
            fix="the first block must always be computed: use Fn_compute_blocks=1 or more",
        )
        check_int(self, "Bn_compute_blocks", minimum=0)
        check_float(self, "residual_diff_threshold", minimum=0.0)
        check_float(self, "max_accumulated_residual_diff_threshold", minimum=0.0)
        check_int(self, "max_warmup_steps", minimum=0)
        check_int(self, "warmup_interval", minimum=1)
        check_int(self, "max_cached_steps", minimum=-1, fix="use -1 for no limit")
        check_int(self, "max_continuous_cached_steps", minimum=-1, fix="use -1 for no limit")
        check_int(self, "num_inference_steps", minimum=1)
        check_int(self, "force_refresh_step_hint", minimum=0)
        check_choice(self, "steps_computation_policy", STEPS_COMPUTATION_POLICIES)
        check_choice(self, "force_refresh_step_policy", FORCE_REFRESH_STEP_POLICIES)
        for flag in ("enable_separate_cfg", "cfg_compute_first", "cfg_diff_compute_separate"):
            value = getattr(self, flag)
            if value is not None and not isinstance(value, bool):
                raise ConfigError(f"{name}.{flag}", value, "True, False or None")
        mask = self.steps_computation_mask
        if mask is not None:
            if not mask or any(isinstance(v, bool) or v not in (0, 1) for v in mask):
                raise ConfigError(
                    f"{name}.steps_computation_mask",
                    mask,
                    "a non-empty list of 0/1 integers",
                    fix="build it with steps_mask(mask_policy=..., total_steps=...)",
                )
            steps = self.num_inference_steps
            if steps is not None and len(mask) != steps:
                raise ConfigError(
                    f"{name}.steps_computation_mask",
                    f"<{len(mask)} entries>",
                    f"one entry per denoising step ({steps}, from num_inference_steps)",
                    fix=f"build it with steps_mask(total_steps={steps}) "
                    f"or set num_inference_steps={len(mask)}",
                )
        if self.steps_computation_policy == "static" and mask is None:
            raise ConfigError(
                f"{name}.steps_computation_policy",
                "static",
                "a steps_computation_mask to go with it",
                fix="pass steps_computation_mask=steps_mask(...) or use the 'dynamic' policy",
            )
        if self.enable_separate_cfg and self.cfg_compute_first and self.cfg_diff_compute_separate:
            raise ConfigError(
                f"{name}.cfg_compute_first",
                True,
                "False while cfg_diff_compute_separate=True (the CFG branch cannot reuse a "
                "decision that has not been made yet)",
                fix="set cfg_diff_compute_separate=False to compute the CFG branch first",
            )

    def strify(self) -> str:
        """cache-dit's run tag, e.g. ``DBCache_F8B0_W8I1M0MC0_R0.08``."""
        tag = (
            f"{self.cache_type}_F{self.Fn_compute_blocks}B{self.Bn_compute_blocks}_"
            f"W{self.max_warmup_steps}I{self.warmup_interval}"
            f"M{max(0, self.max_cached_steps)}MC{max(0, self.max_continuous_cached_steps)}_"
            f"R{_threshold_text(self.residual_diff_threshold)}"
        )
        if self.steps_computation_mask is not None:
            tag += f"_SCM{''.join(map(str, self.steps_computation_mask))}"
            tag += f"_{self.steps_computation_policy}"
        if self.num_inference_steps is not None:
            tag += f"_N{self.num_inference_steps}"
        if self.force_refresh_step_hint is not None:
            tag += f"_FR{self.force_refresh_step_hint}_{self.force_refresh_step_policy}"
        if self.enable_separate_cfg is not None:
            tag += f"_CFG{int(self.enable_separate_cfg)}"
        return tag


def _threshold_text(value: Any) -> str:
    if hasattr(value, "item") and not isinstance(value, float | int):
        value = value.item()
    return str(value)


@dataclasses.dataclass
class DBCacheConfig(BasicCacheConfig):
    """The DBCache config (cache-dit's name; identical to :class:`BasicCacheConfig`)."""


@dataclasses.dataclass
class DBPruneConfig(BasicCacheConfig):
    """DBPrune: skip individual middle blocks whose input barely changed since they last ran.

    Args (beyond :class:`BasicCacheConfig`):
        enable_dynamic_prune_threshold (`bool`, defaults to `False`): raise the threshold within a
            step to ``relax_ratio`` × the mean of its first diffs (capped).
        max_dynamic_prune_threshold (`float`, *optional*): the cap; ``None`` means twice
            ``residual_diff_threshold``.
        dynamic_prune_threshold_relax_ratio (`float`, defaults to 1.25): the relaxation factor.
        non_prune_block_ids (`list[int]`, defaults to `[]`): blocks never pruned.
        force_reduce_calibrator_vram (`bool`, defaults to `False`): downsample what calibrators
            store (by at least 4) to save memory.
    """

    cache_type: CacheType | str = CacheType.DBPrune
    enable_dynamic_prune_threshold: bool = False
    max_dynamic_prune_threshold: float | None = None
    dynamic_prune_threshold_relax_ratio: float = 1.25
    non_prune_block_ids: list[int] = dataclasses.field(default_factory=list)
    force_reduce_calibrator_vram: bool = False

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        check_float(self, "max_dynamic_prune_threshold", minimum=0.0)
        check_float(self, "dynamic_prune_threshold_relax_ratio", strictly_positive=True)
        ids = self.non_prune_block_ids
        if ids is not None and (
            not isinstance(ids, list | tuple)
            or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in ids)
        ):
            raise ConfigError(f"{name}.non_prune_block_ids", ids, "a list of block indices >= 0")

    def strify(self) -> str:
        """cache-dit's prune tag without SCM/N/FR/CFG suffixes: ``DBPrune_F8B0_W8I1M0MC0_R0.08``."""
        return (
            f"{self.cache_type}_F{self.Fn_compute_blocks}B{self.Bn_compute_blocks}_"
            f"W{self.max_warmup_steps}I{self.warmup_interval}"
            f"M{max(0, self.max_cached_steps)}MC{max(0, self.max_continuous_cached_steps)}_"
            f"R{_threshold_text(self.residual_diff_threshold)}"
        )
