"""``ditkit.enable_cuda_graphs``: keys, warm-up, static inputs, cloned outputs, fallbacks, restore.

The CPU tests swap ``torch.cuda.CUDAGraph`` for :class:`FakeGraph`, which behaves like a capture:
the outputs it hands back hold garbage (NaN) until :meth:`FakeGraph.replay` recomputes them from
the static inputs, in place. So a wrapper that forgot to refresh an input, to replay, or to clone
an output fails here. The real capture is the ``gpu`` test at the end (run on the device).
"""

from __future__ import annotations

import contextlib
import warnings

import pytest
import torch
from torch.utils._pytree import tree_flatten

import ditkit
from ditkit import ConfigError, cuda_graphs
from ditkit_testing import build_tiny_pipeline, run_tiny_pipeline


class FakeGraph:
    """A CPU stand-in for a captured graph (see the module docstring)."""

    captures = 0

    def __init__(self, pool: object) -> None:
        self.pool = pool
        self.call = None
        self.output = None

    def capture(self, call):
        FakeGraph.captures += 1
        self.call = call
        self.output = call()
        for leaf in tree_flatten(self.output)[0]:
            if isinstance(leaf, torch.Tensor) and leaf.is_floating_point():
                leaf.fill_(float("nan"))  # a capture computes nothing
        return self.output

    def replay(self) -> None:
        fresh = tree_flatten(self.call())[0]
        for kept, value in zip(tree_flatten(self.output)[0], fresh, strict=True):
            if isinstance(kept, torch.Tensor):
                kept.copy_(value)


class FailingGraph(FakeGraph):
    def capture(self, call):
        raise RuntimeError("operation not permitted when stream is capturing")


@pytest.fixture
def fake_cuda(monkeypatch):
    """CPU tensors count as graphable and captures use :class:`FakeGraph`."""
    FakeGraph.captures = 0
    monkeypatch.setattr(cuda_graphs, "_CudaGraph", FakeGraph)
    monkeypatch.setattr(cuda_graphs, "_new_pool", lambda: object())
    monkeypatch.setattr(cuda_graphs, "_graphable_device", lambda tensor: True)


