"""The algebraic V-cycle as a learned preconditioner on the L-shape and plate-with-holes Darcy matrices.

A thin wrapper of :mod:`hybrid.bench.mesh_precond` (the same rows as ``hybrid bench hybrid --domains
l-shape,plate-holes``, which prepares the bundle when it is missing); the bundle comes from
``scripts/algebraic_mgno_comparison.py prepare``.

    python scripts/algebraic_mgno_precond.py --json bench/results/algebraic-mgno-precond.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybrid.bench import mesh_precond as P  # noqa: E402


def main(argv=None) -> None:
    import torch

    from hybrid.bench.results import write_results

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", default="data/mesh/bundle.npz")
    p.add_argument("--domains", default="l-shape,plate-holes")
    p.add_argument("--train", type=int, default=8)
    p.add_argument("--test", type=int, default=5)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    records = P.run(args.bundle, args.domains.split(","), train=args.train, test=args.test, steps=args.steps,
                    channels=args.channels, log=lambda *a: print(*a, flush=True))
    if args.json:
        write_results(args.json, P.SUITE, records, extra={"command": " ".join(sys.argv)})


if __name__ == "__main__":
    main()
