"""The cache adds at most one host-device synchronisation per transformer call.

A synchronisation is a device-to-host read: ``aten._local_scalar_dense`` (``.item()``,
``.tolist()``, ``bool(tensor)``). The dispatch mode counts them on CPU, where they are the
same calls that synchronise on a GPU.
"""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import ditkit_cache as dc
from ditkit_testing import build_tiny_pipeline, run_tiny_pipeline


class ScalarReads(TorchDispatchMode):
    """Counts scalar reads: dispatched ``_local_scalar_dense`` and ``Tensor.tolist`` calls
    (``tolist`` reads CPU memory without dispatching; on a GPU it is a device-to-host copy)."""

    def __init__(self):
        super().__init__()
        self.count = 0
        self._tolist = torch.Tensor.tolist

    def __enter__(self):
        original = self._tolist

        def counted(tensor):
            self.count += 1
            return original(tensor)

        torch.Tensor.tolist = counted
        return super().__enter__()

    def __exit__(self, *exc):
        torch.Tensor.tolist = self._tolist
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


def _calls(pipe, name, steps):
    calls = []
    handle = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(dict(kwargs)), with_kwargs=True
    )
    run_tiny_pipeline(pipe, name, num_inference_steps=steps)
    handle.remove()
    return calls


def _reads_per_call(transformer, calls):
    counts = []
    for kwargs in calls:
        with ScalarReads() as mode:
            transformer(**kwargs)
        counts.append(mode.count)
    return counts


@pytest.mark.parametrize("name", ["flux", "qwen_image"])
@pytest.mark.parametrize("transformer_only", [False, True])
def test_at_most_one_extra_scalar_read_per_call(name, transformer_only):
    pipe = build_tiny_pipeline(name)
    calls = _calls(pipe, name, 10)
    baseline = _reads_per_call(pipe.transformer, calls)
    config = dc.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.3, max_warmup_steps=2)
    dc.enable_cache(pipe.transformer if transformer_only else pipe, config)
    cached = _reads_per_call(pipe.transformer, calls)
    extra = [c - b for c, b in zip(cached, baseline, strict=True)]
    assert max(extra) <= 1, extra
    assert sum(extra) > 0  # the diff really is read (the count is not vacuous)
    assert dc.summary(pipe.transformer, logging=False)[0].cached_steps


def test_static_mask_steps_read_nothing():
    pipe = build_tiny_pipeline("flux")
    calls = _calls(pipe, "flux", 10)
    baseline = _reads_per_call(pipe.transformer, calls)
    mask = [1, 1, 1, 0, 0, 1, 0, 0, 0, 1]
    dc.enable_cache(
        pipe,
        dc.DBCacheConfig(
            Fn_compute_blocks=1, steps_computation_mask=mask, steps_computation_policy="static"
        ),
    )
    cached = _reads_per_call(pipe.transformer, calls)
    assert cached == baseline


@pytest.mark.parametrize("known_length", ["mask", "num_inference_steps"])
def test_transformer_only_known_request_length_reads_nothing_beyond_the_diff(known_length):
    # a raw transformer loop (no pipeline call marks requests): with the request length known,
    # a static mask reads nothing and warm-up steps read nothing; a new request still starts
    # after the known number of steps (two requests, the same outputs)
    pipe = build_tiny_pipeline("flux")
    calls = _calls(pipe, "flux", 10)
    baseline = _reads_per_call(pipe.transformer, calls)
    if known_length == "mask":
        mask = [1, 1, 1, 0, 0, 1, 0, 0, 0, 1]
        config = dc.DBCacheConfig(
            Fn_compute_blocks=1, steps_computation_mask=mask, steps_computation_policy="static"
        )
    else:
        config = dc.DBCacheConfig(
            Fn_compute_blocks=1,
            num_inference_steps=10,
            max_warmup_steps=3,
            residual_diff_threshold=0.3,
        )
    dc.enable_cache(pipe.transformer, config)
    first = _reads_per_call(pipe.transformer, calls)
    second = _reads_per_call(pipe.transformer, calls)
    extra = [c - b for c, b in zip(first, baseline, strict=True)]
    assert first == second
    if known_length == "mask":
        assert extra == [0] * 10
    else:
        assert extra[:3] == [0, 0, 0] and max(extra) <= 1 and sum(extra) > 0
    stats = dc.summary(pipe.transformer, logging=False)[0]
    assert stats.accumulated_executed_steps == 10 and stats.cached_steps
