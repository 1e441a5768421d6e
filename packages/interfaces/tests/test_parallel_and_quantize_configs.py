import warnings

import pytest

from ditkit_interfaces import (
    ConfigError,
    ParallelismBackend,
    ParallelismConfig,
    QuantizeBackend,
    QuantizeConfig,
)


def test_parallel_defaults():
    cfg = ParallelismConfig(ulysses_size=2)
    assert cfg.ring_size is None and cfg.tp_size is None
    assert cfg.ring_rotate_method == "p2p" and cfg.ring_convert_to_fp32 is True
    assert cfg.ray_init_kwargs == {"include_dashboard": False}
    assert cfg.extra_parallel_modules == []


@pytest.mark.parametrize(
    ("kwargs", "backend", "tag", "world"),
    [
        (dict(ulysses_size=2), ParallelismBackend.CACHE_DIT, "Ulysses2", 2),
        (dict(ring_size=4), ParallelismBackend.CACHE_DIT, "Ring4", 4),
        (dict(tp_size=2), ParallelismBackend.NATIVE_PYTORCH, "TP2", 2),
        (dict(ulysses_size=2, ring_size=2), ParallelismBackend.CACHE_DIT, "Ulysses2_Ring2", 4),
        (
            dict(
                ulysses_size=4,
                ulysses_anything=True,
                ulysses_float8=True,
                ulysses_async=True,
                tp_size=2,
                extra_parallel_modules=["text_encoder", "vae", "controlnet"],
            ),
            ParallelismBackend.NATIVE_HYBRID,
            "Ulysses4_UAA_F8_UAS_TP2_TEP_VAEP_CNP",
            8,
        ),
        (
            dict(ulysses_size=2, ulysses_float8=True),
            ParallelismBackend.CACHE_DIT,
            "Ulysses2_UF8",
            2,
        ),
        (dict(ulysses_size=1), ParallelismBackend.NONE, "Ulysses1", 1),
        (
            dict(backend="native_diffuser", ulysses_size=2),
            ParallelismBackend.CACHE_DIT,
            "Ulysses2",
            2,
        ),
    ],
)
def test_backend_resolution_and_tags(kwargs, backend, tag, world):
    cfg = ParallelismConfig(**kwargs)
    assert cfg.backend is backend
    assert cfg.strify() == tag
    assert cfg.world_size == world


def test_size_one_is_not_an_error_but_disabled():
    # cache-dit raised "No parallelism is enabled" here (sglang#19965); ditkit resolves to NONE.
    cfg = ParallelismConfig(ulysses_size=1)
    assert not cfg.enabled()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(ulysses_size=0), "ulysses_size"),
        (dict(tp_size=1.5), "tp_size"),
        (dict(ring_rotate_method="ring"), "ring_rotate_method"),
        (dict(ulysses_size=2, ulysses_head_chunks=0), "ulysses_head_chunks"),
        (dict(backend="mpi"), "backend"),
        (dict(extra_parallel_modules="vae"), "extra_parallel_modules"),
        (dict(parallel_kwargs={"not_a_field": 1}), "parallel_kwargs"),
    ],
)
def test_parallel_invalid(kwargs, field):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ConfigError, match=field):
            ParallelismConfig(**kwargs)


def test_uneven_usp_and_allgather_rotation_are_accepted():
    # cache-dit refused ulysses_anything with ring_size > 1; ditkit's USP handles any length
    cfg = ParallelismConfig(ring_size=2, ulysses_size=2, ulysses_anything=True)
    assert cfg.usp_enabled() and cfg.world_size == 4
    assert ParallelismConfig(ring_size=2, ring_rotate_method="allgather").ring_rotate_method == (
        "allgather"
    )


