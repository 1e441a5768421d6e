"""A call whose shapes differ from the branch's last computed call computes.

Qwen-Image 2.1's prefix KV cache shortens the sequence after the first step; a resolution change
does the same. The stored residuals then do not fit: serving them crashed (or, when the old length
was 1, silently broadcast a wrong residual) whenever a rule that needs no diff decided to cache
(threshold >= 1, a static steps mask). Now such a call computes, counts as computed (not in
``cached_steps``, no diff recorded), and reads nothing from the device to find out.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import ditkit_cache as dc
from ditkit_interfaces import ForwardPattern

STEPS = 6
CHANGE = 2  # the first step with the new shapes


class Residual(torch.nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mix = torch.nn.Linear(dim, dim)

    def forward(self, hidden_states):
        return hidden_states + torch.tanh(self.mix(hidden_states))


class HiddenOnly(torch.nn.Module):
    """Pattern 3: ``block(hidden) -> hidden``."""

    def __init__(self, dim: int = 8, count: int = 4) -> None:
        super().__init__()
        self.blocks = torch.nn.ModuleList(Residual(dim) for _ in range(count))

    def forward(self, hidden_states, timestep):
        hidden = hidden_states * math.cos(timestep)
        for block in self.blocks:
            hidden = block(hidden)
        return hidden


class Block(torch.nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mix = torch.nn.Linear(dim, dim)
        self.context = torch.nn.Linear(dim, dim)

    def forward(self, hidden_states, encoder_hidden_states):
        summary = encoder_hidden_states.mean(dim=1, keepdim=True)
        hidden = hidden_states + torch.tanh(self.mix(hidden_states) + summary)
        return hidden, encoder_hidden_states + torch.tanh(self.context(encoder_hidden_states))


class TwoStreams(torch.nn.Module):
    """Pattern 0: ``block(hidden, encoder) -> (hidden, encoder)``."""

    def __init__(self, dim: int = 8, count: int = 4) -> None:
        super().__init__()
        self.blocks = torch.nn.ModuleList(Block(dim) for _ in range(count))

    def forward(self, hidden_states, encoder_hidden_states, timestep):
        hidden = hidden_states * math.cos(timestep)
        for block in self.blocks:
            hidden, encoder_hidden_states = block(hidden, encoder_hidden_states)
        return hidden + encoder_hidden_states.mean(dim=1, keepdim=True)


def _hidden_calls(before: int, after: int) -> list[dict]:
    torch.manual_seed(0)
    base = torch.randn(1, max(before, after), 8)
    return [
        dict(
            hidden_states=base[:, : before if step < CHANGE else after] * (1 + 0.01 * step),
            timestep=1.0 - step / STEPS,
        )
        for step in range(STEPS)
    ]


def _encoder_calls() -> list[dict]:
    torch.manual_seed(0)
    hidden, encoder = torch.randn(1, 6, 8), torch.randn(1, 7, 8)
    return [
        dict(
            hidden_states=hidden * (1 + 0.01 * step),
            encoder_hidden_states=encoder[:, : 7 if step < CHANGE else 3],
            timestep=1.0 - step / STEPS,
        )
        for step in range(STEPS)
    ]


def _run(model, calls):
    with torch.no_grad():
        return [model(**call) for call in calls]


def _cached_run(model, calls, pattern, config):
    reference = _run(model, calls)
    adapter = dc.BlockAdapter(transformer=model, blocks=model.blocks, forward_pattern=pattern)
    dc.enable_cache(adapter, config)
    try:
        outputs = _run(model, calls)
        stats = dc.summary(model, logging=False)[0]
    finally:
        dc.disable_cache(model)
    return reference, outputs, stats


def _configs():
    common = dict(Fn_compute_blocks=1, Bn_compute_blocks=0, num_inference_steps=STEPS)
    mask = [1, 0, 0, 0, 1, 0]
    return (
        {
            "threshold_one": (
                dc.DBCacheConfig,
                dict(residual_diff_threshold=1.0, max_warmup_steps=1),
            ),
            "static_mask": (
                dc.DBCacheConfig,
                dict(steps_computation_mask=mask, steps_computation_policy="static"),
            ),
            "prune_threshold_one": (
                dc.DBPruneConfig,
                dict(residual_diff_threshold=1.0, max_warmup_steps=1),
            ),
            "prune_static_mask": (
                dc.DBPruneConfig,
                dict(steps_computation_mask=mask, steps_computation_policy="static"),
            ),
        },
        common,
        mask,
    )


CONFIGS, COMMON, MASK = _configs()
#: every step the rules would cache, except the one whose shapes changed
EXPECTED = {
    "threshold_one": [s for s in range(1, STEPS) if s != CHANGE],
    "static_mask": [s for s, m in enumerate(MASK) if m == 0 and s != CHANGE],
}
EXPECTED["prune_threshold_one"] = EXPECTED["threshold_one"]
EXPECTED["prune_static_mask"] = EXPECTED["static_mask"]


@pytest.mark.parametrize("lengths", [(8, 5), (1, 6)], ids=["shorter", "broadcastable"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_sequence_length_change_computes(name, lengths):
    config_type, options = CONFIGS[name]
    reference, outputs, stats = _cached_run(
        HiddenOnly(),
        _hidden_calls(*lengths),
        ForwardPattern.Pattern_3,
        config_type(**COMMON, **options),
    )
    assert stats.cached_steps == EXPECTED[name]
    assert str(CHANGE) not in stats.residual_diffs
    assert outputs[CHANGE].shape == reference[CHANGE].shape
    assert torch.equal(outputs[CHANGE], reference[CHANGE])  # computed: exactly the model
    assert all(out.shape == ref.shape for out, ref in zip(outputs, reference, strict=True))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_encoder_length_change_computes(name):
    config_type, options = CONFIGS[name]
    reference, outputs, stats = _cached_run(
        TwoStreams(), _encoder_calls(), ForwardPattern.Pattern_0, config_type(**COMMON, **options)
    )
    assert stats.cached_steps == EXPECTED[name]
    assert torch.equal(outputs[CHANGE], reference[CHANGE])


def test_dynamic_threshold_records_no_diff_for_the_changed_step():
    config = dc.DBCacheConfig(**COMMON, residual_diff_threshold=0.9, max_warmup_steps=1)
    reference, outputs, stats = _cached_run(
        HiddenOnly(), _hidden_calls(8, 5), ForwardPattern.Pattern_3, config
    )
    assert CHANGE not in stats.cached_steps
    assert set(stats.residual_diffs) == {str(s) for s in range(1, STEPS) if s != CHANGE}
    assert stats.cached_steps, "the other steps change little: the 0.9 threshold caches some"
    assert torch.equal(outputs[CHANGE], reference[CHANGE])


class ScalarReads(TorchDispatchMode):
    """Counts device-to-host scalar reads (``.item()``, ``bool(tensor)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_the_shape_check_reads_nothing_from_the_device():
    model = HiddenOnly()
    config_type, options = CONFIGS["static_mask"]
    adapter = dc.BlockAdapter(
        transformer=model, blocks=model.blocks, forward_pattern=ForwardPattern.Pattern_3
    )
    dc.enable_cache(adapter, config_type(**COMMON, **options))
    reads = []
    with torch.no_grad():
        for call in _hidden_calls(8, 5):
            with ScalarReads() as mode:
                model(**call)
            reads.append(mode.count)
    stats = dc.summary(model, logging=False)[0]
    dc.disable_cache(model)
    assert reads == [0] * STEPS
    assert stats.cached_steps == EXPECTED["static_mask"]
