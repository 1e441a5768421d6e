"""Compare the caching decisions of two ``run_cached.py`` results (cache-dit vs ditkit).

Both results come from the same tiny pipeline, seed and config; the decisions compared are the
cached steps of each branch (``cached_steps`` and, with separate CFG, ``cfg_cached_steps``) and,
for DBPrune, the number of pruned blocks per step, all read from the last ``CacheStats`` entry
(the transformer-level one, which cache-dit's own ``strify`` uses).

A step whose recorded diff (either library, either branch, any block) lies within ``tolerance``
of the threshold (or whose running diff sum lies within ``tolerance`` of
``max_accumulated_residual_diff_threshold``) is *ambiguous*: last-bit differences may flip it.
Ambiguous steps are excluded; if the two libraries decided an ambiguous step differently, every
later step ran on a different trajectory, so only the steps before it are compared.

    python tools/compat/compare.py cache_dit.json ditkit.json   # exit 1 on a mismatch
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

TOLERANCE = 1e-6
BRANCHES = (("cond", ""), ("cfg", "cfg_"))


@dataclasses.dataclass
class Branch:
    """One CFG branch's decisions as ``summary()`` reported them."""

    cached: list[int]
    diffs: dict[int, list[float]]  # DBCache: one diff per step; DBPrune: one per checked block
    pruned_blocks: list[int]


@dataclasses.dataclass
class Comparison:
    """The outcome of comparing a candidate run with the reference run."""

    run_id: str
    problems: list[str]
    ambiguous: list[int]
    horizon: int | None  # steps >= horizon were not compared (diverged at an ambiguous step)
    allowed: list[int]

    @property
    def ok(self) -> bool:
        return not self.problems


def branch(result: Mapping[str, Any], name: str) -> Branch:
    """The ``cond`` or ``cfg`` branch of a result's last ``CacheStats`` entry."""
    prefix = dict(BRANCHES)[name]
    stats = result["stats"][-1]
    diffs = {}
    for step, value in (stats.get(f"{prefix}residual_diffs") or {}).items():
        diffs[int(step)] = [float(v) for v in value] if isinstance(value, list) else [float(value)]
    return Branch(
        cached=sorted(int(s) for s in stats.get(f"{prefix}cached_steps") or []),
        diffs=diffs,
        pruned_blocks=[int(n) for n in stats.get(f"{prefix}pruned_blocks") or []],
    )


def ambiguous_steps(
    diffs: Mapping[int, float | Iterable[float]],
    threshold: float,
    accumulated_cap: float | None = None,
    tolerance: float = TOLERANCE,
) -> set[int]:
    """Steps whose diff, or running diff sum before them, is within ``tolerance`` of a limit.

    Example:
        >>> sorted(ambiguous_steps({8: 0.1, 9: 0.2000004, 10: [0.3, 0.31]}, 0.2))
        [9]
        >>> sorted(ambiguous_steps({8: 0.25, 9: 0.15, 10: 0.1}, 0.2, accumulated_cap=0.4))
        [10]
    """
    found: set[int] = set()
    running = 0.0
    last = max(diffs, default=-1)
    for step in range(last + 2):
        near_cap = accumulated_cap is not None and abs(running - accumulated_cap) <= tolerance
        if running > 0.0 and near_cap:
            found.add(step)
        recorded = diffs.get(step, ())
        for diff in [recorded] if isinstance(recorded, int | float) else recorded:
            if diff >= 0.0 and abs(diff - threshold) <= tolerance:
                found.add(step)
            running += max(diff, 0.0)
    return found


def _decided(b: Branch, step: int) -> tuple[bool, int | None]:
    """What a branch decided at a step: cached or not, and the pruned block count."""
    pruned = b.pruned_blocks[step] if step < len(b.pruned_blocks) else None
    return step in b.cached, pruned


