"""``summary``/``strify`` of a pipeline see every transformer ``enable_cache`` cached.

``summary(pipe)`` used to look at ``pipe.transformer`` and ``pipe.transformer_2`` only, so the
registry's further transformers (Ideogram 4's ``unconditional_transformer``) and those of a custom
``BlockAdapter`` were cached but missing from the statistics. It now reads what ``enable_cache``
recorded on the pipeline.
"""

from __future__ import annotations

import torch

import ditkit_cache as dc
from ditkit_interfaces import ForwardPattern
from ditkit_testing.families import IMAGE_CASES

STEPS = 6
MASK = [1, 1, 0, 1, 0, 0]
MASKED = [step for step, compute in enumerate(MASK) if not compute]


class Ideogram4Pipeline:
    """Stands in for diffusers' Ideogram 4 pipeline: a conditional and an unconditional
    transformer of one class, each called once per step."""

    def __init__(self, seed: int = 0) -> None:
        self.transformer, self.kwargs = IMAGE_CASES["Ideogram4"](seed)
        self.unconditional_transformer, _ = IMAGE_CASES["Ideogram4"](seed + 1)

    def __call__(self) -> list[torch.Tensor]:
        outputs = []
        with torch.no_grad():
            for step in range(STEPS):
                kwargs = dict(self.kwargs, timestep=self.kwargs["timestep"] * (1 - step / 8))
                for transformer in (self.transformer, self.unconditional_transformer):
                    output = transformer(**kwargs)
                    outputs.append(output[0] if isinstance(output, tuple) else output.sample)
        return outputs


def _masked() -> dc.DBCacheConfig:
    return dc.DBCacheConfig(
        Fn_compute_blocks=1,
        Bn_compute_blocks=0,
        steps_computation_mask=MASK,
        steps_computation_policy="static",
    )


def test_summary_of_a_pipeline_includes_its_unconditional_transformer():
    pipe = Ideogram4Pipeline()
    dc.enable_cache(pipe, _masked())
    assert dc.summary(pipe) == []  # cached, no request yet: no contexts
    pipe()
    stats = dc.summary(pipe, logging=False)
    names = [entry.name for entry in stats]
    assert names == ["layers_0", "layers_1", *["Ideogram4Transformer2DModel"] * 2]
    assert all(entry.cached_steps == MASKED for entry in stats)
    assert dc.summary(pipe.unconditional_transformer, logging=False)[0].name == "layers_1"
    assert dc.strify(pipe) == stats[1].cache_options["cache_config"].strify()
    assert dc.strify(pipe).startswith(_masked().strify())
    dc.disable_cache(pipe)
    assert dc.summary(pipe, logging=False) == []
    assert not hasattr(pipe.unconditional_transformer, "_ditkit_cache")


class Stack(torch.nn.Module):
    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.blocks = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(3))

    def forward(self, hidden_states, timestep=None):
        for block in self.blocks:
            hidden_states = torch.tanh(block(hidden_states))
        return hidden_states


class TwoModelPipeline:
    def __init__(self) -> None:
        self.transformer, self.refiner = Stack(0), Stack(1)

    def __call__(self) -> None:
        for step in range(STEPS):
            self.transformer(torch.ones(1, 4) * step, timestep=STEPS - step)
            self.refiner(torch.ones(1, 4) * step, timestep=STEPS - step)


def test_summary_of_a_custom_adapter_pipeline_includes_every_transformer():
    pipe = TwoModelPipeline()
    adapter = dc.BlockAdapter(
        pipe=pipe,
        transformer=[pipe.transformer, pipe.refiner],
        blocks=[pipe.transformer.blocks, pipe.refiner.blocks],
        forward_pattern=ForwardPattern.Pattern_3,
    )
    dc.enable_cache(adapter, _masked())
    pipe()
    stats = dc.summary(pipe, logging=False)
    assert [entry.name for entry in stats] == ["blocks_0", "blocks_1", "Stack", "Stack"]
    assert [entry.cached_steps for entry in stats] == [MASKED] * 4
    dc.disable_cache(pipe)
    assert "forward" not in vars(pipe.refiner)
    assert type(pipe) is TwoModelPipeline


def test_summary_of_a_pipeline_sees_a_transformer_cached_on_its_own():
    pipe = TwoModelPipeline()
    adapter = dc.BlockAdapter(
        transformer=pipe.refiner,
        blocks=pipe.refiner.blocks,
        forward_pattern=ForwardPattern.Pattern_3,
    )
    dc.enable_cache(adapter, _masked().update(num_inference_steps=STEPS))
    pipe()
    stats = dc.summary(pipe, logging=False)
    assert [entry.name for entry in stats] == ["blocks", "Stack"]
    assert stats[0].cached_steps == MASKED
    dc.disable_cache(pipe.refiner)
    assert dc.summary(pipe, logging=False) == []
