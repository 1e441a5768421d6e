"""``QuantizeConfig``: which weights are quantized, to what, and by which backend.

Fields, defaults, the allowed ``quant_type`` values and the SVDQuant rules follow cache-dit
1.5.3. ``ditkit_svdquant`` (and its torchao backend) applies the config; this module only
describes and checks it.

Example:
    >>> from ditkit_interfaces.quantize_config import QuantizeConfig
    >>> QuantizeConfig().backend, QuantizeConfig().strify()
    (<QuantizeBackend.TORCHAO: 'torchao'>, 'float8_per_row')
    >>> cfg = QuantizeConfig(quant_type="svdq_int4_r32_dq")
    >>> cfg.backend, cfg.get_svdq_rank(), cfg.get_svdq_precision(), cfg.is_svdq_dq()
    (<QuantizeBackend.CACHE_DIT: 'cache_dit'>, 32, 'int4', True)
"""

from __future__ import annotations

import dataclasses
import enum
import re
from typing import Any

from .config import ConfigBase
from .errors import ConfigError

__all__ = ["TORCHAO_QUANT_TYPES", "QuantizeBackend", "QuantizeConfig"]

TORCHAO_QUANT_TYPES = (
    "float8_per_row",
    "float8_per_tensor",
    "float8_per_block",
    "float8_weight_only",
    "nvfp4",
    "nvfp4_weight_only",
    "int8_per_row",
    "int8_per_tensor",
    "int8_weight_only",
    "int4_weight_only",
)
_SVDQ_TYPE = re.compile(r"^svdq_(int4|nvfp4)_r(\d+)(_dq)?$")

#: Every ``svdq_kwargs`` key with its default and (where it is a choice) the allowed values.
SVDQ_KWARGS_DEFAULTS: dict[str, Any] = {
    "streaming": True,
    "calibrate_precision": "low",
    "runtime_kernel": "v1",
    "quantize_device": "auto",
    "offload_quantized_layers_to_cpu": False,
    "layerwise_offload": False,
    "async_transfer": False,
    "transfer_buckets": 1,
    "prefetch_limit": False,
    "max_copy_streams": None,
    "max_inflight_prefetch_bytes": None,
    "persistent_buckets": 0,
    "persistent_bins": 1,
    "defer_move_to_execution_device": False,
    "activation_buffer_flush_sample_count": 1,
    "activation_buffer_flush_cpu_bytes": None,
    "smooth_strategy": "activation",
    "few_shot_steps": 1,
    "few_shot_relax_factor": 1.5,
    "few_shot_relax_top_ratio": 0.25,
    "few_shot_relax_strategy": "auto",
    "few_shot_auto_compile": False,
    "fused_mlp": False,
    "svd_refine_iters": 0,
}
_SVDQ_CHOICES: dict[str, tuple[str, ...]] = {
    "calibrate_precision": ("low", "medium", "high"),
    "runtime_kernel": ("v1", "v2"),
    "quantize_device": ("auto", "cpu", "cuda"),
    "smooth_strategy": ("activation", "identity", "weight", "weight_inv", "few_shot"),
    "few_shot_relax_strategy": (
        "fixed",
        "top",
        "top_q4",
        "auto",
        "stable_auto",
        "power",
        "log",
        "rank",
    ),
}
_DQ_SMOOTH_STRATEGIES = ("identity", "weight", "weight_inv", "few_shot")


class QuantizeBackend(enum.Enum):
    """Which library quantizes."""

    AUTO = "auto"
    TORCHAO = "torchao"
    CACHE_DIT = "cache_dit"  # ditkit's own SVDQuant backend (cache-dit's name kept)
    NONE = "none"

    @classmethod
    def from_str(cls, text: str | QuantizeBackend) -> QuantizeBackend:
        if isinstance(text, cls):
            return text
        aliases = {
            "ao": cls.TORCHAO,
            "cache-dit": cls.CACHE_DIT,
            "cachedit": cls.CACHE_DIT,
            "ditkit": cls.CACHE_DIT,
            "svdquant": cls.CACHE_DIT,
        }
        key = text.strip().lower()
        for member in cls:
            if key in (member.value, member.name.lower()):
                return member
        if key in aliases:
            return aliases[key]
        raise ConfigError("QuantizeConfig.backend", text, "auto, torchao or cache_dit")


