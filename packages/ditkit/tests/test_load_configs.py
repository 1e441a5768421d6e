"""``ditkit.configs.load_configs`` on cache-dit's example files and on the edge cases.

Where cache-dit 1.5.3 accepts an input, the expected values were recorded from its
``load_configs``; where it fails or silently misreads one, the test says what ditkit does instead
(docs/compat.md, "Steps mask and config loading"). cache-dit is not needed to run them.
"""

import subprocess
import sys
import textwrap

import pytest
import torch.distributed as dist

from ditkit.configs import (
    CONFIG_KEYS,
    load_attn_backend_config,
    load_configs,
    load_parallelism_config,
    load_quantize_config,
    world_size,
)
from ditkit_interfaces import (
    CacheType,
    ConfigError,
    DBCacheConfig,
    MissingComponentError,
    ParallelismBackend,
    QuantizeBackend,
    QuantizeConfig,
    TaylorSeerCalibratorConfig,
)

# cache-dit's examples/configs/combined.yaml as the repository has it (quant_type "float8").
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
  quant_type: "float8"
  exclude_layers:
    - "embedder"
    - "embed"
  verbose: false
"""
PARALLEL_USP_YAML = """\
parallelism_config:
  ulysses_size: auto
  ring_size: 2
  attention_backend: native
"""
QUANTIZE_PLAN_TP_YAML = """\
parallelism_config:
  tp_size: auto
  attention_backend: native
quantize_config:
  components_to_quantize:
    transformer:
      quant_type: "float8_per_row"
      regional_quantize: true
      per_tensor_fallback: true
      precision_plan:
        "attn.to_q": "float8_per_tensor"
        "attn.to_out": "float8_per_tensor"
      exclude_layers: ["embedder", "embed", "mod", "modulation"]
  verbose: false
"""
QUANTIZE_SVDQ_YAML = """\
quantize_config:
  quant_type: "svdq_int4_r128_dq"
  svdq_kwargs:
    quantize_device: "cuda"
  exclude_layers:
    - "embedder"
    - "embed"
  verbose: false
