"""Train the learned Darcy inverse map shipped as bench/models/darcy_inverse_*.pt (pressure -> log-coefficient).

Data: ``hybrid generate darcy`` on the benchmark's two coefficient distributions, with seeds other than the
benchmark's test coefficients (``hybrid bench inverse`` uses seed 7, indices 0..9):

    hybrid generate darcy --samples 1200 --n 64 --seed 101 --param coefficient=log-normal --param sigma=0.5 --out /tmp/inv/ln.h5
    hybrid generate darcy --samples 1200 --n 64 --seed 202 --param coefficient=two-phase --param high=12 --param low=3 --out /tmp/inv/tp.h5
    python scripts/train_darcy_inverse.py /tmp/inv/ln.h5 /tmp/inv/tp.h5 --out bench/models/darcy_inverse_mgno_n64.pt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="+", type=Path, help="hybrid generate darcy files (fields solution, coefficient)")
    p.add_argument("--out", type=Path, required=True, help="checkpoint file (.pt)")
    p.add_argument("--model", default="mgno", choices=("mgno", "unet", "fno"))
    p.add_argument("--config", default='{"channels": 16, "layers": 2}', help="model config as JSON")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--noise", type=float, default=0.01, help="relative additive noise on training inputs")
    p.add_argument("--target", default="log", choices=("log", "linear"))
    p.add_argument("--limit", type=int, default=None, help="first N samples of each file")
    p.add_argument("--n-val", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args(argv)

    import torch

    from hybrid.inverse.learned import InverseTrainConfig, train_inverse_map

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = InverseTrainConfig(model=args.model, model_config=json.loads(args.config), epochs=args.epochs,
                             batch_size=args.batch_size, lr=args.lr, noise=args.noise, target=args.target,
                             n_val=args.n_val, seed=args.seed)
    summary = train_inverse_map(args.data, args.out, cfg, limit=args.limit)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
