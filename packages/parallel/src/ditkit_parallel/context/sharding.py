"""Split a sequence into per-rank pieces (uneven lengths welcome) and walk nested inputs.

Splitting follows ``torch.tensor_split``: ``n`` tokens over ``p`` ranks give the first
``n % p`` ranks one token more. Gathering the pieces back is
:func:`ditkit_parallel.comm.all_gather_uneven`.

Example:
    >>> import torch
    >>> piece_lengths(7, 2), piece_lengths(3, 4)
    ([4, 3], [1, 1, 1, 0])
    >>> split_piece(torch.arange(7), 0, 2, 1).tolist()
    [4, 5, 6]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = [
    "first_tensor",
    "map_tensors",
    "piece_lengths",
    "split_piece",
]


def piece_lengths(n: int, parts: int) -> list[int]:
    """The lengths ``torch.tensor_split`` gives ``n`` items cut into ``parts`` pieces."""
    base, extra = divmod(n, parts)
    return [base + (1 if r < extra else 0) for r in range(parts)]


def split_piece(x: torch.Tensor, dim: int, parts: int, index: int) -> torch.Tensor:
    """Piece ``index`` of ``torch.tensor_split(x, parts, dim)``, contiguous."""
    return torch.tensor_split(x, parts, dim)[index].contiguous()


def map_tensors(obj: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Apply ``fn`` to a tensor, or to every tensor inside a list, tuple or dict."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, tuple):
        items = [map_tensors(o, fn) for o in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    if isinstance(obj, list):
        return [map_tensors(o, fn) for o in obj]
    if isinstance(obj, dict):
        return {k: map_tensors(v, fn) for k, v in obj.items()}
    return obj


def first_tensor(obj: Any) -> torch.Tensor | None:
    """The first tensor found in ``obj`` (depth first), or ``None``."""
    if isinstance(obj, torch.Tensor):
        return obj
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list | tuple) else ()
    for value in values:
        found = first_tensor(value)
        if found is not None:
            return found
    return None
