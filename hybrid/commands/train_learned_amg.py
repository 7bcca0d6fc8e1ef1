"""``hybrid train learned-amg --out bench/models/learned_amg.pt``: the learned-AMG network (prolongation
re-weighting and SSOR damping on Ruge-Stuben's hierarchy) trained on the V-cycle energy loss of Darcy
matrices it assembles itself (see :mod:`hybrid.precond.learned_amg`). Reuses ``--n``, ``--samples``,
``--seed`` (precond group) and ``--epochs`` (optimizer steps), ``--batch-size``, ``--lr``.

The shipped ``bench/models/learned_amg.pt`` was made with the defaults here:
``hybrid train learned-amg --samples 18 --epochs 200 --out bench/models/learned_amg.pt`` (343 s on one
shared CPU core; seed 1000, so none of the benchmark's seed-0 fields).
"""

from __future__ import annotations

from pathlib import Path


def run(args) -> int:
    from ..precond.learned_amg import TrainConfig, train

    if args.data is not None or args.inputs or args.outputs:
        raise ValueError("train learned-amg assembles its own matrices: drop --data/--inputs/--outputs")
    if args.loss not in (None,):
        raise ValueError("train learned-amg has one loss (the V-cycle energy loss): drop --loss")
    if args.resume:
        raise ValueError("train learned-amg has no --resume; start again")
    if args.samples < 3 or args.epochs < 1:
        raise ValueError(f"need --samples >= 3 (fields per kind = samples // 3) and --epochs >= 1, got "
                         f"{args.samples}, {args.epochs}")
    out = Path(args.out)
    if out.suffix != ".pt":
        raise ValueError(f"--out {out}: train learned-amg writes one checkpoint file, name it *.pt")
    cfg = TrainConfig(n=args.n, samples_per_kind=args.samples // 3, seed=args.seed, steps=args.epochs,
                      batch=2 if args.batch_size is None else args.batch_size,
                      lr=3e-3 if args.lr is None else args.lr)
    _, info = train(cfg, out=out, log=None if args.no_progress else print)
    print(f"{out}: learned AMG trained for {cfg.steps} steps on {3 * cfg.samples_per_kind} matrices at n={cfg.n}")
    return 0
