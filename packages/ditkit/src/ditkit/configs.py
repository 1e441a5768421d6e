"""``load_configs``: every ditkit config from one YAML file or dict (cache-dit's schema).

A file has up to four top-level sections::

    cache_config:        # flat cache fields + calibrator switches (ditkit_cache.config_loading)
      Fn_compute_blocks: 1
      enable_taylorseer: true
    parallelism_config:  # ParallelismConfig fields; ulysses/ring/tp aliases; one size may be auto
      ulysses_size: auto
      extra_parallel_modules: [text_encoder, vae]
    attention_backend: native
    quantize_config:     # QuantizeConfig fields
      quant_type: float8_per_row

The cache part needs ``ditkit-cache`` (imported only when the source has cache options); the
other sections are parsed here into the ``ditkit_interfaces`` dataclasses. Deliberate
differences from cache-dit 1.5.3 are listed in docs/compat.md ("Steps mask and config loading").

Example:
    >>> from ditkit.configs import load_configs
    >>> configs = load_configs({"parallelism_config": {"ulysses": 2, "ring": 2},
    ...                         "quantize_config": {"quant_type": "float8"}})
    >>> configs["parallelism_config"].strify(), configs["quantize_config"].quant_type
    ('Ulysses2_Ring2', 'float8_per_row')
    >>> configs["cache_config"], configs["attention_backend"]
    (None, None)
"""

from __future__ import annotations

import copy
import difflib
import importlib
import importlib.util
import math
import os
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ditkit_interfaces import (
    ConfigError,
    MissingComponentError,
    ParallelismBackend,
    ParallelismConfig,
    QuantizeConfig,
)
from ditkit_interfaces.capabilities import require

__all__ = [
    "CONFIG_KEYS",
    "SECTIONS",
    "load_attn_backend_config",
    "load_configs",
    "load_parallelism_config",
    "load_quantize_config",
    "world_size",
]

#: The top-level sections a config source may have.
SECTIONS = ("cache_config", "parallelism_config", "attention_backend", "quantize_config")
#: The keys of ``load_configs(..., return_dict=True)``, in the order of the tuple form.
CONFIG_KEYS = (
    "cache_config",
    "calibrator_config",
    "parallelism_config",
    "attention_backend",
    "quantize_config",
)
_SIZE_ALIASES = {"ulysses": "ulysses_size", "ring": "ring_size", "tp": "tp_size"}
# The YAML spellings of cache-dit's CLI shortcuts (--float8, --int8); cache-dit's example
# combined.yaml says quant_type: "float8", which cache-dit itself only rejects when quantizing.
_QUANT_TYPE_ALIASES = {"float8": "float8_per_row", "int8": "int8_per_row"}

Source = str | os.PathLike[str] | Mapping[str, Any]


def load_configs(
    path_or_dict: Source,
    return_dict: bool = True,
    **kwargs: Any,
) -> dict[str, Any] | tuple[Any, Any, Any, Any, Any]:
    """Read the cache, calibrator, parallelism, attention and quantize configs.

    Args:
        path_or_dict (`str`, `os.PathLike` or `Mapping`): a YAML file or its parsed content.
        return_dict (`bool`, defaults to `True`): a dict keyed by :data:`CONFIG_KEYS`, or the
            5-tuple in that order.
        **kwargs: ``reset`` (`bool`) builds partial cache configs (see
            ``ditkit_cache.load_cache_config``); ``auto_parallel_size`` (`bool`, defaults to
            `True`) resolves ``"auto"`` sizes from the world size.

    Returns:
        `dict` or `tuple`: absent sections give ``None``.

    Raises:
        ConfigError: an unknown section or key, or an invalid value (the message names it).
        MissingComponentError: the source has cache options but ``ditkit-cache`` is missing.

    Example:
        >>> load_configs({"attention_backend": "native"}, return_dict=False)
        (None, None, None, 'native', None)
    """
    reset = kwargs.pop("reset", False)
    auto_parallel_size = kwargs.pop("auto_parallel_size", True)
    if kwargs:
        raise TypeError(f"load_configs() got unexpected keyword arguments {sorted(kwargs)}")
    data = _read_source(path_or_dict)
    has_sections = any(key in data for key in SECTIONS)
    if has_sections:
        _reject_unknown_sections(data)
    cache_config = calibrator_config = None
    if "cache_config" in data or not has_sections:  # sectioned, or the legacy flat options
        loader = _cache_loader()
        cache_config, calibrator_config = loader.load_cache_config(data, reset=reset)
    configs = (
        cache_config,
        calibrator_config,
        load_parallelism_config(data, auto_parallel_size=auto_parallel_size),
        load_attn_backend_config(data),
        load_quantize_config(data),
    )
    return dict(zip(CONFIG_KEYS, configs, strict=True)) if return_dict else configs


