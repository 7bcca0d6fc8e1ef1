"""Training data and training loop of the learned shifted-Laplacian correction (:mod:`hybrid.precond.helmholtz`).

Data are the residuals that actually occur inside the solve: for each medium of a ``hybrid generate
helmholtz`` file (its ``wave_speed`` field), ``cslp+fgmres`` is run on a point source at a random place,
every Arnoldi vector ``r`` handed to the preconditioner is recorded, and a subset becomes samples
``(r1, A^{-1} r1, k h)`` with ``r1 = r - A V(r)`` the residual the classical cycle leaves and the error
from one sparse LU per medium. The loss is the scale-free error ``min_alpha ||e - alpha net(r1)|| /
||e||`` (the preconditioner rescales the network's output by its own least-squares step). Own loop
rather than :class:`hybrid.training.Trainer`: the samples are generated from solves, not read from a
file of inputs and targets, and the loss is complex and scale-free.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..operators.helmholtz_net import HelmholtzNet, HelmholtzNetConfig

#: points per wavelength at speed 1 (the value of solvers.problems.helmholtz.PPW; not imported, so this
#: module trains on a machine without DOLFINx)
PPW = 10.0


def collect(speeds: np.ndarray, vectors_per_medium: int = 12, max_iterations: int = 80, seed: int = 0,
            ppw: float = PPW, log=None) -> dict:
    """Samples ``r1, e`` (N, 2, H, W) and ``kh`` (N, 1, H, W), float32, and the index of each sample's
    medium (``medium``, N), from media ``speeds`` (M, H, W)."""
    import scipy.sparse.linalg as spla
    from solvers.linear import FGMRES, LinearProblem, solve
    from solvers.linear.preconditioners import Preconditioner, ShiftedLaplacian
    from solvers.problems.helmholtz import grid_helmholtz, wavenumber

    from ..precond.helmholtz import local_kh

    rng = np.random.default_rng(seed)
    R1, E, KH, MED = [], [], [], []
    for m, c in enumerate(speeds):
        n = c.shape[0] - 1
        system = grid_helmholtz(c, wavenumber(n, ppw), source=tuple(rng.uniform(0.15, 0.85, 2)))
        grid = system.aux["grid"]
        lp = LinearProblem.from_system(system)
        pc = ShiftedLaplacian().setup(system.A, lp.p)  # one hierarchy: recorded in the solve, reused below
        seen = []

        class Recording(Preconditioner):
            """``pc`` as the solve's preconditioner, recording every vector it is applied to."""

            symmetric = False

            def setup(self, A, p=None):
                return self

            def apply(self, r):
                seen.append(np.array(r, dtype=np.complex128))
                return pc.apply(r)

        solve(lp, FGMRES(restart=max_iterations, precond=Recording()), rtol=1e-8, maxiter=max_iterations)
        lu = spla.splu(system.A.tocsc())
        kh = local_kh(system.aux["k2M"], grid).astype(np.float32)
        picks = np.unique(np.linspace(0, len(seen) - 1, min(vectors_per_medium, len(seen))).astype(int))
        for i in picks:
            r = seen[i]
            r1 = r - system.A @ pc.apply(r)
            e = lu.solve(r1)
            s = np.sqrt(np.mean(np.abs(r1) ** 2)) or 1.0
            g1, ge = grid.to_grid(r1 / s), grid.to_grid(e / s)
            R1.append(np.stack([g1.real, g1.imag]).astype(np.float32))
            E.append(np.stack([ge.real, ge.imag]).astype(np.float32))
            KH.append(kh[None])
            MED.append(m)
        if log and (m + 1) % max(1, len(speeds) // 10) == 0:
            log(f"  residuals from {m + 1}/{len(speeds)} media ({len(R1)} samples)")
    return {"r1": np.stack(R1), "e": np.stack(E), "kh": np.stack(KH), "medium": np.asarray(MED, dtype=np.int64)}


def relative_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``||target - pred||^2 / ||target||^2`` (the network predicts the scale too)."""
    d = (pred - target).flatten(1).pow(2).sum(1)
    return (d / (target.flatten(1).pow(2).sum(1) + 1e-12)).mean()


LOSSES = {}


def scale_free_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``min_alpha ||target - alpha pred||^2 / ||target||^2`` for complex
    fields stored as (B, 2, H, W) real/imaginary channels, ``alpha`` complex."""
    p = torch.complex(pred[:, 0], pred[:, 1]).flatten(1)
    t = torch.complex(target[:, 0], target[:, 1]).flatten(1)
    pp = (p.abs() ** 2).sum(1) + 1e-12
    tt = (t.abs() ** 2).sum(1) + 1e-12
    pt = (p.conj() * t).sum(1)
    return (1.0 - pt.abs() ** 2 / (pp * tt)).mean()


LOSSES.update({"relative": relative_error, "scale-free": scale_free_error})


@dataclass
class HelmholtzTrainConfig:
    steps: int = 2000
    batch: int = 16
    lr: float = 2e-3
    max_seconds: float | None = None
    seed: int = 0
    channels: int = 8
    depth: int = 4
    loss: str = "relative"
    augment: bool = True


def _rotate_phase(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    return torch.stack([x[:, 0] * c - x[:, 1] * s, x[:, 0] * s + x[:, 1] * c], dim=1)


def augment(r1, e, kh, rng: np.random.Generator):
    """The problem's symmetries: the square with absorbing sides is invariant under the 8 rotations and
    reflections of the grid (applied to residual, error and ``k h`` together), and the equation is
    complex-linear (residual and error multiplied by one phase ``exp(i theta)`` per sample)."""
    k, flip = int(rng.integers(4)), bool(rng.integers(2))
    out = []
    for t in (r1, e, kh):
        t = torch.rot90(t, k, dims=(-2, -1))
        out.append(torch.flip(t, dims=(-1,)) if flip else t)
    theta = torch.as_tensor(rng.uniform(0, 2 * np.pi, len(r1)), dtype=r1.dtype, device=r1.device)
    return _rotate_phase(out[0], theta), _rotate_phase(out[1], theta), out[2]


def train(samples: list[dict], cfg: HelmholtzTrainConfig, device="cpu", log=None):
    """Adam with cosine decay over ``cfg.steps`` steps on samples (a list of :func:`collect` outputs,
    one per resolution: each batch is drawn from one resolution). Returns ``(net, info)``."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = HelmholtzNet(HelmholtzNetConfig(cfg.channels, cfg.depth)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    data = [{k: torch.as_tensor(samples_k[k], device=device) for k in ("r1", "e", "kh")} for samples_k in samples]
    sizes = np.array([len(d["r1"]) for d in data], dtype=float)
    t0, losses = time.perf_counter(), []
    step = 0
    for step in range(cfg.steps):
        d = data[rng.choice(len(data), p=sizes / sizes.sum())]
        idx = torch.as_tensor(rng.choice(len(d["r1"]), min(cfg.batch, len(d["r1"])), replace=False), device=device)
        r1, e, kh = d["r1"][idx], d["e"][idx], d["kh"][idx]
        if cfg.augment:
            r1, e, kh = augment(r1, e, kh, rng)
        loss = LOSSES[cfg.loss](net(r1, kh), e)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if log and (step + 1) % max(1, cfg.steps // 20) == 0:
            log(f"  step {step + 1}/{cfg.steps}: loss {np.mean(losses[-50:]):.4f} ({time.perf_counter() - t0:.0f} s)")
        if cfg.max_seconds is not None and time.perf_counter() - t0 > cfg.max_seconds:
            break
    net.eval()
    return net, {"steps": step + 1, "train_s": time.perf_counter() - t0, "final_loss": float(np.mean(losses[-50:])),
                 "first_loss": float(np.mean(losses[:20])), "params": net.parameter_count()}


def evaluate(net, samples: dict, device="cpu", batch: int = 16, loss: str = "relative") -> float:
    """Mean loss of ``net`` on held-out samples (1 = no better than predicting zero)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(samples["r1"]), batch):
            sl = {k: torch.as_tensor(samples[k][i:i + batch], device=device) for k in ("r1", "e", "kh")}
            out.append(float(LOSSES[loss](net(sl["r1"], sl["kh"]), sl["e"])) * len(sl["r1"]))
    return sum(out) / len(samples["r1"])
