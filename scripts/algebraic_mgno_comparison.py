"""AlgebraicMgNO against grid MgNO through transfer, on nodal Darcy data of an L-shape and a plate with holes.

A thin wrapper of :mod:`hybrid.bench.mesh_operators` (the same comparison as ``hybrid bench operators
--domains l-shape,plate-holes``, which prepares the bundle when it is missing). Two steps, so the training can
run where only torch/numpy/scipy are installed (a lent GPU machine):

    # here: meshes, data (hybrid generate --mesh), transfer matrices and AMG levels -> one .npz bundle
    python scripts/algebraic_mgno_comparison.py prepare --bundle data/mesh/bundle.npz
    # anywhere: train and test every model, write the results
    python scripts/algebraic_mgno_comparison.py run --bundle data/mesh/bundle.npz --epochs 40 \
        --json bench/results/algebraic-mgno.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybrid.bench import mesh_operators as M  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="step", required=True)
    q = sub.add_parser("prepare")
    q.add_argument("--bundle", default="data/mesh/bundle.npz")
    q.add_argument("--samples", type=int, default=1100)
    q.add_argument("--max-levels", type=int, default=6)
    r = sub.add_parser("run")
    r.add_argument("--bundle", default="data/mesh/bundle.npz")
    r.add_argument("--domains", default=",".join(M.DOMAINS))
    r.add_argument("--models", default=None, help=f"comma-separated, of {', '.join(M.MODELS)}")
    r.add_argument("--epochs", type=int, default=40, help="epochs (with --time-budget: at most this many)")
    r.add_argument("--time-budget", type=float, default=None, metavar="S",
                   help="choose one epoch count for all models so that their training fits S seconds (timed)")
    r.add_argument("--n-train", type=int, default=1000)
    r.add_argument("--n-test", type=int, default=100)
    r.add_argument("--batch-size", type=int, default=20)
    r.add_argument("--lr", type=float, default=1e-3)
    r.add_argument("--device", default="cpu")
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--json", default=None)
    r.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.step == "prepare":
        M.prepare(args.bundle, tuple(M.DOMAINS), samples=args.samples, max_levels=args.max_levels)
        return
    import torch

    from hybrid.bench.results import write_results

    torch.set_num_threads(args.threads)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    command = " ".join(sys.argv)

    def save(records):
        if args.json:
            write_results(args.json, M.SUITE, records, device=device, extra={"command": command})

    M.run(args.bundle, args.domains.split(","), args.models.split(",") if args.models else list(M.MODELS),
          epochs=args.epochs, n_train=args.n_train, n_test=args.n_test, batch_size=args.batch_size, lr=args.lr,
          device=args.device, time_budget=args.time_budget, verbose=args.verbose, on_record=save,
          log=lambda *a: print(*a, flush=True))


if __name__ == "__main__":
    main()
