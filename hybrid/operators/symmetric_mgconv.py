"""``SymmetricMgConv``: a V-cycle of convolutions that is symmetric positive definite by construction.

Why hand-written: ``MgConv`` (MgNO's V-cycle) is linear but not symmetric (independent restriction and
prolongation weights, independent pre- and post-smoothers), so as a preconditioner it needs FGMRES.
No library offers a convolutional multigrid cycle whose SPD-ness holds for *every* parameter value,
which is what lets plain CG (with its short recurrences and energy-norm optimality) use a learned
preconditioner, trained or not.

The cycle on level ``l`` (finest ``l = 0``), input ``f``::

    u = S f                          pre-smoothing from zero
    u = u + P B_{l+1} P^T (f - A u)  coarse correction: restriction R = P^T (conv2d with P's kernel)
    u = u + S^T (f - A u)            post-smoothing with S^T (conv_transpose2d with S's kernel)

and on the coarsest level ``u = S f; u = u + S^T (f - A u)``. ``P`` is a stride-2 transposed
convolution (3x3 kernel, initialised to bilinear interpolation), ``A_l`` a symmetric operator, ``S_l``
a smoother; all are zero-padded (Dirichlet), so ``conv2d`` and ``conv_transpose2d`` with one kernel
are exact adjoints.

**Theorem.** If every ``A_l`` is symmetric and ``S_l + S_l^T - S_l^T A_l S_l`` is SPD, the map
``B_0: f -> u`` is SPD.

*Proof.* Write ``X = (I - S^T A) P``. Expanding the three steps (``A = A^T``) gives
``B_l = S̄_l + X_l B_{l+1} X_l^T`` with ``S̄ = S + S^T - S^T A S`` (the symmetrized smoother), and
``B_L = S̄_L`` on the coarsest level. By induction from the coarsest level: ``B_{l+1}`` is SPD, so
``X B_{l+1} X^T`` is symmetric positive *semi*-definite, and ``S̄_l`` is SPD, hence ``B_l`` is SPD. □

**How the hypotheses hold for all parameters.**

- ``A_l`` is symmetric: a learned 3x3 kernel ``k`` enters as ``(k + rot180(k)) / 2`` (a centrally
  symmetric stencil gives a symmetric matrix under zero padding), or, once a coefficient is set
  (:meth:`set_coefficient`), the five-point operator ``(A u)_i = sum_faces w_f (u_i - u_j)`` with
  face weights ``w_f`` the mean of the coefficient at the face's two nodes (symmetric: each face weight
  appears in both rows). With ``face_weights="p1"`` a face's weight is instead the P1 stiffness coupling
  of the ``diagonal="right"`` triangulation (``meshes.unit_square``): half the mean of the coefficient
  over each of the two triangles that have the face as a leg, so on the finest level the operator *is*
  the FEM matrix of a nodal coefficient (hypotenuse couplings of right triangles vanish). Node means
  miss the third node of each triangle; with a ``{1, 1e4}`` contrast that made ``D`` up to ~3000x too
  small at interfaces and ``lambda_max(B A)`` ~1e3. Any positive face weights keep the proof below.
  Coarse coefficients are full-weighting averages of the finer ones.
- Write ``S = D^{-1/2} Ŝ D^{-1/2}`` with ``D > 0`` diagonal and ``Â = D^{-1/2} A D^{-1/2}``; then
  ``S̄ = D^{-1/2} (Ŝ + Ŝ^T - Ŝ^T Â Ŝ) D^{-1/2}``. We need a bound ``||Â|| <= beta``: with a
  coefficient, ``D = diag(A)`` and ``A`` is diagonally dominant (``D_ii = sum_f w_f`` over the four
  faces, neighbours outside the grid being zero), so by Gershgorin ``spec(D^{-1} A) ⊂ [0, 2]``,
  ``beta = 2``; for a learned kernel ``D = ||k||_1 I`` and ``||A||_2 <= ||k||_1`` (a zero-padded
  convolution is a compression of the circulant one), ``beta = 1``.
- ``Ŝ = omega c G`` with ``G`` a 3x3 convolution whose centre weight exceeds the sum of the others'
  magnitudes by ``lam = softplus(.) > 0``; then ``(G + G^T)/2 >= lam I`` (Gershgorin) and
  ``||G|| <= ||g||_1``. With ``c = lam / (||g||_1^2 beta)`` and ``omega = 2 sigmoid(theta) in (0, 2)``:
  ``Ŝ + Ŝ^T >= 2 omega c lam I`` and ``Ŝ^T Â Ŝ <= omega^2 c^2 ||g||_1^2 beta I = omega^2 c lam I``, so
  ``Ŝ + Ŝ^T - Ŝ^T Â Ŝ >= omega c lam (2 - omega) I > 0``. □

At initialisation (``G = I``, ``omega = 4/3``) the smoother is damped Jacobi ``(2/3) D^{-1}`` with a
coefficient, and the cycle is a standard V(1,1) geometric multigrid with bilinear transfers and
rediscretized coarse operators; without one, the learned operator starts as the five-point Laplacian.
Positivity holds whatever the learned values (the operator ``A_l`` need not even be definite: only
``S̄_l`` enters). The cycle is linear in ``f`` (``is_linear``) and symmetric (``is_symmetric``), so
``NeuralPreconditioner`` declares it usable by CG.
"""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

