"""``ParallelismConfig``: how a transformer is spread over several devices.

The fields, defaults and run tags follow cache-dit 1.5.3. This module only describes and checks
the request; ``ditkit_parallel`` builds device meshes and checks sizes against the world size
when it applies the config (so importing this needs no ``torch.distributed``).

Example:
    >>> from ditkit_interfaces.parallel_config import ParallelismConfig
    >>> cfg = ParallelismConfig(ulysses_size=4, ulysses_anything=True, tp_size=2)
    >>> cfg.backend, cfg.strify(), cfg.world_size
    (<ParallelismBackend.NATIVE_HYBRID: 'Native_Hybrid'>, 'Ulysses4_UAA_TP2', 8)
"""

from __future__ import annotations

import dataclasses
import enum
import warnings
from typing import Any

from .config import ConfigBase, check_choice, check_int
from .errors import ConfigError

__all__ = ["ParallelismBackend", "ParallelismConfig"]

EXTRA_PARALLEL_MODULE_NAMES = ("text_encoder", "vae", "controlnet")


class ParallelismBackend(enum.Enum):
    """Which runtime applies the parallelism."""

    AUTO = "Auto"
    CACHE_DIT = "CACHE_DIT"  # context parallelism (Ulysses / Ring / USP)
    NATIVE_DIFFUSER = "Native_Diffuser"  # alias of CACHE_DIT
    NATIVE_PYTORCH = "Native_PyTorch"  # tensor parallelism (DTensor)
    NATIVE_HYBRID = "Native_Hybrid"  # context × tensor parallelism
    NONE = "None"

    @classmethod
    def canonicalize(cls, backend: ParallelismBackend) -> ParallelismBackend:
        return cls.CACHE_DIT if backend == cls.NATIVE_DIFFUSER else backend

    @classmethod
    def from_str(cls, text: str | ParallelismBackend) -> ParallelismBackend:
        if isinstance(text, cls):
            return text
        for member in cls:
            if text.strip().lower() in (member.value.lower(), member.name.lower()):
                return member
        valid = ", ".join(m.name for m in cls)
        raise ConfigError("ParallelismConfig.backend", text, f"one of {valid}")

    def __str__(self) -> str:
        return self.value


