"""``ditkit.set_compile_configs``: the dynamo/inductor options really change and restore."""

import doctest
import inspect
import types
import warnings

import pytest
import torch
import torch._dynamo.config as dynamo_config
import torch._inductor.config as inductor_config

import ditkit
from ditkit import ConfigError, compile_recipe
from ditkit.compile_recipe import (
    apply_compile_options,
    compile_options,
    compile_repeated_blocks,
    read_compile_option,
    restore_compile_configs,
    set_compile_configs,
)

WATCHED = (
    "dynamo.recompile_limit",
    "dynamo.accumulated_recompile_limit",
    "dynamo.capture_scalar_outputs",
    "dynamo.capture_dynamic_output_shape_ops",
    "inductor.coordinate_descent_tuning",
    "inductor.fx_graph_cache",
    "inductor.fx_graph_remote_cache",
    "inductor.autotune_local_cache",
    "inductor.force_disable_caches",
    "inductor.triton.cudagraphs",
    "inductor.use_fast_math",
    "inductor.cuda.use_fast_math",
    "inductor.cutedsl_enable_autotuning",
    "inductor.reorder_for_compute_comm_overlap",
    "inductor.intra_node_bw",
    "inductor.reorder_for_peak_memory",
    "inductor.reorder_for_locality",
    "inductor.epilogue_fusion_first",
)


def snapshot() -> dict:
    return {path: read_compile_option(path) for path in WATCHED}


@pytest.fixture(autouse=True)
def pristine_configs():
    """Every test starts and ends with the process's original compile options."""
    before = snapshot()
    yield before
    for path, value in before.items():
        apply_compile_options({path: value})
    assert snapshot() == before


def test_cache_dit_signature():
    params = inspect.signature(set_compile_configs).parameters
    expected = {
        "descent_tuning": True,
        "cuda_graphs": False,
        "force_disable_compile_caches": False,
        "fx_graph_cache": True,
        "fx_graph_remote_cache": False,
        "autotune_local_cache": False,
        "use_fast_math": False,
        "compute_comm_overlap": True,
        "ulysses_anything": False,
        "capture_scalar_outputs": None,
        "capture_dynamic_output_shape_ops": None,
        "cutedsl_enable_autotuning": None,
    }
    assert [name for name in params if name != "kwargs"] == list(expected)
    assert {name: params[name].default for name in expected} == expected
    assert params["kwargs"].kind is inspect.Parameter.VAR_KEYWORD


def test_defaults_change_and_restore(pristine_configs):
    changes = set_compile_configs()
    assert dynamo_config.recompile_limit == 1024
    assert dynamo_config.accumulated_recompile_limit == 8192
    assert inductor_config.coordinate_descent_tuning is True
    assert inductor_config.fx_graph_cache is True
    assert inductor_config.fx_graph_remote_cache is False
    assert inductor_config.autotune_local_cache is False
    assert inductor_config.triton.cudagraphs is False
    # the returned dict is exactly what changed, old -> new
    for path, (old, new) in changes.items():
        assert pristine_configs[path] == old
        assert read_compile_option(path) == new
    assert changes["dynamo.recompile_limit"] == (pristine_configs["dynamo.recompile_limit"], 1024)
    unchanged = set(WATCHED) - set(changes)
    assert all(read_compile_option(p) == pristine_configs[p] for p in unchanged)
    # not distributed: compute-comm overlap is left alone
    assert "inductor.reorder_for_compute_comm_overlap" not in changes
    restore_compile_configs(changes)
    assert snapshot() == pristine_configs
    assert dynamo_config.recompile_limit == pristine_configs["dynamo.recompile_limit"]


def test_second_call_reports_nothing_new():
    first = set_compile_configs()
    assert first
    assert set_compile_configs() == {}
    restore_compile_configs(first)


def test_descent_tuning_off_leaves_coordinate_descent_alone():
    changes = set_compile_configs(descent_tuning=False)
    assert "inductor.coordinate_descent_tuning" not in changes
    assert inductor_config.coordinate_descent_tuning is False
    assert dynamo_config.recompile_limit == 1024
    restore_compile_configs(changes)


def test_each_parameter_reaches_its_option():
    changes = set_compile_configs(
        cuda_graphs=True,
        force_disable_compile_caches=True,
        use_fast_math=True,
        capture_scalar_outputs=True,
        capture_dynamic_output_shape_ops=True,
        cutedsl_enable_autotuning=True,
        epilogue_prologue_fusion=True,
    )
    assert inductor_config.triton.cudagraphs is True
    assert inductor_config.force_disable_caches is True
    assert inductor_config.fx_graph_cache is False
    assert inductor_config.autotune_local_cache is False
    assert inductor_config.use_fast_math is True
    assert inductor_config.cuda.use_fast_math is True
    assert dynamo_config.capture_scalar_outputs is True
    assert dynamo_config.capture_dynamic_output_shape_ops is True
    assert inductor_config.cutedsl_enable_autotuning is True
    assert inductor_config.epilogue_fusion_first is True
    restore_compile_configs(changes)
    assert inductor_config.triton.cudagraphs is False
    assert dynamo_config.capture_scalar_outputs is False


