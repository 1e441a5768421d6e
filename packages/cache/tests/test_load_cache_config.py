"""``load_cache_config`` against results recorded from cache-dit 1.5.3.

The expected values below were produced by cache-dit 1.5.3's ``load_cache_config`` on the same
inputs (YAML files from its ``examples/configs`` and hand-written dicts); cache-dit is not needed
to run these tests. The only recorded difference is deliberate: with ``reset=True`` ditkit keeps
``cache_type`` (the field that identifies the config) where cache-dit sets it to ``None``.
"""

import textwrap

import pytest

from ditkit_cache.config_loading import CALIBRATOR_KEYS, load_cache_config, read_config_source
from ditkit_cache.steps_mask import steps_mask
from ditkit_interfaces import (
    CacheType,
    ConfigError,
    DBCacheConfig,
    DBPruneConfig,
    DMDCalibratorConfig,
    FoCaCalibratorConfig,
    TaylorSeerCalibratorConfig,
)

DBCACHE = DBCacheConfig().as_dict()
ALL_NONE = dict.fromkeys(DBCACHE) | {"cache_type": CacheType.DBCache}

# cache-dit's examples/configs/*.yaml without comments (combined.yaml as reference §2.9 gives it,
# with quant_type float8_per_row; the repository's copy says "float8", see test_load_configs.py).
CACHE_YAML = """\
cache_config:
  max_warmup_steps: 8
  warmup_interval: 2
  max_cached_steps: -1
  max_continuous_cached_steps: 2
  Fn_compute_blocks: 1
  Bn_compute_blocks: 0
  num_inference_steps: 28
  steps_computation_mask: fast
  residual_diff_threshold: 0.12
  enable_taylorseer: true
  taylorseer_order: 1
"""
COMBINED_YAML = """\
cache_config:
  max_warmup_steps: 8
  warmup_interval: 2
  max_cached_steps: -1
  max_continuous_cached_steps: 2
  Fn_compute_blocks: 1
  Bn_compute_blocks: 0
  residual_diff_threshold: 0.12
  enable_taylorseer: true
  taylorseer_order: 1
parallelism_config:
  ulysses_size: auto
  attention_backend: native
  extra_parallel_modules: ["text_encoder", "vae"]
quantize_config:
  quant_type: "float8_per_row"
  exclude_layers:
    - "embedder"
    - "embed"
  verbose: false
"""
CACHE_DMD_YAML = """\
cache_config:
  max_warmup_steps: 8
  warmup_interval: 2
  max_cached_steps: -1
  max_continuous_cached_steps: 2
  Fn_compute_blocks: 1
  Bn_compute_blocks: 0
  residual_diff_threshold: 0.12
  enable_dmd: true
  dmd_history: 6
  dmd_svd_precision: "medium"
"""
CACHE_FOCA_YAML = """\
cache_config:
  max_warmup_steps: 8
  warmup_interval: 2
  max_cached_steps: -1
  max_continuous_cached_steps: 2
  Fn_compute_blocks: 1
  Bn_compute_blocks: 0
  residual_diff_threshold: 0.12
  enable_foca: true
"""
PARALLEL_ONLY_YAML = """\
parallelism_config:
  ulysses_size: 2
  ring_size: 2
  tp_size: 2
  attention_backend: native
"""
EXAMPLE_CACHE_FIELDS = {
    "max_warmup_steps": 8,
    "warmup_interval": 2,
    "max_cached_steps": -1,
    "max_continuous_cached_steps": 2,
    "Fn_compute_blocks": 1,
    "Bn_compute_blocks": 0,
    "residual_diff_threshold": 0.12,
}
TAYLORSEER_FROM_LOADER = {  # note enable_encoder_calibrator=False: the loader's default
    "enable_calibrator": True,
    "enable_encoder_calibrator": False,
    "calibrator_type": "taylorseer",
    "calibrator_cache_type": "residual",
    "calibrator_kwargs": {},
    "taylorseer_order": 1,
}


