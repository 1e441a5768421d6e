r"""Ring attention: queries stay, key/value shards travel, partial results merge by LSE.

Each of the ``R`` ranks of the ring holds its queries ``(B, Sq_r, H, D)`` and one K/V shard
``(B, Skv_r, H, D)`` (lengths may differ by rank; they come from the cached length table, so no
per-call host sync). Two ways to see every shard:

- ``"p2p"``: ``R`` steps; at step ``t`` the rank holds the shard of rank ``(r - t) mod R``,
  attends to it while the next shard is already being received from ``r - 1`` (and its own
  sent to ``r + 1``), then merges. The key-padding mask rotates with its shard.
- ``"allgather"``: all shards (and mask pieces) are gathered once and one SDPA runs; more
  memory, fewer messages, no merge.

Under ``torch.compile`` the P2P rotation (``batch_isend_irecv`` has no functional form) would
break the graph at every attention, so while compiling ``"p2p"`` runs as ``"allgather"``, whose
gather is a functional collective inside the graph (same result; measured on 4×H200, FLUX
2048² compiled: Ring-4 3.43× one GPU against 2.34× with the P2P graph breaks).

Merge rule of partials ``(o_t, lse_t)`` (``lse`` = log-sum-exp of a row's scores)::

    lse = logsumexp_t(lse_t),    o = sum_t exp(lse_t - lse) * o_t

done online, two at a time, in float32 when ``convert_to_fp32`` (else in the output dtype).
A partial whose keys are all masked has ``lse_t = -inf`` and weight 0.

Example:
    >>> o1, l1 = torch.ones(1, 1, 1, 2), torch.zeros(1, 1, 1)
    >>> o2, l2 = 3 * torch.ones(1, 1, 1, 2), torch.zeros(1, 1, 1)
    >>> out, lse = merge_partials(o1, l1, o2, l2)
    >>> out.flatten().tolist(), round(float(lse), 4)
    ([2.0, 2.0], 0.6931)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.distributed import ProcessGroup

from ..comm import RingP2P, all_gather_uneven, wait
from .local import attention_with_lse, sdpa

__all__ = ["merge_partials", "ring_attention"]


def merge_partials(
    out: torch.Tensor, lse: torch.Tensor, out_i: torch.Tensor, lse_i: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge two partial attentions over disjoint key sets.

    Args:
        out, out_i: ``(B, S, H, D)`` partial outputs (``out``'s dtype is the accumulator's).
        lse, lse_i: ``(B, S, H)`` float32 log-sum-exps.

    Returns:
        ``(out, lse)`` of the union of the two key sets.
    """
    new = torch.logaddexp(lse, lse_i)
    finite = torch.where(torch.isinf(new), torch.zeros_like(new), new)
    w = torch.exp(lse - finite).unsqueeze(-1)
    w_i = torch.exp(lse_i - finite).unsqueeze(-1)
    zero = out.new_zeros(())
    merged = torch.where(w > 0, w * out, zero)
    merged = merged + torch.where(w_i > 0, w_i * out_i.to(out.dtype), zero)
    return merged, new


def _to_wire(mask: torch.Tensor | None) -> torch.Tensor | None:
    if mask is None:
        return None
    return mask.to(torch.uint8) if mask.dtype == torch.bool else mask


def _from_wire(mask: torch.Tensor | None, like: torch.Tensor | None) -> torch.Tensor | None:
    if mask is None or like is None:
        return mask
    return mask.bool() if like.dtype == torch.bool else mask


def ring_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_mask: torch.Tensor | None,
    scale: float | None,
    *,
    group: ProcessGroup,
    rank: int,
    size: int,
    kv_lens: Sequence[int],
    method: str = "p2p",
    convert_to_fp32: bool = True,
) -> torch.Tensor:
    """Attention of this rank's queries over the K/V shards of the whole ring.

    Args:
        query: ``(B, Sq_r, H, D)``; key, value: ``(B, Skv_r, H, D)`` this rank's shard.
        key_mask: ``(B or 1, Skv_r)`` key-padding mask of this rank's shard, or None.
        scale: softmax scale (default ``1 / sqrt(D)``).
        group, rank, size: the ring group and this rank's position in it.
        kv_lens: every ring rank's K/V shard length, in ring-rank order.
        method: ``"p2p"`` or ``"allgather"`` (``"p2p"`` is traced as ``"allgather"``).
        convert_to_fp32: accumulate the merge in float32.

    Returns:
        ``(B, Sq_r, H, D)`` in ``query.dtype``.
    """
    if method == "p2p" and torch.compiler.is_compiling():
        method = "allgather"  # the P2P loop cannot be traced (see the module docstring)
    if method == "allgather":
        k_all = all_gather_uneven(key, kv_lens, 1, group)
        v_all = all_gather_uneven(value, kv_lens, 1, group)
        mask = _to_wire(key_mask)
        m_all = None if mask is None else wait(all_gather_uneven(mask, kv_lens, 1, group))
        return sdpa(query, wait(k_all), wait(v_all), _from_wire(m_all, key_mask), scale)
    if method != "p2p":
        raise ValueError(f"ring_attention: method={method!r}, expected 'p2p' or 'allgather'")
    acc_dtype = torch.float32 if convert_to_fp32 else query.dtype
    comm = RingP2P(group, rank, size)
    batch, _, heads_k, dim = key.shape
    current = [key, value] + ([] if key_mask is None else [_to_wire(key_mask)])
    out: torch.Tensor | None = None
    lse: torch.Tensor | None = None
    for step in range(size):
        if step + 1 < size:
            src = (rank - step - 1) % size  # whose shard arrives next
            n = int(kv_lens[src])
            shapes = [(batch, n, heads_k, dim), (batch, n, heads_k, value.shape[-1])]
            if key_mask is not None:
                shapes.append((key_mask.shape[0], n))
            comm.start(current, shapes)
        mask = _from_wire(current[2], key_mask) if key_mask is not None else None
        out_t, lse_t = attention_with_lse(query, current[0], current[1], mask, scale)
        if out is None or lse is None:
            out, lse = out_t.to(acc_dtype), lse_t
        else:
            out, lse = merge_partials(out, lse, out_t, lse_t)
        if step + 1 < size:
            current = comm.wait()
    assert out is not None
    return out.to(query.dtype)
