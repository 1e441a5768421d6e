import pytest

from ditkit_interfaces import (
    BasicCacheConfig,
    CacheType,
    ConfigError,
    DBCacheConfig,
    DBPruneConfig,
    cache_type,
)

# The defaults of cache-dit 1.5.3 (reference §2.4); a change here breaks compatibility.
DBCACHE_DEFAULTS = {
    "cache_type": CacheType.DBCache,
    "Fn_compute_blocks": 8,
    "Bn_compute_blocks": 0,
    "residual_diff_threshold": 0.08,
    "max_accumulated_residual_diff_threshold": None,
    "max_warmup_steps": 8,
    "warmup_interval": 1,
    "max_cached_steps": -1,
    "max_continuous_cached_steps": -1,
    "enable_separate_cfg": None,
    "cfg_compute_first": False,
    "cfg_diff_compute_separate": True,
    "num_inference_steps": None,
    "steps_computation_mask": None,
    "steps_computation_policy": "dynamic",
    "force_refresh_step_hint": None,
    "force_refresh_step_policy": "once",
}


def test_dbcache_fields_and_defaults_match_cache_dit():
    assert DBCacheConfig().as_dict() == DBCACHE_DEFAULTS
    assert list(DBCacheConfig.field_names()) == list(DBCACHE_DEFAULTS)
    assert issubclass(DBCacheConfig, BasicCacheConfig)


def test_dbprune_fields_and_defaults():
    cfg = DBPruneConfig()
    assert cfg.cache_type is CacheType.DBPrune
    assert cfg.enable_dynamic_prune_threshold is False
    assert cfg.max_dynamic_prune_threshold is None
    assert cfg.dynamic_prune_threshold_relax_ratio == 1.25
    assert cfg.non_prune_block_ids == []
    assert cfg.force_reduce_calibrator_vram is False
    assert DBPruneConfig().non_prune_block_ids is not cfg.non_prune_block_ids


@pytest.mark.parametrize(
    ("kwargs", "tag"),
    [
        ({}, "DBCache_F8B0_W8I1M0MC0_R0.08"),
        (
            dict(
                Fn_compute_blocks=1,
                max_continuous_cached_steps=3,
                residual_diff_threshold=0.12,
                enable_separate_cfg=False,
            ),
            "DBCache_F1B0_W8I1M0MC3_R0.12_CFG0",
        ),
        (
            dict(
                steps_computation_mask=[1, 1, 0, 1],
                steps_computation_policy="static",
                num_inference_steps=4,
                force_refresh_step_hint=10,
                enable_separate_cfg=True,
            ),
            "DBCache_F8B0_W8I1M0MC0_R0.08_SCM1101_static_N4_FR10_once_CFG1",
        ),
    ],
)
def test_strify_tags(kwargs, tag):
    assert DBCacheConfig(**kwargs).strify() == tag


def test_prune_tag_has_no_suffixes():
    cfg = DBPruneConfig(num_inference_steps=4, enable_separate_cfg=True, Fn_compute_blocks=2)
    assert cfg.strify() == "DBPrune_F2B0_W8I1M0MC0_R0.08"


@pytest.mark.parametrize(
    ("kwargs", "field", "fix_words"),
    [
        (dict(Fn_compute_blocks=0), "Fn_compute_blocks", "Fn_compute_blocks=1"),
        (dict(Fn_compute_blocks=1.5), "Fn_compute_blocks", "integer"),
        (dict(Bn_compute_blocks=-1), "Bn_compute_blocks", ">= 0"),
        (dict(residual_diff_threshold=-0.1), "residual_diff_threshold", ">= 0"),
        (dict(residual_diff_threshold="big"), "residual_diff_threshold", "number"),
        (dict(residual_diff_threshold=float("nan")), "residual_diff_threshold", "finite"),
        (dict(max_accumulated_residual_diff_threshold=-1.0), "max_accumulated", ">= 0"),
        (dict(warmup_interval=0), "warmup_interval", ">= 1"),
        (dict(max_cached_steps=-2), "max_cached_steps", "-1 for no limit"),
        (dict(max_continuous_cached_steps=-5), "max_continuous_cached_steps", "-1"),
        (dict(steps_computation_policy="sometimes"), "steps_computation_policy", "'static'"),
        (dict(force_refresh_step_policy="twice"), "force_refresh_step_policy", "'repeat'"),
        (dict(steps_computation_mask=[1, 2, 0]), "steps_computation_mask", "steps_mask"),
        (dict(steps_computation_mask="fast"), "steps_computation_mask", "steps_mask"),
        (dict(steps_computation_mask=[]), "steps_computation_mask", "non-empty"),
        (
            dict(steps_computation_mask=[1, 0, 1], num_inference_steps=28),
            "steps_computation_mask",
            "total_steps=28",
        ),
        (dict(steps_computation_policy="static"), "steps_computation_policy", "steps_mask"),
        (
            dict(enable_separate_cfg=True, cfg_compute_first=True),
            "cfg_compute_first",
            "cfg_diff_compute_separate=False",
        ),
        (dict(enable_separate_cfg="yes"), "enable_separate_cfg", "True, False or None"),
        (dict(cache_type="fastest"), "cache_type", "DBCache"),
        (dict(num_inference_steps=0), "num_inference_steps", ">= 1"),
    ],
)
def test_invalid_values_name_the_field_and_the_fix(kwargs, field, fix_words):
    with pytest.raises(ConfigError) as err:
        DBCacheConfig(**kwargs)
    message = str(err.value)
    assert field in message
    assert fix_words in message
    assert isinstance(err.value, ValueError)


