"""The context-parallel layout of one rank: a Ulysses group inside a Ring group (USP).

The ``cp_size = ulysses_size * ring_size`` ranks of a context-parallel group are laid out as a
``(ring, ulysses)`` grid: cp rank ``r`` has ``ring_rank = r // ulysses_size`` and
``ulysses_rank = r % ulysses_size`` (Ulysses inside, Ring across, as in cache-dit and xDiT). The
Ulysses group of a rank holds the ranks of its row, its Ring group the ranks of its column.

:class:`CPMesh` also carries :class:`SeqLenTable`, which learns every rank's local sequence
lengths (uneven splits are allowed everywhere): by a CPU all-gather on a gloo side group (no
host-device sync) or, for calls that name a key, once per key and then from memory.

Example:
    >>> mesh = CPMesh.single()
    >>> (mesh.cp_size, mesh.ulysses_size, mesh.ring_size)
    (1, 1, 1)
    >>> cp_grid_position(5, ulysses_size=2)  # cp rank 5 -> (ring_rank, ulysses_rank)
    (2, 1)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable

import torch
import torch.distributed as dist
from torch.distributed import ProcessGroup

from ditkit_interfaces.errors import ConfigError
from ditkit_interfaces.parallel_config import ParallelismConfig

from . import copy_engine

__all__ = ["RING_ROTATE_METHODS", "CPMesh", "SeqLenTable", "build_cp_mesh", "cp_grid_position"]

RING_ROTATE_METHODS = ("p2p", "allgather")


def cp_grid_position(cp_rank: int, ulysses_size: int) -> tuple[int, int]:
    """``(ring_rank, ulysses_rank)`` of ``cp_rank`` in the ``(ring, ulysses)`` grid."""
    return cp_rank // ulysses_size, cp_rank % ulysses_size


class SeqLenTable:
    """Every cp rank's local (query, key) sequence lengths, exchanged or remembered.

    ``lengths(q_len, kv_len, group, key)`` returns two tuples of ``cp_size`` ints: the query and
    key lengths of every cp rank, in cp-rank order.

    - ``key=None``: one all-gather of the two ints per call. On a gloo group (the mesh keeps a
      gloo side group next to NCCL) this moves CPU ints only: no host-device sync.
    - ``key`` given: the first call for the key exchanges, later calls answer from the table
      with no communication at all.

    The SPMD rule behind keys: all ranks must hit or miss together, and a rank's local length
    alone cannot tell (4 ranks: a 16-token and a 13-token sequence both give rank 0 four tokens,
    but ranks 1-3 four and three). So a key must be equal on all ranks and fix the layout: name
    the call site (the attention layer) and the global shapes, or call :meth:`reset` on all
    ranks whenever the global shapes change. A key seen again with other local lengths raises.

    ``exchanges`` counts the all-gathers done, for tests and diagnostics; ``generation``
    counts the resets (what was learnt before a reset must be learnt again).
    """

    def __init__(self) -> None:
        self._table: dict[Hashable, tuple[int, int, tuple[int, ...], tuple[int, ...]]] = {}
        self.exchanges = 0
        self.generation = 0

    def reset(self) -> None:
        """Forget every key (call on all ranks together when global shapes change)."""
        self._table.clear()
        self.generation += 1

    def __len__(self) -> int:
        return len(self._table)

    def lengths(
        self,
        q_len: int,
        kv_len: int,
        group: ProcessGroup,
        key: Hashable | None = None,
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Query and key lengths of every rank of ``group`` (this rank's are q_len, kv_len)."""
        if key is None:
            return self._exchange(q_len, kv_len, group)
        entry = self._table.get(key)
        if entry is None:
            entry = (q_len, kv_len, *self._exchange(q_len, kv_len, group))
            self._table[key] = entry
        elif entry[0] != q_len or entry[1] != kv_len:
            raise RuntimeError(
                f"SeqLenTable: key {key!r} was first seen with local lengths "
                f"({entry[0]}, {entry[1]}), now ({q_len}, {kv_len}); include the global shapes "
                "in the key, or call mesh.seq_lens.reset() on every rank when they change"
            )
        return entry[2], entry[3]

    @torch.compiler.disable
    def _exchange(
        self, q_len: int, kv_len: int, group: ProcessGroup
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        self.exchanges += 1
        device = _scalar_device(group)
        mine = torch.tensor([q_len, kv_len], dtype=torch.int64, device=device)
        everyone = torch.empty(dist.get_world_size(group) * 2, dtype=torch.int64, device=device)
        _all_gather_into(everyone, mine, group=group)
        pairs = everyone.view(-1, 2).tolist()  # a CPU read on gloo; a device sync on NCCL
        return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)


