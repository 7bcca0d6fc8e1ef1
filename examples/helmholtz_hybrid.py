"""A point source in a layered medium at 10 points per wavelength: classical and learned preconditioners.

``-Laplace(u) - (k / c(x))^2 u = f`` on the unit square, ``k = 2 pi n / 10``, absorbing boundaries, a
Gaussian source near the top of a layered medium (``solvers.sampling.media.layered``). Three solvers on
the same matrix: sparse LU (SuperLU, the reference), FGMRES with the complex shifted-Laplacian cycle
(``cslp+fgmres``), FGMRES with the learned correction of that cycle (``bench/models/helmholtz_cslp.pt``,
safeguarded: an untrained model falls back to the classical cycle), and the cycle with two-level deflation
(``cslp-def+fgmres``: an exact coarse solve on the grid with half the cells per side, 10 iterations at any
size), and a network trained on what that deflated step leaves between two of them (``learned-def+fgmres``,
``bench/models/helmholtz_cslp_def_c4.pt``). Writes the wavefield image and the convergence histories.

Run: ``python examples/helmholtz_hybrid.py [--n 512] [--model bench/models/helmholtz_cslp.pt]
[--def-model bench/models/helmholtz_cslp_def_c4.pt] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from solvers.linear import Direct, FGMRES, LinearProblem, solve
from solvers.linear.methods import HELMHOLTZ_RESTART
from solvers.linear.preconditioners import ShiftedLaplacian, TwoLevelDeflation
from solvers.problems.helmholtz import grid_helmholtz, wavenumber
from solvers.sampling.media import layered

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "bench" / "models" / "helmholtz_cslp.pt"
DEF_MODEL = ROOT / "bench" / "models" / "helmholtz_cslp_def_c4.pt"


def main(n: int = 512, model=MODEL, out=Path("helmholtz_hybrid"), seed: int = 7, def_model=DEF_MODEL):
    from hybrid.precond.helmholtz import LearnedShiftedLaplacian

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    c = layered(n, seed=seed, index=0)
    system = grid_helmholtz(c, wavenumber(n), source=(0.5, 0.85))
    lp = LinearProblem.from_system(system)
    print(f"{system}: k = {wavenumber(n):.1f}, 10 points per wavelength at speed {c.min():.2f}")
    runs = {}
    t = time.perf_counter()
    ref = solve(lp, Direct("superlu"))
    runs["direct-superlu"] = (ref, time.perf_counter() - t)
    algs = {"cslp+fgmres": FGMRES(restart=HELMHOLTZ_RESTART, precond=ShiftedLaplacian()),
            "cslp-def+fgmres": FGMRES(restart=HELMHOLTZ_RESTART, precond=TwoLevelDeflation())}
    if model is not None and Path(model).exists():
        algs["learned-cslp+fgmres"] = FGMRES(restart=HELMHOLTZ_RESTART, precond=LearnedShiftedLaplacian(model))
    else:
        print(f"no model at {model}: classical preconditioner only")
    if def_model is not None and Path(def_model).exists():
        algs["learned-def+fgmres"] = FGMRES(restart=HELMHOLTZ_RESTART, precond=LearnedShiftedLaplacian(
            def_model, classical=TwoLevelDeflation()))
    for name, alg in algs.items():
        t = time.perf_counter()
        runs[name] = (solve(lp, alg, rtol=1e-8, maxiter=3000), time.perf_counter() - t)
    for name, (sol, sec) in runs.items():
        diff = np.linalg.norm(sol.x - ref.x) / np.linalg.norm(ref.x)
        print(f"  {name:22s} {sol.retcode.name:8s} {sol.iterations:5d} iterations {sec:7.2f} s, true residual "
              f"{sol.residual:.1e}, difference from LU {diff:.1e}")
    _figures(system, c, runs, out)
    return {name: {"iterations": sol.iterations, "seconds": sec, "residual": sol.residual,
                   "converged": sol.converged, "x": sol.x} for name, (sol, sec) in runs.items()}


def _figures(system, c, runs, out: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from meshes.plot import save_figure

    grid = system.aux["grid"]
    u = grid.to_grid(runs["direct-superlu"][0].x)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    im = axes[0].imshow(c, origin="lower", extent=(0, 1, 0, 1), cmap="viridis")
    axes[0].set_title("wave speed c(x)")
    fig.colorbar(im, ax=axes[0], shrink=0.8)
    vmax = np.percentile(np.abs(u.real), 99)
    im = axes[1].imshow(u.real, origin="lower", extent=(0, 1, 0, 1), cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    axes[1].set_title("Re u (point source at (0.5, 0.85))")
    fig.colorbar(im, ax=axes[1], shrink=0.8)
    for name, (sol, _) in runs.items():
        if sol.iterations > 1:
            axes[2].semilogy(np.asarray(sol.residuals) / sol.residuals[0], label=f"{name} ({sol.iterations} it)")
    axes[2].set(xlabel="FGMRES iteration", ylabel="relative residual", title="convergence")
    axes[2].axhline(1e-8, color="k", lw=0.5, ls="--")
    axes[2].legend()
    save_figure(fig, out / "helmholtz_hybrid.png")
    print(f"wrote {out / 'helmholtz_hybrid.png'}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--model", type=Path, default=MODEL)
    ap.add_argument("--def-model", type=Path, default=DEF_MODEL, help="learned-def+fgmres's network")
    ap.add_argument("--out", type=Path, default=Path("helmholtz_hybrid"))
    a = ap.parse_args()
    main(a.n, a.model, a.out, def_model=a.def_model)
