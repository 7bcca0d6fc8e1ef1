"""``minimize_log``: the optimization loop shared by the adjoint inversions (Darcy, EIT).

The unknown is a log-parameter ``m``; ``evaluate(m_t)`` returns ``(J, rnorm, R, state)`` with ``J`` a torch
scalar differentiable in ``m_t`` (misfit + weight * regularization), ``rnorm`` the absolute data misfit
``||F(m) - d||``, ``R`` the regularization value and ``state`` whatever the caller keeps of the iterate (the
solution). Optimizers: scipy's L-BFGS-B (``"lbfgs"``, bounds keep ``exp(m)`` in ``[1e-8, 1e8]``) or torch's
Adam (``"adam"``). With a ``target``, the iteration stops by Morozov's discrepancy principle at the first
iterate with ``rnorm <= target``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

OPTIMIZERS = ("lbfgs", "adam")
LOG_BOUNDS = (np.log(1e-8), np.log(1e8))


@dataclass
class Trajectory:
    """What :func:`minimize_log` returns: the last recorded iterate ``m`` with its ``state`` and misfit
    ``rnorm``, the ``history`` (one entry per iterate, iteration 0 the initial guess), ``iterations`` and
    ``stopped`` (``"discrepancy"``, ``"converged"`` or ``"maxiter"``)."""

    m: np.ndarray
    state: object
    rnorm: float
    history: dict
    iterations: int
    stopped: str


def minimize_log(evaluate, m0: np.ndarray, *, dnorm: float, target: float | None, optimizer: str = "lbfgs",
                 maxiter: int = 200, lr: float = 0.05, gtol: float = 1e-10, error=None, solves=None,
                 callback=None) -> Trajectory:
    """Minimize ``evaluate``'s objective from ``m0``.

    ``dnorm`` scales the recorded misfit (``rnorm / dnorm``); ``error(m)`` (optional) is recorded as
    ``rel_error``; ``solves()`` (optional) gives the forward solves so far, recorded as ``forward_solves``;
    ``callback(record)`` runs after every iterate."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; use one of: {', '.join(OPTIMIZERS)}")
    m0 = np.clip(np.asarray(m0, dtype=float), *LOG_BOUNDS)
    history = {"iteration": [], "misfit": [], "regularization": [], "objective": [], "forward_solves": []}
    if error is not None:
        history["rel_error"] = []
    state = {"m": m0, "u": None, "rnorm": np.inf}

    def record(it, m, J, rnorm, R, u) -> bool:
        """Store the iterate; True when the discrepancy principle says stop."""
        state.update(m=np.array(m, copy=True), u=u, rnorm=rnorm)
        rec = {"iteration": it, "misfit": rnorm / dnorm, "regularization": R, "objective": J,
               "forward_solves": solves() if solves is not None else 0}
        if error is not None:
            rec["rel_error"] = error(np.asarray(m))
        for k, v in rec.items():
            history[k].append(v)
        if callback is not None:
            callback(rec)
        return target is not None and rnorm <= target

    stopped = "maxiter"
    if optimizer == "lbfgs":
        from scipy.optimize import minimize

        evals: dict[bytes, tuple] = {}

        def fun(x):
            m_t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
            J, rnorm, R, u = evaluate(m_t)
            J.backward()
            if len(evals) > 32:
                evals.pop(next(iter(evals)))
            evals[x.tobytes()] = (float(J.detach()), rnorm, R, u)
            return float(J.detach()), m_t.grad.numpy().copy()

        def lookup(x):
            if x.tobytes() not in evals:
                with torch.no_grad():
                    J, rnorm, R, u = evaluate(torch.tensor(x, dtype=torch.float64))
                evals[x.tobytes()] = (float(J.detach()), rnorm, R, u)
            return evals[x.tobytes()]

        it = [0]
        if record(0, m0, *lookup(m0)):
            stopped = "discrepancy"
        else:
            def cb(intermediate_result):
                it[0] += 1
                x = intermediate_result.x
                if record(it[0], x, *lookup(x)):
                    raise StopIteration

            res = minimize(fun, m0, jac=True, method="L-BFGS-B", bounds=[LOG_BOUNDS] * len(m0),
                           callback=cb, options={"maxiter": maxiter, "maxcor": 20, "ftol": 1e-15, "gtol": gtol})
            if target is not None and state["rnorm"] <= target:
                stopped = "discrepancy"
            elif res.nit < maxiter:
                stopped = "converged"
            if not np.array_equal(res.x, state["m"]) and stopped != "discrepancy":
                record(it[0] + 1, res.x, *lookup(res.x))  # the optimizer's final point, if not yet recorded
                it[0] += 1
        iterations = it[0]
    else:
        m_t = torch.tensor(m0, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([m_t], lr=lr)
        iterations = 0
        for k in range(maxiter + 1):
            opt.zero_grad()
            J, rnorm, R, u = evaluate(m_t)
            iterations = k
            if record(k, m_t.detach().numpy(), float(J.detach()), rnorm, R, u):
                stopped = "discrepancy"
                break
            if k == maxiter:
                break
            J.backward()
            if float(torch.linalg.norm(m_t.grad)) <= gtol:
                stopped = "converged"
                break
            opt.step()
            with torch.no_grad():
                m_t.clamp_(*LOG_BOUNDS)
    return Trajectory(state["m"], state["u"], state["rnorm"], history, iterations, stopped)
