"""The kernels as torch custom ops: ``torch.ops.ditkit_kernels_cu13.pack_int4`` / ``unpack_int4``.

CUDA tensors run the compiled kernels (raw pointers, shapes and the current stream go through
the pointer-only ABI); CPU tensors run the pure-torch reference, so the ops work everywhere.
Fake (meta) implementations let ``torch.compile(fullgraph=True)`` trace through them.

Importing this module imports torch; ``import ditkit_kernels_cu13`` alone does not.
"""

from __future__ import annotations

import torch

from ._ext import load_extension
from .reference import pack_int4_reference, unpack_int4_reference

__all__ = ["pack_int4", "unpack_int4"]

_LIB = "ditkit_kernels_cu13"
_DEVICES = ("cpu", "cuda")


def pack_int4(x: torch.Tensor) -> torch.Tensor:
    """Pack int8 ``[rows, cols]`` of int4 values in ``[-8, 7]`` into uint8 ``[rows, cols // 2]``.

    Element ``2j`` goes to the low nibble of byte ``j``; values outside ``[-8, 7]`` keep their low
    four bits. ``x`` must be 2-D, contiguous, int8, with an even ``cols``, on CPU or CUDA. On CUDA
    the kernel is enqueued on the current stream of ``x``'s device.

    Example:
        >>> import torch
        >>> pack_int4(torch.tensor([[1, -2, 7, -8]], dtype=torch.int8))
        tensor([[225, 135]], dtype=torch.uint8)
    """
    return torch.ops.ditkit_kernels_cu13.pack_int4(x)


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """Unpack uint8 ``[rows, n]`` into int8 ``[rows, 2 * n]``, sign-extending each nibble.

    The inverse of :func:`pack_int4`. ``packed`` must be 2-D, contiguous, uint8, on CPU or CUDA.

    Example:
        >>> import torch
        >>> unpack_int4(torch.tensor([[0xE1, 0x87]], dtype=torch.uint8))
        tensor([[ 1, -2,  7, -8]], dtype=torch.int8)
    """
    return torch.ops.ditkit_kernels_cu13.unpack_int4(packed)


def _check(t: torch.Tensor, dtype: torch.dtype, op: str) -> tuple[int, int]:
    """Validate an op input and return its (rows, cols) as given."""
    if t.dtype != dtype:
        raise TypeError(f"{_LIB}::{op}: expected a {dtype} tensor, got {t.dtype}")
    if t.dim() != 2:
        raise ValueError(f"{_LIB}::{op}: expected a 2-D tensor [rows, cols], got {tuple(t.shape)}")
    if not t.is_contiguous():
        raise ValueError(
            f"{_LIB}::{op}: the input must be contiguous (row-major), got strides "
            f"{tuple(t.stride())} for shape {tuple(t.shape)}; call .contiguous() first"
        )
    if t.device.type not in (*_DEVICES, "meta"):
        raise ValueError(f"{_LIB}::{op}: supports CPU and CUDA tensors, got device {t.device}")
    return t.shape[0], t.shape[1]


def _check_pack(x: torch.Tensor) -> tuple[int, int]:
    rows, cols = _check(x, torch.int8, "pack_int4")
    if cols % 2 != 0:
        raise ValueError(
            f"{_LIB}::pack_int4: cols must be even (two int4 values per byte), got shape "
            f"{tuple(x.shape)}; pad the last dimension"
        )
    return rows, cols


def _launch(name: str, src: torch.Tensor, dst: torch.Tensor, rows: int, cols: int) -> None:
    kernel = getattr(load_extension(), name)
    with torch.cuda.device(src.device):
        stream = torch.cuda.current_stream(src.device).cuda_stream
        kernel(src.data_ptr(), dst.data_ptr(), rows, cols, stream)


@torch.library.custom_op(f"{_LIB}::pack_int4", mutates_args=())
def _pack_int4_op(x: torch.Tensor) -> torch.Tensor:
    _check_pack(x)  # CPU (CUDA has its own kernel below; other devices fail the check)
    return pack_int4_reference(x)


@_pack_int4_op.register_kernel("cuda")
def _pack_int4_cuda(x: torch.Tensor) -> torch.Tensor:
    rows, cols = _check_pack(x)
    out = torch.empty((rows, cols // 2), dtype=torch.uint8, device=x.device)
    _launch("pack_int4", x, out, rows, cols)
    return out


@_pack_int4_op.register_fake
def _pack_int4_fake(x: torch.Tensor) -> torch.Tensor:
    rows, cols = _check_pack(x)
    return x.new_empty((rows, cols // 2), dtype=torch.uint8)


@torch.library.custom_op(f"{_LIB}::unpack_int4", mutates_args=())
def _unpack_int4_op(packed: torch.Tensor) -> torch.Tensor:
    _check(packed, torch.uint8, "unpack_int4")
    return unpack_int4_reference(packed)


@_unpack_int4_op.register_kernel("cuda")
def _unpack_int4_cuda(packed: torch.Tensor) -> torch.Tensor:
    rows, half = _check(packed, torch.uint8, "unpack_int4")
    out = torch.empty((rows, 2 * half), dtype=torch.int8, device=packed.device)
    _launch("unpack_int4", packed, out, rows, 2 * half)
    return out


@_unpack_int4_op.register_fake
def _unpack_int4_fake(packed: torch.Tensor) -> torch.Tensor:
    rows, half = _check(packed, torch.uint8, "unpack_int4")
    return packed.new_empty((rows, 2 * half), dtype=torch.int8)