class Affine(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    def forward(self, x, scale=None, *, return_dict=True):
        y = self.linear(x)
        if scale is not None:
            y = y * scale
        return {"sample": y} if return_dict else (y,)


def test_replays_match_eager_calls_and_outputs_are_not_overwritten(fake_cuda):
    torch.manual_seed(0)
    model, reference = Affine(), None
    inputs = [torch.randn(2, 4) for _ in range(5)]
    with torch.no_grad():
        reference = [model(x, torch.tensor(2.0), return_dict=False)[0] for x in inputs]
        ditkit.enable_cuda_graphs(model, warmup_calls=2)
        outputs = [model(x, torch.tensor(2.0), return_dict=False)[0] for x in inputs]
    for out, ref in zip(outputs, reference, strict=True):
        assert torch.equal(out, ref)  # the 3rd-5th came from replays of fresh static inputs
    assert FakeGraph.captures == 1
    assert ditkit.cuda_graph_stats(model) == {
        "graphs": 1,
        "replays": 3,
        "eager_calls": 0,
        "failed": [],
    }


def test_every_input_layout_and_option_gets_its_own_graph_up_to_max_graphs(fake_cuda):
    model = Affine()
    ditkit.enable_cuda_graphs(model, warmup_calls=0, max_graphs=2)
    with torch.no_grad():
        a = model(torch.ones(1, 4))["sample"]
        b = model(torch.ones(1, 4), return_dict=False)[0]  # another option: another graph
        assert torch.equal(a, b)
        with pytest.warns(RuntimeWarning, match="max_graphs=2"):
            c = model(torch.ones(3, 4))["sample"]  # a third layout runs eagerly
    assert torch.equal(c[:1], a)
    stats = ditkit.cuda_graph_stats(model)
    assert (stats["graphs"], stats["eager_calls"]) == (2, 1)


def test_cfg_style_calls_of_one_key_each_keep_their_result(fake_cuda):
    model = Affine()
    ditkit.enable_cuda_graphs(model, warmup_calls=0)
    with torch.no_grad():
        cond = model(torch.ones(1, 4))["sample"]
        uncond = model(torch.zeros(1, 4))["sample"]
    assert not torch.equal(cond, uncond)
    assert torch.equal(uncond, model.linear.bias.detach().expand(1, 4))


@pytest.mark.parametrize(
    ("make_call", "reason"),
    [
        (lambda m: m(torch.ones(1, 4)), "gradients are being recorded"),
        (lambda m: m(torch.ones(1, 4), scale={1.5}), "set is not hashable"),
    ],
)
def test_ungraphable_calls_run_eagerly_with_one_warning(fake_cuda, make_call, reason):
    model = Affine()
    ditkit.enable_cuda_graphs(model, warmup_calls=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            with contextlib.suppress(TypeError):  # the set reaches the multiply eagerly: as meant
                make_call(model)
    assert [str(w.message) for w in caught if reason in str(w.message)][:1]
    assert len([w for w in caught if reason in str(w.message)]) == 1
    assert ditkit.cuda_graph_stats(model)["graphs"] == 0


def test_cpu_inputs_run_eagerly_without_the_fake():
    model = Affine()
    ditkit.enable_cuda_graphs(model)
    with torch.no_grad(), pytest.warns(RuntimeWarning, match="not on a CUDA device"):
        out = model(torch.ones(1, 4))["sample"]
    assert torch.equal(out, Affine.forward(model, torch.ones(1, 4))["sample"])


def test_a_failed_capture_falls_back_to_eager_for_that_key(fake_cuda, monkeypatch):
    monkeypatch.setattr(cuda_graphs, "_CudaGraph", FailingGraph)
    model = Affine()
    ditkit.enable_cuda_graphs(model, warmup_calls=1)
    with torch.no_grad():
        model(torch.ones(1, 4))
        with pytest.warns(RuntimeWarning, match="capture failed.*stream is capturing"):
            out = model(torch.ones(1, 4))["sample"]
        out2 = model(torch.ones(1, 4))["sample"]
    assert torch.equal(out, out2) and not out.isnan().any()
    stats = ditkit.cuda_graph_stats(model)
    assert stats["graphs"] == 0 and len(stats["failed"]) == 1 and stats["eager_calls"] == 2


def test_reset_captures_again_after_new_weights(fake_cuda):
    model = Affine()
    ditkit.enable_cuda_graphs(model, warmup_calls=1)
    with torch.no_grad():
        for _ in range(2):
            model(torch.ones(1, 4))
        model.linear.weight = torch.nn.Parameter(torch.zeros(4, 4))  # new storage
        ditkit.reset_cuda_graphs(model)
        out = [model(torch.ones(1, 4))["sample"] for _ in range(2)]
    assert FakeGraph.captures == 2
    for value in out:
        assert torch.equal(value, model.linear.bias.expand(1, 4))


def test_arguments_are_checked_and_nothing_changes_on_error():
    model = Affine()
    with pytest.raises(ConfigError, match="warmup_calls"):
        ditkit.enable_cuda_graphs(model, warmup_calls=-1)
    with pytest.raises(ConfigError, match="max_graphs"):
        ditkit.enable_cuda_graphs(model, max_graphs=0)
    assert type(model) is Affine
    ditkit.enable_cuda_graphs(model)
    with pytest.raises(ConfigError, match="disable_cuda_graphs"):
        ditkit.enable_cuda_graphs(model)
    ditkit.disable_cuda_graphs(model)
    ditkit.disable_cuda_graphs(model)  # a no-op the second time
    assert type(model) is Affine and not hasattr(model, cuda_graphs.RUNNER_ATTRIBUTE)


def test_inference_mode_and_no_grad_calls_get_separate_graphs(fake_cuda):
    model = Affine()
    ditkit.enable_cuda_graphs(model, warmup_calls=0)
    with torch.inference_mode():
        a = model(torch.ones(1, 4))["sample"]
    with torch.no_grad():  # the inference-mode graph's static inputs could not be written here
        b = model(torch.ones(1, 4))["sample"]
    assert torch.equal(a, b)
    assert ditkit.cuda_graph_stats(model)["graphs"] == 2


def test_cpu_offload_hooks_are_refused_before_anything_changes():
    from diffusers.hooks import HookRegistry, ModelHook

    model = Affine()
    HookRegistry.check_if_exists_or_initialize(model.linear).register_hook(
        ModelHook(), "group_offloading"
    )
    with pytest.raises(ConfigError, match="group_offloading"):
        ditkit.enable_cuda_graphs(model)
    assert type(model) is Affine and not hasattr(model, cuda_graphs.RUNNER_ATTRIBUTE)


def test_a_cache_and_cuda_graphs_refuse_each_other():
    pipe = build_tiny_pipeline("flux")
    ditkit.enable_cache(
        pipe, cache_config=ditkit.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.3)
    )
    with pytest.raises(ConfigError, match="disable_cache"):
        ditkit.enable_cuda_graphs(pipe)
    assert type(pipe.transformer).__call__ is torch.nn.Module.__call__
    ditkit.disable_cache(pipe)

    ditkit.enable_cuda_graphs(pipe)
    ditkit.enable_cache(
        pipe, cache_config=ditkit.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.3)
    )
    with pytest.raises(ConfigError, match="per-step"):
        run_tiny_pipeline(pipe, "flux", num_inference_steps=2)


