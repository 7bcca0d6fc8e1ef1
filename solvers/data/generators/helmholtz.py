"""``helmholtz``: a random wave speed, absorbing boundaries, a Gaussian source."""

from __future__ import annotations

import numpy as np

from ...problems import Helmholtz
from ...sampling import gaussian_random_field
from ...sampling.media import wave_speed
from ...sampling.params import FINITE, POSITIVE, real_rule
from .base import GridProblem


class HelmholtzData(GridProblem):
    """``-Laplace(u) - (omega / c(x))^2 u = f`` with a random wave speed ``c`` and absorbing boundaries.

    ``c = c0 * exp(sigma * GRF)`` (``medium=lognormal``, the default) or ``c = c0 * m`` for a medium ``m``
    of :mod:`solvers.sampling.media` (``grf``, ``layered``, ``inclusions``, ``mixed``, ``voronoi`` with speeds in
    ``[1, c_max]``; ``dipping``, ``salt``, ``checkerboard`` held out as out-of-distribution tests); the source is a Gaussian bump at ``(x0, y0)``; the first-order
    absorbing condition ``du/dn - i (omega / c0) u = 0`` uses the background speed. Fields:
    ``wave_speed`` and the complex solution as ``solution_re``, ``solution_im``.
    """

    name = "helmholtz"
    defaults = {"omega": 20.0, "c0": 1.0, "sigma": 0.2, "alpha": 2.0, "tau": 3.0, "modes": 64,
                "x0": 0.5, "y0": 0.5, "width": 0.05, "medium": "lognormal", "c_max": 2.0}
    rules = {"omega": POSITIVE, "c0": POSITIVE, "width": POSITIVE, "x0": FINITE, "y0": FINITE,
             "c_max": real_rule(lambda x: x >= 1, "a finite number >= 1"),
             "sigma": real_rule(lambda x: x >= 0, "non-negative and finite")}  # sigma = 0: constant speed

    def __init__(self, n, seed, params=None):
        super().__init__(n, seed, params)
        p = self.params
        if p["medium"] != "lognormal" and p.get("mesh"):
            raise ValueError(f"helmholtz: medium={p['medium']!r} is defined on the unit-square grid; "
                             "with a mesh file use medium=lognormal")
        absorbing = list(self.mesh.boundaries)
        bump = lambda x: np.exp(-((x[0] - p["x0"]) ** 2 + (x[1] - p["y0"]) ** 2) / (2 * p["width"] ** 2))  # noqa
        ref = Helmholtz(self.mesh, k=p["omega"] / p["c0"], f=bump, absorbing=absorbing, bcs=[]).assemble()
        self.b = ref.b
        k0 = p["omega"] / p["c0"]
        # ref.A = K - k0^2 M - i k0 B: keep K - i k0 B and replace the mass term per sample
        M1 = self.asm.matrix(self.asm.mass_operator() @ np.ones(self.asm.n), eliminate=False)
        self.KB = (ref.A + k0**2 * M1.astype(complex)).tocsr()
        self.Mop = self.asm.mass_operator()

    def fields(self):
        s = self.view.shape
        return {"wave_speed": s, "solution_re": s, "solution_im": s}

    def sample(self, index):
        import scipy.sparse.linalg as spla

        p = self.params
        if p["medium"] == "lognormal":
            c = p["c0"] * np.exp(p["sigma"] * gaussian_random_field(self.n, self.seed, index, p["alpha"], p["tau"], p["modes"]))
        else:
            c = p["c0"] * wave_speed(p["medium"], self.n, self.seed, index, p["c_max"])
        w = 1.0 / self.view.to_dofs(c) ** 2
        A = self.KB - p["omega"] ** 2 * self.asm.matrix(self.Mop @ w, eliminate=False)
        u = spla.splu(A.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.1,
                      options={"SymmetricMode": True}).solve(self.b)
        g = self.view.to_grid(u)
        return self.check(index, {"wave_speed": c, "solution_re": g.real, "solution_im": g.imag})
