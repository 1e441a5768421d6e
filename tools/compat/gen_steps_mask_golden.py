"""Record cache-dit 1.5.3's ``steps_mask`` and ``block_range`` results as a golden table.

The table (``packages/cache/tests/golden/steps_mask_cache_dit_1_5_3.json``) is committed; the
tests of ``ditkit_cache.steps_mask`` read it and never need cache-dit. Regenerate it only when
the compatibility target changes (and rename the file with the version):

    pip install --no-deps --target /tmp/cachedit cache-dit==1.5.3
    PYTHONPATH=/tmp/cachedit python tools/compat/gen_steps_mask_golden.py

cache-dit's own dependencies (torch, diffusers, transformers, pyyaml) must be importable; the
development venv has them. ``--no-deps --target`` keeps cache-dit out of that venv. The script
refuses to run against another cache-dit version.

Each mask is stored as a string of digits (``"1101"``); a call that cache-dit rejects is stored
as ``{"error": "<exception type>"}``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

CACHE_DIT_VERSION = "1.5.3"
ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "packages/cache/tests/golden/steps_mask_cache_dit_1_5_3.json"

POLICIES = ("slow", "medium", "fast", "ultra")
POLICY_STEPS = (4, 6, 8, 9, 10, 12, 16, 20, 25, 28, 30, 40, 50)
REJECTED_POLICY_STEPS = (5, 7)  # cache-dit asserts: policies need 4, 6 or >= 8 steps

# (compute_bins, cache_bins, total_steps): valid inputs whose result ditkit must reproduce.
EXPLICIT_BINS: tuple[tuple[list[int], list[int], int | None], ...] = (
    ([4, 2, 2], [1, 3], None),
    ([4, 2, 2], [1, 3], 9),
    ([6, 2, 2, 2, 2, 1], [1, 3, 3, 3, 3], 20),
    ([2, 1], [1, 1], 5),  # the last step stays cached: explicit bins are not forced
    ([3], [2], None),
    ([1, 1, 1], [1, 1], None),
    ([2, 2], [1, 1], 6),
    ([0, 2], [1, 1], None),
    ([8, 3, 3, 2, 1, 1], [1, 2, 2, 2, 3], 28),
)
# Inputs cache-dit rejects (bins shorter than total_steps).
REJECTED_BINS: tuple[tuple[list[int], list[int], int | None], ...] = (([4, 2], [1, 1], 10),)

# (start, end, step)
BLOCK_RANGES: tuple[tuple[int, int, int], ...] = (
    (0, 28, 4),
    (1, 57, 8),
    (2, 10, 3),
    (0, 10, 2),
    (3, 3, 2),
    (9, 10, 5),
    (5, 3, 2),
    (0, 0, 2),
    (0, 10, 1),  # cache-dit returns [] for step=1; ditkit fixes it (docs/compat.md)
    (4, 10, 1),
)


def _digits(mask: list[int]) -> str:
    return "".join(str(int(v)) for v in mask)


def _record(call: Callable[[], list[int]], as_digits: bool = True) -> Any:
    try:
        result = call()
    except (AssertionError, ValueError) as err:
        return {"error": type(err).__name__}
    return _digits(result) if as_digits else list(result)


def build_table() -> dict[str, Any]:
    """Call cache-dit for every recorded case and return the table."""
    import cache_dit

    version = importlib.metadata.version("cache-dit")
    if version != CACHE_DIT_VERSION:
        raise SystemExit(f"cache-dit {CACHE_DIT_VERSION} is required, found {version}")

    policies = {
        policy: {
            str(steps): _record(
                lambda p=policy, t=steps: cache_dit.steps_mask(mask_policy=p, total_steps=t)
            )
            for steps in POLICY_STEPS + REJECTED_POLICY_STEPS
        }
        for policy in POLICIES
    }
    explicit = [
        {
            "compute_bins": compute,
            "cache_bins": cache,
            "total_steps": total,
            "mask": _record(
                lambda c=compute, k=cache, t=total: cache_dit.steps_mask(
                    compute_bins=list(c), cache_bins=list(k), total_steps=t
                )
            ),
        }
        for compute, cache, total in EXPLICIT_BINS + REJECTED_BINS
    ]
    block_ranges = [
        {
            "args": list(args),
            "result": _record(lambda a=args: cache_dit.block_range(*a), as_digits=False),
        }
        for args in BLOCK_RANGES
    ]
    return {
        "source": f"cache-dit {version}",
        "generator": "tools/compat/gen_steps_mask_golden.py",
        "policies": policies,
        "explicit_bins": explicit,
        "block_range": block_ranges,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where to write the JSON")
    args = parser.parse_args(argv)
    table = build_table()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
