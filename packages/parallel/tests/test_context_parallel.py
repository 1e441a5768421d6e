"""Context parallelism on tiny diffusers transformers equals the single-process forward.

One spawned run of 4 ranks (gloo, one thread per rank) does all the work, as a module fixture:

- ranks {0, 1} (a 2-rank CP group): tiny Flux (3 heads, 25 image and 7 text tokens: neither
  divides 2) under Ulysses, Ring, UAA and async QKV; undo and an unrelated model;
- ranks {2, 3} at the same time: one Ulysses-2 case per other family with a plan (uneven
  lengths where the family allows, text masks where it has them), async QKV on Qwen-Image and
  Z-Image (masked), and Wan 2.2's two transformers parallelized at once;
- all 4 ranks: USP 2x2, Ulysses-4 (3 heads on 4 ranks: one rank holds none, also with async
  QKV) and Ring-4 on Flux, and USP 2x2 on Qwen-Image with a padded prompt.

Every comparison is in float32: ``err = max|parallel - single| / max|single|`` must stay
below 1e-5.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from ditkit_interfaces import ParallelismConfig
from ditkit_parallel.context import disable_context_parallel, enable_context_parallel
from ditkit_parallel.launch import run_distributed
from ditkit_testing.parallel_cases import Case, grid_ids, rel_error, seeded, tiny_flux_case, unzero

# several spawned processes each: in CI's `all` session (slow), not the package session
pytestmark = pytest.mark.slow

TOL = 1e-5


# -- tiny models and inputs (weights and inputs fixed by the seed, equal on every rank) ----
def flux(heads: int = 3) -> Case:
    # 25 image and 7 text tokens, two per-sample timesteps, one ControlNet residual
    return tiny_flux_case(heads, batch=2, timestep=(0.5, 0.7), controlnet=True)


def _tiny(name: str, seed: int = 0) -> torch.nn.Module:
    from ditkit_testing import build_tiny_transformer

    return unzero(build_tiny_transformer(name, seed=seed))


def flux2() -> Case:
    ids = grid_ids(3, 5, axes=4)[None]
    txt = torch.zeros(1, 7, 4)
    txt[0, :, 3] = torch.arange(7)
    return _tiny("flux2"), dict(
        hidden_states=torch.randn(1, 15, 64),
        encoder_hidden_states=torch.randn(1, 7, 96),
        timestep=torch.tensor([0.6]),
        guidance=torch.tensor([4.0]),
        img_ids=ids,  # (1, S, 4): the batched form FLUX.2's pipeline passes
        txt_ids=txt,
    )


def qwen_image() -> Case:
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0  # the second prompt is padded: keys masked out
    return _tiny("qwen_image"), dict(
        hidden_states=torch.randn(2, 15, 64),
        encoder_hidden_states=torch.randn(2, 7, 32),
        encoder_hidden_states_mask=mask,
        timestep=torch.tensor([0.6, 0.6]),
        img_shapes=[[(1, 3, 5)]] * 2,
    )


def wan(seed: int = 0, per_token_timestep: bool = False) -> Case:
    model = _tiny("wan", seed)
    timestep = torch.linspace(0.2, 0.9, 15)[None] if per_token_timestep else torch.tensor([0.6])
    return model, dict(
        hidden_states=torch.randn(1, 16, 1, 6, 10),  # 1 x 3 x 5 = 15 tokens
        encoder_hidden_states=torch.randn(1, 7, 32),
        timestep=timestep,
    )


def hunyuan_video() -> Case:
    mask = torch.ones(1, 7)
    mask[0, 5:] = 0
    return _tiny("hunyuan_video"), dict(
        hidden_states=torch.randn(1, 16, 1, 6, 10),
        encoder_hidden_states=torch.randn(1, 7, 32),
        encoder_attention_mask=mask,
        pooled_projections=torch.randn(1, 32),
        timestep=torch.tensor([600.0]),
        guidance=torch.tensor([6000.0]),
    )


def cogvideox() -> Case:
    from diffusers import CogVideoXTransformer3DModel

    model = CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=4,
        out_channels=4,
        time_embed_dim=8,
        text_embed_dim=16,
        num_layers=2,
        sample_width=10,
        sample_height=6,
        sample_frames=1,
        max_text_seq_length=7,
        use_rotary_positional_embeddings=True,
    )
    rope = (torch.randn(15, 16), torch.randn(15, 16))  # (cos, sin) of the 15 video tokens
    return unzero(model), dict(
        hidden_states=torch.randn(1, 1, 4, 6, 10),
        encoder_hidden_states=torch.randn(1, 7, 16),
        timestep=torch.tensor([600]),
        image_rotary_emb=rope,
    )


def ltx() -> Case:
    mask = torch.ones(1, 7)
    mask[0, 6:] = 0
    return _tiny("ltx"), dict(
        hidden_states=torch.randn(1, 15, 16),
        encoder_hidden_states=torch.randn(1, 7, 32),
        encoder_attention_mask=mask,
        timestep=torch.tensor([600]),
        num_frames=1,
        height=3,
        width=5,
    )


def zimage() -> Case:
    # captions of 7 and 40 tokens pad to 32 and 64: the unified batch carries a padding mask
    return _tiny("zimage"), dict(
        x=[torch.randn(16, 1, 6, 10), torch.randn(16, 1, 6, 10)],
        t=torch.tensor([0.6, 0.6]),
        cap_feats=[torch.randn(7, 32), torch.randn(40, 32)],
    )


ASYNC_FAMILIES = {"QwenImage": 4, "ZImage": 6}  # family -> attention processors

FAMILIES: dict[str, Callable[[], Case]] = {
    "Flux2": flux2,
    "QwenImage": qwen_image,
    "Wan2.1": wan,
    "Wan2.2-TI2V": lambda: wan(per_token_timestep=True),
    "HunyuanVideo": hunyuan_video,
    "CogVideoX": cogvideox,
    "LTXVideo": ltx,
    "ZImage": zimage,
}


# -- helpers run inside the ranks -----------------------------------------------------------
def _run(model: torch.nn.Module, kwargs: dict[str, Any]) -> torch.Tensor:
    with torch.no_grad():
        out = model(**kwargs, return_dict=False)[0]
    if isinstance(out, list):  # Z-Image returns one tensor per sample
        out = torch.cat([o.flatten() for o in out])
    return out


def _state(model: torch.nn.Module) -> tuple[Any, ...]:
    """Hooks, processors and module attributes: what undo must restore."""
    hooks = [
        (len(m._forward_pre_hooks), len(m._forward_hooks), len(m._forward_pre_hooks_with_kwargs))
        for m in model.modules()
    ]
    procs = [
        (id(m.processor), sorted(vars(m.processor)))
        for m in model.modules()
        if getattr(m, "processor", None) is not None
    ]
    return hooks, procs, sorted(vars(model))


def _dispatch_fns() -> list[Any]:
    from diffusers.models.transformers import transformer_flux, transformer_wan

    return [transformer_flux.dispatch_attention_fn, transformer_wan.dispatch_attention_fn]


def _enable(model: torch.nn.Module, config: ParallelismConfig, group: Any) -> Any:
    from ditkit_parallel.mesh import build_cp_mesh

    return enable_context_parallel(model, config, mesh=build_cp_mesh(config, group))


def _flux_matrix(group: Any) -> dict[str, Any]:
    results: dict[str, Any] = {}
    model, kwargs = seeded(flux)
    other, other_kwargs = seeded(lambda: flux(heads=2))
    ref, other_ref = _run(model, kwargs), _run(other, other_kwargs)
    before, dispatch_before = _state(model), _dispatch_fns()
    configs = {
        "ulysses": ParallelismConfig(ulysses_size=2),
        "ring": ParallelismConfig(ring_size=2),
        "ulysses_anything": ParallelismConfig(ulysses_size=2, ulysses_anything=True),
        "async": ParallelismConfig(ulysses_size=2, ulysses_async=True),
        "overlap": ParallelismConfig(ulysses_size=2, ulysses_overlap_output=True),
        "async_overlap": ParallelismConfig(
            ulysses_size=2, ulysses_async=True, ulysses_overlap_output=True
        ),
        "copy_engine": ParallelismConfig(ulysses_size=2, ulysses_copy_engine=True),
        "async_copy_engine": ParallelismConfig(
            ulysses_size=2, ulysses_async=True, ulysses_copy_engine=True
        ),
        "copy_engine_overlap": ParallelismConfig(
            ulysses_size=2, ulysses_copy_engine=True, ulysses_overlap_output=True
        ),
    }
    from ditkit_parallel import copy_engine
    from ditkit_parallel.context import async_qkv

    exchanged = []
    plain_start = copy_engine.start
    copy_engine.start = lambda *a, **k: exchanged.append(1) or plain_start(*a, **k)

    overlapped = []
    plain_overlap = async_qkv.attend_overlapping_output
    async_qkv.attend_overlapping_output = lambda *a, **k: (
        overlapped.append(1) or plain_overlap(*a, **k)
    )
    for name, config in configs.items():
        handle = _enable(model, config, group)
        calls, copies = len(overlapped), len(exchanged)
        results[f"{name}/err"] = rel_error(_run(model, kwargs), ref)
        results[f"{name}/async_overlaps"] = len(overlapped) - calls
        results[f"{name}/copy_engine_exchanges"] = len(exchanged) - copies
        results[f"{name}/async_processors"] = handle.async_processors
        results[f"{name}/single_block_overlaps"] = handle.overlapped_single_blocks
        results[f"{name}/marked"] = bool(model._is_parallelized)
        if name == "ulysses":
            results["unrelated/equal"] = torch.equal(_run(other, other_kwargs), other_ref)
            exchanges = handle.mesh.seq_lens.exchanges
            results["second_step/err"] = rel_error(_run(model, kwargs), ref)
            results["second_step/no_exchange"] = handle.mesh.seq_lens.exchanges == exchanges
            results["shard"] = handle.shard(torch.arange(7)[None], 1).tolist()
        if name == "async":
            async_out = _run(model, kwargs)
            disable_context_parallel(model)
            _enable(model, ParallelismConfig(ulysses_size=2), group)
            results["async_vs_sync/err"] = rel_error(async_out, _run(model, kwargs))
        disable_context_parallel(model)
    async_qkv.attend_overlapping_output = plain_overlap
    copy_engine.start = plain_start
    results["undo/equal"] = torch.equal(_run(model, kwargs), ref)
    results["undo/state"] = _state(model) == before
    results["undo/dispatch"] = _dispatch_fns() == dispatch_before
    results["undo/unmarked"] = not getattr(model, "_is_parallelized", False)
    results["undo/block_forwards"] = all("forward" not in vars(m) for m in model.modules())
    return results


def _attention_lengths(model: torch.nn.Module, kwargs: dict[str, Any]) -> tuple[int, torch.Tensor]:
    """The longest sequence any attention module of ``model`` receives in one forward."""
    seen: list[int] = []

    def record(module: torch.nn.Module, args: tuple, kw: dict) -> None:
        x = args[0] if args else kw["hidden_states"]
        seen.append(x.shape[1])

    handles = [
        m.register_forward_pre_hook(record, with_kwargs=True)
        for m in model.modules()
        if getattr(m, "processor", None) is not None
    ]
    out = _run(model, kwargs)
    for h in handles:
        h.remove()
    return max(seen), out


def _families(group: Any) -> dict[str, Any]:
    results: dict[str, Any] = {}
    config = ParallelismConfig(ulysses_size=2)
    for name, make in FAMILIES.items():
        model, kwargs = seeded(make)
        full, ref = _attention_lengths(model, kwargs)
        before = _state(model)
        handle = _enable(model, config, group)
        local, out = _attention_lengths(model, kwargs)
        results[f"{name}/err"] = rel_error(out, ref)
        results[f"{name}/split"] = local < full
        results[f"{name}/exchanges"] = handle.mesh.seq_lens.exchanges
        disable_context_parallel(model)
        results[f"{name}/undo"] = torch.equal(_run(model, kwargs), ref) and _state(model) == before
        results[f"{name}/nontrivial"] = float(ref.abs().max()) > 0
        if name in ASYNC_FAMILIES:  # async QKV with their masks, against the single process
            handle = _enable(model, ParallelismConfig(ulysses_size=2, ulysses_async=True), group)
            results[f"{name}/async_err"] = rel_error(_run(model, kwargs), ref)
            results[f"{name}/async_processors"] = handle.async_processors
            disable_context_parallel(model)
    # Wan 2.2 A14B: two transformers of one pipeline, both parallel, then undone one by one
    (high, hk), (low, lk) = seeded(lambda: wan(seed=0)), seeded(lambda: wan(seed=1))
    high_ref, low_ref = _run(high, hk), _run(low, lk)
    original = _dispatch_fns()[1]
    _enable(high, config, group)
    _enable(low, config, group)
    results["wan_pair/err"] = max(
        rel_error(_run(high, hk), high_ref), rel_error(_run(low, lk), low_ref)
    )
    disable_context_parallel(high)
    results["wan_pair/still_routed"] = _dispatch_fns()[1] is not original
    results["wan_pair/low_err"] = rel_error(_run(low, lk), low_ref)
    disable_context_parallel(low)
    results["wan_pair/restored"] = _dispatch_fns()[1] is original
    return results


def _four_ranks(rank: int, world: int) -> dict[str, Any]:
    """Ranks {0, 1} run the Flux matrix and {2, 3} the families (2-rank CP groups, at once);
    then all four run the 4-rank layouts over the world group."""
    import torch.distributed as dist

    torch.manual_seed(1234 + rank)  # nothing may depend on the ranks' global RNG
    pairs = [dist.new_group([0, 1]), dist.new_group([2, 3])]
    results = _flux_matrix(pairs[0]) if rank < 2 else _families(pairs[1])
    model, kwargs = seeded(flux)
    ref = _run(model, kwargs)
    for name, config in {
        "usp_2x2": ParallelismConfig(ulysses_size=2, ring_size=2),
        "ulysses_4": ParallelismConfig(ulysses_size=4),
        "ring_4": ParallelismConfig(ring_size=4),
        "ulysses_4_async": ParallelismConfig(ulysses_size=4, ulysses_async=True),
    }.items():
        enable_context_parallel(model, config)
        results[name] = rel_error(_run(model, kwargs), ref)
        disable_context_parallel(model)
    qwen, qwen_kwargs = seeded(qwen_image)
    qwen_ref = _run(qwen, qwen_kwargs)
    enable_context_parallel(qwen, ParallelismConfig(ulysses_size=2, ring_size=2))
    results["usp_2x2_qwen_mask"] = rel_error(_run(qwen, qwen_kwargs), qwen_ref)
    disable_context_parallel(qwen)
    return results


# -- the tests --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ranks() -> list[dict[str, Any]]:
    """One spawn of 4 ranks for the whole file (each spawn costs seconds of imports)."""
    return run_distributed(_four_ranks, 4)


@pytest.fixture(scope="module")
def flux_pair(ranks) -> list[dict[str, Any]]:
    return ranks[:2]


@pytest.fixture(scope="module")
def family_pair(ranks) -> list[dict[str, Any]]:
    return ranks[2:]


MODES = ["ulysses", "ring", "ulysses_anything", "async", "overlap", "async_overlap"]


@pytest.mark.parametrize(
    "mode", [*MODES, "copy_engine", "async_copy_engine", "copy_engine_overlap"]
)
def test_flux_uneven_tokens_and_heads_match_single_process(flux_pair, mode):
    for rank in flux_pair:
        assert rank[f"{mode}/err"] < TOL, (mode, rank[f"{mode}/err"])
        assert rank[f"{mode}/marked"]


def test_copy_engine_option_routes_every_ulysses_exchange_through_it(flux_pair):
    for rank in flux_pair:
        # 4 attention modules x (Q, K, V, O) per forward
        assert rank["copy_engine/copy_engine_exchanges"] == 16
        assert rank["async_copy_engine/copy_engine_exchanges"] == 16
        # with the output overlap each O exchange leaves the own piece out: still 4 per module
        assert rank["copy_engine_overlap/copy_engine_exchanges"] == 16
        assert all(rank[f"{mode}/copy_engine_exchanges"] == 0 for mode in MODES)


def test_next_step_reuses_the_exchanged_lengths(flux_pair):
    for rank in flux_pair:
        assert rank["second_step/err"] < TOL
        assert rank["second_step/no_exchange"], "a step with unchanged shapes exchanged lengths"


def test_handle_shards_full_length_tensors_like_the_splits(flux_pair):
    assert [rank["shard"] for rank in flux_pair] == [[[0, 1, 2, 3]], [[4, 5, 6]]]


def test_async_qkv_replaces_every_flux_processor_and_equals_sync(flux_pair):
    for rank in flux_pair:
        assert rank["async/async_processors"] == 4  # 2 double + 2 single blocks
        # the single blocks' MLP runs beside the all-to-alls (single_blocks.py); undone after
        assert rank["async/single_block_overlaps"] == 2
        assert rank["ulysses/single_block_overlaps"] == 0
        assert rank["undo/block_forwards"]
        assert rank["ulysses/async_processors"] == 0
        assert rank["async_vs_sync/err"] < TOL
        # with ulysses_overlap_output the async processors attend in two parts too
        assert rank["async_overlap/async_overlaps"] == 4
        assert rank["async/async_overlaps"] == 0


def test_undo_restores_the_transformer_bit_for_bit(flux_pair):
    for rank in flux_pair:
        assert rank["undo/equal"], "output after undo differs from before enabling"
        assert rank["undo/state"], "hooks, processors or attributes were not restored"
        assert rank["undo/dispatch"], "dispatch_attention_fn was not restored"
        assert rank["undo/unmarked"]


def test_unrelated_model_is_untouched_while_one_is_parallel(flux_pair):
    assert all(rank["unrelated/equal"] for rank in flux_pair)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_ulysses2_matches_single_process(family_pair, family):
    for rank in family_pair:
        assert rank[f"{family}/nontrivial"]
        assert rank[f"{family}/split"], f"{family}: attention saw the full sequence"
        assert rank[f"{family}/exchanges"] >= 2  # attention lengths and the output gather
        assert rank[f"{family}/err"] < TOL, (family, rank[f"{family}/err"])
        assert rank[f"{family}/undo"], f"{family}: undo did not restore the model"


@pytest.mark.parametrize("family", list(ASYNC_FAMILIES))
def test_async_qkv_with_masks_matches_single_process(family_pair, family):
    for rank in family_pair:
        assert rank[f"{family}/async_processors"] == ASYNC_FAMILIES[family]
        assert rank[f"{family}/async_err"] < TOL, (family, rank[f"{family}/async_err"])


def test_wan22_two_transformers_share_the_router_until_both_are_undone(family_pair):
    for rank in family_pair:
        assert rank["wan_pair/err"] < TOL and rank["wan_pair/low_err"] < TOL
        assert rank["wan_pair/still_routed"]
        assert rank["wan_pair/restored"]


@pytest.mark.parametrize(
    "mode", ["usp_2x2", "ulysses_4", "ring_4", "ulysses_4_async", "usp_2x2_qwen_mask"]
)
def test_four_ranks_match_single_process(ranks, mode):
    for rank in ranks:
        assert rank[mode] < TOL, (mode, rank[mode])
