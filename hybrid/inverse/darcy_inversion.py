"""``invert_darcy``: recover the Darcy coefficient from observations of the pressure by adjoint-based
optimization.

The unknown is the log-coefficient ``m`` (``a = exp(m)``: positive by construction) and the objective

    J(m) = 1/2 ||H u(exp m) - d||^2 / ||d||^2 + weight * R(m)

(the misfit relative to the data, so one ``weight`` means the same for any number of observations;
``R`` from :mod:`hybrid.inverse.regularization`). Its gradient is exact: torch's autograd through
:func:`differentiable_solve` (one forward and one adjoint solve with the same factorization per
evaluation) and through the regularizer. Optimizers: scipy's L-BFGS-B (``"lbfgs"``, bounds keep
``a`` in ``[1e-8, 1e8]``) or torch's Adam (``"adam"``). With a noise level, the iteration stops by
Morozov's discrepancy principle at the first iterate with ``||H u - d|| <= tau * noise_norm``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .darcy_solver import DarcySolver
from .differentiable import differentiable_solve
from .noise import check_noise_level
from .observations import AllNodes, Observation, Sensors
from .optimize import LOG_BOUNDS, OPTIMIZERS, minimize_log
from .regularization import make_regularizer



@dataclass
class InversionResult:
    """The reconstruction and how it was reached.

    ``history`` has one entry per iterate (iteration 0 is the initial guess): ``iteration``, ``misfit``
    (``||H u - d|| / ||d||``), ``regularization`` (``R(m)``), ``objective``, ``forward_solves``, and
    ``rel_error`` (relative L2 error of ``a``) when the truth was given. ``stopped``: ``"discrepancy"``,
    ``"converged"`` or ``"maxiter"``."""

    a: np.ndarray
    m: np.ndarray
    u: np.ndarray
    history: dict
    iterations: int
    forward_solves: int
    adjoint_solves: int
    seconds: float
    stopped: str
    misfit: float
    target: float | None
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Scalars for a JSON file."""
        h = self.history
        out = dict(iterations=self.iterations, forward_solves=self.forward_solves,
                   adjoint_solves=self.adjoint_solves, seconds=self.seconds, stopped=self.stopped,
                   misfit=self.misfit, target_misfit=self.target, regularization=h["regularization"][-1])
        if "rel_error" in h:
            out["rel_l2_coeff"] = h["rel_error"][-1]
        return {**out, **self.extra}


def relative_l2_error(a: np.ndarray, truth: np.ndarray, mass) -> float:
    """``||a - truth||_{L2} / ||truth||_{L2}`` with the P1 mass matrix (exact for nodal fields)."""
    e = a - truth
    return float(np.sqrt(e @ (mass @ e) / (truth @ (mass @ truth))))


def mass_matrix(solver: DarcySolver):
    asm = solver.family.asm
    return asm.matrix(asm.mass_operator() @ np.ones(asm.n), eliminate=False)


def _observation(observe, solver: DarcySolver) -> Observation:
    if isinstance(observe, Observation):
        return observe
    if isinstance(observe, str):
        if observe == "all":
            return AllNodes(solver.ndofs)
        raise ValueError(f"observe must be 'all', sensor points (K, 2) or an Observation, got {observe!r}")
    return Sensors(solver, observe)


def constant_fit(solver: DarcySolver, obs: Observation, d: np.ndarray) -> float:
    """The constant coefficient ``c`` whose solution fits ``d`` best: for constant ``a = c``,
    ``u = u_h + w / c`` (``u_h`` carries the Dirichlet data, ``w`` solves with ``a = 1`` and zero boundary
    values), so ``1/c`` is a one-dimensional least-squares fit (one factorization, two solves)."""
    ones = np.ones(solver.ndofs)
    u1, setup = solver.solve(ones)
    free = solver.free
    if np.any(solver.family.g):
        w = solver._run(setup, solver.family.F * free, "forward")
        solver.counts.forward += 1
        u_h = u1 - w
    else:
        w, u_h = u1, np.zeros_like(u1)
    Hw, r = obs(w), d - obs(u_h)
    s = float(Hw @ r) / float(Hw @ Hw) if float(Hw @ Hw) > 0 else 0.0
    return 1.0 / s if s > 0 and np.isfinite(1.0 / s) else 1.0


def _positive_int(name, value):
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_inversion_settings(dnorm, weight, tau, maxiter, noise_level=None, noise_norm=None):
    """Checked ``(maxiter, discrepancy target)`` shared by the Darcy and EIT drivers: the weight, ``tau``
    and ``maxiter`` named when wrong, and the target ``tau * noise norm`` (relative ``noise_level`` times
    ``||d||``, or an absolute ``noise_norm``; ``None`` without noise)."""
    if not (np.isfinite(weight) and weight >= 0):
        raise ValueError(f"regularization weight must be finite and non-negative, got {weight!r}")
    if not (np.isfinite(tau) and tau >= 1):
        raise ValueError(f"discrepancy factor tau must be >= 1 (1.1 is usual), got {tau!r}")
    maxiter = _positive_int("maxiter", maxiter)
    if noise_level is not None and noise_norm is not None:
        raise ValueError("give noise_level (relative) or noise_norm (absolute), not both")
    if noise_level is not None:
        noise_norm = check_noise_level(noise_level) * dnorm
    elif noise_norm is not None:
        noise_norm = check_noise_level(noise_norm)
    return maxiter, (tau * noise_norm if noise_norm else None)


