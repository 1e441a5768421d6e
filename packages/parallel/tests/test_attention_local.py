"""Single-process pieces of the CP attention: local (out, lse), the LSE merge, input checks.

Relative error is ``(a - b).abs().max() / b.abs().max()`` throughout; float32 must agree to
1e-5 with torch's SDPA.
"""

import pytest
import torch

from ditkit_parallel.attention import context_parallel_attention, key_padding_mask
from ditkit_parallel.attention.local import math_attention_with_lse, sdpa
from ditkit_parallel.attention.ring import merge_partials
from ditkit_parallel.mesh import CPMesh
from ditkit_testing.parallel_cases import attention_inputs, rel_error


def _qkv(sq: int = 11, sk: int = 9, heads: int = 3, dim: int = 16, seed: int = 0):
    return attention_inputs(2, sq, sk, heads, dim=dim, seed=seed)[:3]


def test_math_path_matches_sdpa_and_returns_the_logsumexp():
    q, k, v = _qkv()
    out, lse = math_attention_with_lse(q, k, v)
    assert rel_error(out, sdpa(q, k, v)) < 1e-5
    scores = torch.einsum("bqhd,bkhd->bqhk", q, k) / 4.0  # 1/sqrt(16)
    assert rel_error(lse, torch.logsumexp(scores, dim=-1)) < 1e-6
    assert lse.shape == (2, 11, 3)


@pytest.mark.parametrize("as_float", [False, True])
def test_math_path_with_a_key_padding_mask(as_float: bool):
    q, k, v = _qkv()
    keep = torch.ones(2, 9, dtype=torch.bool)
    keep[0, 5:] = False
    keep[1, :2] = False
    mask = torch.zeros(2, 9).masked_fill(~keep, float("-inf")) if as_float else keep
    out, _ = math_attention_with_lse(q, k, v, mask)
    assert rel_error(out, sdpa(q, k, v, mask)) < 1e-5
    # the masked keys really are ignored
    assert rel_error(out[:1], sdpa(q[:1], k[:1, :5], v[:1, :5])) < 1e-5


def test_merging_partials_over_split_keys_equals_attention_over_all_keys():
    q, k, v = _qkv(sk=13)
    pieces = [(0, 4), (4, 5), (5, 13)]
    out, lse = None, None
    for a, b in pieces:
        o_i, l_i = math_attention_with_lse(q, k[:, a:b], v[:, a:b])
        out, lse = (o_i, l_i) if out is None else merge_partials(out, lse, o_i, l_i)
    full_out, full_lse = math_attention_with_lse(q, k, v)
    assert rel_error(out, full_out) < 1e-5
    assert rel_error(lse, full_lse) < 1e-6


def test_a_fully_masked_partial_has_weight_zero_and_no_nan():
    q, k, v = _qkv(sk=6)
    hidden = torch.zeros(2, 3, dtype=torch.bool)
    o_masked, l_masked = math_attention_with_lse(q, k[:, :3], v[:, :3], hidden)
    assert torch.isinf(l_masked).all() and (o_masked == 0).all()
    o_rest, l_rest = math_attention_with_lse(q, k[:, 3:], v[:, 3:])
    merged, _ = merge_partials(o_masked, l_masked, o_rest, l_rest)
    assert not merged.isnan().any()
    assert rel_error(merged, sdpa(q, k[:, 3:], v[:, 3:])) < 1e-5


def test_key_padding_mask_forms():
    m = torch.ones(2, 7, dtype=torch.bool)
    assert key_padding_mask(m[:, None, None, :], 2, 7).shape == (2, 7)
    assert key_padding_mask(m[:1, None, :], 2, 7).shape == (1, 7)
    assert key_padding_mask(None, 2, 7) is None
    with pytest.raises(NotImplementedError, match=r"key-padding masks \(B, S_kv_local\)"):
        key_padding_mask(torch.ones(2, 1, 5, 7, dtype=torch.bool), 2, 7)  # per-query mask
    with pytest.raises(NotImplementedError, match="7 local keys"):
        key_padding_mask(torch.ones(2, 6, dtype=torch.bool), 2, 7)


def _fake_mesh() -> CPMesh:
    """A 2-rank Ulysses mesh whose groups are never reached (the checks fail first)."""
    group = object()
    return CPMesh(group, 2, 0, None, 1, 0, group, 2, 0)  # type: ignore[arg-type]


def test_context_parallel_attention_rejects_what_inference_cannot_need():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match=r"dropout_p=0\.1"):
        context_parallel_attention(q, k, v, dropout_p=0.1, mesh=_fake_mesh())
    with pytest.raises(NotImplementedError, match="is_causal=True"):
        context_parallel_attention(q, k, v, is_causal=True, mesh=_fake_mesh())
    per_query = torch.ones(2, 1, 11, 9, dtype=torch.bool)
    with pytest.raises(NotImplementedError, match="key-padding"):
        context_parallel_attention(q, k, v, per_query, mesh=_fake_mesh())
    with pytest.raises(ValueError, match=r"\(B, S, H, D\)"):
        context_parallel_attention(q[0], k[0], v[0], mesh=_fake_mesh())
    with pytest.raises(ValueError, match="multiple of key heads"):
        context_parallel_attention(q, k[:, :, :2], v[:, :, :2], mesh=_fake_mesh())


def test_one_rank_mesh_is_plain_sdpa_including_causal_and_gqa():
    q, k, v = _qkv(sq=9, heads=4)
    mesh = CPMesh.single()
    assert rel_error(context_parallel_attention(q, k, v, mesh=mesh), sdpa(q, k, v)) < 1e-6
    causal = context_parallel_attention(q, k, v, is_causal=True, mesh=mesh)
    assert rel_error(causal[:, :1], sdpa(q[:, :1], k[:, :1], v[:, :1])) < 1e-6
    kv = k[:, :, :2], v[:, :, :2]
    expect = sdpa(q, *(t.repeat_interleave(2, dim=2) for t in kv))
    assert rel_error(context_parallel_attention(q, *kv, mesh=mesh), expect) < 1e-6
