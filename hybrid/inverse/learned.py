"""Learned inversion of Darcy from full-field pressure, alone or as the initial guess of the adjoint.

A grid network (``unet``, ``mgno`` or ``fno`` from :mod:`hybrid.operators`) maps the pressure on the
``(n+1, n+1)`` nodes (``hybrid generate darcy``'s field ``solution``) to the log-coefficient (field
``coefficient``, trained on its logarithm: positive by construction, and the two-phase jumps become one
scale). Training adds fresh relative additive noise to every batch's input (``d + level ||d|| xi /
sqrt(K)``, the benchmark's noise model), so the estimate tolerates noisy data.

- :func:`train_inverse_map`: train on one or more ``hybrid generate darcy`` files, write a checkpoint (the
  toolkit's format: model config, weights, normalizer, plus ``task = "darcy-inverse"`` and the grid size);
- :class:`LearnedInverse`: load it (refusing checkpoints of another kind or grid with a clear error) and
  estimate the nodal coefficient of a :class:`solvers.DarcyFamily` from nodal pressure data;
- :func:`invert_learned` (the network alone) and :func:`invert_hybrid` (the estimate as ``a0`` of
  :func:`invert_darcy`, same regularization and discrepancy stop; the network's time is counted in
  ``seconds``), both returning an :class:`InversionResult`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.noise import additive_noise
from .darcy_inversion import InversionResult, invert_darcy, mass_matrix, relative_l2_error

TASK = "darcy-inverse"
#: models that map a grid to the same grid (the inverse map here is pressure grid -> coefficient grid)
GRID_MODELS = ("unet", "mgno", "fno")
TARGETS = ("log", "linear")


class LearnedInverseError(ValueError):
    """A checkpoint that cannot serve as the Darcy inverse map for this problem."""


@dataclass
class InverseTrainConfig:
    model: str = "unet"
    model_config: dict = field(default_factory=lambda: {"channels": 16, "depth": 3})
    epochs: int = 20
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-5
    noise: float = 0.01            # relative additive noise on the training inputs (fresh every batch)
    target: str = "log"            # learn log(a) ("log") or a itself ("linear")
    n_val: int = 100               # held out from the end of the (shuffled) training pool
    seed: int = 0

    def __post_init__(self):
        if self.model not in GRID_MODELS:
            raise ValueError(f"model {self.model!r}: the inverse map needs a grid-to-grid model, one of "
                             f"{', '.join(GRID_MODELS)}")
        if self.target not in TARGETS:
            raise ValueError(f"target {self.target!r}: use one of {', '.join(TARGETS)}")
        for name in ("epochs", "batch_size", "n_val"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("lr", "weight_decay", "noise"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0) or (name == "lr" and v == 0):
                raise ValueError(f"{name} must be a finite {'positive' if name == 'lr' else 'non-negative'} number, "
                                 f"got {v!r}")


def load_pairs(files, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(solution, coefficient)`` tensors ``(N, 1, ny, nx)`` from ``hybrid generate darcy`` files."""
    from ..data import FieldDataset

    xs, ys = [], []
    for f in files:
        ds = FieldDataset(f, ("solution",), ("coefficient",), dtype=torch.float32)
        if limit is not None:
            ds = FieldDataset(f, ("solution",), ("coefficient",), indices=range(min(limit, len(ds))),
                              dtype=torch.float32)
        x, y = ds.arrays()
        xs.append(x)
        ys.append(y)
    shapes = {tuple(x.shape[-2:]) for x in xs}
    if len(shapes) != 1:
        raise ValueError(f"training files have different grids: {sorted(shapes)}")
    return torch.cat(xs), torch.cat(ys)


def _to_target(y: torch.Tensor, target: str) -> torch.Tensor:
    if target == "log":
        if not bool((y > 0).all()):
            raise ValueError("target 'log' needs a positive coefficient in every training sample")
        return torch.log(y)
    return y


