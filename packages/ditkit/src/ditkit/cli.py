"""The ``ditkit`` command: ``ditkit demo`` and ``ditkit info``.

Example:
    $ ditkit info
    $ ditkit demo --steps 28 --output demo-output
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ditkit_interfaces.capabilities import COMPONENTS, distribution_version, is_installed

__all__ = ["main"]


def _info() -> dict[str, object]:
    from .__about__ import __version__

    packages = {
        component.distribution: distribution_version(component.distribution)
        if is_installed(name)
        else None
        for name, component in COMPONENTS.items()
    }
    third_party = {
        name: distribution_version(name) for name in ("torch", "diffusers", "transformers")
    }
    info: dict[str, object] = {"ditkit": __version__, "components": packages, **third_party}
    if is_installed("kernels-cu13"):
        import ditkit_kernels_cu13

        info["kernels-cu13"] = ditkit_kernels_cu13.device_status()
    return info


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ditkit", description="ditkit command line")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="the trained fixture, uncached vs cached: speed and quality")
    demo.add_argument("--steps", type=int, default=28, help="denoising steps (default 28)")
    demo.add_argument("--repeats", type=int, default=3, help="timed runs after a warm-up")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--output", default=None, help="folder for the table, images and plot")
    demo.add_argument("--quiet", action="store_true", help="no table, no progress bar")
    sub.add_parser("info", help="installed components and versions as JSON")
    args = parser.parse_args(argv)

    if args.command == "info":
        print(json.dumps(_info(), indent=2))
        return 0
    if args.steps < 1 or args.repeats < 1:
        parser.error("--steps and --repeats must be at least 1")
    from .demo import run_demo

    run_demo(args.steps, args.repeats, args.seed, args.output, quiet=args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
