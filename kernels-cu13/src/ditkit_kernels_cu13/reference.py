"""Pure-torch int4 pack/unpack: the oracle for the CUDA kernels, and the CPU implementation.

Layout: an int8 tensor ``[rows, cols]`` (``cols`` even) of signed int4 values in ``[-8, 7]``
packs into uint8 ``[rows, cols // 2]`` with element ``2j`` in the low nibble::

    packed[r, j] = (x[r, 2j] & 0xF) | ((x[r, 2j + 1] & 0xF) << 4)

so ``[[1, -2]]`` packs to ``[[0xE1]]`` (``-2`` is ``0xE`` in 4-bit two's complement). Unpacking
sign-extends each nibble back to int8. Values outside ``[-8, 7]`` keep only their low four bits
(two's complement wrap), exactly as the kernels do.

Written for clarity over speed, with arithmetic (no bit reinterpretation), so that it checks the
kernels' bit tricks independently.
"""

from __future__ import annotations

import torch

__all__ = ["pack_int4_reference", "unpack_int4_reference"]


def pack_int4_reference(x: torch.Tensor) -> torch.Tensor:
    """Pack int8 ``[rows, cols]`` (int4 values, even ``cols``) into uint8 ``[rows, cols // 2]``.

    Works on any device and any strides; returns a contiguous tensor.

    Example:
        >>> import torch
        >>> pack_int4_reference(torch.tensor([[1, -2, 7, -8]], dtype=torch.int8))
        tensor([[225, 135]], dtype=torch.uint8)
    """
    _check(x, torch.int8, "pack_int4_reference")
    if x.shape[1] % 2 != 0:
        raise ValueError(f"pack_int4_reference: cols must be even, got shape {tuple(x.shape)}")
    low = (x[:, 0::2].to(torch.int16) % 16).to(torch.uint8)  # floor mod: -2 -> 14
    high = (x[:, 1::2].to(torch.int16) % 16).to(torch.uint8)
    return (low + high * 16).contiguous()


def unpack_int4_reference(packed: torch.Tensor) -> torch.Tensor:
    """Unpack uint8 ``[rows, n]`` into int8 ``[rows, 2 * n]`` with values in ``[-8, 7]``.

    Example:
        >>> import torch
        >>> unpack_int4_reference(torch.tensor([[0xE1, 0x87]], dtype=torch.uint8))
        tensor([[ 1, -2,  7, -8]], dtype=torch.int8)
    """
    _check(packed, torch.uint8, "unpack_int4_reference")
    wide = packed.to(torch.int16)
    nibbles = torch.stack((wide % 16, wide // 16), dim=-1)  # [rows, n, 2]: low, high
    signed = torch.where(nibbles >= 8, nibbles - 16, nibbles)
    return signed.reshape(packed.shape[0], 2 * packed.shape[1]).to(torch.int8)


def _check(t: torch.Tensor, dtype: torch.dtype, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {t.dtype}")
    if t.dim() != 2:
        raise ValueError(f"{name}: expected a 2-D tensor [rows, cols], got shape {tuple(t.shape)}")
