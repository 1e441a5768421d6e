"""Tensor parallelism where sizes do not divide the TP degree, undoing the re-layout, fp8
shard shapes (predicted in-process, checked on the sharded weights) and the errors that need a
process group: one 2-rank gloo run, float32.

Uneven cases: 3 attention heads on 2 ranks (padded to 4 with a zero head: rank 0 holds heads
0-1, rank 1 head 2 and the zero head) for Flux (packed single-block ``proj_out``), Flux.2 (fused
``[q|k|v|gate|up]`` projection), Wan I2V (RMSNorm over all heads, image cross-attention, and an
MLP width of 33) and LTX (rotary embedding over all heads). The bar is a relative error
``max|tp - ref| / max|ref|`` below 1e-5.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from torch import nn

from ditkit_interfaces.parallel_config import ParallelismConfig
from ditkit_parallel.launch import run_distributed
from ditkit_parallel.tensor import fp8_eligibility, fp8_ok
from ditkit_testing.parallel_cases import grid_ids, rel_error, tiny_flux_case, unzero

# several spawned processes each: in CI's `all` session (slow), not the package session
pytestmark = pytest.mark.slow

TOLERANCE = 1e-5


def _flux3() -> tuple[Any, dict]:
    return tiny_flux_case(
        3,
        grid=(4, 4),
        text=6,
        seed=7,
        timestep=0.6,
        in_channels=8,
        num_layers=1,
        attention_head_dim=8,
        joint_attention_dim=16,
        pooled_projection_dim=16,
        axes_dims_rope=(2, 2, 4),
    )


def _flux2_3() -> tuple[Any, dict]:
    from diffusers import Flux2Transformer2DModel

    model = Flux2Transformer2DModel(
        patch_size=1,
        in_channels=8,
        num_layers=1,
        num_single_layers=2,
        attention_head_dim=8,
        num_attention_heads=3,
        joint_attention_dim=16,
        timestep_guidance_channels=16,
        axes_dims_rope=(2, 2, 2, 2),
    )
    kwargs = dict(
        hidden_states=torch.randn(1, 16, 8),
        encoder_hidden_states=torch.randn(1, 6, 16),
        timestep=torch.tensor([0.6]),
        img_ids=grid_ids(4, 4, axes=4),
        txt_ids=torch.zeros(6, 4),
        guidance=torch.tensor([3.5]),
    )
    return model, kwargs


def _wan(**config: Any) -> nn.Module:
    """A tiny Wan transformer: patch (1, 2, 2), 4 channels, RMSNorm over all heads."""
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        in_channels=4,
        out_channels=4,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        **config,
    )


def _wan3_i2v() -> tuple[Any, dict]:
    model = _wan(
        num_attention_heads=3,
        attention_head_dim=8,
        text_dim=16,
        freq_dim=16,
        ffn_dim=33,
        num_layers=2,
        image_dim=12,
        added_kv_proj_dim=24,
    )
    kwargs = dict(
        hidden_states=torch.randn(1, 4, 2, 8, 8),
        timestep=torch.tensor([600.0]),
        encoder_hidden_states=torch.randn(1, 6, 16),
        encoder_hidden_states_image=torch.randn(1, 4, 12),
    )
    return model, kwargs


def _ltx3() -> tuple[Any, dict]:
    from diffusers import LTXVideoTransformer3DModel

    model = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        num_attention_heads=3,
        attention_head_dim=8,
        cross_attention_dim=24,
        num_layers=2,
        caption_channels=16,
    )
    kwargs = dict(
        hidden_states=torch.randn(1, 32, 8),
        encoder_hidden_states=torch.randn(1, 6, 16),
        timestep=torch.tensor([600.0]),
        encoder_attention_mask=torch.ones(1, 6),
        num_frames=2,
        height=4,
        width=4,
    )
    return model, kwargs


def fp8_wan() -> nn.Module:
    """A Wan block of 2 heads × 16 and an MLP of 48: the fp8 known layout."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        return _wan(
            num_attention_heads=2,
            attention_head_dim=16,
            text_dim=32,
            freq_dim=32,
            ffn_dim=48,
            num_layers=1,
        ).eval()


#: per fp8_friendly: linear → (style, per-rank (out, in), fp8-eligible) on 2 ranks.
FP8_WAN_EXPECTED = {
    False: {
        "blocks.0.attn1.to_q": ("colwise", (16, 32), True),
        "blocks.0.attn2.to_v": ("colwise", (16, 32), True),
        "blocks.0.attn1.to_out.0": ("rowwise", (32, 16), True),
        "blocks.0.ffn.net.0.proj": ("colwise", (24, 32), False),  # 48 / 2 = 24
        "blocks.0.ffn.net.2": ("rowwise", (32, 24), False),
        "proj_out": ("replicated", (16, 32), True),
        "condition_embedder.time_proj": ("replicated", (192, 32), True),
    },
    True: {
        "blocks.0.attn1.to_q": ("colwise", (16, 32), True),
        "blocks.0.ffn.net.0.proj": ("colwise", (32, 32), True),  # padded 24 -> 32
        "blocks.0.ffn.net.2": ("rowwise", (32, 32), True),
    },
}


@pytest.mark.parametrize("friendly", [False, True])
def test_fp8_eligibility_is_predicted_on_a_known_layout(friendly: bool) -> None:
    report = {
        e.name: (e.style, e.local_shape, e.eligible)
        for e in fp8_eligibility(fp8_wan(), 2, fp8_friendly=friendly)
    }
    for name, expected in FP8_WAN_EXPECTED[friendly].items():
        assert report[name] == expected, name
    assert sum(style != "replicated" for style, _, _ in report.values()) == 10
    assert fp8_ok((16, 32)) and not fp8_ok((24, 32)) and fp8_ok(nn.Linear(16, 48))


