"""Every tiny pipeline family beyond Flux, Qwen-Image and Wan, cached end to end as a pipeline.

``enable_cache(pipe, ...)`` finds the family from the pipeline class. For each pipeline:
threshold 0 with ``Fn=1, Bn=0`` is bit-identical to no cache; a static steps mask caches exactly
the masked steps (in the CFG branch too when the family runs CFG as a separate call) and changes
the output; ``disable_cache`` restores the uncached output bit for bit. The registered spec's
separate-CFG flag must agree with what the real pipeline does (transformer calls per step).
"""

import pytest
import torch

import ditkit_cache as dc
from ditkit_cache.registry import BlockAdapterRegister
from ditkit_testing import run_tiny_pipeline, tiny_pipeline_names

#: Covered by their own tests (test_block_adapter.py, test_cache_real_use.py, ...).
OWN_TESTS = ("flux", "qwen_image", "wan")
NAMES = [name for name in tiny_pipeline_names() if name not in OWN_TESTS]

#: tiny pipeline -> (transformer class the family spec names, its block lists)
FAMILIES = {
    "flux2": ("Flux2Transformer2DModel", ("transformer_blocks", "single_transformer_blocks")),
    "hunyuan_video": (
        "HunyuanVideoTransformer3DModel",
        ("transformer_blocks", "single_transformer_blocks"),
    ),
    "ltx": ("LTXVideoTransformer3DModel", ("transformer_blocks",)),
    "cogvideox": ("CogVideoXTransformer3DModel", ("transformer_blocks",)),
    "sd3": ("SD3Transformer2DModel", ("transformer_blocks",)),
    "zimage": ("ZImageTransformer2DModel", ("layers",)),
}

STEPS = 8
MASK = [1, 1, 1, 0, 1, 0, 0, 1]
MASKED = [i for i, m in enumerate(MASK) if m == 0]


def test_every_new_tiny_pipeline_is_covered():
    assert sorted(FAMILIES) == sorted(NAMES)


def _run(pipe, name):
    return run_tiny_pipeline(pipe, name, num_inference_steps=STEPS)


def _block_stats(pipe):
    """The per-block-list entries of ``summary`` (the transformer-level entry left out)."""
    blocks = {n for _, names in FAMILIES.values() for n in names}
    return [s for s in dc.summary(pipe.transformer, logging=False) if s.name in blocks]


@pytest.mark.parametrize("name", NAMES)
def test_pipeline_cached_end_to_end(tiny, name):
    pipe = tiny(name)
    cls = type(pipe)
    spec = BlockAdapterRegister.family(pipe)
    transformer_class, block_lists = FAMILIES[name]
    assert spec is not None and spec.transformer_class == transformer_class
    assert type(pipe.transformer).__name__ == transformer_class
    assert spec.block_names() == block_lists

    calls = []
    hook = pipe.transformer.register_forward_pre_hook(lambda module, args: calls.append(1))
    reference = _run(pipe, name)
    hook.remove()
    # the spec's separate-CFG flag matches the real pipeline: one call a step, or two
    assert len(calls) == STEPS * (2 if spec.has_separate_cfg else 1)
    assert torch.isfinite(reference).all()

    exact = dc.DBCacheConfig(
        Fn_compute_blocks=1, Bn_compute_blocks=0, residual_diff_threshold=0.0, max_warmup_steps=0
    )
    dc.enable_cache(pipe, exact)
    try:
        assert torch.equal(_run(pipe, name), reference)
        stats = _block_stats(pipe)
        assert [s.name for s in stats] == list(block_lists)
        assert all(s.cached_steps == [] and s.cfg_cached_steps == [] for s in stats)
    finally:
        dc.disable_cache(pipe)
    assert type(pipe) is cls
    assert torch.equal(_run(pipe, name), reference)

    masked = dc.DBCacheConfig(
        Fn_compute_blocks=1,
        Bn_compute_blocks=0,
        steps_computation_mask=MASK,
        steps_computation_policy="static",
    )
    dc.enable_cache(pipe, masked)
    try:
        cached = _run(pipe, name)
        stats = _block_stats(pipe)
    finally:
        dc.disable_cache(pipe)
    assert [s.name for s in stats] == list(block_lists)
    for entry in stats:
        assert entry.cached_steps == MASKED, entry.name
        assert entry.cfg_cached_steps == (MASKED if spec.has_separate_cfg else []), entry.name
    assert torch.isfinite(cached).all()
    assert not torch.equal(cached, reference)

    assert type(pipe) is cls
    assert torch.equal(_run(pipe, name), reference)