def test_deprecated_parallel_kwargs_are_flattened_with_a_warning():
    with pytest.warns(DeprecationWarning, match="parallel_kwargs"):
        cfg = ParallelismConfig(
            ulysses_size=2,
            parallel_kwargs={"experimental_ulysses_anything": True, "ulysses_async": True},
        )
    assert cfg.ulysses_anything and cfg.ulysses_async and cfg.parallel_kwargs == {}


def test_quantize_defaults_and_backend():
    cfg = QuantizeConfig()
    assert cfg.quant_type == "float8_per_row"
    assert cfg.backend is QuantizeBackend.TORCHAO
    assert cfg.exclude_layers == ["embedder", "embed", "modulation", "mod"]
    assert cfg.regional_quantize and cfg.per_tensor_fallback
    assert QuantizeConfig(quant_type="svdq_nvfp4_r128").backend is QuantizeBackend.CACHE_DIT
    assert QuantizeConfig(backend="ao").backend is QuantizeBackend.TORCHAO


def test_svdq_helpers_and_tags():
    cfg = QuantizeConfig(quant_type="svdq-int4-r64-dq", svdq_kwargs={"smooth_strategy": "few_shot"})
    assert cfg.quant_type == "svdq_int4_r64_dq"
    assert cfg.is_svdq_dq() and cfg.is_svdq_dq_few_shot() and not cfg.is_svdq_ptq()
    assert cfg.get_svdq_rank() == 64
    assert cfg.strify() == "svdq_int4_r64_dq_few_shot_auto"
    ptq = QuantizeConfig(quant_type="svdq_int4_r32", svdq_kwargs={"fused_mlp": True})
    assert ptq.get_svdq_kwargs()["smooth_strategy"] == "activation"
    assert ptq.strify() == "svdq_int4_r32_fused_mlp"
    per_component = QuantizeConfig(
        components_to_quantize={"transformer": {"quant_type": "int8_per_row"}, "text_encoder": {}}
    )
    assert per_component.strify() == "<transformer:int8_per_row><text_encoder:float8_per_row>"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(quant_type="int3"), "quant_type"),
        (dict(quant_type="svdq_int4_r32", svdq_kwargs={"nope": 1}), "svdq_kwargs"),
        (dict(quant_type="svdq_int4_r32", svdq_kwargs={"runtime_kernel": "v9"}), "runtime_kernel"),
        (dict(quant_type="svdq_int4_r32_dq", calibrate_fn=print), "calibrate_fn"),
        (
            dict(quant_type="svdq_int4_r32", svdq_kwargs={"smooth_strategy": "identity"}),
            "smooth_strategy",
        ),
        (
            dict(quant_type="svdq_int4_r32_dq", svdq_kwargs={"smooth_strategy": "activation"}),
            "smooth_strategy",
        ),
        (
            dict(quant_type="svdq_nvfp4_r32_dq", svdq_kwargs={"runtime_kernel": "v2"}),
            "runtime_kernel",
        ),
        (
            dict(quant_type="svdq_int4_r32_dq", components_to_quantize=["transformer"]),
            "components_to_quantize",
        ),
        (dict(quant_type="svdq_int4_r32_dq", per_tensor_fallback=False), "per_tensor_fallback"),
        (dict(backend="bnb"), "backend"),
    ],
)
def test_quantize_invalid(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        QuantizeConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "size"),
    [
        (dict(ulysses_size=4), 4),
        (dict(ulysses_size=2, ring_size=4), 8),
        (dict(ring_size=2, ulysses_size=2, tp_size=2), 8),
        (dict(tp_size=2), 2),
        (dict(ulysses_size=1), 1),
    ],
)
def test_extra_module_world_sizes_do_not_recurse(kwargs, size):
    # cache-dit 1.5.3's vae_world_size returned itself: RecursionError
    cfg = ParallelismConfig(**kwargs)
    assert cfg.vae_world_size == size
    assert cfg.auto_encoder_world_size == size
    assert cfg.text_encoder_world_size == size
    assert cfg.controlnet_world_size == size
