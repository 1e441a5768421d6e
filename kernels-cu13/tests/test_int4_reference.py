"""The pure-torch oracle: exact bit layout on hand-written cases, round trips, errors (CPU)."""

from __future__ import annotations

import pytest
import torch

from ditkit_kernels_cu13.reference import pack_int4_reference, unpack_int4_reference


def _i8(rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.int8)


def _u8(rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.uint8)


@pytest.mark.parametrize(
    ("values", "packed"),
    [
        ([[0, 0]], [[0x00]]),
        ([[3, 5]], [[0x53]]),  # element 2j in the low nibble, 2j + 1 in the high one
        ([[1, -2]], [[0xE1]]),  # -2 is 0b1110 in 4-bit two's complement
        ([[-1, -1]], [[0xFF]]),
        ([[-8, 0]], [[0x08]]),
        ([[0, -8]], [[0x80]]),
        ([[7, -8, -8, 7]], [[0x87, 0x78]]),
        ([[1, 2], [3, 4], [-3, -4]], [[0x21], [0x43], [0xCD]]),  # rows are independent
    ],
)
def test_bit_layout(values: list[list[int]], packed: list[list[int]]) -> None:
    assert pack_int4_reference(_i8(values)).equal(_u8(packed))
    assert unpack_int4_reference(_u8(packed)).equal(_i8(values))


def test_every_pair_packs_to_its_byte() -> None:
    lo, hi = torch.meshgrid(torch.arange(-8, 8), torch.arange(-8, 8), indexing="ij")
    x = torch.stack((lo.flatten(), hi.flatten()), dim=1).to(torch.int8)  # [256, 2]
    expected = (lo.flatten() & 0xF) | ((hi.flatten() & 0xF) << 4)
    assert pack_int4_reference(x).flatten().tolist() == expected.tolist()
    assert sorted(expected.tolist()) == list(range(256))  # a bijection onto the bytes


def test_every_byte_unpacks_and_packs_back() -> None:
    packed = torch.arange(256, dtype=torch.int16).to(torch.uint8).reshape(4, 64)
    values = unpack_int4_reference(packed)
    assert values.shape == (4, 128)
    assert values.dtype == torch.int8
    assert int(values.min()) == -8
    assert int(values.max()) == 7
    assert pack_int4_reference(values).equal(packed)


def test_out_of_range_values_keep_their_low_four_bits() -> None:
    x = _i8([[8, -9, 127, -128]])  # 8 -> 0x8, -9 -> 0x7, 127 -> 0xF, -128 -> 0x0
    assert pack_int4_reference(x).equal(_u8([[0x78, 0x0F]]))
    assert unpack_int4_reference(pack_int4_reference(x)).equal(_i8([[-8, 7, -1, 0]]))


@pytest.mark.parametrize(("rows", "cols"), [(1, 2), (3, 6), (17, 130), (5, 4098), (0, 4), (3, 0)])
def test_random_round_trip(rows: int, cols: int) -> None:
    g = torch.Generator().manual_seed(rows * 10_000 + cols)
    x = torch.randint(-8, 8, (rows, cols), dtype=torch.int8, generator=g)
    packed = pack_int4_reference(x)
    assert packed.shape == (rows, cols // 2)
    assert packed.dtype == torch.uint8
    assert packed.is_contiguous()
    assert unpack_int4_reference(packed).equal(x)


def test_strided_input_gives_the_same_bytes() -> None:
    x = torch.randint(-8, 8, (6, 8), dtype=torch.int8, generator=torch.Generator().manual_seed(0))
    wide = torch.zeros(8, 6, dtype=torch.int8).t()  # [6, 8] with transposed strides
    wide.copy_(x)
    assert not wide.is_contiguous()
    assert pack_int4_reference(wide).equal(pack_int4_reference(x))


def test_errors_name_the_problem() -> None:
    with pytest.raises(TypeError, match=r"torch\.int8"):
        pack_int4_reference(torch.zeros(2, 2, dtype=torch.int32))
    with pytest.raises(ValueError, match="cols must be even"):
        pack_int4_reference(torch.zeros(2, 3, dtype=torch.int8))
    with pytest.raises(ValueError, match="2-D"):
        pack_int4_reference(torch.zeros(4, dtype=torch.int8))
    with pytest.raises(TypeError, match=r"torch\.uint8"):
        unpack_int4_reference(torch.zeros(2, 2, dtype=torch.int8))