_all_gather_into = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor


def _scalar_device(group: ProcessGroup) -> torch.device:
    """Where a small int tensor for ``group`` must live: CPU when the group has gloo."""
    backend = str(dist.get_backend(group))
    if "gloo" in backend or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


@dataclasses.dataclass(frozen=True)
class CPMesh:
    """Context-parallel layout of this rank: a Ulysses group inside a Ring group (USP).

    Args:
        ulysses_group, ulysses_size, ulysses_rank: the all-to-all (head-sharding) group; the
            group is ``None`` when ``ulysses_size`` is 1.
        ring_group, ring_size, ring_rank: the K/V rotation group; ``None`` when ``ring_size``
            is 1.
        cp_group, cp_size, cp_rank: all context-parallel ranks (``None`` only for the
            single-rank mesh of :meth:`single`).
        anything: ulysses_anything was asked for. Uneven sequence lengths and head counts are
            handled in every mode, so this flag changes nothing in the attention.
        float8: Q, V and O cross the Ulysses all-to-all in float8_e4m3fn (K stays).
        head_chunks: Ulysses attends in this many groups of heads, overlapping each group's
            all-to-alls with another group's attention (see ``attention/chunked.py``).
        overlap_output: Ulysses attends the other ranks' queries first and sends their output
            while this rank's own queries are attended (see ``attention/output_overlap.py``).
        copy_engine: the Ulysses all-to-alls are moved by the copy engines through symmetric
            memory instead of NCCL (see ``copy_engine.py``; the group is routed there).
        ring_convert_to_fp32: merge the ring partial outputs in float32.
        ring_rotate_method: ``"p2p"`` (rotate K/V shards) or ``"allgather"`` (gather all once).
        meta_group: a gloo group over the cp ranks for the length exchange when ``cp_group``
            is not gloo (None: use ``cp_group``).
        seq_lens: the cache of every rank's local lengths (see :class:`SeqLenTable`).
    """

    ulysses_group: ProcessGroup | None
    ulysses_size: int
    ulysses_rank: int
    ring_group: ProcessGroup | None
    ring_size: int
    ring_rank: int
    cp_group: ProcessGroup | None
    cp_size: int
    cp_rank: int
    anything: bool = False
    float8: bool = False
    head_chunks: int = 1
    overlap_output: bool = False
    copy_engine: bool = False
    ring_convert_to_fp32: bool = True
    ring_rotate_method: str = "p2p"
    meta_group: ProcessGroup | None = dataclasses.field(default=None, compare=False, repr=False)
    seq_lens: SeqLenTable = dataclasses.field(
        default_factory=SeqLenTable, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.ulysses_size * self.ring_size != self.cp_size:
            raise ConfigError(
                "CPMesh.cp_size",
                self.cp_size,
                f"ulysses_size * ring_size = {self.ulysses_size * self.ring_size}",
            )
        if self.ring_rotate_method not in RING_ROTATE_METHODS:
            raise ConfigError(
                "ring_rotate_method", self.ring_rotate_method, f"one of {RING_ROTATE_METHODS}"
            )
        for name, size, group in (
            ("ulysses", self.ulysses_size, self.ulysses_group),
            ("ring", self.ring_size, self.ring_group),
            ("cp", self.cp_size, self.cp_group),
        ):
            if size > 1 and group is None:
                raise ValueError(f"CPMesh: {name}_size={size} needs a {name}_group")

    @classmethod
    def single(cls) -> CPMesh:
        """The trivial mesh of one rank (attention runs as plain SDPA)."""
        return cls(None, 1, 0, None, 1, 0, None, 1, 0)

    @property
    def length_group(self) -> ProcessGroup | None:
        """The group the local lengths are all-gathered over (CPU ints where possible)."""
        return self.meta_group if self.meta_group is not None else self.cp_group

    @property
    def ring_ulysses(self) -> tuple[int, int]:
        """``(ring_rank, ulysses_rank)`` of this rank."""
        return self.ring_rank, self.ulysses_rank


def _new_group(ranks: list[int], local: bool, backend: str | None = None) -> ProcessGroup:
    """``dist.new_group``; ``local`` lets only the members call it (a CP sub-group of a world)."""
    if local:
        return dist.new_group(ranks, backend=backend, use_local_synchronization=True)
    return dist.new_group(ranks, backend=backend)


def _grid_groups(ranks: list[int], size: int, rows: bool, local: bool) -> list[ProcessGroup]:
    """One sub-group per row (``rows``) or column of the ``(ring, ulysses)`` grid of ``ranks``.

    Every rank creates every sub-group in the same order (``new_group`` is collective).
    """
    count = len(ranks) // size
    if rows:
        members = [ranks[g * size : (g + 1) * size] for g in range(count)]
    else:
        members = [ranks[g::count] for g in range(count)]
    return [_new_group(m, local) for m in members]


def build_cp_mesh(
    config: ParallelismConfig,
    group: ProcessGroup | None = None,
    *,
    ring_rotate_method: str | None = None,
) -> CPMesh:
    """Build this rank's :class:`CPMesh` from ``config`` over ``group`` (default: the world).

    Collective: every rank of ``group`` must call it, in the same order as its other
    ``new_group`` calls. For hybrid CP x TP, pass the CP sub-group.

    Args:
        config: ``ulysses_size``, ``ring_size``, ``ulysses_anything``, ``ulysses_float8`` and
            ``ring_convert_to_fp32`` are read from it.
        group: the ranks that share one sequence (default: ``dist.group.WORLD``).
        ring_rotate_method: overrides ``config.ring_rotate_method`` (``"p2p"``/``"allgather"``).

    Raises:
        ConfigError: ``ulysses_size * ring_size`` differs from the group size, or a bad method.
        RuntimeError: ``torch.distributed`` has no initialised process group.
    """
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(
            "build_cp_mesh needs an initialised torch.distributed process group: call "
            "torch.distributed.init_process_group() first (torchrun sets the environment)"
        )
    group = group if group is not None else dist.group.WORLD
    ulysses, ring = config.ulysses_size or 1, config.ring_size or 1
    cp_size = dist.get_world_size(group)
    if ulysses * ring != cp_size:
        raise ConfigError(
            "ParallelismConfig.ulysses_size * ring_size",
            ulysses * ring,
            f"the size of the context-parallel group ({cp_size} ranks)",
            fix=(
                f"choose ulysses_size and ring_size whose product is {cp_size}, launch "
                f"{ulysses * ring} processes, or pass the CP sub-group for hybrid CP x TP"
            ),
        )
    method = ring_rotate_method or config.ring_rotate_method
    cp_rank = dist.get_rank(group)
    ring_rank, ulysses_rank = cp_grid_position(cp_rank, ulysses)
    global_ranks = dist.get_process_group_ranks(group)
    local = group is not dist.group.WORLD
    if ulysses in (1, cp_size):
        ulysses_group = group if ulysses > 1 else None
    else:
        ulysses_group = _grid_groups(global_ranks, ulysses, rows=True, local=local)[ring_rank]
    if ring in (1, cp_size):
        ring_group = group if ring > 1 else None
    else:
        ring_group = _grid_groups(global_ranks, ring, rows=False, local=local)[ulysses_rank]
    meta_group = None
    if "gloo" not in str(dist.get_backend(group)):
        meta_group = _new_group(global_ranks, local, backend="gloo")
    for name, sub, expected in (
        ("ulysses", ulysses_group, ulysses_rank),
        ("ring", ring_group, ring_rank),
    ):
        if sub is not None and dist.get_rank(sub) != expected:
            raise RuntimeError(
                f"build_cp_mesh: this rank is {dist.get_rank(sub)} in its {name} group, expected "
                f"{expected}; the CP group's global ranks must be in increasing order"
            )
    copy = bool(getattr(config, "ulysses_copy_engine", False))
    copy_engine.route(ulysses_group, copy)
    return CPMesh(
        ulysses_group=ulysses_group,
        ulysses_size=ulysses,
        ulysses_rank=ulysses_rank,
        ring_group=ring_group,
        ring_size=ring,
        ring_rank=ring_rank,
        cp_group=group,
        cp_size=cp_size,
        cp_rank=cp_rank,
        anything=bool(config.ulysses_anything),
        float8=bool(config.ulysses_float8),
        head_chunks=int(getattr(config, "ulysses_head_chunks", 1) or 1),
        overlap_output=bool(getattr(config, "ulysses_overlap_output", False)),
        copy_engine=copy,
        ring_convert_to_fp32=bool(config.ring_convert_to_fp32),
        ring_rotate_method=method,
        meta_group=meta_group,
    )