def test_tiny_flux_pipeline_graphed_then_disabled_is_bit_identical(fake_cuda):
    pipe = build_tiny_pipeline("flux")
    reference = run_tiny_pipeline(pipe, "flux", num_inference_steps=6)
    transformer_class = type(pipe.transformer)
    ditkit.enable_cuda_graphs(pipe)
    graphed = run_tiny_pipeline(pipe, "flux", num_inference_steps=6)
    stats = ditkit.cuda_graph_stats(pipe)
    assert (stats["graphs"], stats["replays"], stats["eager_calls"]) == (1, 4, 0)
    assert torch.equal(graphed, reference)
    ditkit.disable_cuda_graphs(pipe)
    assert type(pipe.transformer) is transformer_class
    assert torch.equal(run_tiny_pipeline(pipe, "flux", num_inference_steps=6), reference)


@pytest.mark.gpu
def test_real_capture_matches_eager_on_cuda():
    torch.manual_seed(0)
    model = Affine().cuda()
    inputs = [torch.randn(8, 4, device="cuda") for _ in range(6)]
    with torch.no_grad():
        reference = [model(x)["sample"] for x in inputs]
        ditkit.enable_cuda_graphs(model)
        outputs = [model(x)["sample"] for x in inputs]
    torch.cuda.synchronize()
    for out, ref in zip(outputs, reference, strict=True):
        torch.testing.assert_close(out, ref, rtol=0, atol=0)
    assert ditkit.cuda_graph_stats(model)["replays"] == 4


def test_a_failed_capture_ends_the_pool_routing(monkeypatch):
    ended: list[tuple[int, object]] = []

    @contextlib.contextmanager
    def failing_graph(graph, pool):
        yield
        raise RuntimeError("capturing stream has unjoined work")  # as cudaStreamEndCapture

    monkeypatch.setattr(torch.cuda, "graph", failing_graph)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    monkeypatch.setattr(torch._C, "_cuda_endAllocateToPool", lambda d, p: ended.append((d, p)))
    graph = object.__new__(cuda_graphs._CudaGraph)  # no torch.cuda.CUDAGraph on the CPU wheel
    graph.graph, graph.pool = None, ("pool", 7)
    with pytest.raises(RuntimeError, match="unjoined"):
        graph.capture(lambda: torch.ones(1))
    assert ended == [(3, ("pool", 7))]

    def not_routed(device, pool):
        raise RuntimeError("endAllocatePool: not currently recording to mempool_id")

    monkeypatch.setattr(torch._C, "_cuda_endAllocateToPool", not_routed)
    assert cuda_graphs._stop_allocating_to(("pool", 7)) is False
    assert cuda_graphs._stop_allocating_to(None) is False


FAILED_CAPTURE_SCRIPT = """
import warnings, torch, ditkit

class SyncInside(torch.nn.Module):
    def forward(self, x):
        return x * float(x.sum())          # a host sync: no capture can hold it

model = SyncInside().cuda()
ditkit.enable_cuda_graphs(model, warmup_calls=1)
with torch.no_grad(), warnings.catch_warnings(record=True):
    warnings.simplefilter("always")
    out = [model(torch.ones(4, device="cuda")) for _ in range(3)]
stats = ditkit.cuda_graph_stats(model)
assert stats["graphs"] == 0 and len(stats["failed"]) == 1, stats
assert all(torch.equal(o, torch.full((4,), 4.0, device="cuda")) for o in out)
print("eager after the failed capture")
"""


@pytest.mark.gpu
def test_a_real_failed_capture_falls_back_and_the_process_exits_cleanly(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "failed_capture.py"
    script.write_text(FAILED_CAPTURE_SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]  # was SIGABRT at exit before the fix
    assert "eager after the failed capture" in done.stdout
