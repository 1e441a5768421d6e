"""The copy-engine Ulysses exchange on two GPUs (``gpu``-marked: run on the device machine).

Through symmetric memory and peer copies, ``all_to_all_seq_to_heads`` and its inverse equal
NCCL's results bit for bit (they are pure copies), for uneven sequence lengths and head counts,
eagerly, under ``torch.compile`` with three exchanges in flight before the first wait, again
on later calls that reuse the workspace, and captured in a CUDA graph and replayed; the
barriers are CUDA stream memory operations (no SMs) where ``cuda.bindings`` is installed. The
CPU tests run the same ops over gloo.
"""

import pytest
import torch
import torch.distributed as dist

from ditkit_parallel import comm, copy_engine
from ditkit_parallel.launch import run_distributed


def _worker(rank: int, world_size: int) -> dict:
    torch.cuda.set_device(rank)
    group, device, results = dist.group.WORLD, torch.device("cuda", rank), {}
    lens, heads = [1025, 1024], 5
    x = torch.randn(1, lens[rank], heads, 64, device=device, dtype=torch.bfloat16)
    mine = comm.head_split_sizes(heads, 2)[rank]
    y = torch.randn(1, sum(lens), mine, 64, device=device, dtype=torch.bfloat16)
    for ce in (False, True):
        copy_engine.route(group, ce)
        forth = comm.wait(comm.all_to_all_seq_to_heads(x, lens, rank, group))
        back = comm.wait(comm.all_to_all_heads_to_seq(y, lens, heads, rank, group))
        results[ce] = (forth.cpu(), back.cpu())

    def three(q, k, v):
        pending = [comm.all_to_all_seq_to_heads(t, lens, rank, group) for t in (q, k, v)]
        return torch.cat([comm.wait(p) for p in pending], 2) * 1.0

    q, k, v = (torch.randn_like(x) for _ in range(3))
    copy_engine.route(group, False)
    want = three(q, k, v)
    copy_engine.route(group, True)
    compiled = torch.compile(three, fullgraph=True)
    again = [bool(torch.equal(compiled(q, k, v), want)) for _ in range(3)]
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()  # the workspace exists: the calls above grew it
    with torch.cuda.graph(graph):
        static = three(q, k, v)
    replays = []
    for _ in range(2):
        graph.replay()
        torch.cuda.synchronize()
        replays.append(bool(torch.equal(static, want)))
    copy_engine.route(group, False)
    exchanger = copy_engine._EXCHANGERS[group.group_name]
    return {
        "sm_free_barriers": exchanger.driver is None or exchanger.stream_op_barriers > 0,
        "forth": torch.equal(results[True][0], results[False][0]),
        "back": torch.equal(results[True][1], results[False][1]),
        "compiled": again,
        "graph_replays": replays,
    }


@pytest.mark.gpu
def test_copy_engine_exchange_equals_nccl_on_two_gpus():
    if torch.cuda.device_count() < 2:
        pytest.fail("needs 2 GPUs (run on the device machine, nvidia-h200-x2)")
    for results in run_distributed(_worker, 2, backend="nccl"):
        assert results["forth"] and results["back"]
        assert results["compiled"] == [True, True, True]
        assert results["graph_replays"] == [True, True]  # captured: every side stream joined
        assert results["sm_free_barriers"]  # stream memory operations, where cuda.bindings is
