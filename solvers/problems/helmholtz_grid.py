"""The Helmholtz system of :func:`solvers.problems.helmholtz.grid_helmholtz`, assembled with numpy alone.

Why written: the lent GPU machines have torch, numpy and scipy but no DOLFINx, and the GPU rows of
``hybrid bench helmholtz`` (n = 1024 ... 2048: 1-4 million unknowns, too large to carry as matrices)
must solve the same system as the CPU rows. On the uniform right-diagonal triangle grid of
``meshes.unit_square(n)`` every element is one of two right triangles, so P1 assembly is a few vectorized
numpy lines. The forms and quadrature rules are DOLFINx's for ``Helmholtz(..., speed=c_grid)``:

* stiffness ``K`` (exact);
* ``k2M = (k / c_h)^2 u v dx`` with ``c_h`` the P1 interpolant of the nodal speed, by basix's default
  degree-4 triangle rule (UFL estimates the integrand's degree as 4: the rule's 6 points, below);
* absorbing boundary ``(k / c_h) u v ds`` on all four sides by the 2-point Gauss rule (degree 3);
* load ``f_h v dx`` with ``f_h`` the P1 interpolant of the Gaussian source (consistent mass).

``tests/test_helmholtz_grid.py`` checks equality with the DOLFINx matrices to rounding. Unknowns are in
grid order: node ``(i, j)`` at ``(i / n, j / n)`` is row ``j (n + 1) + i``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# basix.make_quadrature(triangle, 4): 6 points (reference coordinates) and weights (sum 1/2)
_TRI_POINTS = np.array([[0.816847572980459, 0.091576213509771], [0.091576213509771, 0.816847572980459],
                        [0.091576213509771, 0.091576213509771], [0.10810301816807, 0.445948490915965],
                        [0.445948490915965, 0.10810301816807], [0.445948490915965, 0.445948490915965]])
_TRI_WEIGHTS = np.array([0.054975871827661, 0.054975871827661, 0.054975871827661,
                         0.1116907948390055, 0.1116907948390055, 0.1116907948390055])
# basix.make_quadrature(interval, 3): 2-point Gauss on [0, 1]
_EDGE_POINTS = np.array([0.21132486540518713, 0.7886751345948129])
_EDGE_WEIGHTS = np.array([0.5, 0.5])

#: points per wavelength at speed 1 used by the Helmholtz benchmark and the learned preconditioner
PPW = 10.0


def wavenumber(n: int, ppw: float = PPW) -> float:
    """``k = 2 pi n / ppw``: ``ppw`` points per wavelength at speed 1 on the unit square with ``n`` cells."""
    return 2.0 * np.pi * n / ppw


def _triangles(n: int) -> list[np.ndarray]:
    """Node indices ``(n*n, 3)`` of the two triangles of every cell (the diagonal from bottom-left to
    top-right): lower ``(v00, v10, v11)`` and upper ``(v00, v01, v11)``."""
    j, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    v00 = (j * (n + 1) + i).ravel()
    v10, v01, v11 = v00 + 1, v00 + n + 1, v00 + n + 2
    return [np.stack([v00, v10, v11], 1), np.stack([v00, v01, v11], 1)]


def _p1_gradients(kind: int, h: float) -> np.ndarray:
    """Gradients (3, 2) of the P1 basis functions of the lower (0) or upper (1) triangle's vertices."""
    if kind == 0:  # (0,0), (h,0), (h,h)
        return np.array([[-1.0, 0.0], [1.0, -1.0], [0.0, 1.0]]) / h
    return np.array([[0.0, -1.0], [-1.0, 1.0], [1.0, 0.0]]) / h  # (0,0), (0,h), (h,h)


def _scatter(elements, local, N) -> sp.csr_matrix:
    """Sum the element matrices ``local`` (cells, m, m) into an ``N x N`` matrix."""
    m = elements.shape[1]
    rows = np.repeat(elements, m, axis=1).ravel()
    cols = np.tile(elements, (1, m)).ravel()
    return sp.coo_matrix((np.ascontiguousarray(local).ravel(), (rows, cols)), shape=(N, N)).tocsr()


