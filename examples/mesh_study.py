"""h-refinement on the L-shaped domain: measured L2/H1 rates of P1 against theory (the README mesh study).

``u = r^(2/3) sin(2 theta / 3)`` is harmonic on the L-shape ``(-1, 1)^2 \\ [0, 1) x (-1, 0]``, zero on the two
edges at the re-entrant corner (boundary ``notch``) and given on ``outer``. Its gradient is singular at the
corner, so P1 on uniformly refined meshes converges at ``h^(2/3)`` in H1 and ``h^(4/3)`` in L2 (not 1 and 2),
with ``h = vertices^(-1/2)``. Each level is solved with CG + smoothed-aggregation AMG; the table records
iterations per level. Writes ``rates.md``, ``convergence.png``, ``solution.png``, ``solution.xdmf`` (ParaView)
and ``solution.vtu`` into ``--out``.

Run: ``python examples/mesh_study.py`` (about 10 s) or ``python examples/mesh_study.py --small`` (1-2 s).
"""

import argparse
import json
from pathlib import Path

import numpy as np
import ufl

import meshes
import solvers
from solvers import Dirichlet
from solvers.errors import RateTable, error_norms
from solvers.linear import AMG, CG, LinearProblem, solve

THEORY = {"L2": 4 / 3, "H1": 2 / 3}


def corner_solution(x):
    """``r^(2/3) sin(2 theta / 3)``, theta in [0, 3 pi / 2], for UFL coordinates or numpy arrays. Angles below
    -pi/4 are the third quadrant's (theta + 2 pi), so points on the notch edges with a rounding-size negative
    coordinate still get theta = 0 or 3 pi / 2."""
    if isinstance(x, np.ndarray):
        theta = np.arctan2(x[1], x[0])
        theta = np.where(theta < -np.pi / 4, theta + 2 * np.pi, theta)
        return np.hypot(x[0], x[1]) ** (2 / 3) * np.sin(2 * theta / 3)
    theta = ufl.atan2(x[1], x[0])
    theta = ufl.conditional(ufl.lt(theta, -np.pi / 4), theta + 2 * np.pi, theta)
    return (x[0] ** 2 + x[1] ** 2) ** (1 / 3) * ufl.sin(2 * theta / 3)


def main(h0: float = 0.25, levels: int = 5, out: str | None = "out/mesh_study"):
    mesh = meshes.l_shape(h0)
    hs, errors, dofs, iterations = [], {"L2": [], "H1": []}, [], []
    for level in range(levels):
        if level:
            mesh = meshes.refine(mesh)
        system = solvers.Poisson(mesh, f=0.0, bcs=[Dirichlet("notch", 0.0), Dirichlet("outer", corner_solution)]
                                 ).assemble()
        sol = solve(LinearProblem.from_system(system), CG(precond=AMG("sa")), rtol=1e-10)
        assert sol.retcode.name == "Success", sol
        u_h = system.function(sol.x)
        e = error_norms(u_h, corner_solution(ufl.SpatialCoordinate(mesh.mesh)))
        hs.append(mesh.num_vertices ** -0.5)
        errors["L2"].append(e.l2)
        errors["H1"].append(e.h1)
        dofs.append(mesh.num_vertices)
        iterations.append(sol.iterations)
    table = RateTable(hs, errors, THEORY, extra={"dofs": dofs, "CG+AMG iterations": iterations})
    print(table)
    summary = {"h0": h0, "levels": levels, "dofs": dofs, "iterations": iterations, "errors": errors,
               "rates": {k: [float(r) for r in table.rates(k)] for k in errors}, "theory": THEORY}
    if out:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "rates.md").write_text(str(table) + "\n")
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        table.plot(out / "convergence.png", xlabel="h = vertices^(-1/2)")
        from meshes.plot import plot_fields

        plot_fields(out / "solution.png", {"u_h": u_h})
        meshes.write(out / "solution.xdmf", mesh, {"u": u_h})
        meshes.write(out / "solution.vtu", mesh, {"u": u_h})
        print(f"wrote {out}/: rates.md, summary.json, convergence.png, solution.png, solution.xdmf, solution.vtu")
    return table, summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="3 coarse levels (a test runs this)")
    parser.add_argument("--out", default="out/mesh_study")
    args = parser.parse_args()
    main(*((0.5, 3) if args.small else (0.25, 5)), out=args.out)
