"""Load cache and calibrator configs from cache-dit's YAML / dict schema.

The schema is cache-dit 1.5.3's: a top-level ``cache_config:`` section holds the cache fields
*flat*, plus calibrator switches::

    cache_config:
      Fn_compute_blocks: 1
      residual_diff_threshold: 0.12
      num_inference_steps: 28
      steps_computation_mask: fast     # a policy name needs num_inference_steps
      enable_taylorseer: true          # or enable_dmd / enable_foca (one of them)
      taylorseer_order: 1

``cache_type: DBPrune`` selects :class:`DBPruneConfig` (default :class:`DBCacheConfig`). A source
with only ``parallelism_config`` / ``attention_backend`` / ``quantize_config`` gives
``(None, None)``; a source without any section is read as flat cache options (the legacy
format ``refresh_context`` uses). Unlike cache-dit, unknown keys raise a :class:`ConfigError`
with a "did you mean" hint instead of being dropped (docs/compat.md).

Example:
    >>> from ditkit_cache.config_loading import load_cache_config
    >>> cache, calibrator = load_cache_config(
    ...     {"cache_config": {"Fn_compute_blocks": 1, "enable_taylorseer": True}})
    >>> cache.strify(), calibrator.strify(), calibrator.enable_encoder_calibrator
    ('DBCache_F1B0_W8I1M0MC0_R0.08', 'T1O1', False)
    >>> load_cache_config({"parallelism_config": {"ulysses_size": 2}})
    (None, None)
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
from collections.abc import Mapping
from typing import Any

from ditkit_interfaces import (
    BasicCacheConfig,
    CacheType,
    CalibratorConfig,
    ConfigError,
    DBCacheConfig,
    DBPruneConfig,
    DMDCalibratorConfig,
    FoCaCalibratorConfig,
    TaylorSeerCalibratorConfig,
    cache_type,
)

from .steps_mask import steps_mask

__all__ = ["CACHE_SECTION", "OTHER_SECTIONS", "load_cache_config", "read_config_source"]

CACHE_SECTION = "cache_config"
#: Top-level sections that belong to other loaders (``ditkit.load_configs`` reads them).
OTHER_SECTIONS = ("parallelism_config", "attention_backend", "quantize_config")
# Options of ditkit.load_configs that it forwards to every loader; the cache loader ignores them.
_SIBLING_LOADER_OPTIONS = frozenset({"check_only", "auto_parallel_size"})

_FOLLOW_SWITCH = object()  # the encoder flag defaults to the switch's own value


@dataclasses.dataclass(frozen=True)
class _CalibratorSwitch:
    """How one ``enable_<name>`` switch maps the flat keys onto a calibrator config."""

    config_class: type[CalibratorConfig]
    encoder_key: str
    encoder_default: Any
    # flat key -> (config field, default the loader applies when the key is absent)
    options: dict[str, tuple[str, Any]]


_CALIBRATOR_SWITCHES: dict[str, _CalibratorSwitch] = {
    "enable_taylorseer": _CalibratorSwitch(
        TaylorSeerCalibratorConfig,
        "enable_encoder_taylorseer",
        False,
        {
            "taylorseer_cache_type": ("calibrator_cache_type", "residual"),
            "taylorseer_order": ("taylorseer_order", 1),
        },
    ),
    "enable_dmd": _CalibratorSwitch(
        DMDCalibratorConfig,
        "enable_encoder_dmd",
        _FOLLOW_SWITCH,
        {
            "calibrator_cache_type": ("calibrator_cache_type", "residual"),
            "dmd_history": ("dmd_history", 6),
            "dmd_rank": ("dmd_rank", 0),
            "dmd_ridge": ("dmd_ridge", 1e-8),
            "dmd_svd_precision": ("dmd_svd_precision", "medium"),
        },
    ),
    "enable_foca": _CalibratorSwitch(
        FoCaCalibratorConfig,
        "enable_encoder_foca",
        False,
        {"calibrator_cache_type": ("calibrator_cache_type", "residual")},
    ),
}
#: Every flat key that configures a calibrator rather than the cache.
CALIBRATOR_KEYS = frozenset(
    key
    for name, switch in _CALIBRATOR_SWITCHES.items()
    for key in (name, switch.encoder_key, *switch.options)
)
_CACHE_CLASSES: dict[CacheType, type[BasicCacheConfig]] = {
    CacheType.DBCache: DBCacheConfig,
    CacheType.DBPrune: DBPruneConfig,
}


def load_cache_config(
    path_or_dict: str | os.PathLike[str] | Mapping[str, Any],
    reset: bool = False,
    **kwargs: Any,
) -> tuple[BasicCacheConfig | None, CalibratorConfig | None]:
    """Read ``(cache_config, calibrator_config)`` from a YAML file or a dict.

    Args:
        path_or_dict (`str`, `os.PathLike` or `Mapping`): a YAML file, or its parsed content
            (not modified).
        reset (`bool`, defaults to `False`): build partial configs (every cache field ``None``
            except the given ones) for merging into an existing config, as ``refresh_context``
            and ``ParamsModifier`` do. An enabled calibrator still gets the loader's defaults for
            its options, as in cache-dit.
        **kwargs: ``check_only`` / ``auto_parallel_size``, the options ``load_configs`` passes to
            every loader, are accepted and ignored here; anything else is a ``TypeError``.

    Returns:
        `tuple`: a :class:`DBCacheConfig` or :class:`DBPruneConfig` (``None`` when the source only
        configures parallelism, attention or quantization, or says ``cache_config: null``) and a
        calibrator config (``None`` unless a switch is on).

    Raises:
        ConfigError: unknown keys, two calibrator switches on, a policy mask without
            ``num_inference_steps``, an unsupported ``cache_type``, or an invalid value.
        FileNotFoundError: the file does not exist.

    Example:
        >>> cache, _ = load_cache_config(
        ...     {"num_inference_steps": 50, "Fn_compute_blocks": 2}, reset=True)
        >>> cache.num_inference_steps, cache.Fn_compute_blocks, cache.max_warmup_steps
        (50, 2, None)
    """
    unexpected = set(kwargs) - _SIBLING_LOADER_OPTIONS
    if unexpected:
        raise TypeError(
            f"load_cache_config() got unexpected keyword arguments {sorted(unexpected)}"
        )
    if not isinstance(reset, bool):
        raise ConfigError("reset", reset, "True or False")
    data = read_config_source(path_or_dict)
    if CACHE_SECTION in data:
        _reject_unknown_sections(data)
        section = data[CACHE_SECTION]
        if section is None:
            return None, None
        if not isinstance(section, Mapping):
            raise ConfigError(CACHE_SECTION, section, "a mapping of cache options")
        return _parse_options(dict(section), reset, where=CACHE_SECTION)
    sections = [key for key in OTHER_SECTIONS if key in data]
    if sections:
        stray = sorted(set(data) - set(OTHER_SECTIONS))
        if stray:
            raise ConfigError(
                stray[0],
                data[stray[0]],
                f"a key under one of the sections {CACHE_SECTION}, {', '.join(OTHER_SECTIONS)}",
                fix=f"indent {', '.join(stray)} under '{CACHE_SECTION}:' (cache-dit ignored "
                "top-level cache options whenever another section was present)",
            )
        return None, None
    return _parse_options(data, reset, where="flat cache options")


def read_config_source(path_or_dict: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of the dict, or the parsed YAML file; the top level must be a mapping.

    Example:
        >>> read_config_source({"cache_config": {"Fn_compute_blocks": 1}})
        {'cache_config': {'Fn_compute_blocks': 1}}
    """
    if isinstance(path_or_dict, Mapping):
        return copy.deepcopy(dict(path_or_dict))
    if not isinstance(path_or_dict, str | os.PathLike):
        raise ConfigError(
            "path_or_dict", path_or_dict, "a YAML file path or a dict of config sections"
        )
    import yaml

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
            "a YAML mapping with a cache_config (or other config) section",
            fix="see docs/compat.md for the schema" if data is not None else "the file is empty",
        )
    return dict(data)