@dataclasses.dataclass
class QuantizeConfig(ConfigBase):
    """Weight (and activation) quantization of the transformer's repeated blocks.

    Args:
        backend (`QuantizeBackend`, defaults to `AUTO`): ``AUTO`` picks the SVDQuant backend for
            ``svdq_*`` types and torchao otherwise.
        quant_type (`str`, defaults to `"float8_per_row"`): a torchao type or
            ``svdq_{int4|nvfp4}_r{rank}[_dq]``.
        exclude_layers (`list[str]`): module-name substrings never quantized.
        regional_quantize (`bool`, defaults to `True`): quantize only the repeated blocks.
        repeated_blocks (`list[str]`): names of the repeated block classes (auto when empty).
        filter_fn (*optional*): ``(module, fqn) -> bool`` choosing the layers.
        components_to_quantize (`list` or `dict`, *optional*): pipeline components to quantize,
            with per-component overrides in the dict form.
        per_tensor_fallback (`bool`, defaults to `True`): per-tensor scales where per-row fails.
        precision_plan (`dict`, *optional*): layer substring → quant type.
        calibrate_fn (*optional*): runs calibration forwards (SVDQuant PTQ needs it).
        serialize_to (`str`, *optional*): where SVDQuant PTQ writes its checkpoint.
        svdq_kwargs (`dict`, *optional*): SVDQuant options (see ``SVDQ_KWARGS_DEFAULTS``).
        verbose (`bool`, defaults to `False`).
    """

    backend: QuantizeBackend | str = QuantizeBackend.AUTO
    quant_type: str = "float8_per_row"
    exclude_layers: list[str] = dataclasses.field(
        default_factory=lambda: ["embedder", "embed", "modulation", "mod"]
    )
    regional_quantize: bool = True
    repeated_blocks: list[str] = dataclasses.field(default_factory=list)
    filter_fn: Any = None
    components_to_quantize: list[str] | dict[str, Any] | None = None
    per_tensor_fallback: bool = True
    precision_plan: dict[str, str] | None = None
    calibrate_fn: Any = None
    serialize_to: str | None = None
    svdq_kwargs: dict[str, Any] | None = None
    verbose: bool = False

    def __post_init__(self) -> None:
        self._normalize()
        super().__post_init__()

    def _normalize(self) -> None:
        if isinstance(self.quant_type, str):
            self.quant_type = self.quant_type.strip().lower().replace("-", "_")
        if self.backend is not None:
            backend = QuantizeBackend.from_str(self.backend)
            if backend == QuantizeBackend.AUTO and self.quant_type is not None:
                backend = QuantizeBackend.CACHE_DIT if self.is_svdq() else QuantizeBackend.TORCHAO
            self.backend = backend

    def validate(self) -> None:
        qt = self.quant_type
        if qt is not None and qt not in TORCHAO_QUANT_TYPES and not _SVDQ_TYPE.match(qt):
            raise ConfigError(
                "QuantizeConfig.quant_type",
                qt,
                f"one of {', '.join(TORCHAO_QUANT_TYPES)} or svdq_{{int4|nvfp4}}_r{{rank}}[_dq]",
            )
        if self.svdq_kwargs is not None:
            if not isinstance(self.svdq_kwargs, dict):
                raise ConfigError("QuantizeConfig.svdq_kwargs", self.svdq_kwargs, "a dict")
            for key, value in self.svdq_kwargs.items():
                if key not in SVDQ_KWARGS_DEFAULTS:
                    raise ConfigError(
                        f"QuantizeConfig.svdq_kwargs[{key!r}]",
                        value,
                        f"a known key ({', '.join(sorted(SVDQ_KWARGS_DEFAULTS))})",
                    )
                if key in _SVDQ_CHOICES and value not in _SVDQ_CHOICES[key]:
                    raise ConfigError(
                        f"QuantizeConfig.svdq_kwargs[{key!r}]",
                        value,
                        "one of " + ", ".join(_SVDQ_CHOICES[key]),
                    )
        if qt is not None and self.is_svdq():
            self._validate_svdq()

    def _validate_svdq(self) -> None:
        kwargs = self.get_svdq_kwargs()
        if self.components_to_quantize is not None:
            raise ConfigError(
                "QuantizeConfig.components_to_quantize",
                self.components_to_quantize,
                "None with SVDQuant types",
                fix="quantize one transformer at a time",
            )
        if self.precision_plan is not None:
            raise ConfigError(
                "QuantizeConfig.precision_plan", self.precision_plan, "None with SVDQuant types"
            )
        if self.per_tensor_fallback is False:
            raise ConfigError(
                "QuantizeConfig.per_tensor_fallback", False, "True with SVDQuant types"
            )
        if self.get_svdq_precision() == "nvfp4" and kwargs["runtime_kernel"] != "v1":
            raise ConfigError(
                "QuantizeConfig.svdq_kwargs['runtime_kernel']",
                kwargs["runtime_kernel"],
                "'v1' for NVFP4",
            )
        if self.is_svdq_dq():
            if self.calibrate_fn is not None:
                raise ConfigError(
                    "QuantizeConfig.calibrate_fn",
                    "<function>",
                    "None for dynamic (_dq) SVDQuant types",
                    fix="drop calibrate_fn, or use the PTQ type without _dq",
                )
            if kwargs["smooth_strategy"] not in _DQ_SMOOTH_STRATEGIES:
                raise ConfigError(
                    "QuantizeConfig.svdq_kwargs['smooth_strategy']",
                    kwargs["smooth_strategy"],
                    "one of " + ", ".join(_DQ_SMOOTH_STRATEGIES) + " for _dq types",
                )
        elif kwargs["smooth_strategy"] != "activation":
            raise ConfigError(
                "QuantizeConfig.svdq_kwargs['smooth_strategy']",
                kwargs["smooth_strategy"],
                "'activation' for SVDQuant PTQ",
            )

    # -- SVDQuant helpers ---------------------------------------------------------------
    def is_svdq(self) -> bool:
        return isinstance(self.quant_type, str) and self.quant_type.startswith("svdq")

    def is_svdq_dq(self) -> bool:
        return self.is_svdq() and self.quant_type.endswith("_dq")

    def is_svdq_ptq(self) -> bool:
        return self.is_svdq() and not self.is_svdq_dq()

    def is_svdq_dq_few_shot(self) -> bool:
        return self.is_svdq_dq() and self.get_svdq_kwargs()["smooth_strategy"] == "few_shot"

    def _svdq_match(self) -> re.Match[str]:
        match = _SVDQ_TYPE.match(self.quant_type or "")
        if match is None:
            raise ConfigError("QuantizeConfig.quant_type", self.quant_type, "an svdq_* type")
        return match

    def get_svdq_rank(self) -> int:
        return int(self._svdq_match().group(2))

    def get_svdq_precision(self) -> str:
        return self._svdq_match().group(1)

    def get_svdq_kwargs(self) -> dict[str, Any]:
        """``svdq_kwargs`` over the defaults (``_dq`` types default to the identity smoothing)."""
        resolved = dict(SVDQ_KWARGS_DEFAULTS)
        if self.is_svdq_dq():
            resolved["smooth_strategy"] = "identity"
        resolved.update(self.svdq_kwargs or {})
        return resolved

    def strify(self) -> str:
        """The run tag, e.g. ``float8_per_row`` or ``<transformer:float8_per_row>``."""

        def tag(quant_type: str) -> str:
            if not quant_type.startswith("svdq"):
                return quant_type
            kwargs = self.get_svdq_kwargs()
            if quant_type.endswith("_dq") and kwargs["smooth_strategy"] != "identity":
                quant_type += f"_{kwargs['smooth_strategy']}"
                if kwargs["smooth_strategy"] == "few_shot":
                    quant_type += f"_{kwargs['few_shot_relax_strategy']}"
            if kwargs["fused_mlp"]:
                quant_type += "_fused_mlp"
            return quant_type

        if isinstance(self.components_to_quantize, dict):
            return "".join(
                f"<{name}:{tag((spec or {}).get('quant_type', self.quant_type))}>"
                for name, spec in self.components_to_quantize.items()
            )
        return tag(self.quant_type)