def compare_runs(
    reference: Mapping[str, Any],
    candidate: Mapping[str, Any],
    run_id: str = "",
    allowed_steps: Iterable[int] = (),
    tolerance: float = TOLERANCE,
) -> Comparison:
    """Compare a candidate's decisions with the reference's (both without ``"error"``)."""
    config = reference.get("config", {})
    threshold = float(config.get("residual_diff_threshold", 0.08))
    cap = config.get("max_accumulated_residual_diff_threshold")
    cap = float(cap) if cap else None
    pairs = {name: (branch(reference, name), branch(candidate, name)) for name, _ in BRANCHES}
    ambiguous: set[int] = set()
    for ref, cand in pairs.values():
        for b in (ref, cand):
            ambiguous |= ambiguous_steps(b.diffs, threshold, cap, tolerance)
    flipped = [
        s
        for s in sorted(ambiguous)
        if any(_decided(ref, s) != _decided(cand, s) for ref, cand in pairs.values())
    ]
    horizon = flipped[0] if flipped else None
    skip = ambiguous | set(allowed_steps)

    def kept(steps: Iterable[int]) -> set[int]:
        return {s for s in steps if s not in skip and (horizon is None or s < horizon)}

    problems = []
    for name, (ref, cand) in pairs.items():
        prefix = dict(BRANCHES)[name]
        only_ref = kept(ref.cached) - kept(cand.cached)
        only_cand = kept(cand.cached) - kept(ref.cached)
        if only_ref or only_cand:
            problems.append(
                f"{prefix}cached_steps differ: only cache-dit cached {sorted(only_ref)}, "
                f"only ditkit cached {sorted(only_cand)} (cache-dit {ref.cached}, "
                f"ditkit {cand.cached})"
            )
        if ref.pruned_blocks or cand.pruned_blocks:
            steps = kept(range(max(len(ref.pruned_blocks), len(cand.pruned_blocks))))
            bad = [s for s in sorted(steps) if _decided(ref, s)[1] != _decided(cand, s)[1]]
            if bad:
                problems.append(
                    f"{prefix}pruned_blocks differ at steps {bad}: cache-dit "
                    f"{ref.pruned_blocks}, ditkit {cand.pruned_blocks}"
                )
    return Comparison(run_id, problems, sorted(ambiguous), horizon, sorted(set(allowed_steps)))


def table(reference: Mapping[str, Any], candidate: Mapping[str, Any]) -> str:
    """A per-step text table: each library's diff and decision (C = cached) per branch."""
    lines = []
    for name, _ in BRANCHES:
        ref, cand = branch(reference, name), branch(candidate, name)
        steps = sorted(set(ref.diffs) | set(cand.diffs) | set(ref.cached) | set(cand.cached))
        if not steps:
            continue
        lines.append(f"[{name}] step  cache-dit diff   ditkit diff")
        for s in steps:
            cells = []
            for b in (ref, cand):
                diff = " ".join(f"{d:.6f}" for d in b.diffs.get(s, [])) or "-"
                cells.append(f"{diff:>12} {'C' if s in b.cached else ' '}")
            lines.append(f"{s:>11}  {cells[0]}  {cells[1]}")
    return "\n".join(lines)


def _pairs(reference: Mapping[str, Any], candidate: Mapping[str, Any]) -> dict[str, tuple]:
    """Match single results, or the runs of two ``--matrix`` documents by id."""
    if "runs" in reference:
        return {k: (v, candidate["runs"].get(k)) for k, v in reference["runs"].items()}
    return {"run": (reference, candidate)}


def main(argv: list[str] | None = None) -> int:
    """Print each comparison; exit 1 if any run fails or differs."""
    parser = argparse.ArgumentParser(description="Compare cache-dit and ditkit decisions.")
    parser.add_argument("reference", type=Path, help="cache-dit's run_cached.py JSON")
    parser.add_argument("candidate", type=Path, help="ditkit's run_cached.py JSON")
    parser.add_argument("--table", action="store_true", help="print the per-step table")
    args = parser.parse_args(argv)
    reference, candidate = (json.loads(p.read_text()) for p in (args.reference, args.candidate))
    status = 0
    for run_id, (ref, cand) in _pairs(reference, candidate).items():
        for side, result in (("cache-dit", ref), ("ditkit", cand)):
            if result is None or result.get("error"):
                error = (result or {}).get("error") or {"type": "missing", "message": "no run"}
                print(f"{run_id}: {side} failed: {error['type']}: {error['message']}")
                status = 1
        if status and (ref is None or cand is None or ref.get("error") or cand.get("error")):
            continue
        outcome = compare_runs(ref, cand, run_id)
        same_output = ref["output"]["sha256"] == cand["output"]["sha256"]
        verdict = "same decisions" if outcome.ok else "DIFFERENT decisions"
        print(
            f"{run_id}: {verdict}; ambiguous steps {outcome.ambiguous}; "
            f"compared up to {outcome.horizon if outcome.horizon is not None else 'the end'}; "
            f"output bit-identical: {same_output}"
        )
        for problem in outcome.problems:
            print(f"  {problem}")
        if args.table:
            print(table(ref, cand))
        status |= 0 if outcome.ok else 1
    return status


if __name__ == "__main__":
    sys.exit(main())
