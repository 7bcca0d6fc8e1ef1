"""Two-phase Darcy data with numpy and scipy only, for machines without DOLFINx (the GPU benchmark script).

The same problem as ``hybrid generate darcy``: P1 elements on the unit square split into right triangles
(``meshes.unit_square``'s ``diagonal="right"``), the nodal two-phase coefficient of
:func:`solvers.sampling.two_phase` (sample ``(seed, index)``), ``f = 1``, zero Dirichlet data. With a P1
coefficient the stiffness integral is exact (triangle mean of the nodal values times the P0 gradients), so
the solutions equal the toolkit's to round-off (a test compares them). Files have the toolkit's layout
(``coefficient``, ``solution``, ``complete``), so :class:`hybrid.data.FieldDataset` reads them.

``python -m hybrid.bench.darcy_numpy --n 256 --samples 1280 --seed 0 --out FILE [--workers 16]``
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import types
from pathlib import Path

import numpy as np


def _two_phase():
    """:func:`solvers.sampling.two_phase` without importing ``solvers`` (whose package imports DOLFINx)."""
    if "solvers" not in sys.modules:
        try:
            import solvers  # noqa: F401
        except ImportError:  # no DOLFINx here: a bare package object, so that solvers.sampling (numpy) imports
            pkg = types.ModuleType("solvers")
            pkg.__path__ = [str(Path(__file__).resolve().parents[2] / "solvers")]
            sys.modules["solvers"] = pkg
    return importlib.import_module("solvers.sampling.grf").two_phase


def _local_stiffness(p):
    """3x3 P1 stiffness of the triangle with vertices ``p`` (3, 2), unit coefficient."""
    B = np.array([p[1] - p[0], p[2] - p[0]]).T
    grads = np.linalg.solve(B.T, np.array([[-1.0, 1.0, 0.0], [-1.0, 0.0, 1.0]]))  # (2, 3)
    return abs(np.linalg.det(B)) / 2 * grads.T @ grads


class DarcyP1:
    """Assembly and solve for one grid size ``n`` (cells per side); nodes ``(j, i)`` at ``(i/n, j/n)``."""

    def __init__(self, n: int):
        import scipy.sparse as sp

        self.n = n
        m = n + 1
        I, J = np.meshgrid(np.arange(n), np.arange(n))
        I, J = I.ravel(), J.ravel()
        node = lambda i, j: j * m + i  # noqa: E731
        # each cell split by its diagonal (i, j) - (i+1, j+1)
        t1 = np.stack([node(I, J), node(I + 1, J), node(I + 1, J + 1)], 1)
        t2 = np.stack([node(I, J), node(I + 1, J + 1), node(I, J + 1)], 1)
        self.tris = np.concatenate([t1, t2])
        h = 1.0 / n
        k1 = _local_stiffness(np.array([[0, 0], [h, 0], [h, h]]))
        k2 = _local_stiffness(np.array([[0, 0], [h, h], [0, h]]))
        self.local = np.concatenate([np.broadcast_to(k1, (len(t1), 3, 3)), np.broadcast_to(k2, (len(t2), 3, 3))])
        self.rows = np.repeat(self.tris, 3, axis=1).ravel()
        self.cols = np.tile(self.tris, (1, 3)).ravel()
        load = np.zeros(m * m)
        np.add.at(load, self.tris.ravel(), h * h / 2 / 3)
        boundary = np.zeros((m, m), bool)
        boundary[0, :] = boundary[-1, :] = boundary[:, 0] = boundary[:, -1] = True
        self.interior = np.flatnonzero(~boundary.ravel())
        self.load = load[self.interior]
        self._sp = sp

    def matrix(self, a_grid: np.ndarray):
        """Stiffness matrix of the nodal coefficient ``a_grid`` (n+1, n+1), interior rows and columns."""
        a = a_grid.ravel()[self.tris].mean(1)
        vals = (self.local * a[:, None, None]).ravel()
        m = (self.n + 1) ** 2
        A = self._sp.coo_matrix((vals, (self.rows, self.cols)), shape=(m, m)).tocsr()
        return A[self.interior][:, self.interior].tocsc()

    def solve(self, a_grid: np.ndarray) -> np.ndarray:
        from scipy.sparse.linalg import splu

        u = np.zeros((self.n + 1) ** 2)
        u[self.interior] = splu(self.matrix(a_grid), permc_spec="MMD_AT_PLUS_A",
                                options={"SymmetricMode": True}).solve(self.load)
        return u.reshape(self.n + 1, self.n + 1)


def _sample(args):
    n, seed, index = args
    a = _two_phase()(n, seed, index)
    return a, _solver(n).solve(a)


_SOLVERS: dict = {}


def _solver(n):
    if n not in _SOLVERS:
        _SOLVERS[n] = DarcyP1(n)
    return _SOLVERS[n]


def generate(n: int, samples: int, out, seed: int = 0, workers: int = 1, log=print) -> Path:
    """Write ``samples`` two-phase Darcy samples at ``n`` cells per side to ``out`` (skipped when complete)."""
    import h5py

    out = Path(out)
    if out.exists():
        with h5py.File(out, "r") as f:
            if f.attrs.get("n") == n and f.attrs.get("seed") == seed and len(f["complete"]) == samples \
                    and f["complete"][...].all():
                log(f"{out}: complete, kept")
                return out
    out.parent.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    jobs = [(n, seed, i) for i in range(samples)]
    if workers > 1:
        from multiprocessing import get_context

        with get_context("fork").Pool(workers) as pool:
            results = pool.map(_sample, jobs, chunksize=max(1, samples // (4 * workers)))
    else:
        results = [_sample(j) for j in jobs]
    tmp = out.with_suffix(".tmp")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("coefficient", data=np.stack([r[0] for r in results]).astype(np.float64))
        f.create_dataset("solution", data=np.stack([r[1] for r in results]).astype(np.float64))
        f.create_dataset("complete", data=np.ones(samples, bool))
        f.attrs.update({"problem": "darcy", "pde": "darcy", "n": n, "seed": seed, "samples": samples,
                        "params": "two-phase {12, 3}, f = 1, zero Dirichlet (numpy/scipy P1)",
                        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    tmp.replace(out)
    log(f"{out}: {samples} samples at n={n} in {time.perf_counter() - t:.1f} s ({workers} processes)")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--samples", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    generate(a.n, a.samples, a.out, a.seed, a.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
