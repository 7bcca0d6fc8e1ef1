"""The ``hybrid`` command: ``demo``, ``solve``, ``generate``, ``train``, ``evaluate``, ``bench``."""

from __future__ import annotations

import argparse
import os
import sys

# Oversubscribed BLAS/OpenMP threads made pyamg setup 8x slower on 2 cores (STACK.md gotcha 8).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def build_parser() -> argparse.ArgumentParser:
    from .commands import bench, demo, generate, solve, train

    parser = argparse.ArgumentParser(prog="hybrid", description="Solver-hybrid toolkit for PDEs.")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (demo, solve, generate, train, bench):
        module.add_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, FileNotFoundError) as e:
        print(f"hybrid {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
