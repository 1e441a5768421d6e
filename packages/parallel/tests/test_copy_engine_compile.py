"""Under inductor, the copy engine's wait keeps alive the very buffer its issue sends.

The copy engines read ``send`` on a side stream after ``ce_all_to_all`` returns, so the
graph must not free or reuse that buffer before ``ce_wait``; ``send`` is an input of the wait
for that reason. When ``comm`` filled the send buffer with slice copies, inductor computed the
buffer twice, once for each reader, so the wait kept a duplicate alive while the buffer in use
was deleted right after the issue (and a copy kernel per exchange was wasted). On 2 gloo
ranks (where the same ops run ``all_to_all_single``) this reads inductor's generated code:
every wait's ``send`` is the buffer its issue sent, and no buffer is sent twice. The results
equal the eager exchange.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch
import torch.distributed as dist

from ditkit_parallel import comm, copy_engine
from ditkit_parallel.launch import run_distributed

pytestmark = pytest.mark.slow  # spawned processes: in CI's `all` session

ISSUE = re.compile(r"ce_all_to_all\.default\((\w+)")
WAIT = re.compile(r"ce_wait\.default\((\w+), (\w+)\)")


def _worker(rank: int, world_size: int) -> dict[str, Any]:
    from torch._inductor.utils import run_and_get_code

    group, lens, heads = dist.group.WORLD, [9, 7], 5
    copy_engine.route(group, True)

    def attention_like(q, k, v):
        pending = [comm.all_to_all_seq_to_heads(t, lens, rank, group) for t in (q, k, v)]
        out = torch.cat([comm.wait(p) for p in pending], 2) * 2.0
        mine = comm.head_split_sizes(heads, world_size)[rank]
        back = comm.all_to_all_heads_to_seq(out[:, :, :mine] + 1, lens, heads, rank, group)
        return comm.wait(back)

    gen = torch.Generator().manual_seed(rank)
    q, k, v = (torch.randn(2, lens[rank], heads, 8, generator=gen) for _ in range(3))
    eager = attention_like(q, k, v)
    torch._dynamo.reset()
    compiled, codes = run_and_get_code(torch.compile(attention_like, fullgraph=True), q, k, v)
    copy_engine.route(group, False)
    body = "\n".join(code[code.find("def call(") :] for code in codes)
    return {
        "sent": ISSUE.findall(body),
        "kept": [send for _, send in WAIT.findall(body)],
        "err": float((compiled - eager).abs().max()),
    }


@pytest.fixture(scope="module")
def ranks() -> list[dict[str, Any]]:
    return run_distributed(_worker, 2)


def test_each_wait_keeps_the_buffer_its_issue_sends(ranks):
    for result in ranks:
        assert len(result["sent"]) == 4, result["sent"]  # Q, K, V and the output
        assert result["kept"] == result["sent"]
        assert len(set(result["sent"])) == 4


def test_the_compiled_exchange_equals_the_eager_one(ranks):
    for result in ranks:
        assert result["err"] == 0.0
