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
