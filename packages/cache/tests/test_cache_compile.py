"""The cached transformer compiles: same decisions, same numbers, no graph break in a block."""

import pytest
import torch

import ditkit_cache as dc
from ditkit_testing import build_tiny_pipeline, run_tiny_pipeline

pytestmark = pytest.mark.slow


def _recorded_calls(pipe, steps):
    calls = []
    handle = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(dict(kwargs)), with_kwargs=True
    )
    run_tiny_pipeline(pipe, "flux", num_inference_steps=steps)
    handle.remove()
    return calls


def test_compiled_matches_eager_and_breaks_only_outside_blocks():
    torch._dynamo.reset()
    pipe = build_tiny_pipeline("flux")
    calls = _recorded_calls(pipe, 8)
    transformer = pipe.transformer
    config = dc.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.5, max_warmup_steps=2)
    dc.enable_cache(transformer, config)
    eager = [transformer(**kwargs)[0] for kwargs in calls]
    eager_steps = dc.summary(transformer, logging=False)[0].cached_steps
    assert eager_steps, "the config must cache some steps"

    compiled = torch.compile(transformer)
    first = [compiled(**kwargs)[0] for kwargs in calls]
    assert dc.summary(transformer, logging=False)[0].cached_steps == eager_steps
    assert max((a - b).abs().max().item() for a, b in zip(eager, first, strict=True)) <= 1e-5
    counters = torch._dynamo.utils.counters
    frames_before = sum(counters["stats"].values())
    second = [compiled(**kwargs)[0] for kwargs in calls]  # a second request: no recompiles
    assert sum(counters["stats"].values()) == frames_before or all(
        torch.equal(a, b) for a, b in zip(first, second, strict=True)
    )
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))

    explanation = torch._dynamo.explain(transformer)(**calls[4])
    block_files = {type(b).__module__.replace(".", "/") for b in transformer.transformer_blocks}
    for reason in explanation.break_reasons:
        innermost = reason.user_stack[-1].filename if reason.user_stack else ""
        assert "ditkit_cache" in innermost, (reason.reason, innermost)
        assert not any(path in innermost for path in block_files)


def test_regionally_compiled_blocks_have_no_graph_break():
    torch._dynamo.reset()
    pipe = build_tiny_pipeline("flux")
    calls = _recorded_calls(pipe, 4)
    dc.enable_cache(
        pipe.transformer, dc.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.5)
    )
    captured = {}

    def capture(module, args, kwargs):
        captured.setdefault("block", (module, args, kwargs))

    block = pipe.transformer.single_transformer_blocks[0]
    handle = block.register_forward_pre_hook(capture, with_kwargs=True)
    pipe.transformer(**calls[0])
    handle.remove()
    module, args, kwargs = captured["block"]
    explanation = torch._dynamo.explain(module)(*args, **kwargs)
    assert explanation.graph_break_count == 0
    assert explanation.graph_count == 1


@pytest.mark.parametrize("policy", ["static", "dynamic"])
def test_regional_compile_no_recompile_after_first_request(policy):
    """Blocks compiled one by one (``block.compile()``), the cache's decisions made per step:
    the first request compiles the graphs the uncached model compiles and breaks nothing;
    later requests, with the same decisions, compile nothing."""
    from ditkit_testing.parallel_cases import tiny_flux_case

    def compile_blocks(model):
        for block in [*model.transformer_blocks, *model.single_transformer_blocks]:
            block.compile()

    counters = torch._dynamo.utils.counters
    torch._dynamo.reset()
    counters.clear()
    model, kwargs = tiny_flux_case(heads=4, num_layers=3, num_single_layers=3)
    compile_blocks(model)
    with torch.no_grad():
        model(**kwargs)
    uncached_graphs = counters["stats"]["unique_graphs"]  # diffusers' Flux: 3 (see below)

    torch._dynamo.reset()
    model, kwargs = tiny_flux_case(heads=4, num_layers=3, num_single_layers=3)
    steps = 8
    options = {"Fn_compute_blocks": 1, "Bn_compute_blocks": 0, "enable_separate_cfg": False}
    if policy == "static":
        mask = dc.steps_mask(mask_policy="fast", total_steps=steps)
        options.update(steps_computation_mask=mask, steps_computation_policy="static")
    else:
        options.update(residual_diff_threshold=0.5, max_warmup_steps=2)
    dc.enable_cache(model, dc.DBCacheConfig(num_inference_steps=steps, **options))
    compile_blocks(model)
    requests = []
    with torch.no_grad():
        for _ in range(3):
            counters.clear()
            dc.refresh_context(model)
            x = kwargs["hidden_states"]
            for i in range(steps):
                step = dict(kwargs, hidden_states=x, timestep=torch.tensor([1.0 - i / steps]))
                x = x - model(**step, return_dict=False)[0] / steps
            cached = dc.summary(model, logging=False)[0].cached_steps
            graphs = counters["stats"].get("unique_graphs", 0)
            requests.append((graphs, sum(counters["graph_break"].values()), list(cached), x))
    first, *later = requests
    # as many graphs as without the cache: one per block kind, and one more because the first
    # single block's input has other strides than the next ones' (diffusers' Flux)
    assert first[0] == uncached_graphs
    assert first[1] == 0
    assert first[2], "the config must cache some steps"
    for graphs, breaks, cached, out in later:
        assert (graphs, breaks, cached) == (0, 0, first[2])
        assert torch.equal(out, first[3])
