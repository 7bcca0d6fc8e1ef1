"""Helmholtz with an absorbing boundary: a plane wave, checked against the exact solution.

PETSc here is real, so the complex matrix K - k^2 M - i k B is combined in scipy and solved with SuperLU.
Run: ``python examples/helmholtz_direct.py``.
"""

import numpy as np

import meshes
import solvers
from solvers.linear import Direct, LinearProblem, solve


def main(n: int = 128, k: float = 20.0):
    mesh = meshes.unit_square(n)
    system = solvers.Helmholtz(mesh, k=k, absorbing=["right"], bcs=[solvers.Dirichlet("left", 1.0)]).assemble()
    sol = solve(LinearProblem.from_system(system), Direct())
    X = system.space.tabulate_dof_coordinates()
    err = np.abs(sol.x - np.exp(1j * k * X[:, 0])).max()
    print(f"{system}: {sol.retcode.name}, max error vs exp(ikx) = {err:.2e}")
    return err


if __name__ == "__main__":
    main()
