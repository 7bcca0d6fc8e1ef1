"""Error norms and convergence-rate tables for mesh studies.

>>> import meshes, numpy as np, dolfinx.fem as fem
>>> from solvers.errors import error_norms
>>> m = meshes.unit_square(8)
>>> u = fem.Function(fem.functionspace(m.mesh, ("Lagrange", 1)))
>>> u.interpolate(lambda x: x[0])
>>> [round(v, 12) for v in error_norms(u, lambda x: x[0])]
[0.0, 0.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np

from meshes import _mpi  # noqa: F401
import dolfinx.fem as fem
import ufl


class ErrorNorms(NamedTuple):
    """``l2 = ||u_h - u||_L2`` and ``h1 = |u_h - u|_H1`` (the H1 seminorm: the gradient's L2 norm)."""

    l2: float
    h1: float


def error_norms(u_h: fem.Function, exact, degree_raise: int = 3) -> ErrorNorms:
    """L2 and H1-seminorm errors of ``u_h`` against ``exact``.

    ``exact`` may be a UFL expression of ``ufl.SpatialCoordinate(mesh)`` (integrated exactly up to the
    quadrature degree), a callable ``x -> values`` on coordinates of shape ``(3, npoints)`` (interpolated
    into a space ``degree_raise`` degrees above ``u_h``'s), or a finer :class:`dolfinx.fem.Function` on a
    nested mesh (e.g. from :func:`meshes.refine`): then ``u_h`` is interpolated onto the fine mesh and the
    error is measured there (a reference solution study).
    """
    V = u_h.function_space
    degree = V.element.basix_element.degree
    if isinstance(exact, fem.Function) and exact.function_space.mesh is not V.mesh:
        return _against_finer(u_h, exact)
    if callable(exact) and not isinstance(exact, (ufl.core.expr.Expr, fem.Function)):
        shape = V.value_shape
        W = fem.functionspace(V.mesh, ("Lagrange", degree + degree_raise, tuple(shape)))
        g = fem.Function(W)
        g.interpolate(exact)
        exact = g
    return _norms(u_h - exact, V.mesh, 2 * (degree + degree_raise))


def _norms(e, msh, quadrature: int) -> ErrorNorms:
    dx = ufl.dx(domain=msh, degree=quadrature)
    l2 = fem.assemble_scalar(fem.form(ufl.inner(e, e) * dx))
    h1 = fem.assemble_scalar(fem.form(ufl.inner(ufl.grad(e), ufl.grad(e)) * dx))
    comm = msh.comm
    return ErrorNorms(float(np.sqrt(comm.allreduce(l2))), float(np.sqrt(comm.allreduce(h1))))


def _against_finer(u_h: fem.Function, fine: fem.Function) -> ErrorNorms:
    Vf = fine.function_space
    coarse_on_fine = fem.Function(Vf)
    cells = np.arange(Vf.mesh.topology.index_map(Vf.mesh.topology.dim).size_local, dtype=np.int32)
    data = fem.create_interpolation_data(Vf, u_h.function_space, cells, padding=1e-12)
    coarse_on_fine.interpolate_nonmatching(u_h, cells, data)
    coarse_on_fine.x.scatter_forward()
    degree = Vf.element.basix_element.degree
    return _norms(coarse_on_fine - fine, Vf.mesh, 2 * degree + 2)


def rates(errors: Sequence[float], hs: Sequence[float]) -> np.ndarray:
    """Observed orders ``log(e_k / e_{k-1}) / log(h_k / h_{k-1})`` between consecutive levels."""
    errors, hs = np.asarray(errors, dtype=float), np.asarray(hs, dtype=float)
    return np.log(errors[1:] / errors[:-1]) / np.log(hs[1:] / hs[:-1])


@dataclass
class RateTable:
    """Errors per refinement level and the observed rates, printable as a Markdown table.

    >>> t = RateTable(h=[0.1, 0.05], errors={"L2": [4e-3, 1e-3]}, expected={"L2": 2.0})
    >>> [round(float(r), 2) for r in t.rates("L2")]
    [2.0]
    >>> print(t)  # doctest: +NORMALIZE_WHITESPACE
    | h | L2 | rate (theory 2) |
    |---|---|---|
    | 0.1 | 4.000e-03 |  |
    | 0.05 | 1.000e-03 | 2.00 |
    """

    h: list[float]
    errors: dict[str, list[float]]
    expected: dict[str, float] = field(default_factory=dict)
    extra: dict[str, list] = field(default_factory=dict)  # more columns per level (dofs, iterations, ...)

    def rates(self, name: str) -> np.ndarray:
        return rates(self.errors[name], self.h)

    def final_rate(self, name: str) -> float:
        return float(self.rates(name)[-1])

    def __str__(self) -> str:
        head = ["h", *self.extra]
        for name in self.errors:
            theory = f" (theory {self.expected[name]:.3g})" if name in self.expected else ""
            head += [name, f"rate{theory}"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        all_rates = {name: self.rates(name) for name in self.errors}
        for k, h in enumerate(self.h):
            row = [f"{h:.4g}", *(str(v[k]) for v in self.extra.values())]
            for name, errs in self.errors.items():
                row += [f"{errs[k]:.3e}", f"{all_rates[name][k - 1]:.2f}" if k else ""]
            lines.append("| " + " | ".join(row) + " |")
        return "\n".join(lines)

    def plot(self, path, xlabel: str = "h") -> Path:
        """Log-log errors against ``h`` with the theoretical slopes as dashed lines (PNG)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        h = np.asarray(self.h)
        fig, ax = plt.subplots(figsize=(5.2, 4))
        for name, errs in self.errors.items():
            line, = ax.loglog(h, errs, "o-", label=f"{name} (rate {self.final_rate(name):.2f})")
            if name in self.expected:
                ax.loglog(h, errs[-1] * (h / h[-1]) ** self.expected[name], "--", color=line.get_color(),
                          alpha=0.6, label=f"h^{self.expected[name]:.3g}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("error")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        from meshes.plot import save_figure

        return save_figure(fig, path)


def convergence_table(levels: Sequence, solve: Callable, exact, expected: dict[str, float] | None = None) -> RateTable:
    """Solve on each mesh of ``levels`` with ``solve(mesh) -> u_h`` and tabulate L2/H1 errors against
    ``exact(mesh)`` (a callable returning what :func:`error_norms` takes), ``h = num_vertices^(-1/tdim)``."""
    h, l2, h1 = [], [], []
    for mesh in levels:
        e = error_norms(solve(mesh), exact(mesh))
        h.append(mesh.num_vertices ** (-1.0 / mesh.tdim))
        l2.append(e.l2)
        h1.append(e.h1)
    return RateTable(h, {"L2": l2, "H1": h1}, dict(expected or {}))