def load_parallelism_config(
    path_or_dict: Source,
    check_only: bool = False,
    auto_parallel_size: bool = True,
) -> ParallelismConfig | bool | None:
    """The ``parallelism_config`` section as a :class:`ParallelismConfig` (``None`` if absent).

    ``ulysses``/``ring``/``tp`` are accepted for the ``*_size`` fields and ``backend`` may be a
    string. One size may be ``"auto"``: the world size divided by the product of the others.
    With ``check_only=True`` only whether the section exists is returned.

    Example:
        >>> cfg = load_parallelism_config({"parallelism_config": {"tp": 2, "backend": "auto"}})
        >>> cfg.tp_size, cfg.backend
        (2, <ParallelismBackend.NATIVE_PYTORCH: 'Native_PyTorch'>)
    """
    data = _read_source(path_or_dict)
    if check_only:
        return "parallelism_config" in data
    options = _section(data, "parallelism_config")
    if options is None:
        return None
    for alias, field in _SIZE_ALIASES.items():
        if alias not in options:
            continue
        value = options.pop(alias)
        if field in options and options[field] != value:
            raise ConfigError(
                f"parallelism_config.{alias}",
                value,
                f"the same value as {field} ({options[field]!r}) when both are given",
                fix=f"keep only one of {alias} and {field}",
            )
        options[field] = value
    if isinstance(options.get("backend"), str):
        options["backend"] = ParallelismBackend.from_str(options["backend"])
    _resolve_auto_size(options, auto_parallel_size)
    return ParallelismConfig.from_dict(options)


def load_attn_backend_config(path_or_dict: Source) -> str | None:
    """The top-level ``attention_backend`` string, or ``None``.

    Example:
        >>> load_attn_backend_config({"attention_backend": "_flash_3"})
        '_flash_3'
    """
    value = _read_source(path_or_dict).get("attention_backend")
    if value is not None and not isinstance(value, str):
        raise ConfigError(
            "attention_backend", value, "a backend name such as 'native' or '_flash_3'"
        )
    return value


def load_quantize_config(path_or_dict: Source) -> QuantizeConfig | None:
    """The ``quantize_config`` section as a :class:`QuantizeConfig` (``None`` if absent).

    Keys set to ``null`` keep their default (as in cache-dit); unknown keys raise (cache-dit
    dropped them, so a typo silently quantized with the defaults). ``quant_type: float8`` /
    ``int8`` mean the per-row types, as the CLI's ``--float8`` / ``--int8`` do.

    Example:
        >>> cfg = load_quantize_config({"quantize_config": {"quant_type": "int8", "verbose": None}})
        >>> cfg.quant_type, cfg.backend, cfg.verbose
        ('int8_per_row', <QuantizeBackend.TORCHAO: 'torchao'>, False)
    """
    options = _section(_read_source(path_or_dict), "quantize_config")
    if options is None:
        return None
    options = {key: value for key, value in options.items() if value is not None}
    if "quant_type" in options:
        options["quant_type"] = _canonical_quant_type(options["quant_type"])
    components = options.get("components_to_quantize")
    if isinstance(components, Mapping):
        options["components_to_quantize"] = {
            name: _with_canonical_quant_type(spec) for name, spec in components.items()
        }
    return QuantizeConfig.from_dict(options)


def world_size() -> tuple[int, str]:
    """``(size, where it came from)``: ``torch.distributed`` if initialized, else ``WORLD_SIZE``.

    Without either, the size is 1 (a single process).

    Example:
        >>> size, source = world_size()
        >>> size >= 1, source in ("torch.distributed", "the WORLD_SIZE environment variable",
        ...                       "default")
        (True, True)
    """
    if importlib.util.find_spec("torch") is not None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_world_size(), "torch.distributed"
    text = os.environ.get("WORLD_SIZE")
    if text is None:
        return 1, "default"
    try:
        size = int(text)
    except ValueError:
        size = 0
    if size < 1:
        raise ConfigError("WORLD_SIZE", text, "a positive integer (the number of processes)")
    return size, "the WORLD_SIZE environment variable"


