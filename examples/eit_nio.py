"""EIT: a Neural Inverse Operator trained on a small dataset, against the adjoint reconstruction.

1. ``hybrid generate eit`` (here :func:`solvers.data.generate.generate`) writes ``samples`` random inclusion
   conductivities on ``unit_square(n)`` with the Dirichlet-to-Neumann data of ``patterns`` voltage patterns;
2. :class:`hybrid.operators.NIO` (a DeepONet over every (pattern, flux) pair, averaged over the patterns, then
   a small CNN) is trained briefly (Adam, relative L2 of the conductivity) on all samples but the last;
3. on the held-out last sample, with relative ``noise`` on its data: the NIO estimate (one forward pass), the
   adjoint reconstruction (:func:`hybrid.inverse.invert_eit`: TV-regularized L-BFGS on log sigma from the best
   constant, stopped by the discrepancy principle) and the two composed (``nio+adjoint``: the NIO estimate as
   the adjoint's initial guess). The data are on the inversion mesh (as the file stores them).

Run: ``.venv/bin/python examples/eit_nio.py [n] [samples] [steps]`` (the command-line equivalent of the
adjoint part: ``hybrid invert eit --data eit.h5 --sample S --noise 0.01 --out out/eit``)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from hybrid.inverse import eit_from_file, invert_eit
from hybrid.inverse.darcy_inversion import mass_matrix, relative_l2_error
from hybrid.operators import NIO
from hybrid.operators.nio import NIOConfig
from meshes import GridView
from solvers.data.generate import generate


def load(path) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)``: measurements ``(N, 2, K, nb)`` (pattern, flux) and conductivities ``(N, 1, n+1, n+1)``."""
    with h5py.File(path, "r") as f:
        dtn, sigma, patterns = f["dtn"][:], f["conductivity"][:], f["fixed/patterns"][:]
    x = np.stack([np.broadcast_to(patterns, dtn.shape), dtn], axis=1)
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(sigma[:, None], dtype=torch.float32)


def train_nio(x, y, steps: int, seed: int = 0, batch: int = 16, lr: float = 2e-3):
    """A small NIO (CNN decoder) fitted by Adam on relative L2; the flux channel is scaled by its training std."""
    torch.manual_seed(seed)
    scale = x[:, 1].std()
    model = NIO(NIOConfig(sensors=x.shape[-1], width=64, depth=2, basis=16, lift=8, fourier=4, decoder="cnn",
                          decoder_channels=16, decoder_layers=3, seed=seed))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(seed)
    xs = torch.cat([x[:, :1], x[:, 1:] / scale], dim=1)
    losses = []
    for _ in range(steps):
        idx = torch.randint(len(x), (min(batch, len(x)),), generator=g)
        pred = model(xs[idx])
        loss = (torch.linalg.norm((pred - y[idx]).flatten(1), dim=1) / torch.linalg.norm(y[idx].flatten(1), dim=1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    model.eval()

    def predict(x1: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            t = torch.as_tensor(x1, dtype=torch.float32)[None]
            return model(torch.cat([t[:, :1], t[:, 1:] / scale], dim=1))[0, 0].double().numpy()
    return predict, losses


def main(n: int = 16, samples: int = 400, patterns: int = 16, steps: int = 600, noise: float = 0.01,
         seed: int = 0, maxiter: int = 100, weight: float = 1e-7, workdir=None, out=None) -> dict:
    workdir = Path(workdir or tempfile.mkdtemp(prefix="eit_nio_"))
    path = workdir / "eit.h5"
    t = time.perf_counter()
    generate("eit", samples=samples, n=n, out=path, seed=seed, params={"patterns": patterns}, progress=False)
    t_data = time.perf_counter() - t
    x, y = load(path)
    t = time.perf_counter()
    predict, losses = train_nio(x[:-1], y[:-1], steps, seed)
    t_train = time.perf_counter() - t

    test = samples - 1
    problem = eit_from_file(path, test, noise=noise, seed=seed + 1)
    solver = problem.solver
    view, M = GridView(solver.family.mesh), mass_matrix(solver.darcy)
    meas = np.stack([solver.patterns, problem.data])  # noisy data, in our boundary order = the file's
    t = time.perf_counter()
    sigma_nio = view.to_dofs(predict(meas))
    t_nio = time.perf_counter() - t
    noise_norm = problem.noise_norm if noise > 0 else None
    kw = dict(noise_norm=noise_norm, reg="tv", weight=weight, maxiter=maxiter, truth=problem.truth)
    adjoint = invert_eit(problem.data, solver, **kw)
    hybrid = invert_eit(problem.data, solver, a0=np.clip(sigma_nio, 0.05, None), **kw)
    err = {"nio": relative_l2_error(sigma_nio, problem.truth, M), "adjoint": adjoint.history["rel_error"][-1],
           "nio+adjoint": hybrid.history["rel_error"][-1]}
    summary = {"n": n, "samples": samples, "patterns": patterns, "steps": steps, "noise": noise,
               "data_s": t_data, "train_s": t_train, "train_loss_first": float(np.mean(losses[:10])),
               "train_loss_last": float(np.mean(losses[-10:])), "constant_error": adjoint.history["rel_error"][0],
               "errors": err, "seconds": {"nio": t_nio, "adjoint": adjoint.seconds, "nio+adjoint": hybrid.seconds},
               "iterations": {"adjoint": adjoint.iterations, "nio+adjoint": hybrid.iterations},
               "stopped": {"adjoint": adjoint.stopped, "nio+adjoint": hybrid.stopped}}
    print(f"EIT n={n}, {samples} samples x {patterns} patterns ({t_data:.1f} s), NIO {steps} steps ({t_train:.1f} s, "
          f"loss {summary['train_loss_first']:.3f} -> {summary['train_loss_last']:.3f}); held-out sample, noise "
          f"{noise:g}: rel. L2 error constant {summary['constant_error']:.3f}, NIO {err['nio']:.3f} ({t_nio:.3f} s), "
          f"adjoint {err['adjoint']:.3f} ({adjoint.seconds:.2f} s, {adjoint.iterations} it, {adjoint.stopped}), "
          f"nio+adjoint {err['nio+adjoint']:.3f} ({hybrid.seconds:.2f} s, {hybrid.iterations} it, {hybrid.stopped})")
    if out is not None:
        from hybrid.plots import save_fields

        save_fields(out, {"truth": view.to_grid(problem.truth), "NIO": view.to_grid(sigma_nio),
                          "adjoint": view.to_grid(adjoint.a), "nio+adjoint": view.to_grid(hybrid.a)})
    return summary


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:4]]
    main(*args[:2], **({"steps": args[2]} if len(args) > 2 else {}), out="eit_nio.png")
