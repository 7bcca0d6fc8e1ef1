"""``EITSolver`` and ``eit_forward``: Dirichlet-to-Neumann data of ``K`` boundary voltage patterns as a
differentiable torch function of the nodal conductivity.

For pattern ``g_m`` the state solves ``-div(sigma grad u_m) = 0``, ``u_m = g_m`` on the boundary; the datum is
the consistent boundary flux ``d_m = (A_full(sigma) u_m)[boundary]`` (``int sigma du/dn phi_i ds`` at boundary
node ``i``, as ``hybrid generate eit`` stores it). One setup (factorization or AMG hierarchy) of the eliminated
matrix serves the ``K`` forward solves. For a loss with ``w_m = dL/dd_m``,

    dL/dsigma_k = sum_m z_m^T (dA_full/dsigma_k) u_m = sum_m (B^T (z_m[rows] u_m[cols]))_k,

where ``z_m`` is the discrete harmonic extension of ``w_m`` (``A_ff z_f = -A_fb w_m``, ``z_b = w_m``: the
adjoint of the flux observation; ``A`` is symmetric): one adjoint solve per pattern with the forward's setup.
Exact, because the assembly is linear in ``sigma`` (``values = B @ sigma``).

>>> import torch, meshes
>>> s = EITSolver(meshes.unit_square(6), patterns=4)
>>> sigma = torch.ones(s.ndofs, dtype=torch.float64, requires_grad=True)
>>> d = eit_forward(sigma, s); d.shape == (4, s.nboundary)
True
>>> (d * torch.as_tensor(s.patterns)).sum().backward()     # sum_m g_m^T Lambda g_m: grows with sigma
>>> bool(sigma.grad.sum() > 0), s.counts.forward, s.counts.adjoint
(True, 4, 4)
"""

from __future__ import annotations

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from .darcy_solver import DarcySolver


