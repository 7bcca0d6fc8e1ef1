"""Training a linear preconditioner for what the solver sees, not for regression (issue 8, deliverable 3).

A model ``B`` (first target: :class:`hybrid.operators.SymmetricMgConv` with its operators set by the
coefficient; any module mapping a residual grid, plus coefficient channels, to a correction works) is
trained on random Darcy matrices ``A(a)`` (two-phase ``{3, 12}``, contrast ``{1, 1e4}``, log-normal
coefficients from :mod:`solvers.sampling`; matrices from :class:`solvers.DarcyFamily`, one sparse
product per coefficient) and random errors (smooth / rough Gaussian random fields, white noise), with

- ``loss="energy"``: ``mean ||(I - B A) e||_A^2 / ||e||_A^2`` (:func:`hybrid.training.energy.energy_loss`);
- ``loss="unrolled"``: the energy-norm error after ``unroll`` steps of PCG (or Richardson) written in
  torch, per-step contraction ``(||e_k||_A^2 / ||e_0||_A^2)^(1/k)``, so training targets the Krylov
  method's own convergence.

``B`` acts exactly as :class:`hybrid.precond.NeuralPreconditioner` applies it at solve time: dofs in
grid order (``GridView``), Dirichlet rows solved by their diagonal, each residual scaled to unit norm
(a no-op for a linear model). Checkpoints are toolkit checkpoints (:mod:`hybrid.training.checkpoint`:
``state_dict`` + config, ``torch.load(weights_only=True)``); :func:`load_model` rebuilds the model and
``NeuralPreconditioner.from_checkpoint(path)`` makes a solver preconditioner of it.

>>> cfg = PrecondTrainConfig(n=8, samples=3, epochs=1, probes=4, validation=1)
>>> model, info = train_preconditioner(cfg, log=None)
>>> info["val_loss"] <= info["val_loss_untrained"] + 1e-6
True
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from ..operators import SymmetricMgConv
from . import checkpoint, rundir
from .energy import energy_loss, random_errors, sparse_csr, unrolled_loss
from .trainer import TrainingError

#: preconditioner models by checkpoint name: class and the constructor arguments its config records
PRECOND_MODELS = {"symmetric-mgconv": (SymmetricMgConv, ("max_levels", "coarsest", "face_weights"))}
LOSSES = ("energy", "unrolled")
TRANSFORMS = {None: None, "log": np.log}


@dataclass
class GridSystem:
    """One SPD matrix in grid (row-major) order as torch tensors: what a training step needs.

    ``A`` sparse CSR (int32 indices), ``free`` 1 on unconstrained nodes and 0 on Dirichlet ones,
    ``diag`` the diagonal, ``coefficient`` the coefficient grid ``(ny, nx)`` (or ``None``), ``shape``.
    """

    A: torch.Tensor
    free: torch.Tensor
    diag: torch.Tensor
    coefficient: torch.Tensor | None
    shape: tuple

    @classmethod
    def from_matrix(cls, A, grid, coefficient=None, constrained=None, device="cpu", dtype=torch.float32):
        """From a SciPy matrix in dof order and a ``meshes.GridView`` (or a shape ``(ny, nx)`` when dofs are
        already in grid order); ``coefficient`` as nodal values (dof order) or a grid; ``constrained``:
        Dirichlet dofs (default: the identity rows of ``A``)."""
        from ..precond.neural import identity_rows

        A = sp.csr_matrix(A)
        if isinstance(grid, tuple):
            shape, dof_of_grid = (int(grid[0]), int(grid[1])), np.arange(grid[0] * grid[1])
        else:
            shape, dof_of_grid = tuple(grid.shape), np.asarray(grid.dof_of_grid)
        if shape[0] * shape[1] != A.shape[0]:
            raise ValueError(f"GridSystem: the grid {shape} has {shape[0] * shape[1]} nodes, the matrix "
                             f"{A.shape[0]} rows")
        constrained = identity_rows(A) if constrained is None else np.asarray(constrained, dtype=np.int64)
        free = np.ones(A.shape[0])
        free[constrained] = 0.0
        Ag = A[dof_of_grid][:, dof_of_grid]
        coef = None
        if coefficient is not None:
            a = np.asarray(coefficient, dtype=float)
            coef = a[dof_of_grid].reshape(shape) if a.ndim == 1 else a.reshape(shape)
            coef = torch.as_tensor(coef, dtype=dtype, device=device)
        t = lambda v: torch.as_tensor(np.asarray(v), dtype=dtype, device=device)  # noqa: E731
        return cls(sparse_csr(Ag, device, dtype), t(free[dof_of_grid]), t(Ag.diagonal()), coef, shape)


def coefficient_mode(model, mode: str = "auto") -> str:
    """How ``model`` sees the coefficient, as :class:`NeuralPreconditioner` decides it: ``"set"``
    (``set_coefficient``), ``"input"`` (extra channels when ``config.in_channels > 1``) or ``"ignore"``."""
    if mode != "auto":
        return mode
    if hasattr(model, "set_coefficient"):
        return "set"
    cin = getattr(getattr(model, "config", None), "in_channels", 1)
    return "input" if cin and cin > 1 else "ignore"


def bind(model, system: GridSystem, mode: str = "auto", transform=None):
    """``apply_B(R)`` for residual rows ``R`` of shape ``(k, ny * nx)`` (grid order): the model on the
    unit-norm free part, scaled back; Dirichlet rows ``r_i / A_ii`` (as ``NeuralPreconditioner.apply``)."""
    mode = coefficient_mode(model, mode)
    coef = system.coefficient
    if coef is not None and transform is not None:
        coef = torch.as_tensor(transform(coef.detach().cpu().numpy()), dtype=coef.dtype, device=coef.device)
    if mode == "set":
        model.set_coefficient(coef)
    ny, nx = system.shape

    def apply_B(R):
        Rf = R * system.free
        scale = Rf.norm(dim=1, keepdim=True)
        X = (Rf / scale.clamp_min(torch.finfo(R.dtype).tiny)).reshape(-1, 1, ny, nx)
        if mode == "input" and coef is not None:
            X = torch.cat([X, coef.reshape(1, -1, ny, nx).expand(X.shape[0], -1, -1, -1)], dim=1)
        Y = model(X).reshape(R.shape[0], -1)
        return Y * scale * system.free + (1.0 - system.free) * R / system.diag
    return apply_B


@dataclass
class PrecondTrainConfig:
    n: int = 32                       # P1 on the unit square with n x n cells ((n+1)^2 nodes)
    samples: int = 64                 # training coefficient fields, split over ``kinds``
    kinds: tuple = ("two-phase", "contrast", "log-normal")
    validation: int = 6               # held-out fields (indices after the training ones)
    seed: int = 1000                  # field seed (the benchmarks use seed 0)
    errors: tuple = ("smooth", "rough", "white")
    probes: int = 12                  # random errors per coefficient and step
    loss: str = "energy"              # or "unrolled"
    unroll: int = 4                   # iterations seen by the unrolled loss
    unroll_method: str = "pcg"        # or "richardson"
    epochs: int = 20
    batch_size: int = 4               # coefficient fields per optimizer step
    lr: float = 3e-3
    model: str = "symmetric-mgconv"
    model_config: dict = field(default_factory=lambda: {"face_weights": "p1"})
    coefficient_transform: str | None = None   # "log" for models that take the coefficient as input

    def __post_init__(self):
        checks = [(self.n >= 2, "n", "at least 2"), (self.samples >= 1, "samples", "at least 1"),
                  (self.validation >= 1, "validation", "at least 1"), (self.probes >= 1, "probes", "at least 1"),
                  (self.loss in LOSSES, "loss", f"one of {', '.join(LOSSES)}"),
                  (self.unroll >= 1, "unroll", "at least 1"),
                  (self.unroll_method in ("pcg", "richardson"), "unroll_method", "pcg or richardson"),
                  (self.epochs >= 0, "epochs", "non-negative"), (self.batch_size >= 1, "batch_size", "at least 1"),
                  (math.isfinite(self.lr) and self.lr > 0, "lr", "positive and finite"),
                  (self.model in PRECOND_MODELS, "model", f"one of {', '.join(PRECOND_MODELS)}"),
                  (self.coefficient_transform in TRANSFORMS, "coefficient_transform", "None or 'log'")]
        for ok, name, what in checks:
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r}: must be {what}")

    def plain(self) -> dict:
        return json.loads(json.dumps(asdict(self)))


def build_model(name: str = "symmetric-mgconv", config: dict | None = None):
    cls, keys = PRECOND_MODELS[name]
    bad = set(config or {}) - set(keys)
    if bad:
        raise ValueError(f"bad config for {name}: unknown keys {sorted(bad)}; valid: {', '.join(keys)}")
    return cls(**(config or {}))


def model_config(model, name: str) -> dict:
    return {k: getattr(model, k) for k in PRECOND_MODELS[name][1]}


def darcy_systems(n: int, kinds, indices, seed: int, device="cpu", dtype=torch.float32):
    """``GridSystem``s of P1 Darcy on the unit square (zero Dirichlet data all round) for coefficient
    fields ``make_field(kind, seed=seed, index=i)``; also returns ``(A, a_nodal, view, constrained)`` per
    system for solver checks."""
    import meshes
    from solvers import DarcyFamily
    from solvers.sampling import make_field

    mesh = meshes.unit_square(n)
    family, view = DarcyFamily(mesh), meshes.GridView(mesh)
    constrained = family.template.constrained
    systems, raw = [], []
    for kind, i in zip(kinds, indices):
        a = family.nodal(make_field(kind, seed=seed, index=int(i)))
        A = family.matrix(a)
        systems.append(GridSystem.from_matrix(A, view, a, constrained, device, dtype))
        raw.append((A, a, view, constrained))
    return systems, raw


def _fields(cfg: PrecondTrainConfig, count: int, start: int):
    kinds = [cfg.kinds[i % len(cfg.kinds)] for i in range(count)]
    return kinds, [start + i // len(cfg.kinds) for i in range(count)]


def loss_on(model, system: GridSystem, cfg: PrecondTrainConfig, generator, transform=None) -> torch.Tensor:
    """The configured loss of ``model`` on one system with ``cfg.probes`` fresh random errors."""
    apply_B = bind(model, system, "auto", transform)
    E = random_errors(system.shape, system.free, cfg.probes, cfg.errors, generator, system.A.dtype)
    if cfg.loss == "energy":
        return energy_loss(apply_B, system.A, E)
    return unrolled_loss(apply_B, system.A, E, cfg.unroll, cfg.unroll_method)


def _evaluate(model, systems, cfg, transform) -> float:
    g = torch.Generator().manual_seed(cfg.seed + 7)
    with torch.no_grad():
        return float(np.mean([loss_on(model, s, cfg, g, transform).item() for s in systems]))


def _cg_iterations(model, raw, device, transform, rtol=1e-8) -> list[int]:
    from solvers.linear import CG, LinearProblem, PrecondParams, solve
    from ..precond import NeuralPreconditioner

    its = []
    for A, a, view, constrained in raw:
        b = np.ones(A.shape[0])
        b[constrained] = 0.0
        p = PrecondParams(coefficient=a, grid=view, constrained=constrained, device=str(device))
        pc = NeuralPreconditioner(model, device=device, coefficient_transform=transform)
        sol = solve(LinearProblem(A, b, p=p), CG(precond=pc), rtol=rtol, maxiter=2000)
        its.append(sol.iterations if sol.converged else -1)
    model.train()
    return its


def save(path, model, cfg: PrecondTrainConfig, extra: dict | None = None) -> Path:
    """A toolkit checkpoint (``task="precond"``, training config under ``train.config``)."""
    return checkpoint.save(path, cfg.model, model, None, {"task": "precond", **(extra or {})},
                           config=model_config(model, cfg.model))


def load_model(path, device="cpu"):
    """``(model, payload)`` from a checkpoint written by :func:`save` (``torch.load(weights_only=True)``)."""
    payload = checkpoint.read_payload(path, device)
    if payload.get("task") != "precond" or payload.get("model") not in PRECOND_MODELS:
        raise checkpoint.CheckpointError(f"{path} is not a preconditioner checkpoint (model {payload.get('model')!r}, "
                                         f"task {payload.get('task')!r}); train one with `hybrid train precond`")
    try:
        model = build_model(payload["model"], payload["config"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        raise checkpoint.CheckpointError(f"{path}: weights do not match the recorded model/config ({e})") from None
    return model.to(device).eval(), payload


def train_preconditioner(cfg: PrecondTrainConfig | None = None, out=None, device="cpu", log=print, model=None,
                         progress: bool = False) -> tuple[torch.nn.Module, dict]:
    """Train ``model`` (default: ``build_model(cfg.model, cfg.model_config)``) on ``cfg``; with ``out``
    write ``out/last.pt`` every epoch, ``out/best.pt`` at the best validation loss, and
    ``out/summary.json``. Returns ``(model with the best weights, summary)``; the summary holds the
    validation loss and CG iterations (rtol 1e-8, f = 1) before and after training.

    A non-finite loss or weight raises :class:`TrainingError` before anything of it is saved."""
    cfg = cfg or PrecondTrainConfig()
    device = torch.device(device)
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    model = (model if model is not None else build_model(cfg.model, cfg.model_config)).to(device)
    transform = TRANSFORMS[cfg.coefficient_transform]
    systems, _ = darcy_systems(cfg.n, *_fields(cfg, cfg.samples, 0), cfg.seed, device)
    val, val_raw = darcy_systems(cfg.n, *_fields(cfg, cfg.validation, cfg.samples), cfg.seed, device)
    out = None if out is None else Path(out)
    if out is not None:
        rundir.check_new_run(out, cfg.model, model_config(model, cfg.model))
        out.mkdir(parents=True, exist_ok=True)
    untrained = {"val_loss_untrained": _evaluate(model, val, cfg, transform),
                 "val_energy_untrained": _evaluate(model, val, _as_energy(cfg), transform),
                 "val_cg_untrained": _cg_iterations(model, val_raw, device, transform)}
    steps_per_epoch = math.ceil(len(systems) / cfg.batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs * steps_per_epoch))
    gen = torch.Generator().manual_seed(cfg.seed)
    history = {"epoch": [], "train_loss": [], "val_loss": [], "seconds": []}
    best, best_state = untrained["val_loss_untrained"], {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.train()
    from tqdm import tqdm

    for epoch in tqdm(range(cfg.epochs), desc="train precond", disable=not progress):
        perm = torch.randperm(len(systems), generator=gen).tolist()
        total = 0.0
        for i in range(0, len(perm), cfg.batch_size):
            batch = perm[i:i + cfg.batch_size]
            loss = sum(loss_on(model, systems[j], cfg, gen, transform) for j in batch) / len(batch)
            if not torch.isfinite(loss):
                raise TrainingError(f"train precond: non-finite loss ({loss.item()}) at epoch {epoch}; stopped without "
                                    f"saving these weights; lower the learning rate (lr={cfg.lr:g})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(batch)
        bad = [k for k, p in model.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise TrainingError(f"train precond: non-finite weights ({', '.join(bad[:3])}) after epoch {epoch}")
        v = _evaluate(model, val, cfg, transform)
        for k, x in (("epoch", epoch), ("train_loss", total / len(perm)), ("val_loss", v),
                     ("seconds", time.perf_counter() - t0)):
            history[k].append(x)
        if log:
            log(f"epoch {epoch:3d} train {cfg.loss} loss {total / len(perm):.4f}, validation {v:.4f} "
                f"(untrained {untrained['val_loss_untrained']:.4f}) {time.perf_counter() - t0:.0f} s")
        state = {"train": {"config": cfg.plain(), "epoch": epoch, "history": history, "best": min(best, v)}}
        if out is not None:
            save(out / "last.pt", model, cfg, state)
        if v < best:
            best, best_state = v, {k: t.detach().clone() for k, t in model.state_dict().items()}
            if out is not None:
                save(out / "best.pt", model, cfg, state)
    model.load_state_dict(best_state)
    summary = {"model": cfg.model, "params": sum(p.numel() for p in model.parameters()), **untrained,
               "val_loss": _evaluate(model, val, cfg, transform),
               "val_energy": _evaluate(model, val, _as_energy(cfg), transform),
               "val_cg": _cg_iterations(model, val_raw, device, transform),
               "train_s": time.perf_counter() - t0, "device": str(device), "config": cfg.plain()}
    if out is not None:
        if not (out / "best.pt").exists():  # no epoch improved on the untrained model: keep it as the best
            save(out / "best.pt", model, cfg, {"train": {"config": cfg.plain(), "epoch": -1, "history": history,
                                                         "best": best}})
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    model.eval()
    return model, summary


def _as_energy(cfg: PrecondTrainConfig) -> PrecondTrainConfig:
    return PrecondTrainConfig(**{**asdict(cfg), "loss": "energy"})
