"""EIT: a Neural Inverse Operator trained on a small dataset, alone and as the adjoint inversion's start.

1. ``hybrid generate eit`` (here :func:`solvers.data.generate`) writes ``samples`` randomized heart-and-lungs
   conductivities on ``unit_square(n)`` with the Dirichlet-to-Neumann data of ``patterns`` voltage patterns;
2. :class:`hybrid.operators.NIO` (a DeepONet over every (pattern, flux) pair, averaged over the patterns, then
   a small CNN) is trained by the toolkit's ``Trainer`` (``hybrid train nio`` does the same) on all samples
   but the last, with noise augmentation; its inputs are normalized as difference data (the background
   Dirichlet-to-Neumann map subtracted);
3. on the held-out last sample, with multiplicative ``noise`` on its data: the NIO estimate
   (:class:`hybrid.inverse.LearnedEIT`, one forward pass), the adjoint reconstruction
   (:func:`hybrid.inverse.invert_eit`: TV-regularized L-BFGS on log sigma from the best constant, stopped by
   the discrepancy principle) and the two composed (:func:`hybrid.inverse.invert_eit_hybrid`).

Run: ``.venv/bin/python examples/eit_nio.py [n] [samples] [epochs]`` (the benchmark of the same comparison:
``hybrid bench inverse --problems eit-learned``)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hybrid.inverse import LearnedEIT, eit_from_file, invert_eit, invert_eit_hybrid, invert_eit_learned
from hybrid.training import Trainer, TrainConfig
from meshes import GridView
from solvers.data import generate


def main(n: int = 16, samples: int = 400, patterns: int = 16, epochs: int = 30, noise: float = 0.01,
         seed: int = 0, maxiter: int = 100, weight: float = 1e-7, workdir=None, out=None) -> dict:
    workdir = Path(workdir or tempfile.mkdtemp(prefix="eit_nio_"))
    path = workdir / "eit.h5"
    t = time.perf_counter()
    generate("eit", samples=samples, n=n, out=path, seed=seed,
             params={"coefficient": "heart-lungs", "patterns": patterns}, progress=False)
    t_data = time.perf_counter() - t
    cfg = TrainConfig(epochs=epochs, n_train=samples - 1, n_test=1, seed=seed, inputs=("patterns", "dtn"),
                      outputs=("conductivity",), train_noise=0.1)
    trainer = Trainer("nio", {"decoder": "cnn", "width": 64, "depth": 2, "basis": 16, "lift": 8, "fourier": 4,
                              "decoder_channels": 16, "decoder_layers": 3, "seed": seed}, path, workdir / "nio", cfg)
    fit = trainer.fit(progress=False)
    losses = trainer.history["train_loss"]

    test = samples - 1
    problem = eit_from_file(path, test, noise=noise, noise_model="multiplicative", seed=seed + 1)
    solver, model = problem.solver, LearnedEIT.from_checkpoint(workdir / "nio")
    kw = dict(noise_norm=problem.noise_norm if noise > 0 else None, reg="tv", weight=weight, maxiter=maxiter,
              truth=problem.truth)
    learned = invert_eit_learned(problem.data, solver, model, truth=problem.truth)
    adjoint = invert_eit(problem.data, solver, **kw)
    hybrid = invert_eit_hybrid(problem.data, solver, model, **kw)
    runs = {"nio": learned, "adjoint": adjoint, "nio+adjoint": hybrid}
    summary = {"n": n, "samples": samples, "patterns": patterns, "epochs": epochs, "noise": noise,
               "data_s": t_data, "train_s": fit["train_s"], "params": fit["params"],
               "train_loss_first": losses[0], "train_loss_last": losses[-1],
               "constant_error": adjoint.history["rel_error"][0],
               "errors": {k: r.history["rel_error"][-1] for k, r in runs.items()},
               "seconds": {k: r.seconds for k, r in runs.items()},
               "iterations": {k: r.iterations for k, r in runs.items()},
               "misfits": {k: r.misfit for k, r in runs.items()},
               "stopped": {k: r.stopped for k, r in runs.items()}}
    e, s = summary["errors"], summary["seconds"]
    print(f"EIT n={n}, {samples} heart-and-lungs samples x {patterns} patterns ({t_data:.1f} s); NIO {epochs} epochs "
          f"({fit['train_s']:.0f} s, loss {losses[0]:.3f} -> {losses[-1]:.3f}); held-out sample, noise {noise:g}: "
          f"relative L2 error: constant {summary['constant_error']:.3f}, NIO {e['nio']:.3f} ({s['nio']:.3f} s), "
          f"adjoint {e['adjoint']:.3f} ({s['adjoint']:.2f} s, {adjoint.iterations} it, {adjoint.stopped}), "
          f"nio+adjoint {e['nio+adjoint']:.3f} ({s['nio+adjoint']:.2f} s, {hybrid.iterations} it, {hybrid.stopped})")
    if out is not None:
        from hybrid.plots import save_fields

        view = GridView(solver.family.mesh)
        save_fields(out, {"truth": view.to_grid(problem.truth), **{k: view.to_grid(r.a) for k, r in runs.items()}})
        Path(out).with_suffix(".json").write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:4]]
    main(*args[:2], **({"epochs": args[2]} if len(args) > 2 else {}), out="eit_nio.png")