def test_ulysses_anything_captures_scalars_on_new_torch(monkeypatch):
    assert compile_options(ulysses_anything=True)["dynamo.capture_scalar_outputs"] is True
    assert "dynamo.capture_scalar_outputs" not in compile_options()
    explicit = compile_options(ulysses_anything=True, capture_scalar_outputs=False)
    assert explicit["dynamo.capture_scalar_outputs"] is False
    monkeypatch.setattr(torch, "__version__", "2.9.1+cu128")
    assert "dynamo.capture_scalar_outputs" not in compile_options(ulysses_anything=True)


def test_compute_comm_overlap_only_when_distributed(monkeypatch):
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(compile_recipe, "_device_name", lambda: "NVIDIA H100 80GB HBM3")
    options = compile_options()
    assert options["inductor.reorder_for_compute_comm_overlap"] is True
    assert options["inductor.intra_node_bw"] == 300
    # the graph's order kept, so issued collectives overlap the compute after them
    assert options["inductor.reorder_for_peak_memory"] is False
    assert options["inductor.reorder_for_locality"] is False
    monkeypatch.setattr(compile_recipe, "_device_name", lambda: "NVIDIA L20")
    assert compile_options()["inductor.intra_node_bw"] == 64
    off = compile_options(compute_comm_overlap=False)
    assert off["inductor.reorder_for_compute_comm_overlap"] is False
    assert "inductor.intra_node_bw" not in off
    assert "inductor.reorder_for_peak_memory" not in off
    changes = set_compile_configs()
    assert inductor_config.reorder_for_compute_comm_overlap is True
    assert inductor_config.reorder_for_peak_memory is False
    restore_compile_configs(changes)
    assert inductor_config.reorder_for_compute_comm_overlap is False
    assert inductor_config.reorder_for_peak_memory is True


def test_unknown_kwargs_refused_before_anything_changes(pristine_configs):
    with pytest.raises(ConfigError) as err:
        set_compile_configs(descnt_tuning=True, fullgraph=True)
    message = str(err.value)
    assert "descnt_tuning" in message and "fullgraph" in message
    assert "'descent_tuning' instead of 'descnt_tuning'" in message
    assert isinstance(err.value, ValueError)
    assert snapshot() == pristine_configs


def test_missing_option_is_skipped_with_a_warning():
    with pytest.warns(RuntimeWarning, match="inductor.no_such_option"):
        changes = apply_compile_options(
            {"inductor.no_such_option": True, "inductor.coordinate_descent_tuning": True}
        )
    assert changes == {"inductor.coordinate_descent_tuning": (False, True)}
    restore_compile_configs(changes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # switching a missing option off is not worth a warning
        assert apply_compile_options({"inductor.nested.no_such_option": False}) == {}
    with pytest.raises(KeyError, match=r"dynamo\. or inductor\."):
        apply_compile_options({"dynamo.recompile_limit": 99, "aot.whatever": 1})
    assert dynamo_config.recompile_limit != 99


def test_umbrella_exports_lazily():
    assert ditkit.set_compile_configs is set_compile_configs
    assert ditkit.restore_compile_configs is restore_compile_configs
    assert ditkit.compile_repeated_blocks is compile_repeated_blocks
    for name in ("set_compile_configs", "restore_compile_configs", "compile_repeated_blocks"):
        assert name in dir(ditkit) and name in ditkit.__all__


def _compiled(block: torch.nn.Module) -> bool:
    return getattr(block, "_compiled_call_impl", None) is not None


def test_compile_repeated_blocks_delegates_to_diffusers_and_keeps_outputs():
    from ditkit_testing import build_tiny_pipeline, tiny_call_kwargs

    pipe = build_tiny_pipeline("flux")
    eager = pipe(**tiny_call_kwargs("flux", num_inference_steps=2)).images
    assert compile_repeated_blocks(pipe, backend="eager") == ["FluxTransformer2DModel"]
    transformer = pipe.transformer
    blocks = [*transformer.transformer_blocks, *transformer.single_transformer_blocks]
    assert blocks and all(_compiled(block) for block in blocks)
    assert not _compiled(transformer)
    compiled = pipe(**tiny_call_kwargs("flux", num_inference_steps=2)).images
    torch.testing.assert_close(compiled, eager)


def test_compile_repeated_blocks_from_an_adapter_and_refusal():
    first = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(2)])
    second = torch.nn.ModuleList([torch.nn.Linear(2, 2)])
    adapter = types.SimpleNamespace(transformer=torch.nn.Sequential(), blocks=[first, second])
    assert compile_repeated_blocks(adapter, backend="eager") == ["Sequential"]
    assert all(_compiled(block) for block in [*first, *second])
    with pytest.raises(ValueError, match="_repeated_blocks"):
        compile_repeated_blocks(torch.nn.Linear(2, 2))


def test_docstring_examples():
    result = doctest.testmod(compile_recipe, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4
    assert result.failed == 0
