"""Route a parallelized transformer's attention calls to context-parallel attention.

diffusers' attention processors call ``dispatch_attention_fn(..., parallel_config=
self._parallel_config)``. ditkit gives each processor of a parallelized transformer a
:class:`ContextParallelRoute` as its ``_parallel_config`` and wraps the
``dispatch_attention_fn`` name in the processor's module with a router: a call whose
``parallel_config`` is a route goes to :func:`ditkit_parallel.attention.context_parallel_attention`;
every other call (other models, cross-attention that diffusers keeps local by passing
``parallel_config=None``) goes to the original function untouched. The router is installed once
per diffusers module and removed when the last transformer using it is undone; its state lives
on the router function itself.

Processors that call ``torch`` SDPA directly (CogVideoX's) have no such hook; they are swapped
for a replacement registered in :data:`PROCESSOR_REPLACEMENTS` (see :mod:`.processors`).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import torch

from ditkit_interfaces import TypeRegistry

if TYPE_CHECKING:
    from ..mesh import CPMesh
    from .hooks import ForwardState

__all__ = [
    "PROCESSOR_REPLACEMENTS",
    "ContextParallelRoute",
    "RoutedProcessor",
    "install_router",
    "uninstall_router",
]

_USERS = "_ditkit_cp_users"
_ORIGINAL = "_ditkit_cp_original"

#: processor class -> ``factory(original_processor, route) -> replacement processor``.
PROCESSOR_REPLACEMENTS: TypeRegistry[Callable[[Any, ContextParallelRoute], Any]] = TypeRegistry(
    "context-parallel processor replacements"
)


class ContextParallelRoute:
    """The ``_parallel_config`` of a routed processor: attends over the whole CP group.

    Args:
        mesh: this rank's :class:`~ditkit_parallel.mesh.CPMesh`.
        state: the transformer's :class:`~.hooks.ForwardState` (full lengths of this forward).
        site: the attention module's site label (its path with block indices as ``*``: one
            route serves every block of a kind); with the full lengths it keys the length table, so
            every rank hits or misses it together (local lengths alone can collide: 17 and 18
            tokens over 2 ranks both give rank 0 nine).
        attention: ``fn(q, k, v, attn_mask, dropout_p, is_causal, scale, *, mesh, seq_key)``
            in ``(B, S_local, H, D)`` layout (default: ``context_parallel_attention``).
    """

    def __init__(
        self,
        mesh: CPMesh,
        state: ForwardState,
        site: str,
        attention: Callable[..., torch.Tensor] | None = None,
    ) -> None:
        if attention is None:
            from ..attention import context_parallel_attention as attention
        self.mesh = mesh
        self.state = state
        self.site = site
        self.attention = attention

    def seq_key(self) -> tuple[Any, ...]:
        """The length-table key of this call: same on every rank, distinct per layout."""
        return ("attention", self.site, self.state.signature())

    def attend(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        dropout_p: float = 0.0,
        is_causal: bool = False,
        scale: float | None = None,
        enable_gqa: bool = False,
    ) -> torch.Tensor:
        """Context-parallel attention of this rank's queries over every rank's keys.

        A per-head key mask ``(B, H, 1, S)`` (diffusers' ``prepare_attention_mask`` repeats one
        mask over the heads, e.g. LTX) is read from its first head.
        """
        per_head = attn_mask is not None and attn_mask.ndim == 4 and attn_mask.shape[1] > 1
        if per_head and attn_mask.shape[2] == 1:
            attn_mask = attn_mask[:, :1]
        return self.attention(
            query,
            key,
            value,
            attn_mask,
            dropout_p,
            is_causal,
            scale,
            mesh=self.mesh,
            seq_key=self.seq_key(),
        )

    def __repr__(self) -> str:
        m = self.mesh
        return f"ContextParallelRoute({self.site!r}, ulysses={m.ulysses_size}, ring={m.ring_size})"


class RoutedProcessor:
    """Base of the processors that stand in for a diffusers processor under context parallelism.

    Args:
        original: the processor it replaces (kept, so that undo puts that very object back).
        route: where its attention goes.
    """

    #: True where the processor overlaps the Ulysses all-to-alls with the Q, K, V projections.
    is_async_qkv = False

    def __init__(self, original: Any, route: ContextParallelRoute) -> None:
        self.original = original
        self.route = route


def _make_router(original: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    @functools.wraps(original)
    def dispatch_attention_fn(
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        dropout_p: float = 0.0,
        is_causal: bool = False,
        scale: float | None = None,
        enable_gqa: bool = False,
        attention_kwargs: dict[str, Any] | None = None,
        *,
        backend: Any = None,
        parallel_config: Any = None,
    ) -> torch.Tensor:
        if isinstance(parallel_config, ContextParallelRoute):
            return parallel_config.attend(
                query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa
            )
        return original(
            query,
            key,
            value,
            attn_mask,
            dropout_p,
            is_causal,
            scale,
            enable_gqa,
            attention_kwargs,
            backend=backend,
            parallel_config=parallel_config,
        )

    setattr(dispatch_attention_fn, _ORIGINAL, original)
    setattr(dispatch_attention_fn, _USERS, set())
    return dispatch_attention_fn


def processor_module(processor: Any) -> ModuleType | None:
    """The module whose ``dispatch_attention_fn`` the processor calls, if it calls one."""
    module = sys.modules.get(type(processor).__module__)
    return module if module is not None and hasattr(module, "dispatch_attention_fn") else None


def install_router(module: ModuleType, owner: int) -> None:
    """Wrap ``module.dispatch_attention_fn`` (once) and register ``owner`` as a user."""
    current = module.dispatch_attention_fn
    if not hasattr(current, _USERS):
        current = _make_router(current)
        module.dispatch_attention_fn = current
    getattr(current, _USERS).add(owner)


def uninstall_router(module: ModuleType, owner: int) -> None:
    """Drop ``owner``; restore the original function when no user is left."""
    current = module.dispatch_attention_fn
    users = getattr(current, _USERS, None)
    if users is None:
        return
    users.discard(owner)
    if not users:
        module.dispatch_attention_fn = getattr(current, _ORIGINAL)
