"""A sparse matrix on a structured node grid as nine coefficient arrays: ``y = sum_s c_s * shift_s(x)``.

Why written: torch's sparse CSR product has no complex128 kernel on every device and build, while P1/Q1
matrices on the uniform grid and their Galerkin coarse operators with bilinear transfers couple each node
to its 3 x 3 neighbourhood only. Nine coefficient arrays (the DIA format on the grid) then give a matrix
product of nine fused multiply-adds over contiguous arrays, on any torch device, in any dtype, exactly
equal to the CSR product up to summation order.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

#: the nine neighbour offsets (dy, dx)
OFFSETS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


class StencilOperator:
    """``y[j, i] = sum_s coef[s, j, i] x[j + dy_s, i + dx_s]`` (zero outside the grid).

    Parameters
    ----------
    coef : tensor ``(9, ny+1, nx+1)``, one array per offset of :data:`OFFSETS`.
    """

    def __init__(self, coef: torch.Tensor):
        if coef.ndim != 3 or coef.shape[0] != len(OFFSETS):
            raise ValueError(f"stencil coefficients must have shape (9, ny+1, nx+1), got {tuple(coef.shape)}")
        self.shape = tuple(coef.shape[1:])
        # offsets whose coefficients are all zero are skipped (P1 stiffness on right triangles has 7)
        self._terms = [(off, coef[s]) for s, off in enumerate(OFFSETS) if bool(torch.any(coef[s] != 0))]
        self.diagonal = coef[OFFSETS.index((0, 0))]
        self.dtype, self.device = coef.dtype, coef.device

    @classmethod
    def from_scipy(cls, A, shape, dtype=torch.complex128, device="cpu") -> "StencilOperator":
        """From a sparse matrix in grid order (row ``j (nx+1) + i`` is node ``(i, j)``); a coupling outside
        the 3 x 3 neighbourhood is a ``ValueError`` naming it."""
        ny1, nx1 = shape
        A = sp.coo_matrix(A)
        if A.shape != (ny1 * nx1, ny1 * nx1):
            raise ValueError(f"matrix of shape {A.shape} does not act on a {ny1} x {nx1} node grid")
        jr, ir = np.divmod(A.row, nx1)
        jc, ic = np.divmod(A.col, nx1)
        dy, dx = jc - jr, ic - ir
        far = (np.abs(dy) > 1) | (np.abs(dx) > 1)
        if far.any():
            q = int(np.argmax(far))
            raise ValueError(f"not a 3 x 3 stencil: row {A.row[q]} couples to column {A.col[q]} "
                             f"(offset dy={dy[q]}, dx={dx[q]})")
        coef = np.zeros((len(OFFSETS), ny1, nx1), dtype=np.result_type(A.dtype, np.float64))
        np.add.at(coef, ((dy + 1) * 3 + (dx + 1), jr, ir), A.data)
        return cls(torch.as_tensor(coef, device=device).to(dtype))

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` for ``x`` of shape ``(ny+1, nx+1)``."""
        ny1, nx1 = self.shape
        xp = x.new_zeros((ny1 + 2, nx1 + 2))
        xp[1:-1, 1:-1] = x
        y = None
        for (dy, dx), c in self._terms:
            t = c * xp[1 + dy: 1 + dy + ny1, 1 + dx: 1 + dx + nx1]
            y = t if y is None else y.add_(t)
        return y if y is not None else torch.zeros_like(x)
