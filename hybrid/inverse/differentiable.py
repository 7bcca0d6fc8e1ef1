"""``differentiable_solve(a, solver)``: the Darcy FEM solution as a differentiable torch function of the
nodal coefficient, whose backward is one adjoint solve with the forward's cached solver setup.

>>> import torch, meshes
>>> from solvers import DarcyFamily
>>> from hybrid.inverse import DarcySolver, differentiable_solve
>>> solver = DarcySolver(DarcyFamily(meshes.unit_square(6)))
>>> a = torch.ones(solver.ndofs, dtype=torch.float64, requires_grad=True)
>>> u = differentiable_solve(a, solver)
>>> (u ** 2).sum().backward()
>>> solver.counts.forward, solver.counts.adjoint, bool(a.grad.sum() < 0)
(1, 1, True)
"""

from __future__ import annotations

import numpy as np
import torch
from torch.autograd.function import once_differentiable


class DarcySolve(torch.autograd.Function):
    """``a -> u(a)`` for ``a`` of shape ``(ndofs,)`` or ``(batch, ndofs)``; see :func:`differentiable_solve`."""

    @staticmethod
    def forward(ctx, a, solver):
        a_np = a.detach().cpu().to(torch.float64).numpy()
        rows = np.atleast_2d(a_np)
        us, setups = [], []
        for row in rows:
            u, setup = solver.solve(row)
            us.append(u)
            setups.append(setup)
        u = torch.as_tensor(np.stack(us), dtype=a.dtype, device=a.device)
        ctx.solver, ctx.setups = solver, setups
        ctx.save_for_backward(u)
        return u if a.ndim == 2 else u[0]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_u):
        (u,) = ctx.saved_tensors
        solver = ctx.solver
        g = np.atleast_2d(grad_u.detach().cpu().to(torch.float64).numpy())
        u_np = u.detach().cpu().to(torch.float64).numpy()
        lams = np.stack([solver.adjoint(setup, gi) for setup, gi in zip(ctx.setups, g)])
        grad_a = solver.coefficient_gradient(lams.T, u_np.T).T  # one sparse product for the whole batch
        grad_a = torch.as_tensor(grad_a, dtype=grad_u.dtype, device=grad_u.device)
        return (grad_a if grad_u.ndim == 2 else grad_a[0]), None


def differentiable_solve(a: torch.Tensor, solver) -> torch.Tensor:
    """The P1 solution ``u`` of ``-div(a grad u) = f`` (the family's source and boundary conditions) for the
    nodal coefficient ``a`` (a floating torch tensor, ``(ndofs,)`` or ``(batch, ndofs)``; float64 for
    gradient checks). ``solver`` is a :class:`DarcySolver` (or a ``DarcyFamily``, wrapped in a direct one).

    The backward pass is one adjoint solve per coefficient with the forward's factorization (or AMG
    hierarchy), and ``dL/da = -B^T (lam_i u_j)`` is exact (coefficient-linear assembly, Dirichlet lifting
    included). A coefficient that is not finite and positive raises ``ValueError`` naming the entries."""
    from .darcy_solver import DarcySolver

    if not isinstance(a, torch.Tensor):
        raise TypeError(f"a must be a torch tensor, got {type(a).__name__}")
    if not a.is_floating_point() or a.is_complex():
        raise ValueError(f"a must be a real floating-point tensor, got dtype {a.dtype}")
    if solver.__class__.__name__ == "DarcyFamily":
        solver = DarcySolver(solver)
    if a.ndim not in (1, 2) or a.shape[-1] != solver.ndofs:
        raise ValueError(f"coefficient 'a' has shape {tuple(a.shape)}; expected ({solver.ndofs},) or "
                         f"(batch, {solver.ndofs}) nodal values")
    return DarcySolve.apply(a, solver)


class SparseApply(torch.autograd.Function):
    """``x -> M x`` for a fixed scipy sparse matrix ``M`` (rows of ``x`` are vectors: ``x`` of shape
    ``(n,)`` or ``(batch, n)``); backward ``M^T g``. torch's sparse tensors would do the same; scipy keeps
    one representation of the matrices the solvers already hold."""

    @staticmethod
    def forward(ctx, x, M, MT):
        ctx.MT = MT
        y = (M @ x.detach().cpu().to(torch.float64).numpy().T).T
        return torch.as_tensor(np.ascontiguousarray(y), dtype=x.dtype, device=x.device)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        y = (ctx.MT @ g.detach().cpu().to(torch.float64).numpy().T).T
        return torch.as_tensor(np.ascontiguousarray(y), dtype=g.dtype, device=g.device), None, None


def sparse_apply(M, x: torch.Tensor, MT=None) -> torch.Tensor:
    """``M @ x`` (``x`` ``(n,)`` or rows of ``(batch, n)``), differentiable in ``x``."""
    return SparseApply.apply(x, M, M.T.tocsr() if MT is None else MT)