def _boundary_edges(n: int) -> np.ndarray:
    """Node index pairs ``(4n, 2)`` of the boundary edges (bottom, top, left, right)."""
    i = np.arange(n)
    bottom = np.stack([i, i + 1], 1)
    top = bottom + n * (n + 1)
    left = np.stack([i * (n + 1), (i + 1) * (n + 1)], 1)
    return np.concatenate([bottom, top, left, left + n])


def assemble(c_grid, k: float, source=(0.5, 0.5), width: float | None = None):
    """``(A, k2M, b)`` in grid order for the wave speed ``c_grid`` (``(n+1) x (n+1)`` nodes), wavenumber
    ``k``, absorbing boundaries on all sides and a normalized Gaussian source of width ``2 h`` by default:
    the system of :func:`solvers.problems.helmholtz.grid_helmholtz` (which is in DOLFINx's dof order)."""
    c = np.asarray(c_grid, dtype=float)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] < 3:
        raise ValueError(f"wave speed grid must be square (n+1, n+1) with n >= 2, got shape {c.shape}")
    if not (np.all(np.isfinite(c)) and c.min() > 0):
        raise ValueError("wave speed must be finite and positive everywhere")
    if not (np.isfinite(k) and k > 0):
        raise ValueError(f"wavenumber k must be a positive finite number, got {k!r}")
    n = c.shape[0] - 1
    h, N = 1.0 / n, (n + 1) ** 2
    cf = c.ravel()
    s, t = _TRI_POINTS[:, 0], _TRI_POINTS[:, 1]
    lam = np.stack([1 - s - t, s, t], 1)  # (q, 3) barycentric; the rule is symmetric, so vertex order is free
    K = k2M = M = 0
    for kind, tris in enumerate(_triangles(n)):
        G = _p1_gradients(kind, h)
        K = K + _scatter(tris, np.broadcast_to(G @ G.T * (h * h / 2), (len(tris), 3, 3)), N)
        wq = (k / (cf[tris] @ lam.T)) ** 2 * (_TRI_WEIGHTS * h * h)  # (cells, q); |det J| = h^2
        k2M = k2M + _scatter(tris, np.einsum("cq,qa,qb->cab", wq, lam, lam), N)
        Me = (np.ones((3, 3)) + np.eye(3)) * (h * h / 24)  # consistent P1 mass of a triangle of area h^2/2
        M = M + _scatter(tris, np.broadcast_to(Me, (len(tris), 3, 3)), N)
    edges = _boundary_edges(n)
    mu = np.stack([1 - _EDGE_POINTS, _EDGE_POINTS], 1)  # (q, 2)
    we = (k / (cf[edges] @ mu.T)) * (_EDGE_WEIGHTS * h)
    B = _scatter(edges, np.einsum("cq,qa,qb->cab", we, mu, mu), N)
    A = (K.astype(np.complex128) - k2M - 1j * B).tocsr()
    return A, k2M.tocsr(), (M @ _gaussian(n, source, width)).astype(np.complex128)


def _gaussian(n: int, source, width: float | None) -> np.ndarray:
    """The normalized Gaussian of width ``2 h`` (default) at ``source`` on the node grid, flattened."""
    w = width or 2.0 / n
    X, Y = np.meshgrid(np.linspace(0.0, 1.0, n + 1), np.linspace(0.0, 1.0, n + 1))
    return (np.exp(-((X - source[0]) ** 2 + (Y - source[1]) ** 2) / (2 * w**2)) / (2 * np.pi * w**2)).ravel()


def point_sources(n: int, sources, width: float | None = None):
    """The right-hand sides of :func:`assemble` alone (grid order, complex), one per source, one at a time:
    the P1 mass matrix (built once) applied to the Gaussian at each source, for more sources on the same
    system without assembling it again."""
    h, N = 1.0 / n, (n + 1) ** 2
    Me = (np.ones((3, 3)) + np.eye(3)) * (h * h / 24)
    M = sum(_scatter(tris, np.broadcast_to(Me, (len(tris), 3, 3)), N) for tris in _triangles(n))
    for source in sources:
        yield (M @ _gaussian(n, source, width)).astype(np.complex128)
