"""Training data and training loop of the learned shifted-Laplacian correction (:mod:`hybrid.precond.helmholtz`).

Data are the residuals that actually occur inside the solve: for each medium of a ``hybrid generate
helmholtz`` file (its ``wave_speed`` field), ``cslp+fgmres`` (or, given ``model``, ``learned-cslp+fgmres``:
the residuals of the learned solve itself) is run on a point source at a random place, every Arnoldi
vector ``r`` handed to the preconditioner is recorded, and a subset becomes samples
``(r1, A^{-1} r1, k h)`` with ``r1 = r - A V(r)`` the residual the classical cycle leaves and the error
from one sparse LU per medium. The default loss is the relative error plus the relative residual that
the predicted error would leave (``"relative+residual"``: the preconditioner rescales the network's
output by the step that minimizes the residual, so the residual is what counts); ``"relative"`` and the
scale-free ``"scale-free"`` are the measured alternatives, and ``"cycle"`` the residual left after the
network's step and the second cycle (:mod:`hybrid.training.helmholtz_cycle`; it needs the media's
operators), which trained the shipped network's last step. Own loop rather than
:class:`hybrid.training.Trainer`: the samples are generated from solves, not read from a file of inputs
and targets, and the losses act on complex fields through the Helmholtz stencil.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..operators.helmholtz_net import HelmholtzNet, HelmholtzNetConfig

#: points per wavelength at speed 1 (the value of solvers.problems.helmholtz.PPW; not imported, so this
#: module trains on a machine without DOLFINx)
PPW = 10.0


def collect(speeds: np.ndarray, vectors_per_medium: int = 12, max_iterations: int = 80, seed: int = 0,
            ppw: float = PPW, log=None, model=None, scheme: str = "VNV", deflated: bool = False) -> dict:
    """Samples ``r1, e`` (N, 2, H, W) and ``kh`` (N, 1, H, W), float32, and the index of each sample's
    medium (``medium``, N), from media ``speeds`` (M, H, W).

    ``model`` (a :class:`HelmholtzNet` or a checkpoint path): record the Arnoldi vectors of the solve
    preconditioned by :class:`~hybrid.precond.helmholtz.LearnedShiftedLaplacian` with this network
    (DAgger-style: the residuals that occur inside the learned solve, with the correction's ``scheme``)
    instead of the classical cycle's; the samples are still ``r1 = r - A V(r)`` with ``V`` the classical
    cycle (the network's input at inference) and ``A^{-1} r1``.

    ``deflated``: ``V`` is the cycle inside two-level deflation (``cslp-def+fgmres``'s application, the
    classical part of ``learned-def+fgmres``): the solves are deflated and ``r1`` is what one deflated step
    leaves, the residual that neither the cycle nor the coarse space removes."""
    import scipy.sparse.linalg as spla
    from solvers.linear import FGMRES, LinearProblem, solve
    from solvers.linear.preconditioners import Preconditioner, ShiftedLaplacian, TwoLevelDeflation
    from solvers.problems.helmholtz import grid_helmholtz, wavenumber

    from ..precond.helmholtz import LearnedShiftedLaplacian, load_helmholtz_net, local_kh

    if not isinstance(deflated, (bool, np.bool_)):
        raise ValueError(f"collect: deflated must be True or False, got {deflated!r}")
    if model is not None and not isinstance(model, torch.nn.Module):
        model = load_helmholtz_net(model)  # once, not per medium
    rng = np.random.default_rng(seed)
    R1, E, KH, MED = [], [], [], []
    for m, c in enumerate(speeds):
        n = c.shape[0] - 1
        system = grid_helmholtz(c, wavenumber(n, ppw), source=tuple(rng.uniform(0.15, 0.85, 2)))
        grid = system.aux["grid"]
        lp = LinearProblem.from_system(system)
        classical = TwoLevelDeflation(ShiftedLaplacian()) if deflated else ShiftedLaplacian()
        if model is None:
            pc = classical.setup(system.A, lp.p)  # one hierarchy: recorded in the solve, reused below
            solver_pc = pc
        else:  # the learned preconditioner drives the solve; its classical cycle makes the samples
            solver_pc = LearnedShiftedLaplacian(model, classical=classical, scheme=scheme).setup(system.A, lp.p)
            pc = solver_pc.classical
        seen = []

        class Recording(Preconditioner):
            """``solver_pc`` as the solve's preconditioner, recording every vector it is applied to."""

            symmetric = False

            def setup(self, A, p=None):
                return self

            def apply(self, r):
                seen.append(np.array(r, dtype=np.complex128))
                return solver_pc.apply(r)

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


def relative_error(pred: torch.Tensor, target: torch.Tensor, kh=None) -> torch.Tensor:
    """Mean over the batch of ``||target - pred||^2 / ||target||^2`` (the network predicts the scale too)."""
    d = (pred - target).flatten(1).pow(2).sum(1)
    return (d / (target.flatten(1).pow(2).sum(1) + 1e-12)).mean()


def helmholtz_stencil(u: torch.Tensor, kh: torch.Tensor) -> torch.Tensor:
    """``h^2 (-Laplace - k^2) u`` at the interior nodes, five-point, for (B, C, H, W) fields (real and
    imaginary parts alike) and (B, 1, H, W) ``k h``: the P1 stiffness on the right-diagonal grid is the
    five-point Laplacian, the ``k^2`` mass is lumped and the absorbing boundary rows are left out. Torch
    only: the residual-aware loss needs ``A`` applied to network outputs inside autograd."""
    c = u[..., 1:-1, 1:-1]
    lap = 4 * c - u[..., 2:, 1:-1] - u[..., :-2, 1:-1] - u[..., 1:-1, 2:] - u[..., 1:-1, :-2]
    return lap - kh[..., 1:-1, 1:-1] ** 2 * c


def residual_error(pred: torch.Tensor, target: torch.Tensor, kh: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``||A (target - pred)||^2 / ||A target||^2`` with ``A`` the stencil of
    :func:`helmholtz_stencil`: the residual the predicted error would leave, relative to the one it corrects."""
    d = helmholtz_stencil(pred - target, kh).flatten(1).pow(2).sum(1)
    return (d / (helmholtz_stencil(target, kh).flatten(1).pow(2).sum(1) + 1e-12)).mean()


LOSSES = {}


def scale_free_error(pred: torch.Tensor, target: torch.Tensor, kh=None) -> torch.Tensor:
    """Mean over the batch of ``min_alpha ||target - alpha pred||^2 / ||target||^2`` for complex
    fields stored as (B, 2, H, W) real/imaginary channels, ``alpha`` complex."""
    p = torch.complex(pred[:, 0], pred[:, 1]).flatten(1)
    t = torch.complex(target[:, 0], target[:, 1]).flatten(1)
    pp = (p.abs() ** 2).sum(1) + 1e-12
    tt = (t.abs() ** 2).sum(1) + 1e-12
    pt = (p.conj() * t).sum(1)
    return (1.0 - pt.abs() ** 2 / (pp * tt)).mean()


def relative_plus_residual(pred: torch.Tensor, target: torch.Tensor, kh: torch.Tensor,
                           weight: float = 1.0) -> torch.Tensor:
    """:func:`relative_error` plus ``weight`` times :func:`residual_error`: the preconditioner scales the
    network's output by the ``alpha`` that minimizes the residual, so a predicted error that is accurate
    in norm but rough (``A`` amplifies its high frequencies) is scaled down and wasted.

    Measured (FGMRES(30), the benchmark's seed-99 media): fine-tuning the relative-loss network with this
    loss for 2500 CPU steps took learned / classical iterations from 0.59-0.71 to 0.47-0.55 at n = 128-512
    (weight 4 gave the same as 1), while a deeper network trained longer on 5x the media with the
    relative loss alone reached a lower error (0.14 vs 0.20) and saved fewer iterations (0.73-0.85)."""
    return relative_error(pred, target) + weight * residual_error(pred, target, kh)


LOSSES.update({"relative": relative_error, "scale-free": scale_free_error, "relative+residual": relative_plus_residual})


@dataclass
class HelmholtzTrainConfig:
    steps: int = 2000
    batch: int = 16
    lr: float = 2e-3
    max_seconds: float | None = None
    seed: int = 0
    channels: int = 8
    depth: int = 4
    loss: str = "relative+residual"   # or "relative", "scale-free", "cycle" (hybrid.training.helmholtz_cycle)
    residual_weight: float = 1.0
    augment: bool = True
    implicit: bool = False       # HelmholtzNetConfig.implicit of a new network
    equal_sizes: bool = False    # draw each resolution equally often (default: in proportion to its samples)
    implicit_lr_factor: float = 1.0  # learning rate of the implicit layer / that of the rest (a layer added
                                     # to a trained network starts from zero and has further to go)


def _rotate_phase(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    return torch.stack([x[:, 0] * c - x[:, 1] * s, x[:, 0] * s + x[:, 1] * c], dim=1)


def augment(r1, e, kh, rng: np.random.Generator, with_inverse: bool = False):
    """The problem's symmetries: the square with absorbing sides is invariant under the 8 rotations and
    reflections of the grid (applied to residual, error and ``k h`` together), and the equation is
    complex-linear (residual and error multiplied by one phase ``exp(i theta)`` per sample).
    ``with_inverse``: also return the inverse map, for a network output to be compared in the media's
    own orientation (:func:`hybrid.training.helmholtz_cycle.cycle_loss`)."""
    k, flip = int(rng.integers(4)), bool(rng.integers(2))
    out = []
    for t in (r1, e, kh):
        t = torch.rot90(t, k, dims=(-2, -1))
        out.append(torch.flip(t, dims=(-1,)) if flip else t)
    theta = torch.as_tensor(rng.uniform(0, 2 * np.pi, len(r1)), dtype=r1.dtype, device=r1.device)
    result = (_rotate_phase(out[0], theta), _rotate_phase(out[1], theta), out[2])
    if not with_inverse:
        return result

    def inverse(t):
        t = torch.flip(t, dims=(-1,)) if flip else t
        return _rotate_phase(torch.rot90(t, -k, dims=(-2, -1)), -theta.to(t.dtype))

    return (*result, inverse)


def train(samples: list[dict], cfg: HelmholtzTrainConfig, device="cpu", log=None, net: HelmholtzNet | None = None,
          operators: list | None = None):
    """Adam with cosine decay over ``cfg.steps`` steps on samples (a list of :func:`collect` outputs,
    one per resolution: each batch is drawn from one resolution). ``net``: start from this network
    (fine-tuning; ``cfg.channels``/``depth`` are then its own). ``loss="cycle"``
    (:func:`hybrid.training.helmholtz_cycle.cycle_loss`) needs ``operators``, one
    :class:`~hybrid.training.helmholtz_cycle.MediumOperators` per sample set, indexed by the samples'
    ``medium``. Returns ``(net, info)``."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = (net if net is not None else HelmholtzNet(HelmholtzNetConfig(cfg.channels, cfg.depth, cfg.implicit)))
    net = net.to(device).train()
    through_cycle = cfg.loss == "cycle"
    if through_cycle:
        from .helmholtz_cycle import cycle_loss

        if operators is None or len(operators) != len(samples):
            raise ValueError("loss='cycle' needs the operators of every sample set's media (MediumOperators)")
    else:
        loss_fn = LOSSES[cfg.loss]
    if cfg.loss == "relative+residual":
        loss_fn = functools.partial(loss_fn, weight=cfg.residual_weight)
    implicit = [p for name, p in net.named_parameters() if name.startswith("unet.bottleneck.")]
    rest = [p for name, p in net.named_parameters() if not name.startswith("unet.bottleneck.")]
    opt = torch.optim.Adam([{"params": rest}, {"params": implicit, "lr": cfg.lr * cfg.implicit_lr_factor}], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    data = [{k: torch.as_tensor(samples_k[k], device=device) for k in ("r1", "e", "kh")} for samples_k in samples]
    media = [np.asarray(samples_k["medium"]) if through_cycle else None for samples_k in samples]
    sizes = np.array([len(d["r1"]) for d in data], dtype=float)
    t0, losses = time.perf_counter(), []
    step = 0
    for step in range(cfg.steps):
        which = rng.choice(len(data), p=None if cfg.equal_sizes else sizes / sizes.sum())
        d = data[which]
        pick = rng.choice(len(d["r1"]), min(cfg.batch, len(d["r1"])), replace=False)
        idx = torch.as_tensor(pick, device=device)
        r1, e, kh = d["r1"][idx], d["e"][idx], d["kh"][idx]
        if through_cycle:
            ops = [operators[which][m] for m in media[which][pick]]
            r1a, _, kha, inverse = augment(r1, e, kh, rng, with_inverse=True) if cfg.augment else (r1, e, kh, None)
            pred = net(r1a, kha)
            loss = cycle_loss(inverse(pred) if inverse is not None else pred, r1, ops)
        else:
            if cfg.augment:
                r1, e, kh = augment(r1, e, kh, rng)
            loss = loss_fn(net(r1, kh), e, kh)
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


def evaluate(net, samples: dict, device="cpu", batch: int = 16, loss: str = HelmholtzTrainConfig.loss,
             operators=None) -> float:
    """Mean loss of ``net`` on held-out samples (1 = no better than predicting zero; for ``"cycle"``, with
    the samples' ``operators``: the residual left after the network's step and the second cycle, whose
    zero-network value is the second cycle's alone, not 1)."""
    if loss == "cycle" and operators is None:
        raise ValueError("evaluate(loss='cycle') needs the operators of the samples' media (MediumOperators)")
    out = []
    with torch.no_grad():
        for i in range(0, len(samples["r1"]), batch):
            sl = {k: torch.as_tensor(samples[k][i:i + batch], device=device) for k in ("r1", "e", "kh")}
            if loss == "cycle":
                from .helmholtz_cycle import cycle_loss

                ops = [operators[m] for m in np.asarray(samples["medium"][i:i + batch])]
                value = cycle_loss(net(sl["r1"], sl["kh"]), sl["r1"], ops)
            else:
                value = LOSSES[loss](net(sl["r1"], sl["kh"]), sl["e"], sl["kh"])
            out.append(float(value) * len(sl["r1"]))
    return sum(out) / len(samples["r1"])