def boundary_parameter(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(order, t)``: boundary points ``xy`` ``(nb, 2)`` ordered counter-clockwise, with a parameter ``t`` in
    ``[0, 1)``. On a circle ``t`` is the polar angle / 2 pi (from the positive x direction); otherwise the
    points are ordered by angle about their centroid (star-shaped boundaries) and ``t`` is the polygon's
    arclength fraction from the point nearest the lower-left corner of the bounding box (on the unit square:
    the arclength from the origin / 4, as :func:`solvers.sampling.boundary_patterns` uses)."""
    c = xy.mean(axis=0)
    r = np.linalg.norm(xy - c, axis=1)
    angle = np.mod(np.arctan2(xy[:, 1] - c[1], xy[:, 0] - c[0]), 2 * np.pi)
    if np.ptp(r) <= 1e-3 * r.max():
        order = np.argsort(angle, kind="stable")
        return order, angle[order] / (2 * np.pi)
    start = int(np.argmin(np.linalg.norm(xy - xy.min(axis=0), axis=1)))
    order = np.argsort(np.mod(angle - angle[start], 2 * np.pi), kind="stable")
    p = xy[order]
    edges = np.linalg.norm(np.diff(np.vstack([p, p[:1]]), axis=0), axis=1)
    return order, np.concatenate([[0.0], np.cumsum(edges[:-1])]) / edges.sum()


def trigonometric_patterns(t: np.ndarray, count: int) -> np.ndarray:
    """``(count, len(t))``: ``cos(2 pi j t)``, ``sin(2 pi j t)`` for ``j = 1, 2, ...`` (mean-free voltages)."""
    if isinstance(count, bool) or int(count) != count or count < 1:
        raise ValueError(f"the number of patterns must be a positive integer, got {count!r}")
    j = np.arange(int(count)) // 2 + 1
    phase = 2 * np.pi * j[:, None] * t[None, :]
    return np.where((np.arange(int(count)) % 2 == 0)[:, None], np.cos(phase), np.sin(phase))


class EITSolver:
    """Forward and adjoint EIT solves on a triangle mesh (P1, nodal conductivity).

    Parameters
    ----------
    mesh : meshes.Mesh (serial, triangles; every named boundary carries the electrodes' voltages)
    patterns : a number ``K`` of trigonometric patterns (:func:`trigonometric_patterns` of the boundary
        parameter), or an array ``(K, nboundary)`` of voltages at :attr:`bdofs` in that order
    method, rtol : the linear solver of every forward and adjoint solve (as :class:`DarcySolver`)

    Attributes: ``bdofs`` (boundary dofs, counter-clockwise), ``t`` (their parameter in ``[0, 1)``),
    ``patterns`` ``(K, nboundary)``, ``boundary_mass`` (lumped: half the adjacent boundary edges), ``darcy``
    (the :class:`DarcySolver` doing the solves; its ``counts`` are :attr:`counts`).
    """

    def __init__(self, mesh, patterns=16, method="direct-superlu", rtol: float = 1e-10):
        from solvers import DarcyFamily

        self.darcy = DarcySolver(DarcyFamily(mesh, f=0.0), method, rtol)
        self.family = self.darcy.family
        xy = self.darcy.coordinates
        bd = np.flatnonzero(~self.family.free)
        order, self.t = boundary_parameter(xy[bd])
        self.bdofs = bd[order]
        p = xy[self.bdofs]
        edges = np.linalg.norm(np.roll(p, -1, axis=0) - p, axis=1)
        self.boundary_mass = 0.5 * (edges + np.roll(edges, 1))
        if np.ndim(patterns) == 0:
            self.patterns = trigonometric_patterns(self.t, patterns)
        else:
            self.patterns = self._check_patterns(patterns)

    def _check_patterns(self, patterns) -> np.ndarray:
        P = np.asarray(patterns, dtype=float)
        if P.ndim != 2 or P.shape[1] != self.nboundary or P.shape[0] < 1:
            raise ValueError(f"patterns have shape {P.shape}; expected (K, {self.nboundary}): K >= 1 voltage "
                             f"patterns at the {self.nboundary} boundary nodes")
        if not np.all(np.isfinite(P)):
            raise ValueError("patterns have non-finite values")
        return P

    @property
    def ndofs(self) -> int:
        return self.darcy.ndofs

    @property
    def nboundary(self) -> int:
        return len(self.bdofs)

    @property
    def npatterns(self) -> int:
        return len(self.patterns)

    @property
    def counts(self):
        return self.darcy.counts

    @property
    def coordinates(self) -> np.ndarray:
        return self.darcy.coordinates

    def check_data(self, data) -> np.ndarray:
        """DtN data as a float array ``(K, nboundary)``, or a ``ValueError`` naming the expected shape."""
        d = np.asarray(data, dtype=float)
        if d.shape != self.patterns.shape:
            raise ValueError(f"EIT data have shape {d.shape}; expected {self.patterns.shape} (one row of boundary "
                             f"fluxes per pattern, {self.nboundary} boundary nodes)")
        if not np.all(np.isfinite(d)):
            raise ValueError(f"EIT data have non-finite values at (pattern, node) "
                             f"{np.argwhere(~np.isfinite(d))[:3].tolist()}")
        return d

    def _lifted(self, A_full, values: np.ndarray) -> np.ndarray:
        """Right-hand sides ``(ndofs, K)`` for boundary values ``values`` ``(K, nboundary)``."""
        from solvers.dirichlet import lift

        return lift(A_full, np.zeros((self.ndofs, len(values))), self.bdofs, values.T)

    def forward(self, sigma) -> tuple[np.ndarray, tuple]:
        """``(D, state)``: DtN data ``(K, nboundary)`` for the nodal conductivity ``sigma``; ``state`` (setup,
        full matrix, solutions ``(ndofs, K)``) is what :meth:`gradient` reuses."""
        setup = self.darcy.setup(sigma)  # checks shape, finiteness and positivity
        A_full = self.family.asm.matrix(self.darcy.values(setup.a), eliminate=False)
        rhs = self._lifted(A_full, self.patterns)
        U = np.column_stack([self.darcy.solve_with(setup, rhs[:, m]) for m in range(self.npatterns)])
        return (A_full @ U)[self.bdofs].T.copy(), (setup, A_full, U)

    def gradient(self, state, W: np.ndarray) -> np.ndarray:
        """``dL/dsigma`` for ``W = dL/dD`` ``(K, nboundary)``: one adjoint solve per nonzero row of ``W``."""
        setup, A_full, U = state
        rhs = self._lifted(A_full, W)
        grad = np.zeros(self.ndofs)
        for m in range(len(W)):
            if np.any(W[m]):
                z = self.darcy.solve_with(setup, rhs[:, m], "adjoint")
                grad += self.darcy.matrix_product_gradient(z, U[:, m])
        return grad


class EITForward(torch.autograd.Function):
    """``sigma (ndofs,) -> D (K, nboundary)``; see :func:`eit_forward`."""

    @staticmethod
    def forward(ctx, sigma, solver):
        D, state = solver.forward(sigma.detach().cpu().to(torch.float64).numpy())
        ctx.solver, ctx.state = solver, state
        return torch.as_tensor(D, dtype=sigma.dtype, device=sigma.device)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_D):
        g = ctx.solver.gradient(ctx.state, grad_D.detach().cpu().to(torch.float64).numpy())
        return torch.as_tensor(g, dtype=grad_D.dtype, device=grad_D.device), None


def eit_forward(sigma: torch.Tensor, solver: EITSolver) -> torch.Tensor:
    """The DtN data ``(K, nboundary)`` of ``solver``'s patterns for the nodal conductivity ``sigma`` (a real
    floating torch tensor ``(ndofs,)``; float64 for gradient checks), differentiable: the backward pass is one
    adjoint solve per pattern with the forward's factorization (or AMG hierarchy)."""
    if not isinstance(sigma, torch.Tensor):
        raise TypeError(f"sigma must be a torch tensor, got {type(sigma).__name__}")
    if not sigma.is_floating_point() or sigma.is_complex():
        raise ValueError(f"sigma must be a real floating-point tensor, got dtype {sigma.dtype}")
    if sigma.shape != (solver.ndofs,):
        raise ValueError(f"conductivity 'sigma' has shape {tuple(sigma.shape)}; expected ({solver.ndofs},) "
                         f"nodal values")
    return EITForward.apply(sigma, solver)
