"""Define a problem with named boundaries and solve it (the README example).

Heat flows in through a window on the left wall (a named piece of the boundary), leaves through the
right wall held at u = 0, a Robin condition cools the top; pyamg AMG + CG solves the system.
Run: ``python examples/named_boundaries.py``.
"""

import numpy as np

import meshes
import solvers
from solvers import Dirichlet, Neumann, Robin
from solvers.linear import AMG, CG, LinearProblem, solve


def main(n: int = 128, out: str | None = None):
    mesh = meshes.unit_square(n).with_boundaries(
        {"window": lambda x: np.isclose(x[0], 0.0) & (np.abs(x[1] - 0.5) <= 0.25)})
    problem = solvers.Darcy(mesh, a=lambda x: 1.0 + 9.0 * (x[1] > 0.5), f=0.0, bcs=[
        Neumann("window", 1.0),            # inflow flux a du/dn = 1
        Dirichlet("right", 0.0),
        Robin("top", alpha=2.0, value=0.0),  # a du/dn + 2 u = 0
    ])                                     # left (rest) and bottom: insulated (natural)
    system = problem.assemble()
    sol = solve(LinearProblem.from_system(system), CG(precond=AMG("sa")), rtol=1e-10)
    print(sol, "| boundaries:", dict(mesh.boundaries))
    if out:
        system.write(out, sol.x)
    return system, sol


if __name__ == "__main__":
    main(out="out/named_boundaries.xdmf")
