"""Tensor-parallel layout arithmetic, plans, fp8 prediction and early errors (one process)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ditkit_interfaces.errors import CapabilityError, ConfigError, UnsupportedModelError
from ditkit_interfaces.parallel_config import ParallelismConfig
from ditkit_parallel.tensor import (
    BlockPlan,
    Colwise,
    Rowwise,
    ShardLayout,
    disable_tensor_parallel,
    enable_tensor_parallel,
    relayout,
    restore,
    tp_plan_for,
)
from ditkit_parallel.tensor.layout import local_units
from ditkit_parallel.tensor.plan import part_sizes
from ditkit_parallel.tensor.plans import FLUX2_PLAN, FLUX_PLAN, WAN_PLAN


def test_packed_proj_out_layout_gives_each_rank_whole_heads_and_its_mlp_share() -> None:
    # Flux single block, 3 heads of 8 + an MLP of 96, on 2 ranks: head 2 is padded to 4 heads.
    layout = ShardLayout.build([("heads", 24), ("ffn", 96)], world=2, unit=8)
    index = layout.index()
    assert layout.local_size == 16 + 48 and layout.global_size == 128 and layout.padded
    assert index[:16].tolist() == list(range(16))  # rank 0: heads 0 and 1
    assert index[16:64].tolist() == list(range(24, 72))  # rank 0: MLP channels 0-47
    assert index[64:72].tolist() == list(range(16, 24))  # rank 1: head 2
    assert index[72:80].tolist() == [-1] * 8  # rank 1: the zero head
    assert index[80:].tolist() == list(range(72, 120))  # rank 1: MLP channels 48-95
    assert torch.equal(layout.index(1), index[64:])


def test_fused_qkv_mlp_layout_keeps_q_k_v_gate_up_in_order_per_rank() -> None:
    layout = ShardLayout.build([("heads", 4)] * 3 + [("ffn", 6)] * 2, world=2, unit=2)
    rank0 = layout.index(0).tolist()
    assert rank0 == [0, 1, 4, 5, 8, 9, 12, 13, 14, 18, 19, 20]
    assert layout.identity is False and ShardLayout.build([("ffn", 8)], 2).identity


@pytest.mark.parametrize("parts", [[("heads", 24), ("ffn", 33)], [("ffn", 7)], [("heads", 16)]])
@pytest.mark.parametrize("dim", [0, 1])
def test_relayout_then_restore_is_the_identity(parts: list, dim: int) -> None:
    layout = ShardLayout.build(parts, world=3, unit=8, align=16)
    weight = torch.randn(layout.size, 5) if dim == 0 else torch.randn(5, layout.size)
    moved = relayout(weight, dim, layout.index())
    assert moved.shape[dim] == layout.global_size
    assert moved.abs().sum() == pytest.approx(weight.abs().sum().item(), rel=1e-6)
    assert torch.equal(restore(moved, dim, layout.index()), weight)


def test_local_units_and_alignment() -> None:
    assert [local_units(n, 2) for n in (1, 2, 3, 4)] == [1, 1, 2, 2]
    assert local_units(33, 2, 1, 16) == 32  # an MLP of 33 on 2 ranks, fp8-aligned
    assert local_units(3, 2, unit=8, align=16) == 2
    # align pads MLP parts only, never heads
    assert ShardLayout.build([("heads", 8)], 2, unit=4, align=16).local_size == 4
    assert ShardLayout.build([("ffn", 8)], 2, align=16).local_size == 16
    with pytest.raises(ValueError, match="whole number"):
        ShardLayout.build([("heads", 10)], 2, unit=4)


def test_part_sizes_reject_a_plan_that_does_not_fit() -> None:
    assert part_sizes(("heads", "ffn"), 40, 8) == [("heads", 8), ("ffn", 32)]
    with pytest.raises(ValueError, match="does not match"):
        part_sizes(("heads",), 40, 8)
    with pytest.raises(ValueError, match="does not match"):
        part_sizes(("heads", "ffn", "ffn"), 41, 8)


def test_plan_data_is_validated() -> None:
    with pytest.raises(ValueError, match="parts"):
        Colwise(("head",))
    with pytest.raises(TypeError, match="Colwise, Rowwise or Modulation"):
        BlockPlan("blocks.*", {"to_q": "colwise"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="attrs"):
        BlockPlan("blocks.*", {"to_q": Colwise()}, attrs={"mlp": "channels"})
    plan = BlockPlan("blocks.*", {"proj_out": Rowwise(("heads", "ffn"))})
    with pytest.raises(TypeError):
        plan.layers["x"] = Colwise()  # type: ignore[index]


def _named(name: str) -> nn.Module:
    return type(name, (nn.Module,), {})()


def test_plans_are_found_by_the_longest_class_name_prefix() -> None:
    assert tp_plan_for(_named("FluxTransformer2DModel")) is FLUX_PLAN
    assert tp_plan_for(_named("ChromaTransformer2DModel")) is FLUX_PLAN
    assert tp_plan_for(_named("Flux2Transformer2DModel")) is FLUX2_PLAN
    assert tp_plan_for(_named("WanTransformer3DModel")) is WAN_PLAN
    for other in ("WanVACETransformer3DModel", "HunyuanVideo15Transformer3DModel", "Linear"):
        assert tp_plan_for(_named(other)) is None, other


def test_early_errors_without_a_process_group() -> None:
    model = _named("FluxTransformer2DModel")
    with pytest.raises(ConfigError, match="tp_size"):
        enable_tensor_parallel(model, ParallelismConfig(ulysses_size=2))
    with pytest.raises(CapabilityError, match="init_process_group"):
        enable_tensor_parallel(model, ParallelismConfig(tp_size=2))
    with pytest.raises(UnsupportedModelError, match=r"plan=TensorParallelPlan.*register_tp_plan"):
        enable_tensor_parallel(nn.Linear(4, 4), ParallelismConfig(tp_size=2))
    with pytest.raises(NotImplementedError, match="cannot be undone"):
        disable_tensor_parallel(model)


def test_plan_on_five_ranks_pads_heads_and_replicates_an_indivisible_modulation() -> None:
    from ditkit_parallel.tensor.shard import block_geometry, plan_linears
    from ditkit_testing import build_tiny_transformer

    model = build_tiny_transformer("flux", seed=0)  # 2 heads of 16, hidden 32, MLP 128
    block = model.transformer_blocks[0]
    geometry = block_geometry(block, FLUX_PLAN.blocks[0], world=5)
    assert (geometry.local_heads, geometry.padded_heads) == (1, 5)
    shards = {s.path: s for s in plan_linears("b", block, FLUX_PLAN.blocks[0], geometry)}
    assert shards["b.attn.to_q"].local_shape() == (16, 32)  # one (maybe zero) head per rank
    assert shards["b.attn.to_out.0"].local_shape() == (32, 16)
    assert shards["b.ff.net.0.proj"].local_shape() == (26, 32)  # ceil(128 / 5)
    modulation = shards["b.norm1.linear"]  # 6 * 32 = 192 outputs do not divide 5
    assert modulation.style == "replicated" and "does not divide tp=5" in modulation.reason
    assert modulation.local_shape() == (192, 32)
    assert (
        plan_linears(
            "b", block, FLUX_PLAN.blocks[0], block_geometry(block, FLUX_PLAN.blocks[0], world=2)
        )[-1].style
        == "modulation"
    )
