"""EIT inversion: recover the conductivity from Dirichlet-to-Neumann data by adjoint-based optimization.

The unknown is ``m = log sigma`` and the objective

    J(m) = 1/2 sum_m ||D_m(exp m) - d_m||^2 / ||d||^2 + weight * R(m)

(``D_m`` the boundary fluxes of pattern ``m``, :func:`eit_forward`; ``R`` from
:mod:`hybrid.inverse.regularization`). Each evaluation is ``K`` forward and ``K`` adjoint solves with one
factorization; L-BFGS-B or Adam by :func:`hybrid.inverse.optimize.minimize_log`, stopped by the discrepancy
principle for a given noise.

Synthetic data (:func:`eit_problem`) come from a mesh ``refine`` times finer: the fine fluxes are turned into
flux densities (divided by the lumped boundary mass), interpolated periodically in the boundary parameter
and multiplied by the coarse boundary mass, so the inversion never sees its own discretization. Data from a
``hybrid generate eit`` file (:func:`eit_from_file`) are on the file's own mesh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .darcy_inversion import InversionResult, _positive_int, check_inversion_settings, mass_matrix, run_inversion
from .eit_solver import EITSolver, eit_forward
from .noise import NOISE_MODELS, add_noise, check_noise_level
from .optimize import LOG_BOUNDS
from .regularization import make_regularizer

DOMAINS = ("square", "disk")


@dataclass
class EITInverseProblem:
    """An EIT inversion's inputs: the solver (mesh, patterns), clean and noisy data ``(K, nboundary)``, the
    realized noise norm, and the true conductivity as nodal values (``None`` when unknown)."""

    solver: EITSolver
    clean: np.ndarray
    data: np.ndarray
    noise_norm: float
    truth: np.ndarray | None
    description: str = ""


def domain_mesh(domain: str, n: int):
    """``unit_square(n)`` or the unit disk with mesh size ``2 / n`` (gmsh)."""
    import meshes

    if domain not in DOMAINS:
        raise ValueError(f"unknown EIT domain {domain!r}; use one of: {', '.join(DOMAINS)}")
    n = _positive_int("n", n)
    return meshes.unit_square(n) if domain == "square" else meshes.disk(h=2.0 / n)


def transfer_dtn(D: np.ndarray, source: EITSolver, target: EITSolver) -> np.ndarray:
    """DtN data of ``source``'s boundary nodes as the consistent fluxes of ``target``'s nodes (flux density,
    periodic linear interpolation in the boundary parameter ``t``)."""
    density = D / source.boundary_mass
    return np.stack([np.interp(target.t, source.t, row, period=1.0) for row in density]) * target.boundary_mass


def noisy_dtn(clean, noise, noise_model, seed):
    """``(noisy data, noise norm)`` of DtN data ``(K, nboundary)`` (:func:`hybrid.inverse.noise.add_noise` on the
    whole array; noise 0 returns a copy and 0)."""
    noise = check_noise_level(noise)
    if noise_model not in NOISE_MODELS:
        raise ValueError(f"unknown noise model {noise_model!r}; use one of: {', '.join(NOISE_MODELS)}")
    if noise == 0:
        return clean.copy(), 0.0
    flat, norm = add_noise(clean.ravel(), noise, noise_model, seed=seed)
    return flat.reshape(clean.shape), norm


def eit_problem(domain: str = "square", n: int = 16, truth="heart-lungs", patterns: int = 16, noise: float = 0.0,
                noise_model: str = "additive", seed: int = 0, refine: int = 2,
                method: str = "direct-superlu") -> EITInverseProblem:
    """Synthetic EIT data of ``truth`` (a phantom spec of :func:`hybrid.inverse.phantoms.phantom`, a number or a
    callable ``xy -> values``) on ``domain`` (``"square"``: ``unit_square(n)``; ``"disk"``: the unit disk with
    ``h = 2 / n``) for ``patterns`` trigonometric voltage patterns, solved on a mesh ``refine`` times finer,
    with relative ``noise`` of ``noise_model`` (seeded by ``seed``)."""
    from .phantoms import phantom

    refine = _positive_int("refine", refine)
    _positive_int("patterns", patterns)
    check_noise_level(noise)
    mesh = domain_mesh(domain, n)
    solver = EITSolver(mesh, patterns, method)
    xy = solver.coordinates
    box = (xy.min(axis=0), xy.max(axis=0))
    f = phantom(truth, box) if isinstance(truth, str) else truth
    if refine == 1:
        clean, _ = solver.forward(solver.family.nodal(f))
    else:
        fine = EITSolver(domain_mesh(domain, n * refine), patterns, method)
        D_fine, _ = fine.forward(fine.family.nodal(f))
        clean = transfer_dtn(D_fine, fine, solver)
    data, noise_norm = noisy_dtn(clean, noise, noise_model, seed)
    return EITInverseProblem(solver, clean, data, noise_norm, solver.family.nodal(f),
                             f"{domain} n={n}, truth {truth if isinstance(truth, str) else 'given'}")


def eit_from_file(path, index: int = 0, noise: float = 0.0, noise_model: str = "additive", seed: int = 0,
                  method: str = "direct-superlu") -> EITInverseProblem:
    """Sample ``index`` of a ``hybrid generate eit`` file (unit square; patterns, boundary order and
    conductivity from the file), with relative ``noise`` added."""
    import h5py

    import meshes

    with h5py.File(path, "r") as f:
        if f.attrs.get("problem") != "eit":
            raise ValueError(f"{path}: not an EIT dataset (problem {f.attrs.get('problem')!r}); make one with "
                             f"`hybrid generate eit`")
        samples = int(f["dtn"].shape[0])
        if isinstance(index, bool) or int(index) != index or not 0 <= index < samples:
            raise ValueError(f"--sample {index}: {path} has samples 0..{samples - 1}")
        n = int(f.attrs["n"])
        dtn, sigma = f["dtn"][index], f["conductivity"][index]
        patterns, bdofs = f["fixed/patterns"][:], f["fixed/boundary_dofs"][:]
        coords = f["mesh/coordinates"][:]
        if "grid_of_dof" not in f["mesh"]:
            raise ValueError(f"{path}: EIT inversion from files reads unit-square datasets (this one has a mesh file)")
    solver = EITSolver(meshes.unit_square(n), np.zeros((1, len(bdofs))), method)
    if not np.allclose(solver.coordinates, coords) or sorted(bdofs) != sorted(solver.bdofs):
        raise ValueError(f"{path}: the file's mesh (n = {n}) differs from unit_square({n}) here")
    where = {int(d): k for k, d in enumerate(bdofs)}
    perm = np.array([where[int(d)] for d in solver.bdofs])  # file column of each of our boundary nodes
    solver.patterns = solver._check_patterns(patterns[:, perm])
    clean = solver.check_data(dtn[:, perm])
    data, noise_norm = noisy_dtn(clean, noise, noise_model, seed)
    return EITInverseProblem(solver, clean, data, noise_norm, solver.family.nodal(sigma),
                             f"{path} sample {index} (n={n})")


def constant_conductivity(solver: EITSolver, d: np.ndarray) -> float:
    """The constant ``c`` whose data fit ``d`` best (``D(c) = c D(1)``: one forward pass)."""
    D1, _ = solver.forward(np.ones(solver.ndofs))
    c = float((D1 * d).sum() / (D1 * D1).sum())
    return c if c > 0 and np.isfinite(c) else 1.0


def invert_eit(data, solver: EITSolver, *, noise_level: float | None = None, noise_norm: float | None = None,
               tau: float = 1.1, reg: str = "tv", weight: float = 1e-6, optimizer: str = "lbfgs", a0=None,
               maxiter: int = 200, lr: float = 0.05, truth=None, tv_eps: float = 1e-2, gtol: float = 1e-10,
               callback=None) -> InversionResult:
    """Recover the nodal conductivity from DtN ``data`` ``(K, nboundary)`` of ``solver``'s patterns.

    Parameters as :func:`hybrid.inverse.invert_darcy`: ``noise_level`` (relative to ``||d||``) or
    ``noise_norm`` (absolute) switch on the discrepancy principle (``||D - d|| <= tau * noise``); ``reg`` (or a
    callable torch functional of ``m`` such as :class:`hybrid.inverse.prior.LearnedRegularizer`)
    ``"none"|"l2"|"h1"|"tv"`` with ``weight``; ``a0`` the initial conductivity (default the best constant);
    ``truth`` records ``rel_error`` per iterate. ``result.u`` holds the last iterate's DtN data.

    >>> from hybrid.inverse import eit_problem
    >>> p = eit_problem("square", 8, "heart-lungs", patterns=4, refine=1)
    >>> r = invert_eit(p.data, p.solver, truth=p.truth, maxiter=5)
    >>> bool(r.history["misfit"][-1] < r.history["misfit"][0])
    True
    """
    t_start = time.perf_counter()
    if not isinstance(solver, EITSolver):
        raise TypeError(f"solver must be an EITSolver, got {type(solver).__name__}")
    d = solver.check_data(data)
    dnorm = float(np.linalg.norm(d))
    if dnorm == 0:
        raise ValueError("EIT data are all zero; the misfit is relative to ||d||, which must be positive")
    maxiter, target = check_inversion_settings(dnorm, weight, tau, maxiter, noise_level, noise_norm)
    truth_a = None if truth is None else solver.family.nodal(truth)
    M = mass_matrix(solver.darcy) if truth_a is not None else None

    counts0 = (solver.counts.forward, solver.counts.adjoint)
    c0 = constant_conductivity(solver, d) if a0 is None else None
    m0 = np.log(solver.family.nodal(a0)) if a0 is not None else np.full(solver.ndofs, np.log(c0))
    m0 = np.clip(m0, *LOG_BOUNDS)
    # a name (none, l2, h1, tv) or a callable torch functional of m (e.g. prior.LearnedRegularizer)
    regularizer = make_regularizer(reg, solver.darcy, m0, **({"eps": tv_eps} if reg == "tv" else {})) \
        if isinstance(reg, str) else reg
    d_t = torch.as_tensor(d)

    def evaluate(m_t: torch.Tensor):
        D = eit_forward(torch.exp(m_t), solver)
        r = D - d_t
        R = regularizer(m_t)
        J = 0.5 * (r ** 2).sum() / dnorm ** 2 + weight * R
        return J, float(torch.linalg.norm(r.detach())), float(R.detach()), D.detach().numpy()

    return run_inversion(evaluate, m0, solver.counts, counts0, t_start, dnorm=dnorm, target=target,
                         optimizer=optimizer, maxiter=maxiter, lr=lr, gtol=gtol, truth_a=truth_a, M=M,
                         callback=callback, extra={"optimizer": optimizer, "weight": weight,
                                                   "reg": reg if isinstance(reg, str) else type(reg).__name__,
                                                   "patterns": solver.npatterns, "boundary_nodes": solver.nboundary,
                                                   "solver": solver.darcy.method})