"""


@pytest.fixture
def write_yaml(tmp_path):
    def write(text, name="config.yaml"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def world(monkeypatch):
    """Set the WORLD_SIZE environment variable (None removes it)."""

    def set_world(size):
        if size is None:
            monkeypatch.delenv("WORLD_SIZE", raising=False)
        else:
            monkeypatch.setenv("WORLD_SIZE", str(size))

    return set_world


def test_combined_yaml(write_yaml, world):
    world(4)
    configs = load_configs(write_yaml(COMBINED_YAML))
    assert list(configs) == list(CONFIG_KEYS)

    cache = configs["cache_config"]
    assert cache.as_dict() == DBCacheConfig().as_dict() | {
        "max_warmup_steps": 8,
        "warmup_interval": 2,
        "max_continuous_cached_steps": 2,
        "Fn_compute_blocks": 1,
        "residual_diff_threshold": 0.12,
    }
    calibrator = configs["calibrator_config"]
    assert type(calibrator) is TaylorSeerCalibratorConfig
    assert (calibrator.taylorseer_order, calibrator.enable_encoder_calibrator) == (1, False)

    parallel = configs["parallelism_config"]
    assert parallel.ulysses_size == 4  # WORLD_SIZE // 1
    assert parallel.backend is ParallelismBackend.CACHE_DIT
    assert parallel.attention_backend == "native"
    assert parallel.extra_parallel_modules == ["text_encoder", "vae"]
    assert parallel.strify() == "Ulysses4_TEP_VAEP"
    assert configs["attention_backend"] is None  # only the parallelism section names one

    quantize = configs["quantize_config"]
    assert quantize.quant_type == "float8_per_row"  # "float8", the CLI's --float8
    assert quantize.backend is QuantizeBackend.TORCHAO
    assert quantize.exclude_layers == ["embedder", "embed"]
    assert quantize.verbose is False


def test_combined_yaml_in_a_single_process_is_a_valid_off(write_yaml, world):
    # cache-dit raised "No parallelism is enabled" here (auto resolved to 1)
    world(None)
    parallel = load_configs(write_yaml(COMBINED_YAML))["parallelism_config"]
    assert parallel.ulysses_size == 1
    assert parallel.backend is ParallelismBackend.NONE and not parallel.enabled()


def test_tuple_form_keeps_the_order(write_yaml, world):
    world(2)
    as_dict = load_configs(write_yaml(COMBINED_YAML))
    as_tuple = load_configs(write_yaml(COMBINED_YAML), return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 5
    assert as_tuple[0] == as_dict["cache_config"]
    assert as_tuple[2].ulysses_size == 2
    assert as_tuple[4].quant_type == "float8_per_row"


@pytest.mark.parametrize(("size", "ulysses"), [(2, 1), (4, 2), (8, 4)])
def test_auto_is_the_world_over_the_other_sizes(write_yaml, world, size, ulysses):
    world(size)
    parallel = load_parallelism_config(write_yaml(PARALLEL_USP_YAML))
    assert (parallel.ulysses_size, parallel.ring_size) == (ulysses, 2)


def test_auto_that_does_not_fit_the_world_raises(write_yaml, world):
    # cache-dit silently used 1 here
    world(None)
    with pytest.raises(ConfigError, match="not a multiple of the other sizes' product 2") as info:
        load_parallelism_config(write_yaml(PARALLEL_USP_YAML))
    assert info.value.field == "parallelism_config.ulysses_size"
    world(6)
    with pytest.raises(ConfigError, match="world size 6"):
        load_parallelism_config({"parallelism_config": {"tp_size": "AUTO", "ulysses_size": 4}})


def test_quantize_plan_tp_yaml(write_yaml, world):
    world(2)
    configs = load_configs(write_yaml(QUANTIZE_PLAN_TP_YAML))
    assert configs["cache_config"] is None and configs["calibrator_config"] is None
    parallel = configs["parallelism_config"]
    assert (parallel.tp_size, parallel.backend) == (2, ParallelismBackend.NATIVE_PYTORCH)
    quantize = configs["quantize_config"]
    transformer = quantize.components_to_quantize["transformer"]
    assert transformer["precision_plan"]["attn.to_q"] == "float8_per_tensor"
    assert quantize.strify() == "<transformer:float8_per_row>"


def test_quantize_svdq_yaml(write_yaml):
    quantize = load_quantize_config(write_yaml(QUANTIZE_SVDQ_YAML))
    assert quantize.backend is QuantizeBackend.CACHE_DIT
    assert quantize.get_svdq_rank() == 128 and quantize.is_svdq_dq()
    assert quantize.get_svdq_kwargs()["quantize_device"] == "cuda"


@pytest.mark.parametrize(
    ("options", "expected"),
    [  # recorded from cache-dit 1.5.3's load_parallelism_config
        (
            {"ulysses_size": 2, "backend": "native_diffuser"},
            (ParallelismBackend.CACHE_DIT, 2, None),
        ),
        ({"tp_size": 2, "backend": "Native_PyTorch"}, (ParallelismBackend.NATIVE_PYTORCH, None, 2)),
        ({"ulysses_size": 2, "ring_size": 2}, (ParallelismBackend.CACHE_DIT, 2, None)),
        # aliases: cache-dit 1.5.3 kept the alias key and failed with a TypeError
        ({"ulysses": 2}, (ParallelismBackend.CACHE_DIT, 2, None)),
        ({"tp": 2, "tp_size": 2}, (ParallelismBackend.NATIVE_PYTORCH, None, 2)),
    ],
)
def test_parallelism_options(options, expected):
    parallel = load_parallelism_config({"parallelism_config": options})
    assert (parallel.backend, parallel.ulysses_size, parallel.tp_size) == expected


def test_torch_distributed_world_size_wins_over_the_environment(world):
    world(8)
    assert world_size() == (8, "the WORLD_SIZE environment variable")
    store = dist.HashStore()
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        assert world_size() == (1, "torch.distributed")
        parallel = load_parallelism_config({"parallelism_config": {"ulysses": "auto"}})
        assert parallel.ulysses_size == 1
    finally:
        dist.destroy_process_group()


def test_attention_backend_and_check_only():
    assert load_attn_backend_config({"attention_backend": "native"}) == "native"
    assert load_attn_backend_config({}) is None
    assert load_parallelism_config({"parallelism_config": {"tp": 2}}, check_only=True) is True
    assert load_parallelism_config({"cache_config": {}}, check_only=True) is False
    assert load_parallelism_config({"cache_config": {}}) is None


def test_quantize_nulls_keep_defaults_and_empty_sections():
    quantize = load_quantize_config({"quantize_config": {"quant_type": None, "verbose": True}})
    assert (quantize.quant_type, quantize.verbose) == ("float8_per_row", True)
    assert load_quantize_config({"quantize_config": {}}) == QuantizeConfig()
    assert load_quantize_config({"quantize_config": None}) is None
    assert load_quantize_config({"cache_config": {}}) is None


def test_legacy_flat_options_and_reset():
    configs = load_configs({"Fn_compute_blocks": 2, "num_inference_steps": 50}, reset=True)
    cache = configs["cache_config"]
    assert (cache.Fn_compute_blocks, cache.num_inference_steps, cache.max_warmup_steps) == (
        2,
        50,
        None,
    )
    assert cache.cache_type is CacheType.DBCache
    assert configs["parallelism_config"] is None and configs["quantize_config"] is None
    assert load_configs({})["cache_config"] == DBCacheConfig()  # as in cache-dit


def test_a_file_without_cache_options_does_not_import_the_cache_package():
    code = (
        "import sys; from ditkit.configs import load_configs; "
        "c = load_configs({'parallelism_config': {'ring': 2}, 'attention_backend': 'native'}); "
        "print(c['cache_config'], c['parallelism_config'].ring_size, "
        "any(m.startswith('ditkit_cache') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "2", "False"]


def test_missing_cache_component_names_the_pip_line(monkeypatch):
    def missing(name, feature, attribute=None):
        raise MissingComponentError(feature, f"ditkit-{name}")

    monkeypatch.setattr("ditkit.configs.require", missing)
    with pytest.raises(MissingComponentError, match="pip install ditkit-cache"):
        load_configs({"cache_config": {"Fn_compute_blocks": 1}})
    # the other sections still load without it
    assert load_configs({"attention_backend": "native"})["attention_backend"] == "native"


@pytest.mark.parametrize(
    ("data", "kwargs", "field", "message"),
    [
        (
            {"parallelism_config": {"ulysses": 2, "ulysses_size": 4}},
            {},
            "parallelism_config.ulysses",
            "keep only one",
        ),
        (
            {"parallelism_config": {"ulysses_size": "auto", "ring_size": "auto"}},
            {},
            "parallelism_config.ring_size",
            "only one size",
        ),
        (
            {"parallelism_config": {"tp_size": "auto"}},
            {"auto_parallel_size": False},
            "parallelism_config.tp_size",
            "auto_parallel_size",
        ),
        (
            {"parallelism_config": {"tp_size": "auto", "ring_size": 0}},
            {},
            "parallelism_config.ring_size",
            ">= 1",
        ),
        (
            {"parallelism_config": {"ulysses_size": 2, "dynamic_sp": {"enabled": True}}},
            {},
            "ParallelismConfig.dynamic_sp",
            "field",
        ),
        (
            {"parallelism_config": {"backend": "megatron", "tp_size": 2}},
            {},
            "ParallelismConfig.backend",
            "one of",
        ),
        ({"parallelism_config": [2]}, {}, "parallelism_config", "mapping"),
        (
            {"quantize_config": {"quant_typ": "int8_per_row"}},
            {},
            "QuantizeConfig.quant_typ",
            "'quant_type'",
        ),
        (
            {"quantize_config": {"quant_type": "float16"}},
            {},
            "QuantizeConfig.quant_type",
            "float8_per_row",
        ),
        ({"attention_backend": 3}, {}, "attention_backend", "backend name"),
        (
            {"parallelism_config": {"tp": 2}, "quantise_config": {}},
            {},
            "quantise_config",
            "'quantize_config'",
        ),
        ({"cache_config": {}, "offload_config": {}}, {}, "offload_config", "top-level section"),
    ],
)
def test_errors_name_the_key(data, kwargs, field, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_configs(data, **kwargs)
    assert info.value.field == field


def test_bad_world_size_environment(world):
    world("four")
    with pytest.raises(ConfigError, match="positive integer") as info:
        load_parallelism_config({"parallelism_config": {"ulysses_size": "auto"}})
    assert info.value.field == "WORLD_SIZE"


def test_source_and_keyword_errors(write_yaml, tmp_path):
    with pytest.raises(TypeError, match="rest"):
        load_configs({}, rest=True)
    with pytest.raises(FileNotFoundError):
        load_configs(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="empty"):
        load_configs(write_yaml("\n"))
    with pytest.raises(ConfigError, match="YAML file path or a dict"):
        load_configs(["cache_config"])
    data = {"parallelism_config": {"ulysses": 2}}
    load_configs(data)
    assert data == {"parallelism_config": {"ulysses": 2}}  # the input is not modified
