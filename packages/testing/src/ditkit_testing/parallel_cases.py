"""Cases shared by the parallelism tests: tiny Flux transformers, attention inputs, errors.

The context- and tensor-parallel tests compare a run split over spawned ranks with the same
computation in one process. Their workers run in fresh processes that can import installed
packages but not sibling test modules, so what several of them need lives here:

- :func:`tiny_flux_case`: a small ``FluxTransformer2DModel`` with the keyword arguments of one
  forward call, weights and inputs fixed by a seed (equal on every rank), zero-initialised
  layers given small random weights (:func:`unzero`) so that every block changes the output;
- :func:`grid_ids`: Flux-style position ids of an ``h x w`` image grid;
- :func:`seeded`: run a case builder under its own seed, leaving the caller's RNG untouched;
- :func:`attention_inputs` and :func:`sdpa_reference`: ``(B, S, H, D)`` Q, K, V with an
  optional key-padding mask, and single-process SDPA over them (GQA keys repeated);
- :func:`seq_piece` and :func:`attention_case_error`: one rank's piece of the sequence, and
  the error of a context-parallel attention function on its pieces of a case
  (:data:`UNEVEN_ATTENTION_CASES` are those every mode must handle);
- :func:`rel_error`: ``max|out - ref| / max|ref|``, the bar every parallel test uses, and
  :func:`case_errors`, which picks the failing ones out of a worker's results;
- :func:`sample_of` and :func:`python_calls`: a case's output, and how many Python calls one
  forward makes (the host work that eager parallelism adds).

Example:
    >>> model, kwargs = tiny_flux_case(heads=3, grid=(5, 5), text=7)
    >>> tuple(kwargs["hidden_states"].shape), tuple(kwargs["img_ids"].shape)
    ((1, 25, 16), (25, 3))
    >>> q, k, v, mask = attention_inputs(2, 13, 7, heads=4, kv_heads=2, mask="bool")
    >>> tuple(q.shape), tuple(k.shape), tuple(mask.shape), bool(mask[:, 0].all())
    ((2, 13, 4, 8), (2, 7, 2, 8), (2, 7), True)
    >>> ref = sdpa_reference(q, k, v, mask)
    >>> rel_error(ref, ref), [len(seq_piece(ref, 4, r)[0]) for r in range(4)]
    (0.0, [4, 3, 3, 3])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from .families._common import _ids, _unzero

__all__ = [
    "FLUX_CONFIG",
    "UNEVEN_ATTENTION_CASES",
    "Case",
    "attention_case_error",
    "attention_inputs",
    "case_errors",
    "grid_ids",
    "python_calls",
    "rel_error",
    "sample_of",
    "sdpa_reference",
    "seeded",
    "seq_piece",
    "tiny_flux_case",
    "unzero",
]

#: (transformer, keyword arguments of one forward call)
Case = tuple[torch.nn.Module, dict[str, Any]]

#: ``FluxTransformer2DModel`` config of :func:`tiny_flux_case` (all but the head count).
FLUX_CONFIG: dict[str, Any] = dict(
    patch_size=1,
    in_channels=16,
    num_layers=2,
    num_single_layers=2,
    attention_head_dim=16,
    joint_attention_dim=24,
    pooled_projection_dim=8,
    guidance_embeds=False,
    axes_dims_rope=(4, 6, 6),
)


#: name -> ``(batch, Sq, Skv, heads, kv_heads, mask)``: the shapes every context-parallel mode
#: must handle: even ones, lengths and head counts no group of 2 or 4 divides (13 tokens,
#: 5 heads), and grouped-query K/V.
UNEVEN_ATTENTION_CASES: dict[str, tuple[int, int, int, int, int, str | None]] = {
    "even": (2, 16, 16, 4, 4, None),
    "uneven_seq": (2, 13, 13, 4, 4, None),
    "uneven_heads": (2, 16, 16, 5, 5, None),
    "uneven_both": (2, 13, 13, 5, 5, None),
    "gqa": (2, 13, 13, 4, 2, None),
}


def rel_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """``max|out - ref| / max|ref|``; the shapes must be equal (no silent broadcasting).

    Raises:
        ValueError: the shapes differ.
    """
    if out.shape != ref.shape:
        raise ValueError(f"rel_error: shapes differ, {tuple(out.shape)} vs {tuple(ref.shape)}")
    return float((out - ref).abs().max() / ref.abs().max())


def sample_of(model: torch.nn.Module, kwargs: dict[str, Any]) -> torch.Tensor:
    """``model(**kwargs, return_dict=False)[0]`` under ``torch.no_grad()``."""
    with torch.no_grad():
        return model(**kwargs, return_dict=False)[0]


def python_calls(model: torch.nn.Module, kwargs: dict[str, Any]) -> int:
    """The Python function calls (cProfile's count) of one :func:`sample_of` forward."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    sample_of(model, kwargs)
    profile.disable()
    return pstats.Stats(profile).total_calls


def case_errors(results: dict[str, Any], tol: float) -> tuple[int, dict[str, float]]:
    """The ``"<layout>/<case>"`` errors of one worker's results (keys with a ``/``): how many
    there are, and those that are not below ``tol`` (NaN included)."""
    errors = {key: value for key, value in results.items() if "/" in key}
    return len(errors), {key: value for key, value in errors.items() if not value < tol}


def unzero(model: torch.nn.Module) -> torch.nn.Module:
    """Small random weights for zero-initialised layers (adaLN-zero gates, output layers), so
    a wrong shard cannot hide behind a zero; returns the model in eval mode."""
    return _unzero(model).eval()


def grid_ids(height: int, width: int, axes: int = 3) -> torch.Tensor:
    """Flux-style image position ids ``(height * width, axes)``: axis 1 the row, 2 the column."""
    return _ids(height, width, 0, axes)[0]


def seeded(make: Callable[[], Case], seed: int = 0) -> Case:
    """``make()`` under ``torch.manual_seed(seed)`` in a forked RNG (the caller's is untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def tiny_flux_case(
    heads: int = 3,
    grid: tuple[int, int] = (5, 5),
    text: int = 7,
    batch: int = 1,
    seed: int = 0,
    *,
    timestep: float | Sequence[float] = 0.5,
    controlnet: bool = False,
    **config: Any,
) -> Case:
    """A tiny ``FluxTransformer2DModel`` and the inputs of one forward call.

    Args:
        heads: attention heads (3 divides neither 2 nor 4 ranks).
        grid: image tokens as a ``(height, width)`` grid.
        text: text tokens.
        batch: batch size.
        seed: weights and inputs (drawn in that order, then :func:`unzero`).
        timestep: one value for the whole batch, or one per sample.
        controlnet: add one ControlNet residual per double block (``controlnet_block_samples``).
        **config: overrides of :data:`FLUX_CONFIG`; the input widths follow them.

    Returns:
        ``(model, kwargs)``; ``model(**kwargs, return_dict=False)[0]`` is ``(batch, h*w, C)``.
    """
    from diffusers import FluxTransformer2DModel

    cfg = {**FLUX_CONFIG, **config}
    tokens = grid[0] * grid[1]
    steps = [timestep] * batch if isinstance(timestep, float | int) else list(timestep)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FluxTransformer2DModel(num_attention_heads=heads, **cfg)
        kwargs: dict[str, Any] = dict(
            hidden_states=torch.randn(batch, tokens, cfg["in_channels"]),
            encoder_hidden_states=torch.randn(batch, text, cfg["joint_attention_dim"]),
            pooled_projections=torch.randn(batch, cfg["pooled_projection_dim"]),
            timestep=torch.tensor(steps),
            img_ids=grid_ids(*grid, axes=len(cfg["axes_dims_rope"])),
            txt_ids=torch.zeros(text, len(cfg["axes_dims_rope"])),
        )
        if controlnet:
            width = heads * cfg["attention_head_dim"]
            kwargs["controlnet_block_samples"] = [0.1 * torch.randn(batch, tokens, width)]
        return unzero(model), kwargs


def attention_inputs(
    batch: int,
    sq: int,
    skv: int,
    heads: int,
    kv_heads: int | None = None,
    mask: str | None = None,
    *,
    dim: int = 8,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Random ``(B, S, H, D)`` Q, K, V and a ``(B, S_kv)`` key-padding mask, from one generator.

    Args:
        batch, sq, skv, heads, dim: the shapes; ``kv_heads`` (default ``heads``) for GQA.
        mask: None; ``"bool"`` (True = attend, about 65 % of the keys, key 0 always);
            ``"float"`` (the same keys, 0 or -inf); ``"tail"`` (bool, only the first third of
            the keys visible, so the last ranks' whole shards are padding).
        seed: of the ``torch.Generator`` every tensor is drawn from, in the order Q, K, V, mask.
    """
    g = torch.Generator().manual_seed(seed)
    kv_heads = heads if kv_heads is None else kv_heads
    q = torch.randn(batch, sq, heads, dim, generator=g)
    k = torch.randn(batch, skv, kv_heads, dim, generator=g)
    v = torch.randn(batch, skv, kv_heads, dim, generator=g)
    if mask is None:
        return q, k, v, None
    if mask not in ("bool", "float", "tail"):
        raise ValueError(f"attention_inputs: mask={mask!r}; use None, 'bool', 'float' or 'tail'")
    keep = torch.rand(batch, skv, generator=g) > 0.35
    keep[:, 0] = True
    if mask == "tail":
        keep = torch.arange(skv)[None].expand(batch, -1) < skv // 3
    if mask == "float":
        return q, k, v, torch.zeros(batch, skv).masked_fill(~keep, float("-inf"))
    return q, k, v, keep


def sdpa_reference(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Single-process SDPA in ``(B, S, H, D)`` layout; K/V heads repeated up to Q's (GQA)."""
    rep = query.shape[2] // key.shape[2]
    key, value = key.repeat_interleave(rep, dim=2), value.repeat_interleave(rep, dim=2)
    mask = None if key_mask is None else key_mask[:, None, None, :]
    out = torch.nn.functional.scaled_dot_product_attention(
        query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2), attn_mask=mask
    )
    return out.transpose(1, 2)


def seq_piece(x: torch.Tensor, size: int, rank: int) -> torch.Tensor:
    """Rank ``rank``'s piece of dim 1 out of ``size``, as ``torch.tensor_split`` deals them."""
    return torch.tensor_split(x, size, dim=1)[rank]


def attention_case_error(
    attend: Callable[..., torch.Tensor],
    case: tuple[int, int, int, int, int, str | None],
    size: int,
    rank: int,
    *,
    seed: int = 0,
    **kwargs: Any,
) -> float:
    """:func:`rel_error` of ``attend`` on this rank's pieces vs this rank's rows of the reference.

    Args:
        attend: ``attend(q, k, v, key_mask, **kwargs)`` on ``(B, S_r, H, D)`` pieces.
        case: ``(batch, Sq, Skv, heads, kv_heads, mask)`` for :func:`attention_inputs`; the mask
            kind ``"bool4d"`` is ``"bool"`` passed to ``attend`` as ``(B, 1, 1, S_kv_r)``.
        size, rank: the context-parallel group size and this rank's place in it.
        seed: of :func:`attention_inputs`.
        **kwargs: passed to ``attend`` (``mesh=...``, ``seq_key=...``).

    Returns:
        The relative error; 0.0 for a rank with no queries (its output must be empty too).

    Raises:
        ValueError: the output's shape or dtype is not the reference's.
    """
    *shape, kind = case
    q, k, v, mask = attention_inputs(*shape, mask="bool" if kind == "bool4d" else kind, seed=seed)
    local = None if mask is None else seq_piece(mask, size, rank)
    if kind == "bool4d" and local is not None:
        local = local[:, None, None, :]
    out = attend(*(seq_piece(t, size, rank) for t in (q, k, v)), local, **kwargs)
    expect = seq_piece(sdpa_reference(q, k, v, mask), size, rank)
    if out.shape != expect.shape or out.dtype != expect.dtype:
        raise ValueError(
            f"attention_case_error: output {tuple(out.shape)} {out.dtype}, expected "
            f"{tuple(expect.shape)} {expect.dtype}"
        )
    return rel_error(out, expect) if expect.numel() else 0.0