@pytest.fixture
def write_yaml(tmp_path):
    def write(text, name="config.yaml"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.mark.parametrize("as_str", [True, False])
def test_cache_yaml_with_a_policy_mask(write_yaml, as_str):
    path = write_yaml(CACHE_YAML)
    cache, calibrator = load_cache_config(str(path) if as_str else path)
    fast28 = [1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    assert type(cache) is DBCacheConfig
    assert cache.as_dict() == DBCACHE | EXAMPLE_CACHE_FIELDS | {
        "num_inference_steps": 28,
        "steps_computation_mask": fast28,
    }
    assert type(calibrator) is TaylorSeerCalibratorConfig
    assert calibrator.as_dict() == TAYLORSEER_FROM_LOADER


def test_combined_yaml_cache_part(write_yaml):
    cache, calibrator = load_cache_config(write_yaml(COMBINED_YAML))
    assert cache.as_dict() == DBCACHE | EXAMPLE_CACHE_FIELDS
    assert cache.strify() == "DBCache_F1B0_W8I2M0MC2_R0.12"
    assert calibrator.as_dict() == TAYLORSEER_FROM_LOADER


def test_cache_dmd_yaml(write_yaml):
    cache, calibrator = load_cache_config(write_yaml(CACHE_DMD_YAML))
    assert cache.as_dict() == DBCACHE | EXAMPLE_CACHE_FIELDS
    assert type(calibrator) is DMDCalibratorConfig
    assert calibrator.as_dict() == {
        "enable_calibrator": True,
        "enable_encoder_calibrator": True,  # follows enable_dmd
        "calibrator_type": "dmd",
        "calibrator_cache_type": "residual",
        "calibrator_kwargs": {},
        "dmd_history": 6,
        "dmd_rank": 0,
        "dmd_ridge": 1e-08,
        "dmd_svd_precision": "medium",
    }


def test_cache_foca_yaml(write_yaml):
    cache, calibrator = load_cache_config(write_yaml(CACHE_FOCA_YAML))
    assert cache.as_dict() == DBCACHE | EXAMPLE_CACHE_FIELDS
    assert type(calibrator) is FoCaCalibratorConfig
    assert calibrator.enable_encoder_calibrator is False
    assert calibrator.calibrator_cache_type == "residual"


def test_a_parallelism_only_file_has_no_cache_config(write_yaml):
    assert load_cache_config(write_yaml(PARALLEL_ONLY_YAML)) == (None, None)
    assert load_cache_config({"attention_backend": "native"}) == (None, None)
    assert load_cache_config({"quantize_config": {"quant_type": "int8_per_row"}}) == (None, None)


@pytest.mark.parametrize(
    ("options", "cache_fields", "calibrator_fields"),
    [
        (  # dmd options, encoder flag off
            {
                "enable_dmd": True,
                "enable_encoder_dmd": False,
                "dmd_rank": 3,
                "dmd_ridge": 1e-6,
                "calibrator_cache_type": "hidden_states",
            },
            {},
            {
                "enable_encoder_calibrator": False,
                "calibrator_cache_type": "hidden_states",
                "dmd_history": 6,
                "dmd_rank": 3,
                "dmd_ridge": 1e-6,
            },
        ),
        (
            {"enable_foca": True, "enable_encoder_foca": True},
            {},
            {"enable_encoder_calibrator": True, "calibrator_type": "foca"},
        ),
        (  # a switched-off calibrator ignores its options
            {"enable_taylorseer": False, "taylorseer_order": 2},
            {},
            None,
        ),
        (
            {
                "steps_computation_mask": "medium",
                "num_inference_steps": 50,
                "steps_computation_policy": "static",
            },
            {
                "num_inference_steps": 50,
                "steps_computation_mask": [
                    int(c) for c in "11111111111111110011100000111000001110000011100001"
                ],
                "steps_computation_policy": "static",
            },
            None,
        ),
    ],
)
def test_cache_config_sections_match_cache_dit(options, cache_fields, calibrator_fields):
    cache, calibrator = load_cache_config({"cache_config": options})
    assert cache.as_dict() == DBCACHE | cache_fields
    if calibrator_fields is None:
        assert calibrator is None
    else:
        for name, value in calibrator_fields.items():
            assert getattr(calibrator, name) == value, name


def test_medium_50_mask_is_the_policy_mask():
    cache, _ = load_cache_config(
        {"cache_config": {"steps_computation_mask": "m", "num_inference_steps": 50}}
    )
    assert cache.steps_computation_mask == steps_mask(mask_policy="medium", total_steps=50)


def test_dbprune_is_selected_by_cache_type():
    cache, calibrator = load_cache_config(
        {
            "cache_config": {
                "cache_type": "DBPrune",
                "non_prune_block_ids": [0, 1],
                "residual_diff_threshold": 0.05,
                "enable_dynamic_prune_threshold": True,
            }
        }
    )
    assert type(cache) is DBPruneConfig and cache.cache_type is CacheType.DBPrune
    assert calibrator is None
    assert cache.as_dict() == DBPruneConfig().as_dict() | {
        "non_prune_block_ids": [0, 1],
        "residual_diff_threshold": 0.05,
        "enable_dynamic_prune_threshold": True,
    }
    # ditkit also takes the usual aliases (cache-dit accepted only the exact spellings)
    assert type(load_cache_config({"cache_config": {"cache_type": "db_prune"}})[0]) is DBPruneConfig


def test_legacy_flat_options():
    cache, calibrator = load_cache_config(
        {
            "Fn_compute_blocks": 2,
            "max_warmup_steps": 4,
            "enable_taylorseer": True,
            "enable_encoder_taylorseer": True,
            "taylorseer_order": 2,
        }
    )
    assert cache.as_dict() == DBCACHE | {"Fn_compute_blocks": 2, "max_warmup_steps": 4}
    assert calibrator.as_dict() == TAYLORSEER_FROM_LOADER | {
        "enable_encoder_calibrator": True,
        "taylorseer_order": 2,
    }
    assert load_cache_config({}) == (DBCacheConfig(), None)


def test_reset_builds_partial_configs():
    cache, calibrator = load_cache_config({"num_inference_steps": 50}, reset=True)
    assert cache.as_dict() == ALL_NONE | {"num_inference_steps": 50}
    assert calibrator is None

    cache, calibrator = load_cache_config(
        {"enable_taylorseer": True, "taylorseer_order": 2}, reset=True
    )
    assert cache.as_dict() == ALL_NONE
    # as in cache-dit: the enabled calibrator gets the loader's defaults, calibrator_kwargs None
    assert calibrator.as_dict() == TAYLORSEER_FROM_LOADER | {
        "taylorseer_order": 2,
        "calibrator_kwargs": None,
    }

    cache, calibrator = load_cache_config(
        {"cache_config": {"residual_diff_threshold": 0.2, "enable_dmd": True, "dmd_history": 4}},
        reset=True,
    )
    assert cache.as_dict() == ALL_NONE | {"residual_diff_threshold": 0.2}
    assert (calibrator.dmd_history, calibrator.dmd_rank, calibrator.calibrator_kwargs) == (
        4,
        0,
        None,
    )


def test_a_partial_config_merges_only_the_given_fields():
    base = DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.12)
    partial, _ = load_cache_config({"num_inference_steps": 50}, reset=True)
    base.update(**partial.as_dict())
    assert (base.Fn_compute_blocks, base.residual_diff_threshold, base.num_inference_steps) == (
        1,
        0.12,
        50,
    )


def test_the_input_dict_is_not_modified():
    data = {"cache_config": {"steps_computation_mask": "fast", "num_inference_steps": 20}}
    load_cache_config(data)
    assert data["cache_config"]["steps_computation_mask"] == "fast"


def test_null_cache_section_means_no_cache():
    assert load_cache_config({"cache_config": None}) == (None, None)


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"cache_config": {"enable_taylorseer": True, "enable_dmd": True}},
            "cache_config.enable_dmd",
            "mutually exclusive",
        ),
        (
            {"cache_config": {"steps_computation_mask": "fast"}},
            "cache_config.steps_computation_mask",
            "num_inference_steps",
        ),
        (
            {"cache_config": {"steps_computation_mask": "turbo", "num_inference_steps": 20}},
            "mask_policy",
            "slow, medium, fast, ultra",
        ),
        ({"cache_config": {"cache_type": "NONE"}}, "cache_config.cache_type", "DBCache or DBPrune"),
        ({"cache_config": {"cache_type": "dbcash"}}, "cache_type", "CacheType"),
        ({"cache_config": {"Fn_compute_block": 1}}, "cache_config.Fn_compute_block", "did you"),
        (
            {"cache_config": {"enable_taylorser": True}},
            "cache_config.enable_taylorser",
            "'enable_taylorseer'",
        ),
        (
            {"cache_config": {"non_prune_block_ids": [1]}},
            "cache_config.non_prune_block_ids",
            "cache_type: DBPrune",
        ),
        ({"cache_config": {"enable_dmd": "yes"}}, "cache_config.enable_dmd", "true or false"),
        ({"cache_config": {"Fn_compute_blocks": 0}}, "DBCacheConfig.Fn_compute_blocks", ">= 1"),
        ({"cache_config": [1, 2]}, "cache_config", "mapping"),
        ({"cache_config": {}, "quantise_config": {}}, "quantise_config", "'quantize_config'"),
        ({"Fn_compute_blocks": 1, "attention_backend": "native"}, "Fn_compute_blocks", "indent"),
        (
            {"Fn_compute_blocks": 1, "taylorseer_ordr": 1},
            "flat cache options.taylorseer_ordr",
            "'taylorseer_order'",
        ),
    ],
)
def test_errors_name_the_key_and_the_fix(data, field, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_cache_config(data)
    assert info.value.field == field


def test_file_errors(write_yaml, tmp_path):
    with pytest.raises(FileNotFoundError):
        load_cache_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="empty"):
        load_cache_config(write_yaml("# nothing here\n"))
    with pytest.raises(ConfigError, match="valid YAML"):
        load_cache_config(write_yaml("cache_config: [unclosed\n"))
    with pytest.raises(ConfigError, match="YAML mapping"):
        load_cache_config(write_yaml("- 1\n- 2\n"))
    with pytest.raises(ConfigError, match="YAML file path or a dict"):
        load_cache_config(42)


def test_keyword_options():
    # the options load_configs passes to every loader are accepted and ignored
    assert load_cache_config({}, check_only=False, auto_parallel_size=True)[0] == DBCacheConfig()
    with pytest.raises(TypeError, match="rest"):
        load_cache_config({}, rest=True)
    with pytest.raises(ConfigError, match="reset"):
        load_cache_config({}, reset="yes")


def test_calibrator_keys_and_source_reader():
    assert {"enable_taylorseer", "enable_dmd", "enable_foca", "dmd_history"} <= CALIBRATOR_KEYS
    source = {"cache_config": {"steps_computation_mask": [1, 0]}}
    copied = read_config_source(source)
    assert copied == source and copied["cache_config"] is not source["cache_config"]