_LAPLACE = [[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]]
_BILINEAR = [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]]


def _node_mean_faces(a):
    """Face weights ``(wx, wy)``: faces between columns ``(..., ny, nx-1)`` and rows ``(..., ny-1, nx)``."""
    return 0.5 * (a[..., :, 1:] + a[..., :, :-1]), 0.5 * (a[..., 1:, :] + a[..., :-1, :])


def _p1_faces(a):
    """P1 couplings of the right-diagonal triangulation: cell ``(j, i)`` splits along ``(j, i)-(j+1, i+1)``
    into a lower triangle (legs: bottom and right faces) and an upper one (left and top faces); each leg
    gets half its triangle's coefficient mean."""
    low = (a[..., :-1, :-1] + a[..., :-1, 1:] + a[..., 1:, 1:]) / 3.0
    up = (a[..., :-1, :-1] + a[..., 1:, :-1] + a[..., 1:, 1:]) / 3.0
    wx = F.pad(0.5 * low, (0, 0, 0, 1)) + F.pad(0.5 * up, (0, 0, 1, 0))  # bottom of the cell above, top of below
    wy = F.pad(0.5 * up, (0, 1, 0, 0)) + F.pad(0.5 * low, (1, 0, 0, 0))  # left of the cell right, right of left
    return wx, wy


FACE_WEIGHTS = {"node-mean": _node_mean_faces, "p1": _p1_faces}


def _coarsenable(shape, coarsest: int) -> bool:
    ny, nx = shape
    return ny % 2 == 1 and nx % 2 == 1 and min(ny, nx) > coarsest


