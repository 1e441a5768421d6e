"""The cache keeps the memory layout of the hidden stream the blocks give it.

A model whose stream is not contiguous (ACE-Step's comes out of a transposed convolution, and every
layer keeps that layout) rounds differently when the cache hands on contiguous copies: threshold 0
was then off by ~1e-7 and DBPrune not exact. Here a toy model with a transposed stream runs
through DBCache and DBPrune; a computed step must give the uncached loop's values *and* layouts,
and a cached step's output keeps the stream's layout too.
"""

from __future__ import annotations

import pytest
import torch

import ditkit_cache as dc
from ditkit_interfaces import ForwardPattern

STEPS = 5


class Block(torch.nn.Module):
    """``hidden + mlp(hidden)`` and the encoder stream (pattern 0), in the input's layout."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.up = torch.nn.Linear(dim, 4 * dim)
        self.down = torch.nn.Linear(4 * dim, dim)

    def forward(self, hidden_states, encoder_hidden_states, temb):
        update = self.down(torch.nn.functional.gelu(self.up(hidden_states + temb)))
        return hidden_states + update, encoder_hidden_states


class TransposedStream(torch.nn.Module):
    """The stream comes out of a convolution, transposed (strides ``(S*D, 1, S)``)."""

    def __init__(self, dim: int = 24, blocks: int = 4) -> None:
        super().__init__()
        self.conv = torch.nn.Conv1d(dim, dim, 3, padding=1)
        self.blocks = torch.nn.ModuleList(Block(dim) for _ in range(blocks))
        self.head = torch.nn.Linear(dim, dim)
        self.seen: list[tuple[int, ...]] = []

    def forward(self, hidden_states, timestep, encoder_hidden_states=None):
        hidden = self.conv(hidden_states).transpose(1, 2)
        temb = torch.sin(timestep)[:, None, None]
        for block in self.blocks:
            hidden, encoder_hidden_states = block(hidden, encoder_hidden_states, temb)
        self.seen.append(hidden.stride())
        return self.head(hidden.mean(dim=1))  # the mean rounds by layout


def _model_and_calls():
    torch.manual_seed(0)
    model = TransposedStream()
    hidden = torch.randn(2, 24, 37)
    encoder = torch.randn(2, 5, 24)
    calls = [
        dict(
            hidden_states=hidden * (1 + 0.01 * step),
            timestep=torch.tensor([1.0 - step / STEPS] * 2),
            encoder_hidden_states=encoder,
        )
        for step in range(STEPS)
    ]
    return model, calls


def _run(model, calls):
    model.seen.clear()
    with torch.no_grad():
        outputs = [model(**call) for call in calls]
    return outputs, list(model.seen)


def _cache(model, config):
    adapter = dc.BlockAdapter(
        transformer=model, blocks=model.blocks, forward_pattern=ForwardPattern.Pattern_0
    )
    dc.enable_cache(adapter, config)


@pytest.mark.parametrize("config_type", [dc.DBCacheConfig, dc.DBPruneConfig])
def test_threshold_zero_keeps_values_and_layout(config_type):
    model, calls = _model_and_calls()
    reference, layouts = _run(model, calls)
    assert not any(torch.empty(2, 37, 24).stride() == s for s in layouts)  # not contiguous
    config = config_type(
        Fn_compute_blocks=1,
        Bn_compute_blocks=1,
        residual_diff_threshold=0.0,
        max_warmup_steps=0,
        num_inference_steps=STEPS,
    )
    _cache(model, config)
    outputs, cached_layouts = _run(model, calls)
    assert dc.summary(model, logging=False)[0].cached_steps == []
    assert all(map(torch.equal, outputs, reference))
    assert cached_layouts == layouts
    dc.disable_cache(model)
    assert all(map(torch.equal, _run(model, calls)[0], reference))


@pytest.mark.parametrize("config_type", [dc.DBCacheConfig, dc.DBPruneConfig])
def test_cached_steps_keep_the_layout(config_type):
    model, calls = _model_and_calls()
    _, layouts = _run(model, calls)
    config = config_type(
        Fn_compute_blocks=1,
        Bn_compute_blocks=1,
        residual_diff_threshold=1.0,  # cache whatever can be cached
        max_warmup_steps=1,
        num_inference_steps=STEPS,
    )
    _cache(model, config)
    outputs, cached_layouts = _run(model, calls)
    assert dc.summary(model, logging=False)[0].cached_steps == list(range(1, STEPS))
    assert cached_layouts == layouts
    assert all(torch.isfinite(output).all() for output in outputs)
    dc.disable_cache(model)
