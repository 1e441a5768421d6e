"""The checks ``gpu_parallel.py`` runs beside its timings: fp32 equivalence and the comm floor.

- :func:`fp32_equivalence`: a tiny fp32 Flux (``ditkit_testing.parallel_cases.tiny_flux_case``,
  the same cases as ``packages/parallel/tests``) under Ulysses, Ring and TP against one process,
  with an even (4 heads, 25 + 7 tokens) and an uneven (3 heads, 25 + 8 tokens) layout;
- :func:`all_to_all_ms`: the median time of one Ulysses all-to-all of a model's attention;
- :func:`comm_per_step`: the unhidden all-to-all time of a step the cache may have shortened;
- :func:`rel_err`: ``max|x - ref| / max|ref|`` in float32 (any dtype in).

Example:
    >>> comm_per_step(10.0, computed=2, steps=4, attentions=5)
    6.0
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["FP32_TOL", "all_to_all_ms", "comm_per_step", "fp32_equivalence", "rel_err"]

FP32_TOL = 1e-5


def rel_err(x: torch.Tensor, ref: torch.Tensor) -> float:
    """``max|x - ref| / max|ref|`` computed in float32."""
    x, ref = x.float(), ref.float()
    return float((x - ref).abs().max() / ref.abs().max())


def fp32_equivalence(bench: Any, config_of: Callable[[str], Any]) -> dict[str, float]:
    """Max relative error over ranks of each mode's tiny fp32 Flux against one process (TF32
    off). ``config_of(mode)`` gives the ``ParallelismConfig`` of "ulysses", "ring" and "tp";
    nothing to compare in a one-process launch (``{}``)."""
    if dist.get_world_size() == 1:
        return {}
    from ditkit_parallel import enable_parallelism
    from ditkit_testing.parallel_cases import tiny_flux_case

    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    results = {}
    try:
        for (heads, text), mode in itertools.product(((4, 7), (3, 8)), ("ulysses", "ring", "tp")):
            model, kwargs = tiny_flux_case(heads, (5, 5), text)
            model = model.to(bench.device).eval()
            kwargs = {k: v.to(bench.device) for k, v in kwargs.items()}
            with torch.no_grad():
                single = model(**kwargs, return_dict=False)[0]
                enable_parallelism(model, config_of(mode))
                out = model(**kwargs, return_dict=False)[0]
            err = torch.tensor([rel_err(out, single)], device=bench.device)
            dist.all_reduce(err, op=dist.ReduceOp.MAX)
            results[f"{mode}/{heads}heads/{25 + text}tokens"] = float(err.item())
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return results


def all_to_all_ms(bench: Any, size: str, iters: int = 20) -> float:
    """Median time of one Ulysses all-to-all (B*S*H*D/N elements per rank, bf16)."""
    heads, dim = bench.config["num_attention_heads"], bench.config["attention_head_dim"]
    tokens = bench.spec.attention_tokens(size, bench.config)
    numel = tokens * heads * dim // bench.world
    numel -= numel % bench.world
    dtype = torch.bfloat16 if bench.cuda else torch.float32
    send = torch.randn(numel, device=bench.device).to(dtype)
    recv = torch.empty_like(send)
    times = []
    for i in range(iters + 5):
        bench.sync()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dist.all_to_all_single(recv, send)
        end.record()
        bench.sync()
        if i >= 5:
            times.append(start.elapsed_time(end))
    return statistics.median(times)


def comm_per_step(full_step_ms: float, computed: int, steps: int, attentions: int) -> float:
    """Unhidden all-to-all time per step when ``computed`` of ``steps`` run every attention
    (a cached step runs the first block's only: Fn=1 of the ``attentions``)."""
    cached = (steps - computed) / attentions
    return full_step_ms * (computed + cached) / steps