@dataclasses.dataclass
class ParallelismConfig(ConfigBase):
    """Context and tensor parallelism for the transformer (and extra modules).

    Args:
        backend (`ParallelismBackend`, defaults to `AUTO`): ``AUTO`` picks context parallelism
            for Ulysses/Ring, tensor parallelism for TP, hybrid for both, and ``NONE`` when no
            size is above 1 (cache-dit raised "No parallelism is enabled" there).
        ulysses_size, ring_size, tp_size (`int`, *optional*): the degree of each kind (>= 1).
        ulysses_anything (`bool`): any sequence length / head count, without padding
            (ditkit handles uneven lengths and heads in every mode, USP included, with or
            without it; cache-dit refused it with ring_size > 1).
        ulysses_float8 (`bool`): FP8 all-to-all for Q, V and O.
        ulysses_async (`bool`): overlap the QKV projections with the all-to-all.
        ulysses_head_chunks (`int`, defaults to 1; ditkit only): attend in this many groups of
            heads, each group's all-to-alls overlapping another group's attention (used when
            every rank's head count divides by it; 1 = one all-to-all per tensor).
        ulysses_overlap_output (`bool`, defaults to `False`; ditkit only): attend the other
            ranks' queries first and send their output all-to-all while this rank's own queries
            are attended (used with ``ring_size`` 1, no float8, every rank holding a head).
        ulysses_copy_engine (`bool`, defaults to `False`; ditkit only): move the Ulysses
            all-to-alls with the GPUs' copy engines through symmetric memory (peer copies over
            NVLink, no SMs) instead of NCCL kernels; the Ulysses group's ranks must share a host.
        ring_rotate_method (`str`, defaults to `"p2p"`): how K/V travel around the ring:
            ``"p2p"`` (rotate the shards) or ``"allgather"`` (gather all K/V once).
        ring_convert_to_fp32 (`bool`, defaults to `True`): merge ring partials in float32.
        extra_parallel_modules (`list`): ``"text_encoder"``, ``"vae"``, ``"controlnet"`` or modules.
        attention_backend (`str`, *optional*): attention kernel used under parallelism.
        cp_plan (*optional*): a context-parallel plan overriding the registered one.
        use_ray and the ``ray_*`` fields: run on Ray workers (multi-node).
        parallel_kwargs (`dict`, deprecated): old-style options, flattened into the fields.
    """

    backend: ParallelismBackend | str = ParallelismBackend.AUTO
    ulysses_size: int | None = None
    ring_size: int | None = None
    tp_size: int | None = None
    use_ray: bool = False
    ray_num_workers: int | None = None
    ray_address: str | None = None
    ray_runtime_env: dict[str, Any] | None = None
    ray_init_kwargs: dict[str, Any] = dataclasses.field(
        default_factory=lambda: {"include_dashboard": False}
    )
    ray_worker_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    ray_master_port: int = 0
    ray_auto_shutdown: bool = True
    ray_transfer_backend: str = "auto"
    ray_transfer_custom_obj: bool = True
    ray_use_flashpack: bool = False
    ray_use_compile: bool = False
    ray_transfer_fn: Any = None
    cp_plan: Any = None
    attention_backend: str | None = None
    ulysses_anything: bool = False
    ulysses_float8: bool = False
    ulysses_async: bool = False
    ulysses_head_chunks: int = 1
    ulysses_overlap_output: bool = False
    ulysses_copy_engine: bool = False
    extra_parallel_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    ring_rotate_method: str = "p2p"
    ring_convert_to_fp32: bool = True
    extra_parallel_modules: list[Any] = dataclasses.field(default_factory=list)
    parallel_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self._flatten_parallel_kwargs()
        self._normalize()
        super().__post_init__()

    def _flatten_parallel_kwargs(self) -> None:
        if not self.parallel_kwargs:
            return
        warnings.warn(
            "ParallelismConfig(parallel_kwargs=...) is deprecated: pass the options as fields, "
            "e.g. ParallelismConfig(ulysses_anything=True)",
            DeprecationWarning,
            stacklevel=4,
        )
        for key, value in dict(self.parallel_kwargs).items():
            field = key.replace("experimental_ulysses_", "ulysses_")
            if field not in self.field_names() or field == "parallel_kwargs":
                raise ConfigError(
                    f"ParallelismConfig.parallel_kwargs[{key!r}]",
                    value,
                    "a ParallelismConfig field",
                )
            setattr(self, field, value)
        self.parallel_kwargs = {}

    def _normalize(self) -> None:
        if self.backend is None:
            return
        backend = ParallelismBackend.canonicalize(ParallelismBackend.from_str(self.backend))
        if backend == ParallelismBackend.AUTO:
            if self.cp_enabled() and self.tp_enabled():
                backend = ParallelismBackend.NATIVE_HYBRID
            elif self.cp_enabled():
                backend = ParallelismBackend.CACHE_DIT
            elif self.tp_enabled():
                backend = ParallelismBackend.NATIVE_PYTORCH
            else:
                backend = ParallelismBackend.NONE
        self.backend = backend

    def validate(self) -> None:
        for size in ("ulysses_size", "ring_size", "tp_size", "ray_num_workers"):
            check_int(self, size, minimum=1)
        check_int(self, "ulysses_head_chunks", minimum=1)
        check_int(self, "ray_master_port", minimum=0)
        check_choice(self, "ring_rotate_method", ("p2p", "allgather"))
        check_choice(self, "ray_transfer_backend", ("auto", "file", "object_store"))
        modules = self.extra_parallel_modules
        if modules is not None and not isinstance(modules, list | tuple):
            raise ConfigError(
                "ParallelismConfig.extra_parallel_modules",
                modules,
                f"a list of module names ({', '.join(EXTRA_PARALLEL_MODULE_NAMES)}) or modules",
            )

    # -- what is enabled ---------------------------------------------------------------
    def cp_enabled(self) -> bool:
        return (self.ulysses_size or 1) > 1 or (self.ring_size or 1) > 1

    def tp_enabled(self) -> bool:
        return (self.tp_size or 1) > 1

    def usp_enabled(self) -> bool:
        return (self.ulysses_size or 1) > 1 and (self.ring_size or 1) > 1

    def hybrid_enabled(self) -> bool:
        return self.cp_enabled() and self.tp_enabled()

    def enabled(self) -> bool:
        return self.cp_enabled() or self.tp_enabled() or bool(self.use_ray)

    def extra_module_world_size(self) -> int:
        """The ranks an extra module (text encoder, VAE, ControlNet) is spread over.

        The whole transformer layout for hybrid and USP meshes, the larger of Ulysses and Ring
        for plain context parallelism, the TP degree for tensor parallelism, else 1.
        """
        ulysses, ring, tp = self.ulysses_size or 1, self.ring_size or 1, self.tp_size or 1
        if self.hybrid_enabled():
            return ulysses * ring * tp
        if self.usp_enabled():
            return ulysses * ring
        if self.cp_enabled():
            return max(ulysses, ring)
        return tp if self.tp_enabled() else 1

    @property
    def text_encoder_world_size(self) -> int:
        return self.extra_module_world_size()

    @property
    def auto_encoder_world_size(self) -> int:
        return self.extra_module_world_size()

    @property
    def vae_world_size(self) -> int:
        """cache-dit's property returned itself (infinite recursion); here it is the VAE's size."""
        return self.extra_module_world_size()

    @property
    def controlnet_world_size(self) -> int:
        return self.extra_module_world_size()

    @property
    def world_size(self) -> int:
        """The number of ranks the transformer layout needs (product of the sizes)."""
        return (self.ulysses_size or 1) * (self.ring_size or 1) * (self.tp_size or 1)

    def strify(
        self,
        details: bool = False,
        text_encoder: bool = False,
        vae: bool = False,
        controlnet: bool = False,
    ) -> str:
        """cache-dit's tag, e.g. ``Ulysses4_UAA_F8_UAS_TP2_TEP_VAEP_CNP``."""
        if details:
            parts = [f"backend={self.backend}"]
            for name in ("ulysses_size", "ring_size", "tp_size"):
                if getattr(self, name) is not None:
                    parts.append(f"{name}={getattr(self, name)}")
            for flag in (
                "ulysses_anything",
                "ulysses_float8",
                "ulysses_async",
                "ulysses_overlap_output",
                "ulysses_copy_engine",
            ):
                if getattr(self, flag):
                    parts.append(f"{flag}=True")
            return f"ParallelismConfig({', '.join(parts)})"
        tags = []
        if self.ulysses_size is not None:
            tags.append(f"Ulysses{self.ulysses_size}")
        if self.ring_size is not None:
            tags.append(f"Ring{self.ring_size}")
        if self.ulysses_anything:
            tags.append("UAA")
            if self.ulysses_float8:
                tags.append("F8")
        elif self.ulysses_float8:
            tags.append("UF8")
        if self.ulysses_async:
            tags.append("UAS")
        if self.tp_size is not None:
            tags.append(f"TP{self.tp_size}")
        names = {m for m in self.extra_parallel_modules or [] if isinstance(m, str)}
        if text_encoder or "text_encoder" in names:
            tags.append("TEP")
        if vae or "vae" in names:
            tags.append("VAEP")
        if controlnet or "controlnet" in names:
            tags.append("CNP")
        return "_".join(tags)
