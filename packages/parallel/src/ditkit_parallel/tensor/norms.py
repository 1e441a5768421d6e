"""RMSNorm over a width that tensor parallelism splits across ranks.

Some attentions normalise the query and key over all heads at once (Wan's and LTX's ``norm_q`` /
``norm_k`` are ``RMSNorm(heads * head_dim)``, applied before the split into heads). Under tensor
parallelism each rank holds only its heads' slice, so the mean of squares must be summed over the
TP group: :class:`ShardedRMSNorm` computes the local sum of squares in float32, all-reduces it
(one small collective per call) and divides by the true, unpadded width. Zero-padded heads add
nothing to the sum, so padding (see :mod:`.layout`) keeps the result exact.

Per-head norms (``RMSNorm(head_dim)``, ``LayerNorm(head_dim)``) need nothing: they see whole heads.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.tensor import DTensor, Shard, distribute_tensor

from ..comm import all_reduce_sum
from .layout import ShardLayout, relayout

__all__ = ["ShardedRMSNorm", "is_rms_norm", "norm_width"]


def is_rms_norm(module: nn.Module) -> bool:
    """``torch.nn.RMSNorm`` or diffusers' ``RMSNorm`` (matched by name: no diffusers import)."""
    return isinstance(module, nn.RMSNorm) or type(module).__name__ == "RMSNorm"


def norm_width(module: nn.Module) -> int | None:
    """The last-dimension width a norm module normalises over, or ``None`` if it is no norm."""
    shape = getattr(module, "normalized_shape", None)
    if shape is None and is_rms_norm(module):
        shape = getattr(module, "dim", None)
    if shape is None:
        return None
    shape = tuple(shape) if not isinstance(shape, int) else (shape,)
    return int(shape[-1]) if len(shape) == 1 else None


class ShardedRMSNorm(nn.Module):
    """RMSNorm whose input is this rank's slice of the normalised dimension.

    Args:
        weight: the rank's slice of the affine weight as a ``DTensor`` (``Shard(0)``), or
            ``None`` without an affine weight.
        bias: the same for an additive bias (diffusers' ``RMSNorm(bias=True)``), or ``None``.
        eps: the original norm's epsilon (``None`` means ``torch.finfo(dtype).eps``, as in
            ``torch.nn.RMSNorm``).
        width: the full, unpadded width the statistics are taken over.
        mesh: the 1-D TP mesh the statistics are all-reduced over.
    """

    def __init__(
        self,
        weight: DTensor | None,
        bias: DTensor | None,
        eps: float | None,
        width: int,
        mesh: DeviceMesh,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False) if weight is not None else None
        self.bias = nn.Parameter(bias, requires_grad=False) if bias is not None else None
        self.eps = eps
        self.width = width
        self.mesh = mesh
        self.group = mesh.get_group()

    @classmethod
    def from_norm(
        cls, norm: nn.Module, layout: ShardLayout, mesh: DeviceMesh, src_data_rank: int | None = 0
    ) -> ShardedRMSNorm:
        """Shard ``norm`` (an RMSNorm over ``layout.size``) by ``layout`` on ``mesh``."""
        index = layout.index()

        def shard(param: torch.Tensor | None) -> DTensor | None:
            if param is None:
                return None
            full = relayout(param.detach(), 0, index)
            return distribute_tensor(full, mesh, [Shard(0)], src_data_rank=src_data_rank)

        sharded = cls(
            shard(getattr(norm, "weight", None)),
            shard(getattr(norm, "bias", None)),
            getattr(norm, "eps", None),
            layout.size,
            mesh,
        )
        sharded._ditkit_tp_index = {"weight": (0, index), "bias": (0, index)}
        return sharded

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        input_dtype = hidden_states.dtype
        squares = hidden_states.to(torch.float32).pow(2).sum(-1, keepdim=True)
        squares = all_reduce_sum(squares, self.group)
        eps = self.eps if self.eps is not None else torch.finfo(input_dtype).eps
        out = (hidden_states.to(torch.float32) * torch.rsqrt(squares / self.width + eps)).to(
            input_dtype
        )
        if self.weight is not None:
            out = out * self.weight.to_local().to(input_dtype)
        if self.bias is not None:
            out = out + self.bias.to_local().to(input_dtype)
        return out

    def extra_repr(self) -> str:
        return f"width={self.width}, eps={self.eps}, tp={self.mesh.size()}"