# -- parsing ------------------------------------------------------------------------------
def _reject_unknown_sections(data: Mapping[str, Any]) -> None:
    sections = (CACHE_SECTION, *OTHER_SECTIONS)
    for key in data:
        if key not in sections:
            close = difflib.get_close_matches(str(key), sections, n=1)
            raise ConfigError(
                str(key),
                data[key],
                "a top-level section: " + ", ".join(sections),
                fix=f"did you mean {close[0]!r}?" if close else "remove it or nest it in a section",
            )


def _parse_options(
    options: dict[str, Any], reset: bool, where: str
) -> tuple[BasicCacheConfig, CalibratorConfig | None]:
    calibrator = _calibrator_config(options, reset, where)
    cache_options = {k: v for k, v in options.items() if k not in CALIBRATOR_KEYS}
    config_class = _cache_class(cache_options.pop("cache_type", None), where)
    _reject_unknown(cache_options, config_class, where)
    mask = cache_options.get("steps_computation_mask")
    if isinstance(mask, str):
        steps = cache_options.get("num_inference_steps")
        if steps is None:
            raise ConfigError(
                f"{where}.steps_computation_mask",
                mask,
                "a list of 0/1, or a policy name together with num_inference_steps",
                fix=f"add 'num_inference_steps: <steps>' next to 'steps_computation_mask: {mask}'",
            )
        cache_options["steps_computation_mask"] = steps_mask(mask_policy=mask, total_steps=steps)
    config = config_class()
    if reset:
        return config.reset(**cache_options), calibrator
    return config.update(**cache_options), calibrator