# -- helpers ------------------------------------------------------------------------------
def _read_source(path_or_dict: Source) -> dict[str, Any]:
    """A deep copy of the dict, or the parsed YAML file (whose top level must be a mapping)."""
    if isinstance(path_or_dict, Mapping):
        return copy.deepcopy(dict(path_or_dict))
    if not isinstance(path_or_dict, str | os.PathLike):
        raise ConfigError(
            "path_or_dict", path_or_dict, "a YAML file path or a dict of config sections"
        )
    try:
        import yaml
    except ModuleNotFoundError:
        raise MissingComponentError("load_configs from a YAML file", "pyyaml") from None
    path = os.fspath(path_or_dict)
    with open(path, encoding="utf-8") as stream:
        try:
            data = yaml.safe_load(stream)
        except yaml.YAMLError as err:
            raise ConfigError(path, "<unparsable YAML>", "a valid YAML file", fix=str(err)) from err
    if not isinstance(data, Mapping):
        raise ConfigError(
            path,
            data,
            "a YAML mapping of config sections (" + ", ".join(SECTIONS) + ")",
            fix="the file is empty" if data is None else None,
        )
    return dict(data)


def _reject_unknown_sections(data: Mapping[str, Any]) -> None:
    for key in data:
        if key not in SECTIONS:
            close = difflib.get_close_matches(str(key), SECTIONS, n=1)
            raise ConfigError(
                str(key),
                data[key],
                "a top-level section: " + ", ".join(SECTIONS),
                fix=f"did you mean {close[0]!r}?"
                if close
                else "indent it under the section it belongs to",
            )


def _section(data: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    section = data.get(name)
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise ConfigError(name, section, f"a mapping of {name} fields")
    return dict(section)


def _cache_loader() -> ModuleType:
    require("cache", "load_configs with cache options")
    try:
        return importlib.import_module("ditkit_cache.config_loading")
    except ModuleNotFoundError as err:
        if err.name != "ditkit_cache.config_loading":
            raise
        raise MissingComponentError(
            "load_configs with cache options",
            "ditkit-cache",
            "pip install -U ditkit-cache",
            reason="the installed version has no config loader",
        ) from None


def _is_auto(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() == "auto"


def _resolve_auto_size(options: dict[str, Any], enabled: bool) -> None:
    """Replace the one ``"auto"`` size by the world size over the product of the others."""
    sizes = [field for field in ("ulysses_size", "ring_size", "tp_size") if field in options]
    autos = [field for field in sizes if _is_auto(options[field])]
    if not autos:
        return
    if not enabled:
        raise ConfigError(
            f"parallelism_config.{autos[0]}",
            options[autos[0]],
            "an integer when auto_parallel_size=False",
            fix="give the size, or load with auto_parallel_size=True",
        )
    if len(autos) > 1:
        raise ConfigError(
            f"parallelism_config.{autos[1]}",
            options[autos[1]],
            f"an integer: only one size may be 'auto' ({autos[0]} already is)",
            fix="give every size but one explicitly",
        )
    auto = autos[0]
    others = []
    for field in sizes:
        if field == auto or options[field] is None:
            continue
        value = options[field]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"parallelism_config.{field}", value, "an integer >= 1 or 'auto'")
        others.append(value)
    fixed = math.prod(others)
    size, source = world_size()
    if size % fixed:
        raise ConfigError(
            f"parallelism_config.{auto}",
            options[auto],
            f"a size that fits the world: the world size {size} (from {source}) is not a "
            f"multiple of the other sizes' product {fixed}",
            fix=f"launch a multiple of {fixed} processes (e.g. torchrun --nproc-per-node "
            f"{fixed * 2}), or give {auto} explicitly",
        )
    options[auto] = size // fixed


def _canonical_quant_type(value: Any) -> Any:
    if isinstance(value, str):
        return _QUANT_TYPE_ALIASES.get(value.strip().lower(), value)
    return value


def _with_canonical_quant_type(spec: Any) -> Any:
    if isinstance(spec, Mapping) and "quant_type" in spec:
        return {**spec, "quant_type": _canonical_quant_type(spec["quant_type"])}
    return spec
