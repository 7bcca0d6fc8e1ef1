"""``hybrid train precond --n 32 --samples 64 --out RUN``: an SPD V-cycle preconditioner trained on the
energy norm of its error propagation (or on unrolled CG), no dataset needed (see
:mod:`hybrid.training.precond`). Options shared with operator training (``--epochs``, ``--batch-size``,
``--lr``, ``--loss``, ``--device``, ``--config``) are declared by :mod:`hybrid.commands.train`."""

from __future__ import annotations

import json


def add_arguments(p) -> None:
    g = p.add_argument_group("precond (hybrid train precond)")
    g.add_argument("--n", type=int, default=32, help="training grid: P1 on n x n cells (default 32)")
    g.add_argument("--samples", type=int, default=64,
                   help="random coefficient fields (two-phase, contrast, log-normal; default 64)")
    g.add_argument("--unroll", type=int, default=4, help="CG iterations seen by --loss unrolled (default 4)")
    g.add_argument("--probes", type=int, default=12, help="random error vectors per field and step (default 12)")
    g.add_argument("--seed", type=int, default=1000, help="coefficient field seed (benchmarks use 0)")


def run(args, device: str) -> int:
    from ..training.precond import PrecondTrainConfig, train_preconditioner

    if args.data is not None or args.inputs or args.outputs:
        raise ValueError("train precond generates its own matrices: drop --data/--inputs/--outputs")
    if args.loss not in (None, "energy", "unrolled"):
        raise ValueError(f"--loss {args.loss} is a regression loss; train precond takes energy or unrolled")
    if args.resume:
        raise ValueError("train precond has no --resume; start a new run directory")
    try:
        model_config = {"face_weights": "p1", **json.loads(args.config)}
    except json.JSONDecodeError as e:
        raise ValueError(f"--config is not valid JSON: {e}") from None
    cfg = PrecondTrainConfig(n=args.n, samples=args.samples, epochs=args.epochs, probes=args.probes,
                             batch_size=4 if args.batch_size is None else args.batch_size,
                             lr=3e-3 if args.lr is None else args.lr, loss=args.loss or "energy",
                             unroll=args.unroll, seed=args.seed, model_config=model_config)
    _, s = train_preconditioner(cfg, out=args.out, device=device, log=None if args.no_progress else print,
                                progress=False)
    energy = (f", energy loss {s['val_energy_untrained']:.4f} -> {s['val_energy']:.4f}" if cfg.loss != "energy"
              else "")
    print(f"precond ({cfg.loss}{f', {cfg.unroll} CG steps' if cfg.loss == 'unrolled' else ''}): {s['params']} "
          f"parameters, {s['train_s']:.1f} s; validation {cfg.loss} loss {s['val_loss_untrained']:.4f} -> "
          f"{s['val_loss']:.4f}{energy}, CG "
          f"iterations (n={cfg.n}, rtol 1e-8) {s['val_cg_untrained']} -> {s['val_cg']}. Wrote {args.out}/best.pt")
    return 0