def _cache_class(hint: Any, where: str) -> type[BasicCacheConfig]:
    if hint is None:
        return DBCacheConfig
    kind = cache_type(hint)
    if kind not in _CACHE_CLASSES:
        raise ConfigError(
            f"{where}.cache_type",
            hint,
            "DBCache or DBPrune",
            fix=f"remove the {CACHE_SECTION} section (or pass no cache config) to disable caching",
        )
    return _CACHE_CLASSES[kind]


def _reject_unknown(
    options: Mapping[str, Any], config_class: type[BasicCacheConfig], where: str
) -> None:
    fields = config_class.field_names()
    known = (*fields, "cache_type", *sorted(CALIBRATOR_KEYS))
    for key in options:
        if key in fields:
            continue
        if key in DBPruneConfig.field_names():
            fix = f"set 'cache_type: DBPrune' to use {key}"
        else:
            close = difflib.get_close_matches(str(key), known, n=1)
            fix = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(known)}"
        raise ConfigError(
            f"{where}.{key}",
            options[key],
            f"a {config_class.__name__} field or a calibrator switch",
            fix=f"{fix} (cache-dit silently ignored unknown keys)",
        )


def _calibrator_config(
    options: Mapping[str, Any], reset: bool, where: str
) -> CalibratorConfig | None:
    enabled = []
    for name in _CALIBRATOR_SWITCHES:
        value = options.get(name, False)
        if value is None:
            value = False
        if not isinstance(value, bool):
            raise ConfigError(f"{where}.{name}", value, "true or false")
        if value:
            enabled.append(name)
    if len(enabled) > 1:
        raise ConfigError(
            f"{where}.{enabled[1]}",
            True,
            f"false while {enabled[0]} is true (calibrators are mutually exclusive)",
            fix=f"keep only one of {', '.join(_CALIBRATOR_SWITCHES)} set to true",
        )
    if not enabled:
        return None
    switch = _CALIBRATOR_SWITCHES[enabled[0]]
    encoder_default = True if switch.encoder_default is _FOLLOW_SWITCH else switch.encoder_default
    fields: dict[str, Any] = {
        "enable_calibrator": True,
        "enable_encoder_calibrator": options.get(switch.encoder_key, encoder_default),
    }
    for key, (field, default) in switch.options.items():
        fields[field] = options.get(key, default)
    if reset:
        return switch.config_class().reset(**fields)
    return switch.config_class(**fields)