UNEVEN = {"flux": _flux3, "flux2": _flux2_3, "wan_i2v": _wan3_i2v, "ltx": _ltx3}


def _build(name: str) -> tuple[Any, dict]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        model, kwargs = UNEVEN[name]()
        unzero(model)  # no zero-initialised layer may hide a wrong shard
    return model, {**kwargs, "return_dict": False}


def _uneven_case(name: str) -> dict[str, Any]:
    from ditkit_parallel.tensor import enable_tensor_parallel, gather_full_state_dict

    model, kwargs = _build(name)
    original = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        reference = model(**kwargs)[0].clone()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            enable_tensor_parallel(model, ParallelismConfig(tp_size=2))
        output = model(**kwargs)[0]
    full = gather_full_state_dict(model)
    restored = full.keys() == original.keys() and all(
        torch.equal(full[k], original[k]) for k in original
    )
    return dict(
        error=rel_error(output, reference),
        warnings=[str(w.message) for w in caught if "zero heads" in str(w.message)],
        restored=restored,
    )


def _fp8_case() -> dict[str, Any]:
    """Predicted (before sharding) and actual (after) per-rank shapes of every linear."""
    from ditkit_parallel.tensor import enable_tensor_parallel, local_fp8_eligibility

    result = {}
    for friendly in (False, True):
        model = fp8_wan()
        predicted = fp8_eligibility(model, 2, fp8_friendly=friendly)
        enable_tensor_parallel(model, ParallelismConfig(tp_size=2), fp8_friendly=friendly)
        actual = local_fp8_eligibility(model)
        result[friendly] = dict(
            predicted={e.name: (e.style, e.local_shape, e.eligible) for e in predicted},
            actual={e.name: (e.style, e.local_shape, e.eligible) for e in actual},
            contiguous=all(e.contiguous for e in actual),
        )
    return result


def _expect(error: type[BaseException], call: Any) -> str:
    try:
        call()
    except error as exc:
        return str(exc)
    return f"no {error.__name__} raised"


def _error_case() -> dict[str, str]:
    from torch.distributed.device_mesh import init_device_mesh

    from ditkit_interfaces.errors import ConfigError
    from ditkit_parallel.tensor import enable_tensor_parallel

    model, _ = _build("flux")
    wide = init_device_mesh("cpu", (1, 2), mesh_dim_names=("outer", "tp"))
    out = dict(
        indivisible=_expect(
            ConfigError, lambda: enable_tensor_parallel(model, ParallelismConfig(tp_size=3))
        ),
        too_big=_expect(
            ConfigError,
            lambda: enable_tensor_parallel(model, ParallelismConfig(tp_size=2, ulysses_size=2)),
        ),
        mesh=_expect(
            ConfigError,
            lambda: enable_tensor_parallel(model, ParallelismConfig(tp_size=2), mesh=wide),
        ),
    )
    enable_tensor_parallel(model, ParallelismConfig(tp_size=2), mesh=wide["tp"])
    out["twice"] = _expect(
        RuntimeError, lambda: enable_tensor_parallel(model, ParallelismConfig(tp_size=2))
    )
    return out


def uneven_worker(rank: int, world_size: int) -> dict[str, Any]:
    results: dict[str, Any] = {name: _uneven_case(name) for name in UNEVEN}
    results["fp8"] = _fp8_case()
    results["errors"] = _error_case()
    return results


@pytest.fixture(scope="module")
def results() -> list[dict[str, Any]]:
    return run_distributed(uneven_worker, 2)


@pytest.mark.parametrize("name", list(UNEVEN))
def test_indivisible_heads_are_padded_and_exact(results: list[dict[str, Any]], name: str) -> None:
    for rank_results in results:
        result = rank_results[name]
        assert result["error"] < TOLERANCE, f"relative error {result['error']:.2e}"
        assert len(result["warnings"]) == 1
        assert "3 attention heads do not divide tp=2" in result["warnings"][0]
        assert "padded with zero heads to 4 (2 per rank)" in result["warnings"][0]


@pytest.mark.parametrize("name", list(UNEVEN))
def test_gathered_state_dict_undoes_the_relayout(results: list[dict[str, Any]], name: str) -> None:
    assert all(rank_results[name]["restored"] for rank_results in results)


@pytest.mark.parametrize("friendly", [False, True])
def test_fp8_prediction_matches_the_sharded_weights(
    results: list[dict[str, Any]], friendly: bool
) -> None:
    for rank_results in results:
        fp8 = rank_results["fp8"][friendly]
        assert fp8["predicted"] == fp8["actual"]
        assert fp8["contiguous"]
        for name, (style, local, eligible) in FP8_WAN_EXPECTED[friendly].items():
            assert fp8["actual"][name] == (style, local, eligible), name


def test_bad_sizes_raise_clear_errors(results: list[dict[str, Any]]) -> None:
    errors = results[0]["errors"]
    assert (
        "tp_size=3" in errors["indivisible"]
        and "divisor of the world size 2" in errors["indivisible"]
    )
    assert "world_size=4" in errors["too_big"] and "2 launched processes" in errors["too_big"]
    assert "1-D mesh of tp_size=2" in errors["mesh"]
    assert "already tensor-parallel" in errors["twice"]