class SymmetricMgConv(nn.Module):
    """SPD V-cycle ``(B, 1, ny, nx) -> (B, 1, ny, nx)`` (see the module docstring for the proof).

    Parameters
    ----------
    max_levels : parameters exist for this many levels; a grid uses as many as it can coarsen
        (odd sizes ``2^k + 1`` halve exactly) until a side has at most ``coarsest`` nodes.
    coarsest : stop coarsening at this many nodes per side.
    omega : initial smoother damping (``(0, 2)``; ``4/3`` gives Jacobi damping ``2/3`` with a coefficient).
    face_weights : ``"node-mean"`` (mean of the two nodes) or ``"p1"`` (P1 stiffness of right-diagonal
        triangles, exact for ``meshes.unit_square`` matrices); used once a coefficient is set.

    >>> import torch
    >>> m = SymmetricMgConv()
    >>> x, y = torch.randn(2, 1, 1, 17, 17)
    >>> bool(abs((x * m(y)).sum() - (y * m(x)).sum()) < 1e-4 * (x * m(x)).sum())
    True
    """

    is_linear = True
    is_symmetric = True

    def __init__(self, max_levels: int = 10, coarsest: int = 3, omega: float = 4.0 / 3.0,
                 face_weights: str = "node-mean"):
        super().__init__()
        if not 0 < omega < 2:
            raise ValueError(f"omega must lie in (0, 2), got {omega}")
        if face_weights not in FACE_WEIGHTS:
            raise ValueError(f"face_weights must be one of {', '.join(FACE_WEIGHTS)}, got {face_weights!r}")
        self.max_levels, self.coarsest, self.face_weights = int(max_levels), int(coarsest), face_weights
        L = self.max_levels
        self.op_kernel = nn.Parameter(torch.tensor(_LAPLACE).repeat(L, 1, 1))
        smooth = torch.zeros(L, 3, 3)
        smooth[:, 1, 1] = math.log(math.e - 1.0)  # softplus^{-1}(1): G = identity
        self.smooth_kernel = nn.Parameter(smooth)
        self.prolong_kernel = nn.Parameter(torch.tensor(_BILINEAR).repeat(L, 1, 1))
        self.omega_logit = nn.Parameter(torch.full((L,), math.log(omega / (2.0 - omega))))
        self._coefficient = None
        self._coef_levels = None

    # -- coefficient-set operators ----------------------------------------------------------------
    def set_coefficient(self, a) -> None:
        """Use the five-point operators of coefficient ``a`` (grid ``(ny, nx)``) on every level;
        ``None`` returns to the learned operator kernels."""
        if a is None:
            self._coefficient, self._coef_levels = None, None
            return
        a = torch.as_tensor(a, dtype=self.op_kernel.dtype, device=self.op_kernel.device)
        a = a.reshape(1, 1, *a.shape[-2:])
        if not torch.all(torch.isfinite(a)) or not torch.all(a > 0):
            raise ValueError("SymmetricMgConv: the coefficient must be finite and positive")
        self._coefficient = a
        self._coef_levels = None  # built for the input's levels on first use

    def _coefficients(self, nlevels: int):
        if self._coef_levels is None or len(self._coef_levels) < nlevels:
            w = torch.tensor(_BILINEAR, dtype=self._coefficient.dtype, device=self._coefficient.device)
            w = w.reshape(1, 1, 3, 3)
            levels, a = [], self._coefficient
            for l in range(nlevels):
                levels.append(a)
                if l < nlevels - 1:  # full-weighting average (normalised at the boundary)
                    a = F.conv2d(a, w, stride=2, padding=1) / F.conv2d(torch.ones_like(a), w, stride=2, padding=1)
            self._coef_levels = levels
        return self._coef_levels

    def _five_point(self, a):
        """Face weights (``self.face_weights``) and the diagonal ``sum_f w_f`` of the five-point operator."""
        wx, wy = FACE_WEIGHTS[self.face_weights](a)
        d = a.new_zeros(a.shape)
        d[..., :, 1:] += wx; d[..., :, :-1] += wx
        d[..., 1:, :] += wy; d[..., :-1, :] += wy
        # faces to the (zero) exterior: weight a at the node, so D stays >= the row's off-diagonal sum
        d[..., :, 0] += a[..., :, 0]; d[..., :, -1] += a[..., :, -1]
        d[..., 0, :] += a[..., 0, :]; d[..., -1, :] += a[..., -1, :]
        return wx, wy, d

    @staticmethod
    def _apply_five_point(u, wx, wy, d):
        out = d * u
        out[..., :, :-1] -= wx * u[..., :, 1:]
        out[..., :, 1:] -= wx * u[..., :, :-1]
        out[..., :-1, :] -= wy * u[..., 1:, :]
        out[..., 1:, :] -= wy * u[..., :-1, :]
        return out

    # -- one level's operator and smoother -------------------------------------------------------------
    def _level(self, l: int, shape):
        """``(A, S, S^T)`` of level ``l`` as functions on ``(B, 1, ny, nx)`` tensors."""
        if self._coefficient is not None:
            a = self._coefficients(l + 1)[l]
            if tuple(a.shape[-2:]) != tuple(shape):
                raise ValueError(f"coefficient grid {tuple(self._coefficient.shape[-2:])} does not match the "
                                 f"input at level {l}: {tuple(a.shape[-2:])} vs {tuple(shape)}")
            wx, wy, d = self._five_point(a)
            A = lambda u: self._apply_five_point(u, wx, wy, d)  # noqa: E731
            beta = 2.0
        else:
            k = self.op_kernel[l]
            k = 0.5 * (k + torch.flip(k, (0, 1)))
            kk = k.reshape(1, 1, 3, 3)
            A = lambda u: F.conv2d(u, kk, padding=1)  # noqa: E731
            d = k.abs().sum().reshape(1, 1, 1, 1)
            beta = 1.0
        raw = self.smooth_kernel[l]
        mask = torch.ones_like(raw)
        mask[1, 1] = 0.0
        off = raw * mask
        lam = F.softplus(raw[1, 1])
        g = off + (off.abs().sum() + lam) * (1.0 - mask)
        g1 = g.abs().sum()
        omega = 2.0 * torch.sigmoid(self.omega_logit[l])
        c = omega * lam / (g1 * g1 * beta)
        gk = (c * g).reshape(1, 1, 3, 3)
        dm = d.rsqrt()
        S = lambda f: dm * F.conv2d(dm * f, gk, padding=1)  # noqa: E731
        St = lambda f: dm * F.conv_transpose2d(dm * f, gk, padding=1)  # noqa: E731
        return A, S, St

    def _cycle(self, l: int, f, nlevels: int):
        A, S, St = self._level(l, f.shape[-2:])
        u = S(f)
        if l < nlevels - 1:
            pk = self.prolong_kernel[l].reshape(1, 1, 3, 3)
            rc = F.conv2d(f - A(u), pk, stride=2, padding=1)  # R = P^T
            uc = self._cycle(l + 1, rc, nlevels)
            u = u + F.conv_transpose2d(uc, pk, stride=2, padding=1)  # odd sizes: exactly the fine shape
        return u + St(f - A(u))

    def levels_for(self, shape) -> int:
        n, shape = 1, tuple(shape)
        while n < self.max_levels and _coarsenable(shape, self.coarsest):
            shape = ((shape[0] + 1) // 2, (shape[1] + 1) // 2)
            n += 1
        return n

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        if f.dim() != 4 or f.shape[1] != 1:
            raise ValueError(f"SymmetricMgConv takes (batch, 1, ny, nx), got {tuple(f.shape)}")
        return self._cycle(0, f, self.levels_for(f.shape[-2:]))