def test_cfg_compute_first_is_fine_with_shared_diff():
    cfg = DBCacheConfig(
        enable_separate_cfg=True, cfg_compute_first=True, cfg_diff_compute_separate=False
    )
    assert cfg.cfg_compute_first


def test_dbprune_validation():
    with pytest.raises(ConfigError, match="non_prune_block_ids"):
        DBPruneConfig(non_prune_block_ids=[0, -1])
    with pytest.raises(ConfigError, match="dynamic_prune_threshold_relax_ratio"):
        DBPruneConfig(dynamic_prune_threshold_relax_ratio=0)


def test_update_sets_given_fields_ignores_none_and_revalidates():
    cfg = DBCacheConfig()
    assert cfg.update(Fn_compute_blocks=2, Bn_compute_blocks=None) is cfg
    assert (cfg.Fn_compute_blocks, cfg.Bn_compute_blocks) == (2, 0)
    with pytest.raises(ConfigError, match="Fn_compute_blocks"):
        cfg.update(Fn_compute_blocks=0)


def test_update_rejects_unknown_fields_with_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'Fn_compute_blocks'"):
        DBCacheConfig().update(Fn_compute_block=2)


def test_reset_makes_a_partial_config_that_merges_only_given_fields():
    partial = DBCacheConfig().reset(num_inference_steps=50)
    assert partial.Fn_compute_blocks is None
    assert partial.cache_type is CacheType.DBCache
    full = DBCacheConfig(Fn_compute_blocks=1)
    full.update(**partial.as_dict())
    assert full.num_inference_steps == 50
    assert full.Fn_compute_blocks == 1
    assert DBCacheConfig().empty().residual_diff_threshold is None


def test_dict_round_trip_and_unknown_keys():
    cfg = DBCacheConfig(
        Fn_compute_blocks=1, steps_computation_mask=[1, 0, 1], steps_computation_policy="static"
    )
    plain = cfg.to_dict()
    assert plain["cache_type"] == "DBCache"
    assert DBCacheConfig.from_dict(plain) == cfg
    with pytest.raises(ConfigError, match="Fn_compute_blockz"):
        DBCacheConfig.from_dict({"Fn_compute_blockz": 1})


def test_tensor_like_threshold_is_accepted():
    class Scalar:
        def __init__(self, v):
            self.v = v

        def item(self):
            return self.v

    assert DBCacheConfig(residual_diff_threshold=Scalar(0.2)).strify().endswith("R0.2")
    with pytest.raises(ConfigError):
        DBCacheConfig(residual_diff_threshold=Scalar(-0.2))


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        ("DBCache", CacheType.DBCache),
        ("dual_block_cache", CacheType.DBCache),
        ("db", CacheType.DBCache),
        ("DB_CACHE", CacheType.DBCache),
        ("dbprune", CacheType.DBPrune),
        ("DYNAMIC_BLOCK_PRUNE", CacheType.DBPrune),
        ("DBP", CacheType.DBPrune),
        ("db_prune", CacheType.DBPrune),
        ("none", CacheType.NONE),
        ("NC", CacheType.NONE),
        ("no_cache", CacheType.NONE),
        (None, CacheType.NONE),
        (CacheType.DBPrune, CacheType.DBPrune),
    ],
)
def test_cache_type_aliases(hint, expected):
    assert cache_type(hint) is expected
    assert CacheType.type(hint) is expected


def test_cache_type_str_and_unknown():
    assert str(CacheType.DBCache) == "DBCache"
    with pytest.raises(ConfigError, match="cache_type"):
        cache_type("turbo")
