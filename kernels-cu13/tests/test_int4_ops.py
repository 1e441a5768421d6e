"""The custom ops on CPU: dispatch to the reference, validation, opcheck, fake tracing, compile."""

from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx

import ditkit_kernels_cu13 as k
import ditkit_kernels_cu13.ops  # registers torch.ops.ditkit_kernels_cu13.*
from ditkit_kernels_cu13.reference import pack_int4_reference, unpack_int4_reference

# opcheck and torch.compile touch torch.jit, which warns about itself on torch 2.13.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")

PACK = torch.ops.ditkit_kernels_cu13.pack_int4.default
UNPACK = torch.ops.ditkit_kernels_cu13.unpack_int4.default


def _rand_i8(rows: int, cols: int, seed: int = 0, low: int = -8, high: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, (rows, cols), dtype=torch.int8, generator=g)


@pytest.mark.parametrize(("rows", "cols"), [(1, 2), (7, 6), (33, 130), (3, 4098)])
def test_cpu_ops_match_reference(rows: int, cols: int) -> None:
    x = _rand_i8(rows, cols, seed=rows + cols, low=-128, high=128)  # full range: low bits kept
    packed = k.pack_int4(x)
    assert packed.equal(pack_int4_reference(x))
    assert k.unpack_int4(packed).equal(unpack_int4_reference(packed))
    y = _rand_i8(rows, cols, seed=1)
    assert k.unpack_int4(k.pack_int4(y)).equal(y)


def test_ops_are_registered_under_the_library_namespace() -> None:
    x = _rand_i8(2, 4)
    assert torch.ops.ditkit_kernels_cu13.pack_int4(x).equal(pack_int4_reference(x))
    assert "ditkit_kernels_cu13::pack_int4" in str(PACK._schema)
    assert "ditkit_kernels_cu13::unpack_int4" in str(UNPACK._schema)


@pytest.mark.parametrize(("rows", "cols"), [(1, 2), (5, 6), (9, 130)])
def test_opcheck(rows: int, cols: int) -> None:
    x = _rand_i8(rows, cols, seed=rows)
    torch.library.opcheck(PACK, (x,))
    torch.library.opcheck(UNPACK, (pack_int4_reference(x),))


def test_validation_errors() -> None:
    with pytest.raises(
        TypeError, match=r"pack_int4: expected a torch.int8 tensor, got torch\.int32"
    ):
        k.pack_int4(torch.zeros(2, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"cols must be even .* shape \(2, 5\)"):
        k.pack_int4(torch.zeros(2, 5, dtype=torch.int8))
    with pytest.raises(ValueError, match="must be contiguous"):
        k.pack_int4(torch.zeros(4, 6, dtype=torch.int8).t())
    with pytest.raises(ValueError, match="2-D tensor"):
        k.pack_int4(torch.zeros(2, 2, 2, dtype=torch.int8))
    with pytest.raises(TypeError, match=r"unpack_int4: expected a torch.uint8 tensor"):
        k.unpack_int4(torch.zeros(2, 4, dtype=torch.int8))
    with pytest.raises(ValueError, match="must be contiguous"):
        k.unpack_int4(torch.zeros(4, 6, dtype=torch.uint8)[:, ::2])


def test_fake_tensors_give_shapes_and_dtypes() -> None:
    with FakeTensorMode():
        x = torch.empty(7, 130, dtype=torch.int8)
        packed = k.pack_int4(x)
        back = k.unpack_int4(packed)
        assert (packed.shape, packed.dtype) == ((7, 65), torch.uint8)
        assert (back.shape, back.dtype) == ((7, 130), torch.int8)
        with pytest.raises(ValueError, match="cols must be even"):
            k.pack_int4(torch.empty(7, 131, dtype=torch.int8))


def test_meta_tensors_use_the_fake_implementation() -> None:
    packed = k.pack_int4(torch.empty(3, 8, dtype=torch.int8, device="meta"))
    assert (packed.device.type, packed.shape) == ("meta", (3, 4))


def test_fake_trace_keeps_the_ops_opaque() -> None:
    def f(x: torch.Tensor) -> torch.Tensor:
        return k.unpack_int4(k.pack_int4(x))

    gm = make_fx(f, tracing_mode="fake")(_rand_i8(5, 6))
    targets = [node.target for node in gm.graph.nodes if node.op == "call_function"]
    assert targets == [PACK, UNPACK]


@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_fullgraph_aot_eager(dynamic: bool) -> None:
    def f(x: torch.Tensor) -> torch.Tensor:
        return k.unpack_int4(k.pack_int4(x)).to(torch.int16) * 2

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager", dynamic=dynamic)
    for rows, cols in [(3, 6), (11, 130)]:
        x = _rand_i8(rows, cols, seed=cols)
        assert compiled(x).equal(f(x))


@pytest.mark.slow
def test_compile_fullgraph_inductor_cpu() -> None:
    def f(x: torch.Tensor) -> torch.Tensor:
        return k.pack_int4(x + 1)

    torch._dynamo.reset()
    compiled = torch.compile(f, fullgraph=True)
    x = _rand_i8(9, 130, low=-9, high=7)
    assert compiled(x).equal(pack_int4_reference(x + 1))
