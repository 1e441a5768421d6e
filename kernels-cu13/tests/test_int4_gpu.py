"""The CUDA kernels against the reference on a GPU (run with ``-m gpu``).

Nothing here skips: on a machine meant for these tests a missing GPU or extension is a failure.
Outputs land in poisoned buffers (two different sentinels, a guard zone on each side) so that a
byte left unwritten, or written past the end, is caught; misaligned pointers exercise the scalar
path beside the 16-byte vector path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import ditkit_kernels_cu13 as k
import ditkit_kernels_cu13.ops  # registers torch.ops.ditkit_kernels_cu13.*
from ditkit_kernels_cu13.reference import pack_int4_reference, unpack_int4_reference

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated"),
]

ROWS = [1, 3, 7, 33, 257, 1025, 4097]
COLS = [2, 6, 130, 4098]
SENTINELS = (0xA5, 0x5A)
GUARD = 64  # bytes of poison before and after each output


@pytest.fixture(scope="module")
def ext() -> Any:
    assert torch.cuda.is_available(), "the gpu tests need a CUDA device; torch sees none"
    assert k.extension_error() is None, k.extension_error()
    assert k.available(), k.device_status()
    return k.load_extension()


def _rand_i8(rows: int, cols: int, seed: int, low: int = -8, high: int = 8) -> torch.Tensor:
    g = torch.Generator(device="cuda").manual_seed(seed)
    return torch.randint(low, high, (rows, cols), dtype=torch.int8, device="cuda", generator=g)


def _rand_u8(rows: int, cols: int, seed: int) -> torch.Tensor:
    g = torch.Generator(device="cuda").manual_seed(seed)
    return torch.randint(0, 256, (rows, cols), dtype=torch.uint8, device="cuda", generator=g)


def _run_poisoned(
    kernel: Callable[..., None],
    src: torch.Tensor,
    expected: torch.Tensor,
    rows: int,
    cols: int,
    src_offset: int = 0,
    dst_offset: int = 0,
) -> None:
    """Run a raw-ABI kernel into poisoned memory at the given byte offsets and check every byte."""
    n_src, n_dst = src.numel(), expected.numel()
    src_buf = torch.empty(src_offset + n_src, dtype=torch.uint8, device="cuda")
    src_buf[src_offset:].copy_(src.reshape(-1).view(torch.uint8))
    want = expected.reshape(-1).view(torch.uint8)
    stream = torch.cuda.current_stream().cuda_stream
    for sentinel in SENTINELS:
        dst_buf = torch.full(
            (GUARD + dst_offset + n_dst + GUARD,), sentinel, dtype=torch.uint8, device="cuda"
        )
        start = GUARD + dst_offset
        kernel(src_buf.data_ptr() + src_offset, dst_buf.data_ptr() + start, rows, cols, stream)
        torch.cuda.synchronize()
        assert bool((dst_buf[:start] == sentinel).all()), "wrote before the output"
        assert bool((dst_buf[start + n_dst :] == sentinel).all()), "wrote past the output"
        got = dst_buf[start : start + n_dst]
        bad = (got != want).nonzero()
        assert bad.numel() == 0, f"{bad.numel()} bytes differ, first at {bad[0].item()}"


@pytest.mark.parametrize("cols", COLS)
@pytest.mark.parametrize("rows", ROWS)
def test_pack_matches_reference_poisoned(ext: Any, rows: int, cols: int) -> None:
    x = _rand_i8(rows, cols, seed=rows * 7919 + cols, low=-128, high=128)  # full int8 range
    _run_poisoned(ext.pack_int4, x, pack_int4_reference(x), rows, cols)


@pytest.mark.parametrize("cols", COLS)
@pytest.mark.parametrize("rows", ROWS)
def test_unpack_matches_reference_poisoned(ext: Any, rows: int, cols: int) -> None:
    packed = _rand_u8(rows, cols // 2, seed=rows * 104729 + cols)  # every byte value
    _run_poisoned(ext.unpack_int4, packed, unpack_int4_reference(packed), rows, cols)


@pytest.mark.parametrize(("src_offset", "dst_offset"), [(1, 0), (0, 3), (5, 7), (8, 8), (16, 16)])
@pytest.mark.parametrize(("rows", "cols"), [(3, 6), (33, 130), (257, 4098)])
def test_misaligned_pointers(
    ext: Any, rows: int, cols: int, src_offset: int, dst_offset: int
) -> None:
    x = _rand_i8(rows, cols, seed=src_offset * 31 + dst_offset)
    _run_poisoned(ext.pack_int4, x, pack_int4_reference(x), rows, cols, src_offset, dst_offset)
    p = pack_int4_reference(x)
    _run_poisoned(ext.unpack_int4, p, x, rows, cols, src_offset, dst_offset)


@pytest.mark.parametrize(("rows", "cols"), [(65537, 6), (100003, 2), (4099, 4098)])
def test_ops_round_trip_many_rows(ext: Any, rows: int, cols: int) -> None:
    x = _rand_i8(rows, cols, seed=rows)
    packed = k.pack_int4(x)
    assert packed.device == x.device
    assert packed.equal(pack_int4_reference(x))
    assert k.unpack_int4(packed).equal(x)


def test_empty_inputs(ext: Any) -> None:
    for shape in [(0, 6), (5, 0)]:
        x = torch.empty(shape, dtype=torch.int8, device="cuda")
        assert k.pack_int4(x).shape == (shape[0], shape[1] // 2)
        assert k.unpack_int4(k.pack_int4(x)).shape == shape


def test_kernels_run_on_the_current_stream(ext: Any) -> None:
    src = _rand_i8(1025, 130, seed=3)
    x = torch.zeros_like(src)
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(200_000_000)  # ~0.1 s of GPU time before x is filled
        x.copy_(src)
        packed = k.pack_int4(x)
        back = k.unpack_int4(packed)
    # Had a kernel gone to another stream it would have read x before the copy.
    assert not side.query(), "the side stream finished too early for this test to mean anything"
    side.synchronize()
    assert packed.equal(pack_int4_reference(src))
    assert back.equal(src)


def test_validation_on_cuda(ext: Any) -> None:
    with pytest.raises(ValueError, match="must be contiguous"):
        k.pack_int4(torch.zeros(6, 4, dtype=torch.int8, device="cuda").t())
    with pytest.raises(ValueError, match="cols must be even"):
        k.pack_int4(torch.zeros(2, 5, dtype=torch.int8, device="cuda"))
    with pytest.raises(TypeError, match="uint8"):
        k.unpack_int4(torch.zeros(2, 4, dtype=torch.int8, device="cuda"))


def test_opcheck_on_cuda(ext: Any) -> None:
    x = _rand_i8(33, 130, seed=5)
    torch.library.opcheck(torch.ops.ditkit_kernels_cu13.pack_int4.default, (x,))
    torch.library.opcheck(
        torch.ops.ditkit_kernels_cu13.unpack_int4.default, (pack_int4_reference(x),)
    )


def test_compile_fullgraph_inductor_cuda(ext: Any) -> None:
    def f(x: torch.Tensor) -> torch.Tensor:
        return k.unpack_int4(k.pack_int4(x + 1)).to(torch.int16) * 3

    torch._dynamo.reset()
    compiled = torch.compile(f, fullgraph=True)
    x = _rand_i8(257, 130, seed=9, low=-9, high=7)
    assert compiled(x).equal(f(x))
    assert compiled(x).equal(unpack_int4_reference(pack_int4_reference(x + 1)).to(torch.int16) * 3)


def test_device_is_covered_by_the_compiled_archs(ext: Any) -> None:
    major, minor = torch.cuda.get_device_capability()
    real = {a.removesuffix("-real") for a in k.compiled_archs() if not a.endswith("-virtual")}
    assert f"{major}{minor}" in real, (torch.cuda.get_device_name(), k.compiled_archs())
    assert k.device_status() == f"ok: {torch.cuda.device_count()} device(s)"