def train_inverse_map(files, out, cfg: InverseTrainConfig | None = None, log=print, limit: int | None = None) -> dict:
    """Train the pressure -> coefficient map on ``files`` and save the checkpoint ``out`` (``.pt``).

    The last ``cfg.n_val`` samples of a seeded shuffle are the validation set (noisy at ``cfg.noise``,
    fixed); the best epoch by validation relative L2 error of the coefficient is saved. Returns a summary.
    """
    from ..data import DataProcessor
    from ..operators import build, config_dict
    from ..training import checkpoint
    from ..training.losses import relative_l2

    cfg = cfg or InverseTrainConfig()
    x, y = load_pairs(files, limit)
    if len(x) <= cfg.n_val:
        raise ValueError(f"{len(x)} samples: need more than n_val={cfg.n_val} (one to train on)")
    g = torch.Generator().manual_seed(cfg.seed)
    perm = torch.randperm(len(x), generator=g)
    tr, va = perm[:-cfg.n_val], perm[-cfg.n_val:]
    xtr, ytr = x[tr], _to_target(y[tr], cfg.target)
    xva, yva = additive_noise(x[va], cfg.noise, torch.Generator().manual_seed(cfg.seed + 1)), y[va]
    torch.manual_seed(cfg.seed)
    model = build(cfg.model, {"in_channels": 1, "out_channels": 1, **cfg.model_config})
    processor = DataProcessor(1, 1).fit(xtr, ytr)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(len(xtr) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    n = int(x.shape[-1]) - 1
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    history = {"epoch": [], "train_loss": [], "val_rel_l2": [], "seconds": []}
    best, t0 = float("inf"), time.perf_counter()

    def estimate(xb):
        return _from_target(processor.postprocess(model(processor.preprocess(xb)[0])), cfg.target)

    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(xtr), generator=g)
        total = 0.0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            xb = additive_noise(xtr[idx], cfg.noise, g)
            _, yn = processor.preprocess(xb, ytr[idx])
            pred = model(processor.preprocess(xb)[0])
            loss = ((pred - yn) ** 2).mean()
            if not torch.isfinite(loss):
                raise ValueError(f"non-finite training loss at epoch {epoch}; lower the learning rate "
                                 f"(lr={cfg.lr:g})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        with torch.no_grad():
            val = float(torch.cat([relative_l2(estimate(xva[i:i + 50]), yva[i:i + 50])
                                   for i in range(0, len(xva), 50)]).median())
        history["epoch"].append(epoch)
        history["train_loss"].append(total / len(xtr))
        history["val_rel_l2"].append(val)
        history["seconds"].append(time.perf_counter() - t0)
        if log:
            log(f"epoch {epoch}: train loss {total / len(xtr):.4f}, val rel. L2 (median) {val:.4f}, "
                f"{time.perf_counter() - t0:.0f} s")
        if val < best:
            best = val
            meta = {"inputs": ["solution"], "outputs": ["coefficient"], "target": cfg.target, "n": n,
                    "train_noise": cfg.noise, "noise_model": "additive", "files": [str(f) for f in files],
                    "samples": len(x), "epoch": epoch, "val_rel_l2_median": val}
            checkpoint.save(out, cfg.model, model, processor,
                            {"task": TASK, "inverse": meta,
                             "train": {"config": {**asdict(cfg)}, "history": history}},
                            config=config_dict(model))
    return {"checkpoint": str(out), "best_val_rel_l2_median": best, "train_s": time.perf_counter() - t0,
            "params": sum(p.numel() for p in model.parameters()), "n": n, "samples": len(x)}


def _from_target(t: torch.Tensor, target: str) -> torch.Tensor:
    return torch.exp(t) if target == "log" else t


class LearnedInverse:
    """A trained pressure -> coefficient network, checked for this use when loaded.

    >>> est = LearnedInverse.from_checkpoint("bench/models/darcy_inverse_unet_n64.pt")  # doctest: +SKIP
    >>> a = est(problem.data, problem.family)                                              # doctest: +SKIP
    """

    #: torch CPU threads for inference: one grid is too small to gain from more, and on busy (shared) cores
    #: multi-threaded inference measured 2.4 s against 13 ms single-threaded at n = 64
    threads = 1

    def __init__(self, model, processor, meta: dict, name: str = "", path: str = ""):
        self.model, self.processor, self.meta, self.name, self.path = model.eval(), processor, meta, name, path
        self.n, self.target = int(meta["n"]), meta.get("target", "log")

    @classmethod
    def from_checkpoint(cls, path, device: str = "cpu") -> "LearnedInverse":
        from ..training import checkpoint

        path = Path(path)
        if path.is_dir():
            raise LearnedInverseError(f"--model {path} is a directory; give the inverse-map checkpoint file (.pt), "
                                      f"e.g. bench/models/darcy_inverse_unet_n64.pt")
        payload = checkpoint.read_payload(path, device)  # FileNotFoundError / CheckpointError for foreign files
        name = payload.get("model")
        if payload.get("task") != TASK:
            task = payload.get("task")
            what = f"a {task} checkpoint" if task else "an operator checkpoint from hybrid train"
            fields = payload.get("train", {}).get("config", {})
            io = "" if task else f" trained {fields.get('inputs', ['coefficient'])} -> {fields.get('outputs', ['solution'])}"
            raise LearnedInverseError(f"{path} is {what} ({name}{io}), not a Darcy inverse map "
                                      f"(pressure -> coefficient); train one with hybrid.inverse.train_inverse_map "
                                      f"(scripts/train_darcy_inverse.py)")
        if name not in GRID_MODELS:
            raise LearnedInverseError(f"{path}: model {name!r} is not a grid-to-grid model ({', '.join(GRID_MODELS)})")
        cfg = payload.get("config", {})
        if cfg.get("in_channels") != 1 or cfg.get("out_channels") != 1:
            raise LearnedInverseError(f"{path}: the inverse map reads 1 channel (pressure) and writes 1 "
                                      f"(coefficient); this {name} has {cfg.get('in_channels')} -> "
                                      f"{cfg.get('out_channels')}")
        meta = payload.get("inverse") or {}
        if "n" not in meta or meta.get("target", "log") not in TARGETS:
            raise LearnedInverseError(f"{path}: incomplete inverse-map metadata {meta!r}")
        _, model, processor, _ = checkpoint.load(path, device)
        return cls(model, processor, meta, name=name, path=str(path))

    @torch.no_grad()
    def predict_grid(self, u_grid) -> np.ndarray:
        """Coefficient grid(s) from pressure grid(s) ``(ny, nx)`` or ``(N, ny, nx)``."""
        u = torch.as_tensor(np.asarray(u_grid), dtype=torch.float32)
        single = u.ndim == 2
        if single:
            u = u[None]
        if u.ndim != 3 or tuple(u.shape[-2:]) != (self.n + 1, self.n + 1):
            raise LearnedInverseError(f"{self.path or 'the model'} was trained on ({self.n + 1}, {self.n + 1}) "
                                      f"pressure grids (n = {self.n}); got shape {tuple(np.shape(u_grid))}: "
                                      f"use --n {self.n} or a model trained at this n")
        threads = torch.get_num_threads()
        try:
            if self.threads:
                torch.set_num_threads(self.threads)
            xn, _ = self.processor.preprocess(u[:, None])
            a = _from_target(self.processor.postprocess(self.model(xn)), self.target)[:, 0].double().numpy()
        finally:
            torch.set_num_threads(threads)
        return a[0] if single else a

    def __call__(self, data, family) -> np.ndarray:
        """Nodal coefficient of ``family`` (a unit-square ``DarcyFamily``) from nodal pressure ``data``."""
        from meshes import GridView

        d = np.asarray(data, dtype=float)
        if d.ndim != 1:
            raise LearnedInverseError(f"pressure data must be nodal values (a vector), got shape {d.shape}")
        try:
            view = GridView(family.mesh)
        except Exception as e:
            raise LearnedInverseError(f"the learned inverse map needs a structured unit-square mesh: {e}") from None
        if d.size != view.shape[0] * view.shape[1]:
            raise LearnedInverseError(f"pressure data has {d.size} values; the mesh has {view.shape[0]} x "
                                      f"{view.shape[1]} nodes (the learned map needs full-field data, "
                                      f"--sensors all)")
        return np.maximum(view.to_dofs(self.predict_grid(view.to_grid(d))), 1e-8)


def _as_model(model) -> LearnedInverse:
    return model if isinstance(model, LearnedInverse) else LearnedInverse.from_checkpoint(model)


def _check_full_field(observe):
    if not (isinstance(observe, str) and observe == "all"):
        raise LearnedInverseError("the learned inverse map reads the pressure at every node; sensor data "
                                  "(--sensors K) is not supported, use --method adjoint")


def learned_estimate(observations, family, model, observe="all") -> tuple[np.ndarray, float]:
    """``(nodal coefficient, seconds)`` of the network on the data (grid conversion included)."""
    _check_full_field(observe)
    t = time.perf_counter()
    a = _as_model(model)(observations, family)
    return a, time.perf_counter() - t


def invert_learned(observations, family, model, *, observe="all", solver=None, truth=None,
                   noise_level: float | None = None, noise_norm: float | None = None, tau: float = 1.1,
                   callback=None, **_ignored) -> InversionResult:
    """The network's estimate alone, as an :class:`InversionResult` (iteration 0 only). ``seconds`` is the
    network's time; the data misfit (one forward solve, for the report) is computed outside it."""
    from .darcy_solver import DarcySolver

    model = _as_model(model)
    a, seconds = learned_estimate(observations, family, model, observe)
    if solver is None or isinstance(solver, str):
        solver = DarcySolver(family, solver or "direct-superlu")
    d = np.asarray(observations, dtype=float)
    f0 = solver.counts.forward
    u, _ = solver.solve(a)
    res = estimate_result(a, u, d, seconds, solver.counts.forward - f0, model.path, noise_level, noise_norm, tau,
                          None if truth is None else (family.nodal(truth), mass_matrix(solver)))
    if callback is not None:
        callback({k: v[0] for k, v in res.history.items()})
    return res


def estimate_result(a, u, d, seconds: float, forward_solves: int, model_path: str, noise_level=None, noise_norm=None,
                    tau: float = 1.1, truth_and_mass=None) -> InversionResult:
    """A learned estimate ``a`` (with its predicted data ``u`` for the data ``d``) as an :class:`InversionResult`
    (iteration 0 only; ``seconds`` the network's); shared by the Darcy and EIT learned inversions."""
    from .noise import check_noise_level

    dnorm = float(np.linalg.norm(d))
    rnorm = float(np.linalg.norm(u - d))
    if noise_level is not None:
        noise_norm = check_noise_level(noise_level) * dnorm
    target = tau * noise_norm / dnorm if noise_norm else None
    rec = {"iteration": 0, "misfit": rnorm / dnorm, "regularization": None, "objective": None,
           "forward_solves": forward_solves}
    if truth_and_mass is not None:
        rec["rel_error"] = relative_l2_error(a, *truth_and_mass)
    history = {k: [v] for k, v in rec.items()}
    return InversionResult(a=a, m=np.log(a), u=u, history=history, iterations=0, forward_solves=0,
                           adjoint_solves=0, seconds=seconds, stopped="learned", misfit=rnorm / dnorm,
                           target=target, extra={"model": model_path, "network_seconds": seconds})


def keep_better(res: InversionResult, a0, t_net: float, model_path: str, forward=None) -> InversionResult:
    """``res`` (an adjoint run started from the estimate ``a0``) with the network's time added; if its final
    data misfit is worse than the estimate's, the estimate instead (``stopped = "kept-learned"``; ``forward``
    recomputes its predicted data)."""
    res.seconds += t_net
    res.extra.update(model=model_path, network_seconds=t_net, misfit_learned=res.history["misfit"][0])
    if res.misfit > res.history["misfit"][0]:
        h = {k: v + [v[0]] for k, v in res.history.items()}
        h["iteration"][-1] = res.iterations + 1
        res.a, res.m, res.history, res.misfit, res.stopped = a0, np.log(a0), h, h["misfit"][0], "kept-learned"
        res.u = forward(a0) if forward is not None else None
    return res


def invert_hybrid(observations, family, model, *, observe="all", **invert_kwargs) -> InversionResult:
    """:func:`invert_darcy` started from the network's estimate (``a0``), same options otherwise.

    ``seconds`` is the network's time plus the optimization's. The adjoint only refines: if the final
    iterate fits the data worse than the estimate it started from (possible when a rough estimate's
    regularization term dominates the objective), the estimate is returned (``stopped = "kept-learned"``)."""
    if "a0" in invert_kwargs:
        raise TypeError("invert_hybrid takes its initial guess from the network; do not pass a0")
    model = _as_model(model)
    a0, t_net = learned_estimate(observations, family, model, observe)
    res = invert_darcy(observations, family, observe=observe, a0=a0, **invert_kwargs)
    solver = invert_kwargs.get("solver")
    forward = (lambda a: solver.solve(a)[0]) if solver is not None and not isinstance(solver, str) else None
    return keep_better(res, a0, t_net, model.path, forward)
