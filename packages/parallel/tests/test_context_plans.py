"""Context-parallel plans, registry, hooks and routing, checked in one process.

The single-rank mesh (``CPMesh.single()``) runs every hook and route without a process group,
so enabling, routing and undo are checked here quickly; the multi-rank numerics live in
``test_context_parallel.py``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

import ditkit_parallel.attention as cp_attention
from ditkit_interfaces import ConfigError, ParallelismConfig, UnsupportedModelError
from ditkit_parallel.context import (
    CPPlan,
    Gather,
    ModulePlan,
    Split,
    as_cp_plan,
    disable_context_parallel,
    enable_context_parallel,
    register_cp_plan,
    registered_cp_plans,
    resolve_cp_plan,
)
from ditkit_parallel.context.hooks import ForwardState, install_plan_hooks
from ditkit_parallel.context.plan import matches_path
from ditkit_parallel.context.sharding import map_tensors, piece_lengths, split_piece
from ditkit_parallel.mesh import CPMesh

CONFIG = ParallelismConfig(ulysses_size=2)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _flux(seed: int = 0) -> tuple[torch.nn.Module, dict[str, Any]]:
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(seed)
    model = FluxTransformer2DModel(
        patch_size=1,
        in_channels=8,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=8,
        pooled_projection_dim=4,
        axes_dims_rope=(2, 2, 4),
    ).eval()
    kwargs = dict(
        hidden_states=torch.randn(1, 6, 8),
        encoder_hidden_states=torch.randn(1, 3, 8),
        pooled_projections=torch.randn(1, 4),
        timestep=torch.tensor([0.5]),
        img_ids=torch.randn(6, 3),
        txt_ids=torch.zeros(3, 3),
        return_dict=False,
    )
    return model, kwargs


class _Mystery(torch.nn.Module):
    """A transformer class no plan is registered for."""

    def __init__(self) -> None:
        super().__init__()
        self.proj_out = torch.nn.Linear(4, 4)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.proj_out(hidden_states)


# -- plans as data ----------------------------------------------------------------------------
def test_paths_match_one_component_per_star():
    assert matches_path("blocks.*", "blocks.12")
    assert not matches_path("blocks.*", "blocks.1.attn")
    assert matches_path("blocks.*.attn", "blocks.1.attn")
    assert matches_path("", "") and not matches_path("", "blocks") and not matches_path("x", "")


def test_cache_dit_style_plans_convert_to_module_plans():
    split_in = SimpleNamespace(split_dim=1, expected_dims=3, split_output=False)
    split_out = SimpleNamespace(split_dim=0, expected_dims=2, split_output=True)
    plan = as_cp_plan(
        {
            "": {"hidden_states": split_in},
            "rope": {0: split_out, 1: split_out},
            "blocks.*": {"rotary": [split_in, split_in]},  # one spec per tuple element
            "proj_out": SimpleNamespace(gather_dim=1, expected_dims=3),
        }
    )
    assert plan.modules[""].inputs == {"hidden_states": Split(1, 3)}
    assert plan.modules["rope"].outputs == {0: Split(0, 2), 1: Split(0, 2)}
    assert plan.modules["blocks.*"].inputs == {"rotary": Split(1, 3)}
    assert plan.modules["proj_out"].gather == Gather(1, 3)


def test_a_plan_without_gather_is_rejected():
    with pytest.raises(ConfigError, match="Gather"):
        CPPlan({"": ModulePlan(inputs={"x": Split(1)})})


def test_registry_knows_the_eight_families_and_the_longest_prefix_wins():
    for name in (
        "FluxTransformer2DModel",
        "Flux2Transformer2DModel",
        "QwenImageTransformer2DModel",
        "WanTransformer3DModel",
        "HunyuanVideoTransformer3DModel",
        "CogVideoXTransformer3DModel",
        "LTXVideoTransformer3DModel",
        "ZImageTransformer2DModel",
    ):
        assert name in registered_cp_plans()
    flux2 = type("Flux2Transformer2DModel", (_Mystery,), {})()
    assert resolve_cp_plan(flux2).name == "Flux2Transformer2DModel"


def test_register_cp_plan_adds_a_family():
    cls = type("ToyRegisteredTransformer", (_Mystery,), {})
    register_cp_plan(cls.__name__, {"": {"hidden_states": Split(1)}, "proj_out": Gather(1)})
    plan = resolve_cp_plan(cls())
    assert plan.modules[""].inputs == {"hidden_states": Split(1)}
    with pytest.raises(Exception, match="already registered"):
        register_cp_plan(cls.__name__, plan)


# -- refusing early ---------------------------------------------------------------------------
def test_no_plan_is_refused_before_any_process_group_is_needed():
    model = _Mystery()
    with pytest.raises(UnsupportedModelError, match="cp_plan"):
        enable_context_parallel(model, CONFIG)
    assert not model._forward_pre_hooks and not hasattr(model, "_is_parallelized")


def test_a_plan_that_does_not_fit_the_model_is_refused_untouched():
    model, _ = _flux()
    bad = ParallelismConfig(ulysses_size=2, cp_plan={"nope": Gather(1)})
    with pytest.raises(ConfigError, match="nope"):
        enable_context_parallel(model, bad, mesh=CPMesh.single())
    assert not model._forward_pre_hooks and not hasattr(model, "_is_parallelized")


def test_token_replace_hunyuan_video_is_refused():
    config = SimpleNamespace(image_condition_type="token_replace")
    model = type("HunyuanVideoTransformer3DModel", (), {"config": config})()
    with pytest.raises(UnsupportedModelError, match="token_replace"):
        resolve_cp_plan(model)


def test_enabling_twice_is_refused():
    model, _ = _flux()
    handle = enable_context_parallel(model, CONFIG, mesh=CPMesh.single())
    with pytest.raises(ConfigError, match="disable_context_parallel"):
        enable_context_parallel(model, CONFIG, mesh=CPMesh.single())
    handle.remove()
    assert not disable_context_parallel(model)  # already undone: nothing to do


# -- routing and undo on one rank -------------------------------------------------------------
def test_attention_is_routed_only_for_the_parallel_model(monkeypatch):
    calls: list[tuple[int, ...]] = []
    original = cp_attention.context_parallel_attention

    def spy(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append(tuple(args[0].shape))
        assert kwargs["seq_key"][0] == "attention"
        return original(*args, **kwargs)

    monkeypatch.setattr(cp_attention, "context_parallel_attention", spy)
    model, kwargs = _flux(0)
    other, other_kwargs = _flux(1)
    with torch.no_grad():
        ref, other_ref = model(**kwargs)[0], other(**other_kwargs)[0]
        handle = enable_context_parallel(model, CONFIG, mesh=CPMesh.single())
        out = model(**kwargs)[0]
        assert len(calls) == 2  # one double and one single block
        assert torch.equal(other(**other_kwargs)[0], other_ref) and len(calls) == 2
        handle.remove()
        assert torch.equal(model(**kwargs)[0], ref) and len(calls) == 2
    assert (out - ref).abs().max() <= 1e-6 * ref.abs().max()


def test_undo_restores_processors_hooks_attributes_and_dispatch():
    from diffusers.models.transformers import transformer_flux

    model, _ = _flux()
    dispatch = transformer_flux.dispatch_attention_fn
    processors = {name: id(p) for name, p in model.attn_processors.items()}
    attrs = dict(vars(model))
    handle = enable_context_parallel(model, CONFIG, mesh=CPMesh.single())
    assert transformer_flux.dispatch_attention_fn is not dispatch
    assert model._is_parallelized and model._parallelism_config is CONFIG
    assert all("_parallel_config" in vars(p) for p in model.attn_processors.values())
    assert model._forward_pre_hooks and model.proj_out._forward_hooks
    disable_context_parallel(model)
    assert transformer_flux.dispatch_attention_fn is dispatch
    assert {name: id(p) for name, p in model.attn_processors.items()} == processors
    assert all("_parallel_config" not in vars(p) for p in model.attn_processors.values())
    assert vars(model).keys() == attrs.keys()
    assert not model._forward_pre_hooks and not model.proj_out._forward_hooks
    assert not handle.hooks and not handle.marked


def test_user_plan_applies_to_an_unregistered_class():
    model = _Mystery()
    config = ParallelismConfig(
        ulysses_size=2,
        cp_plan={"": {"hidden_states": Split(1, ndim=3)}, "proj_out": Gather(1, ndim=3)},
    )
    x = torch.randn(1, 5, 4)
    ref = model(x)
    handle = enable_context_parallel(model, config, mesh=CPMesh.single())
    assert torch.equal(model(x), ref) and handle.plan.modules["proj_out"].gather == Gather(1, 3)
    handle.remove()


# -- splitting --------------------------------------------------------------------------------
def test_tensor_split_pieces_cover_uneven_lengths():
    assert piece_lengths(7, 2) == [4, 3] and piece_lengths(2, 4) == [1, 1, 0, 0]
    x = torch.arange(14).reshape(2, 7)
    pieces = [split_piece(x, 1, 3, r) for r in range(3)]
    assert [p.shape[1] for p in pieces] == piece_lengths(7, 3)
    assert torch.equal(torch.cat(pieces, 1), x)
    nested = map_tensors({"a": [x, (x, None)]}, lambda t: t[:, :1])
    assert nested["a"][1][0].shape == (2, 1) and nested["a"][1][1] is None


class _Joint(torch.nn.Module):
    """``forward(a, b)`` hands ``mask`` over ``cat([a, b])`` to a child; ``out`` gathers."""

    def __init__(self) -> None:
        super().__init__()
        self.child = torch.nn.Identity()
        self.out = torch.nn.Identity()

    def forward(self, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> Any:
        return self.child(mask), a, b


def test_segment_splits_take_each_segments_piece():
    model = _Joint()
    plan = CPPlan(
        {
            "": ModulePlan(inputs={"a": Split(1), "b": Split(1)}),
            "child": ModulePlan(inputs={0: Split(-1, segments=("a", "b"))}),
            "out": ModulePlan(gather=Gather(1)),
        }
    )
    mesh = SimpleNamespace(cp_size=2, cp_rank=1)  # rank 1 of 2, no collectives used here
    state = ForwardState(mesh)  # type: ignore[arg-type]
    handles = install_plan_hooks(model, plan, state)
    a, b = torch.arange(5)[None], 10 + torch.arange(3)[None]
    mask, a_local, b_local = model(a, b, torch.cat([a, b], 1))
    assert a_local.tolist() == [[3, 4]] and b_local.tolist() == [[12]]
    assert mask.tolist() == [[3, 4, 12]]
    assert state.lengths == {":a": 5, ":b": 3}
    for handle in handles:
        handle.remove()
    assert not model._forward_pre_hooks_with_kwargs and not model.child._forward_pre_hooks
