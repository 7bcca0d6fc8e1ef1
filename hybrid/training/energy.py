"""Sparse FEM matrices in torch and the losses of a preconditioner's error propagation (energy norm).

For ``A x = b`` with ``A`` SPD and a linear preconditioner ``B ~ A^{-1}``, one preconditioned Richardson
step maps the error ``e = x* - x`` to ``(I - B A) e``; the loss :func:`energy_loss` is the mean of
``||(I - B A) e||_A^2 / ||e||_A^2`` over random errors ``e``: ``0`` for the exact inverse, ``1`` for
``B = 0``. It measures the *whole* preconditioner on the errors that matter to an iterative method (low
energy = smooth errors weigh as much as rough ones), not the regression error of a surrogate.
:func:`unrolled_loss` follows the error through ``k`` steps of preconditioned CG (what the Krylov method
sees: CG is invariant to the scale of ``B`` and rewards clustered spectra of ``B A``) or of Richardson.

Vectors are batches of rows, ``(k, N)``, in the ordering of the matrix. ``A`` is a torch sparse CSR
tensor with int32 indices (STACK.md: 1.6-1.9x faster than int64 on the CPU); its product has a
hand-written backward (``A`` is symmetric, so the gradient is ``A @ grad``), which needs no transposed
sparse kernel.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch


def sparse_csr(A, device="cpu", dtype=torch.float32) -> torch.Tensor:
    """SciPy matrix -> torch sparse CSR tensor (int32 indices) on ``device``.

    >>> import scipy.sparse as sp
    >>> T = sparse_csr(sp.identity(3, format="csr"))
    >>> T.layout == torch.sparse_csr and T.crow_indices().dtype == torch.int32
    True
    """
    A = sp.csr_matrix(A)
    A.sort_indices()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": products and transfers are what we use
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.as_tensor(A.indptr.astype(np.int32)),
                                       torch.as_tensor(A.indices.astype(np.int32)),
                                       torch.as_tensor(A.data, dtype=dtype), size=A.shape, device=device)


class _SymmetricProduct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A, X):
        ctx.A = A
        return (A @ X.T).T

    @staticmethod
    def backward(ctx, grad):
        return None, (ctx.A @ grad.T).T


def matvec(A: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """``X A^T`` for rows ``X`` of shape ``(k, N)`` (``= (A x_i)_i`` for symmetric ``A``), differentiable in ``X``."""
    return _SymmetricProduct.apply(A, X)


def energy(A: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """``x_i^T A x_i`` per row, ``(k,)``."""
    return (X * matvec(A, X)).sum(1)


def energy_loss(apply_B, A: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """Mean of ``||(I - B A) e||_A^2 / ||e||_A^2`` over the rows ``e`` of ``E``.

    ``apply_B`` maps residual rows ``(k, N)`` to correction rows; ``A`` is a torch sparse (or dense) matrix.

    >>> A = sparse_csr(sp.diags([2.0, 3.0, 4.0]).tocsr())
    >>> E = torch.randn(5, 3)
    >>> float(energy_loss(lambda R: torch.zeros_like(R), A, E))
    1.0
    >>> float(energy_loss(lambda R: R / torch.tensor([2.0, 3.0, 4.0]), A, E)) < 1e-12
    True
    """
    F = E - apply_B(matvec(A, E))
    return (energy(A, F) / energy(A, E)).mean()


def richardson_errors(apply_B, A: torch.Tensor, E: torch.Tensor, steps: int) -> torch.Tensor:
    """The errors after ``steps`` preconditioned Richardson steps ``x <- x + B (b - A x)``: ``e <- e - B A e``."""
    for _ in range(steps):
        E = E - apply_B(matvec(A, E))
    return E


def pcg_errors(apply_B, A: torch.Tensor, E: torch.Tensor, steps: int) -> torch.Tensor:
    """The errors after ``steps`` iterations of preconditioned CG on ``A x = A e`` from ``x = 0`` (one
    independent CG per row; differentiable through every step). Rows that converge exactly stop changing."""
    R = matvec(A, E)
    Z = apply_B(R)
    Pd = Z
    rz = (R * Z).sum(1, keepdim=True)
    tiny = torch.finfo(E.dtype).tiny
    for j in range(steps):
        AP = matvec(A, Pd)
        pap = (Pd * AP).sum(1, keepdim=True)
        alpha = rz / pap.clamp_min(tiny)
        E = E - alpha * Pd
        if j == steps - 1:
            break
        R = R - alpha * AP
        Z = apply_B(R)
        rz_new = (R * Z).sum(1, keepdim=True)
        Pd = Z + (rz_new / rz.clamp_min(tiny)) * Pd
        rz = rz_new
    return E


UNROLLED = {"pcg": pcg_errors, "richardson": richardson_errors}


def unrolled_loss(apply_B, A: torch.Tensor, E: torch.Tensor, steps: int, method: str = "pcg") -> torch.Tensor:
    """Mean over rows of ``(||e_k||_A^2 / ||e_0||_A^2)^(1/k)``: the squared energy-norm contraction per step
    after ``k = steps`` iterations of ``method`` (``"pcg"`` or ``"richardson"``); for Richardson with
    ``k = 1`` it is :func:`energy_loss`."""
    if method not in UNROLLED:
        raise ValueError(f"unrolled method must be one of {', '.join(UNROLLED)}, got {method!r}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    Ek = UNROLLED[method](apply_B, A, E, steps)
    ratio = energy(A, Ek) / energy(A, E)
    return ratio.clamp_min(torch.finfo(ratio.dtype).tiny).pow(1.0 / steps).mean()


def random_errors(shape, free: torch.Tensor, count: int, kinds=("smooth", "rough", "white"),
                  generator: torch.Generator | None = None, dtype=torch.float32) -> torch.Tensor:
    """``count`` random error rows ``(count, ny * nx)`` on a grid, zero where ``free`` is 0, split evenly
    over ``kinds``:

    - ``"smooth"``: Gaussian random field with covariance ``(-Laplace + 9)^(-3)`` (sine series, so zero on
      the grid's edges), i.e. errors a multigrid coarse correction must remove;
    - ``"rough"``: the same with ``(-Laplace + 9)^(-1)``: every frequency with similar energy-norm weight;
    - ``"white"``: i.i.d. normal values (energy dominated by the highest frequencies).

    Drawn on the CPU with ``generator`` (reproducible), returned on ``free``'s device.
    """
    ny, nx = shape
    spectra = {"smooth": 3.0, "rough": 1.0}
    unknown = [k for k in kinds if k not in (*spectra, "white")]
    if unknown or not kinds:
        raise ValueError(f"unknown error kinds {unknown}; use smooth, rough, white")
    counts = [count // len(kinds) + (i < count % len(kinds)) for i in range(len(kinds))]
    out = []
    for kind, c in zip(kinds, counts):
        if c == 0:
            continue
        if kind == "white":
            out.append(torch.randn(c, ny * nx, generator=generator, dtype=torch.float64))
            continue
        ky, kx = torch.arange(1, ny - 1 or 2, dtype=torch.float64), torch.arange(1, nx - 1 or 2, dtype=torch.float64)
        Sy = torch.sin(torch.pi * torch.outer(torch.linspace(0, 1, ny, dtype=torch.float64), ky))  # (ny, my)
        Sx = torch.sin(torch.pi * torch.outer(torch.linspace(0, 1, nx, dtype=torch.float64), kx))
        lam = (torch.pi**2 * (ky[:, None] ** 2 + kx[None, :] ** 2) + 9.0) ** (-spectra[kind] / 2)
        xi = torch.randn(c, len(ky), len(kx), generator=generator, dtype=torch.float64) * lam
        out.append((Sy @ xi @ Sx.T).reshape(c, -1))
    E = torch.cat(out).to(device=free.device, dtype=dtype) * free.to(dtype)
    return E / E.norm(dim=1, keepdim=True).clamp_min(torch.finfo(dtype).tiny)
