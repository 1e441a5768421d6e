"""TP-2 output equals the single-process output for every family with a tensor-parallel plan.

One 2-rank gloo run (float32, CPU) builds each tiny random-weight transformer from
``ditkit_testing`` with a fixed seed on both ranks, runs it unsharded (the reference), shards it
with :func:`enable_tensor_parallel` and runs it again. The bar is a relative error
``max|tp - ref| / max|ref|`` below 1e-5.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch

from ditkit_interfaces.parallel_config import ParallelismConfig
from ditkit_parallel.launch import run_distributed
from ditkit_testing.parallel_cases import grid_ids, rel_error

# several spawned processes each: in CI's `all` session (slow), not the package session
pytestmark = pytest.mark.slow

TOLERANCE = 1e-5


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(1)


def _flux() -> tuple[Any, dict]:
    from ditkit_testing import build_tiny_transformer

    g = _gen()
    kwargs = dict(
        hidden_states=torch.randn(1, 16, 64, generator=g),
        encoder_hidden_states=torch.randn(1, 6, 32, generator=g),
        pooled_projections=torch.randn(1, 32, generator=g),
        timestep=torch.tensor([0.7]),
        img_ids=grid_ids(4, 4),
        txt_ids=torch.zeros(6, 3),
        guidance=torch.tensor([3.5]),
    )
    return build_tiny_transformer("flux", seed=0), kwargs


def _qwen_image() -> tuple[Any, dict]:
    from ditkit_testing import build_tiny_transformer

    g = _gen()
    kwargs = dict(
        hidden_states=torch.randn(1, 16, 64, generator=g),
        encoder_hidden_states=torch.randn(1, 6, 32, generator=g),
        encoder_hidden_states_mask=torch.ones(1, 6),
        timestep=torch.tensor([0.7]),
        img_shapes=[(1, 4, 4)],
    )
    return build_tiny_transformer("qwen_image", seed=0), kwargs


def _wan() -> tuple[Any, dict]:
    from ditkit_testing import build_tiny_transformer

    g = _gen()
    kwargs = dict(
        hidden_states=torch.randn(1, 16, 2, 8, 8, generator=g),
        timestep=torch.tensor([700.0]),
        encoder_hidden_states=torch.randn(1, 6, 32, generator=g),
    )
    return build_tiny_transformer("wan", seed=0), kwargs


def _image_case(name: str) -> Callable[[], tuple[Any, dict]]:
    def build() -> tuple[Any, dict]:
        from ditkit_testing.families import IMAGE_CASES

        return IMAGE_CASES[name](0)

    return build


def _video_case(name: str) -> Callable[[], tuple[Any, dict]]:
    def build() -> tuple[Any, dict]:
        from ditkit_testing.families import VIDEO_CASES

        return VIDEO_CASES[name](0)

    return build


CASES: dict[str, Callable[[], tuple[Any, dict]]] = {
    "flux": _flux,
    "chroma": _image_case("Chroma"),
    "flux2": _image_case("Flux2"),
    "qwen_image": _qwen_image,
    "wan": _wan,
    "hunyuan_video": _video_case("hunyuan_video"),
    "cogvideox": _video_case("cogvideox"),
    "ltx": _video_case("ltx_video"),
    "zimage": _image_case("ZImage"),
}


def _first(output: Any) -> torch.Tensor:
    while isinstance(output, tuple | list):
        output = output[0]
    return output


def _run_case(name: str) -> dict[str, Any]:
    from torch.distributed.tensor import DTensor

    from ditkit_parallel.tensor import enable_tensor_parallel, sharded_linears

    model, kwargs = CASES[name]()
    model = model.eval().float()
    kwargs = {**kwargs, "return_dict": False}
    with torch.no_grad():
        reference = _first(model(**kwargs)).clone()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # divisible heads: no padding warning
            enable_tensor_parallel(model, ParallelismConfig(tp_size=2))
        output = _first(model(**kwargs))
    shards = sharded_linears(model)
    return dict(
        error=rel_error(output, reference),
        scale=float(reference.abs().max()),
        plain=type(output) is torch.Tensor,
        styles=sorted({s.style for s in shards}),
        sharded=sum(isinstance(s.module.weight, DTensor) for s in shards),
        heads=sorted(
            {m.heads for m in model.modules() if isinstance(getattr(m, "heads", None), int)}
        ),
    )


def families_worker(rank: int, world_size: int) -> dict[str, Any]:
    torch.manual_seed(1234 + rank)  # ranks differ in global RNG state; cases seed themselves
    results = {}
    for name in CASES:
        try:
            results[name] = _run_case(name)
        except Exception as exc:  # report every family, not only the first failure
            import traceback

            results[name] = dict(failure=f"{exc!r}\n{traceback.format_exc()}")
    return results


@pytest.fixture(scope="module")
def tp2_results() -> list[dict[str, Any]]:
    return run_distributed(families_worker, 2)


@pytest.mark.parametrize("name", list(CASES))
def test_tp2_matches_single_process(tp2_results: list[dict[str, Any]], name: str) -> None:
    for rank, results in enumerate(tp2_results):
        result = results[name]
        assert "failure" not in result, f"rank {rank}: {result.get('failure')}"
        assert result["scale"] > 0, "the reference output is all zeros: the check would be empty"
        assert result["error"] < TOLERANCE, f"rank {rank}: relative error {result['error']:.2e}"
        assert result["plain"], "the transformer output must be a plain (replicated) tensor"
        assert result["sharded"] > 0 and "colwise" in result["styles"]
        assert "rowwise" in result["styles"]
        assert result["heads"] == [1], "every attention keeps 1 of its 2 heads per rank"
