"""``eit``: Dirichlet-to-Neumann data of boundary voltage patterns for a random conductivity."""

from __future__ import annotations

import numpy as np

from ...sampling import boundary_patterns
from ...dirichlet import lift
from .base import COEFFICIENT_DEFAULTS, GridProblem
from .reuse import reused_solver
from .samplers import coefficient_grid


def _arclength(xy: np.ndarray) -> np.ndarray:
    """Counter-clockwise arclength from the origin of points on the unit square's boundary."""
    x, y = xy[:, 0], xy[:, 1]
    return np.where(np.isclose(y, 0.0), x, np.where(np.isclose(x, 1.0), 1.0 + y,
                    np.where(np.isclose(y, 1.0), 3.0 - x, 4.0 - y)))


class EITData(GridProblem):
    """Electrical impedance tomography: for a random conductivity, the Dirichlet-to-Neumann data of
    ``K`` boundary voltage patterns (``-div(sigma grad u) = 0``, ``u = g_m`` on the boundary).

    The flux is the consistent (variational) one, ``(A_full u)_i = int sigma du/dn phi_i ds`` at
    boundary node ``i``; boundary nodes are ordered by arclength from the origin, counter-clockwise.
    One factorization per sample serves the ``K`` solves. Fields: ``conductivity`` (grid) and ``dtn``
    ``(K, boundary nodes)``; ``fixed/patterns`` and ``fixed/boundary_arclength`` are stored once.
    """

    name = "eit"
    defaults = {**COEFFICIENT_DEFAULTS, "coefficient": "inclusions", "high": 10.0, "low": 1.0, "patterns": 16}

    def __init__(self, n, seed, params=None):
        super().__init__(n, seed, params)
        xy = self.template.space.tabulate_dof_coordinates()[:, :2]
        bd = self.asm.constrained
        order = np.argsort(_arclength(xy[bd]), kind="stable")
        self.bdofs = bd[order]
        self.s = _arclength(xy[self.bdofs])
        self.patterns = boundary_patterns(xy[self.bdofs].T, self.params["patterns"])
        self.B = self.asm.stiffness_operator()
        self.solver = reused_solver(self.template.A, self.params["solver"])

    def fields(self):
        return {"conductivity": self.view.shape, "dtn": (len(self.patterns), len(self.bdofs))}

    def fixed_arrays(self):
        return {"patterns": self.patterns, "boundary_arclength": self.s, "boundary_dofs": self.bdofs}

    def sample(self, index):
        p = self.params
        sigma = coefficient_grid(p["coefficient"], self.n, self.seed, index, p, self.view)
        values = self.B @ self.view.to_dofs(sigma)
        A_full = self.asm.matrix(values, eliminate=False)
        self.solver.factor(self.asm.matrix(values).data)
        rhs = lift(A_full, np.zeros((self.asm.n, len(self.patterns))), self.bdofs, self.patterns.T)
        dtn = np.empty((len(self.patterns), len(self.bdofs)))
        for m in range(len(self.patterns)):
            u = self.solver.solve(rhs[:, m])
            dtn[m] = (A_full @ u)[self.bdofs]
        return self.check(index, {"conductivity": sigma, "dtn": dtn})
