"""The collectives on 3 gloo ranks: uneven all-to-alls, uneven all-gather, ring P2P, lengths."""

import pytest
import torch
import torch.distributed as dist

from ditkit_parallel.comm import (
    RingP2P,
    all_gather_uneven,
    all_to_all_heads_to_seq,
    all_to_all_seq_to_heads,
    head_split_sizes,
    offsets,
    wait,
)
from ditkit_parallel.launch import run_distributed
from ditkit_parallel.mesh import SeqLenTable

LENS = (4, 0, 3)  # rank 1 holds no tokens
HEADS = 5  # split 2, 2, 1


def test_head_splits_follow_tensor_split():
    for heads, size in ((5, 3), (8, 4), (3, 4), (1, 2)):
        expect = [t.numel() for t in torch.tensor_split(torch.arange(heads), size)]
        assert head_split_sizes(heads, size) == expect
    assert offsets([2, 0, 3]) == [0, 2, 2, 5]


def _full() -> torch.Tensor:
    return torch.arange(2 * sum(LENS) * HEADS * 3, dtype=torch.float32).view(2, -1, HEADS, 3)


def _comm_worker(rank: int, world_size: int) -> dict:
    group = dist.group.WORLD
    full = _full()
    pieces = torch.split(full, list(LENS), dim=1)
    mine = pieces[rank]
    out = {}
    heads = wait(all_to_all_seq_to_heads(mine, LENS, rank, group))
    h0, h1 = offsets(head_split_sizes(HEADS, 3))[rank : rank + 2]
    out["seq_to_heads"] = torch.equal(heads, full[:, :, h0:h1])
    back = wait(all_to_all_heads_to_seq(heads, LENS, HEADS, rank, group))
    out["round_trip"] = torch.equal(back, mine)
    packed = wait(all_to_all_seq_to_heads(mine.to(torch.uint8), LENS, rank, group))
    out["uint8"] = torch.equal(packed, full[:, :, h0:h1].to(torch.uint8))
    gathered = wait(all_gather_uneven(mine, LENS, 1, group))
    out["gather"] = torch.equal(gathered, full)
    flags = wait(all_gather_uneven(mine[:, :, 0, 0] > 20, LENS, -1, group))
    out["gather_bool"] = torch.equal(flags, full[:, :, 0, 0] > 20)
    ring = RingP2P(group, rank, world_size)
    ring.start([mine, torch.tensor([rank])], [(2, LENS[(rank - 1) % 3], HEADS, 3), (1,)])
    got, who = ring.wait()
    out["p2p"] = torch.equal(got, pieces[(rank - 1) % 3]) and int(who) == (rank - 1) % 3
    table = SeqLenTable()
    answers = [table.lengths(LENS[rank], 7 - rank, group, key="k") for _ in range(3)]
    answers.append(table.lengths(LENS[rank], 7 - rank, group))  # no key: exchanges again
    out["lengths"] = (answers, table.exchanges, len(table))
    return out


@pytest.fixture(scope="module")
def ranks() -> list:
    return run_distributed(_comm_worker, 3)


@pytest.mark.parametrize(
    "check", ["seq_to_heads", "round_trip", "uint8", "gather", "gather_bool", "p2p"]
)
def test_collective_is_exact_on_every_rank(ranks, check):
    assert [r[check] for r in ranks] == [True, True, True]


def test_lengths_are_exchanged_once_per_key(ranks):
    for r in ranks:
        answers, exchanges, entries = r["lengths"]
        assert all(a == ((4, 0, 3), (7, 6, 5)) for a in answers)
        assert (exchanges, entries) == (2, 1)