def invert_darcy(observations, family, *, observe="all", noise_level: float | None = None,
                 noise_norm: float | None = None, tau: float = 1.1, reg: str = "h1", weight: float = 1e-5,
                 optimizer: str = "lbfgs", a0=None, m_ref=None, maxiter: int = 200, lr: float = 0.05,
                 solver: DarcySolver | str | None = None, truth=None, tv_eps: float = 1e-2,
                 gtol: float = 1e-10, callback=None) -> InversionResult:
    """Recover the coefficient ``a`` of ``family`` (a :class:`solvers.DarcyFamily`) from ``observations``.

    Parameters
    ----------
    observations : data, shape ``(K,)`` as ``observe`` gives it
    observe : ``"all"`` (every node), ``(K, 2)`` sensor points, or an :class:`Observation`
    noise_level, noise_norm : relative (``noise_norm = noise_level * ||d||``) or absolute noise size; with
        either, the iteration stops by the discrepancy principle (``||H u - d|| <= tau * noise_norm``);
        without, it runs until the optimizer converges or ``maxiter``
    reg, weight : ``"none"``, ``"l2"`` (towards ``m_ref``, default the initial guess), ``"h1"``, ``"tv"``
        (smoothed with ``tv_eps``), and its weight
    optimizer : ``"lbfgs"`` (scipy L-BFGS-B) or ``"adam"`` (torch, learning rate ``lr``)
    a0 : initial coefficient (nodal values, number or callable); default the best-fitting constant
    solver : a :class:`DarcySolver`, or a method name for one (default ``"direct-superlu"``)
    truth : the true coefficient, to record ``rel_error`` per iterate (monitoring only)
    callback : ``callback(record: dict)`` after every iterate
    """
    t_start = time.perf_counter()
    if solver is None or isinstance(solver, str):
        solver = DarcySolver(family, solver or "direct-superlu")
    elif solver.family is not family:
        raise ValueError("solver belongs to another DarcyFamily")
    obs = _observation(observe, solver)
    d = obs.check(observations)
    dnorm = float(np.linalg.norm(d))
    if dnorm == 0:
        raise ValueError("observations are all zero; the misfit is relative to ||d||, which must be positive")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; use one of: {', '.join(OPTIMIZERS)}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"learning rate must be positive, got {lr!r}")
    maxiter, target = check_inversion_settings(dnorm, weight, tau, maxiter, noise_level, noise_norm)
    truth_a = None if truth is None else family.nodal(truth)
    M = mass_matrix(solver) if truth_a is not None else None

    counts0 = (solver.counts.forward, solver.counts.adjoint)
    m0 = np.log(family.nodal(a0)) if a0 is not None else np.full(solver.ndofs, np.log(constant_fit(solver, obs, d)))
    m0 = np.clip(m0, *LOG_BOUNDS)
    regularizer = make_regularizer(reg, solver, m0 if m_ref is None else m_ref,
                                   **({"eps": tv_eps} if reg == "tv" else {}))
    d_t = torch.as_tensor(d)

    def evaluate(m_t: torch.Tensor):
        u = differentiable_solve(torch.exp(m_t), solver)
        r = obs(u) - d_t
        misfit = 0.5 * (r ** 2).sum() / dnorm ** 2
        R = regularizer(m_t)
        return misfit + weight * R, float(torch.linalg.norm(r.detach())), float(R.detach()), u.detach().numpy()

    return run_inversion(evaluate, m0, solver.counts, counts0, t_start, dnorm=dnorm, target=target,
                         optimizer=optimizer, maxiter=maxiter, lr=lr, gtol=gtol, truth_a=truth_a, M=M,
                         callback=callback, extra={"optimizer": optimizer, "reg": reg, "weight": weight,
                                                   "observations": obs.size, "solver": solver.method})


def run_inversion(evaluate, m0, counts, counts0, t_start, *, dnorm, target, optimizer, maxiter, lr, gtol, truth_a, M,
                  callback, extra) -> "InversionResult":
    """:func:`minimize_log` on ``evaluate`` and the :class:`InversionResult` of its trajectory, with the
    solves counted since ``counts0`` (shared by the Darcy and EIT drivers)."""
    traj = minimize_log(evaluate, m0, dnorm=dnorm, target=target, optimizer=optimizer, maxiter=maxiter, lr=lr,
                        gtol=gtol, error=None if truth_a is None else (lambda m: relative_l2_error(np.exp(m), truth_a, M)),
                        solves=lambda: counts.forward - counts0[0], callback=callback)
    return InversionResult(a=np.exp(traj.m), m=traj.m, u=traj.state, history=traj.history,
                           iterations=traj.iterations, forward_solves=counts.forward - counts0[0],
                           adjoint_solves=counts.adjoint - counts0[1],
                           seconds=time.perf_counter() - t_start, stopped=traj.stopped,
                           misfit=traj.rnorm / dnorm, target=None if target is None else target / dnorm, extra=extra)
