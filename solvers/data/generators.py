"""Per-problem sample generators: everything that does not change between samples is built once.

A generator is made once per process from ``(n, seed, params)``; ``sample(index)`` returns a dict of
arrays that depends only on ``(seed, index)``, so any split of the indices over workers or MPI ranks
gives bit-identical data. Each process uses its own serial mesh (samples are independent small solves).
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp

from meshes import _mpi, GridView, unit_square
from ..problems import Darcy, Helmholtz
from ..sampling import (FIELD_DEFAULTS, boundary_patterns, check_params, gaussian_random_field, inclusions_at,
                        gaussian_random_field_at)
from ..sampling.params import FINITE, POSITIVE, real_rule
from .p1 import P1Assembler


class GenerationError(RuntimeError):
    """A sample could not be produced (non-finite solution, ...); the message names index and seed."""


# -- solvers reused across samples ------------------------------------------------------------------------
class ReusedCholesky:
    """Sparse Cholesky through PETSc on a fixed pattern: the symbolic factorization is computed once and
    reused for every new set of values (PETSc keeps it while the nonzero pattern does not change).

    ``backend``: ``"petsc"`` (PETSc's own Cholesky, nested-dissection ordering: 2.2 ms vs MUMPS's 2.8 ms
    per factorization at n=64 here, equal at n=128) or ``"mumps"`` (faster from n=256: 103 vs 136 ms).
    """

    def __init__(self, template: sp.csr_matrix, backend: str = "mumps"):
        from petsc4py import PETSc
        from ..linear.petsc import to_petsc_mat

        self.PETSc = PETSc
        self.indptr = template.indptr.astype(PETSc.IntType)
        self.indices = template.indices.astype(PETSc.IntType)
        self.mat = to_petsc_mat(template)
        self.ksp = PETSc.KSP().create(PETSc.COMM_SELF)
        self.ksp.setType("preonly")
        pc = self.ksp.getPC()
        pc.setType("cholesky")
        pc.setFactorSolverType(backend)
        if backend == "petsc":
            pc.setFactorOrdering("nd")
        self.ksp.setOperators(self.mat)
        self.b, self.x = self.mat.createVecRight(), self.mat.createVecRight()

    def factor(self, values: np.ndarray):
        self.mat.zeroEntries()
        self.mat.setValuesCSR(self.indptr, self.indices, values)
        self.mat.assemble()
        self.ksp.setOperators(self.mat)
        self.ksp.setUp()

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        self.b.array[:] = rhs
        self.ksp.solve(self.b, self.x)
        return self.x.array.copy()


class ReusedAMG:
    """pyamg Ruge-Stuben AMG + CG for large grids (a fresh hierarchy per matrix, tight tolerance)."""

    def __init__(self, template, rtol: float = 1e-11):
        self.indptr, self.indices, self.n, self.rtol = template.indptr, template.indices, template.shape[0], rtol

    def factor(self, values):
        from ..linear import AMG, CG, init, LinearProblem

        A = sp.csr_matrix((values, self.indices, self.indptr), shape=(self.n, self.n))
        self.cache = init(LinearProblem(A, np.zeros(self.n)), CG(precond=AMG("rs")), rtol=self.rtol)

    def solve(self, rhs):
        sol = self.cache.solve(rhs)
        if not sol.converged:
            raise GenerationError(f"AMG-CG did not converge: {sol.message}")
        return sol.x


def reused_solver(template, choice: str):
    """Direct up to 257^2 unknowns (fastest there: PETSc Cholesky to 129^2, MUMPS above), AMG-CG beyond
    (``choice``: auto|direct|amg)."""
    ndofs = template.shape[0]
    if choice == "direct" or (choice == "auto" and ndofs <= 257**2):
        return ReusedCholesky(template, "petsc" if ndofs <= 129**2 else "mumps")
    if choice in ("amg", "auto"):
        return ReusedAMG(template)
    raise ValueError(f"unknown solver {choice!r}; use auto, direct or amg")


# -- coefficient samplers ----------------------------------------------------------------------------------
class NodalView:
    """Stand-in for :class:`GridView` on an unstructured mesh: arrays are nodal values in dof order."""

    def __init__(self, space):
        self.points = space.tabulate_dof_coordinates()[:, :2].T
        self.shape = (self.points.shape[1],)

    def to_dofs(self, values):
        return np.asarray(values)

    def to_grid(self, values):
        return np.asarray(values)


def grf(view, n: int, seed: int, index: int, p: dict) -> np.ndarray:
    """The GRF sample on the grid (structured) or at the mesh nodes (unstructured)."""
    if isinstance(view, NodalView):
        return gaussian_random_field_at(view.points, seed, index, p["alpha"], p["tau"], p["modes"])
    return gaussian_random_field(n, seed, index, p["alpha"], p["tau"], p["modes"])


def coefficient_grid(kind: str, n: int, seed: int, index: int, p: dict, view) -> np.ndarray:
    """Coefficient sample as a grid (GridView) or nodal values (NodalView)."""
    if kind in ("two-phase", "contrast"):
        return np.where(grf(view, n, seed, index, p) >= 0, p["high"], p["low"])
    if kind == "log-normal":
        return np.exp(p["sigma"] * grf(view, n, seed, index, p))
    if kind == "inclusions":
        if isinstance(view, NodalView):
            return inclusions_at(view.points, seed, index, p["count"], p["low"], p["high"])
        X, Y = view.coordinates()
        return inclusions_at(np.vstack([X.ravel(), Y.ravel()]), seed, index, p["count"], p["low"],
                             p["high"]).reshape(view.shape)
    raise ValueError(f"unknown coefficient {kind!r}; use one of: {', '.join(FIELD_DEFAULTS)}")


COEFFICIENT_DEFAULTS = {"coefficient": "two-phase", "high": 12.0, "low": 3.0, "alpha": 2.0, "tau": 3.0,
                        "modes": 64, "sigma": 1.0, "count": 6, "solver": "auto"}
#: the string-valued parameters and their choices
CHOICES = {"coefficient": tuple(FIELD_DEFAULTS), "solver": ("auto", "direct", "amg"), "forcing": ("constant", "grf")}


class _GridProblem:
    """Shared setup: serial mesh (the unit square, or a mesh file given as parameter ``mesh``), P1 space,
    grid view (nodal view on unstructured meshes), P1 assembler with ``u = 0`` on every named boundary."""

    name = "?"
    defaults: dict = {}
    #: rules for this problem's own numeric parameters, beside the samplers' (solvers.sampling.params)
    rules: dict = {}

    def __init__(self, n: int, seed: int, params: dict | None = None):
        self.n, self.seed = int(n), int(seed)
        self.params = self.validate_params(params or {})
        mesh_file = self.params.get("mesh")
        if mesh_file:
            self.mesh = self._read_mesh(mesh_file)
        else:
            self.mesh = unit_square(self.n, comm=_mpi.COMM_SELF)
        self.template = Darcy(self.mesh, a=1.0, f=1.0).assemble()  # pattern, constraints, rhs of f=1
        V = self.template.space
        self.view = NodalView(V) if mesh_file else GridView(V)
        self.asm = P1Assembler(V.tabulate_dof_coordinates()[:, :2], V.dofmap.list, self.template.A,
                               self.template.constrained)

    @classmethod
    def validate_params(cls, params: dict) -> dict:
        """Every parameter with defaults filled in, checked before anything is built or written: unknown
        keys, unknown choices, and values the samplers would refuse or turn into nonsense (NaN, <= 0, ...)."""
        unknown = set(params) - set(cls.defaults)
        if unknown:
            raise ValueError(f"{cls.name}: unknown parameters {sorted(unknown)}; valid: {sorted(cls.defaults)}")
        for key, choices in CHOICES.items():
            if key in cls.defaults and key in params and params[key] not in choices:
                raise ValueError(f"{cls.name}: unknown {key} {params[key]!r}; use one of: {', '.join(choices)}")
        merged = {**cls.defaults, **params}
        kind = merged.get("coefficient")
        if kind in FIELD_DEFAULTS:  # e.g. contrast: {1e4, 1} unless given
            merged.update({k: FIELD_DEFAULTS[kind][k] for k in ("high", "low")
                           if k in FIELD_DEFAULTS[kind] and k not in params})
        return check_params(merged, cls.name, cls.rules)

    @staticmethod
    def _read_mesh(mesh_file):
        """A triangle mesh in the xy-plane (data arrays hold nodal values at ``(x, y)``)."""
        from meshes import read

        mesh = read(mesh_file, comm=_mpi.COMM_SELF)
        if mesh.mesh.topology.cell_name() != "triangle":
            raise ValueError(f"{mesh_file}: data generation needs a triangle mesh, "
                             f"this one has {mesh.mesh.topology.cell_name()} cells")
        if mesh.gdim != 2:
            z = mesh.mesh.geometry.x[:, 2]
            raise ValueError(f"{mesh_file}: data generation needs a flat mesh in the xy-plane; this one is a surface "
                             f"in 3-D (z from {z.min():.3g} to {z.max():.3g}): rotate it into z = 0")
        return mesh

    @functools.cached_property
    def M(self) -> sp.csr_matrix:
        """Load matrix: ``M @ f_nodes`` is the right-hand side of a P1 source (exact), zero on the
        Dirichlet rows (homogeneous boundary values)."""
        M = self.asm.matrix(self.asm.mass_operator() @ np.ones(self.asm.n), eliminate=False).tolil()
        M[self.asm.constrained, :] = 0.0
        return M.tocsr()

    def mesh_arrays(self) -> dict:
        """The mesh itself (P1 dof coordinates and cells); on structured meshes also the permutation
        ``grid.ravel()[grid_of_dof]`` giving the nodal values of any stored grid array."""
        V = self.template.space
        out = {"coordinates": V.tabulate_dof_coordinates()[:, :2], "cells": np.asarray(V.dofmap.list)}
        if isinstance(self.view, GridView):
            out["grid_of_dof"] = self.view._grid_of_dof
        return out

    def check(self, index: int, out: dict) -> dict:
        for key, val in out.items():
            if not np.all(np.isfinite(val)):
                raise GenerationError(f"{self.name}: sample {index} (seed {self.seed}) produced non-finite "
                                      f"values in {key!r}")
        return out


class DarcyData(_GridProblem):
    """``-div(a grad u) = f`` on the unit square, ``u = 0`` on the boundary; ``a`` random per sample.

    Fields: ``coefficient`` and ``solution`` as ``(n+1, n+1)`` grids (and ``forcing`` when sampled).
    """

    name = "darcy"
    defaults = {**COEFFICIENT_DEFAULTS, "f": 1.0, "forcing": "constant", "mesh": None}
    rules = {"f": FINITE}

    def __init__(self, n, seed, params=None):
        super().__init__(n, seed, params)
        self.B = self.asm.stiffness_operator()
        self.solver = reused_solver(self.template.A, self.params["solver"])
        self.b_const = self.template.b * float(self.params["f"])

    def fields(self) -> dict:
        s = self.view.shape
        f = {"coefficient": s, "solution": s}
        if self.params["forcing"] == "grf":
            f["forcing"] = s
        return f

    def sample(self, index: int) -> dict:
        p = self.params
        a_grid = coefficient_grid(p["coefficient"], self.n, self.seed, index, p, self.view)
        self.solver.factor(self.asm.matrix(self.B @ self.view.to_dofs(a_grid)).data)
        out = {"coefficient": a_grid}
        if p["forcing"] == "grf":
            f_grid = grf(self.view, self.n, self.seed + 1_000_003, index, p)
            b = self.M @ self.view.to_dofs(f_grid)
            out["forcing"] = f_grid
        else:
            b = self.b_const
        out["solution"] = self.view.to_grid(self.solver.solve(b))
        return self.check(index, out)


class PoissonData(_GridProblem):
    """``-Laplace(u) = f`` with a random smooth forcing ``f`` (GRF); one factorization for all samples."""

    name = "poisson"
    defaults = {"alpha": 2.0, "tau": 3.0, "modes": 64, "solver": "auto", "mesh": None}

    def __init__(self, n, seed, params=None):
        super().__init__(n, seed, params)
        self.solver = reused_solver(self.template.A, self.params["solver"])
        self.solver.factor(self.template.A.data)

    def fields(self):
        return {"forcing": self.view.shape, "solution": self.view.shape}

    def sample(self, index):
        p = self.params
        f = grf(self.view, self.n, self.seed, index, p)
        u = self.solver.solve(self.M @ self.view.to_dofs(f))
        return self.check(index, {"forcing": f, "solution": self.view.to_grid(u)})


class DarcyRhsData(PoissonData):
    """A *fixed* coefficient (sample 0 of the coefficient sampler) and many random right-hand sides:
    the pairs ``(f, u = A^{-1} f)`` a learned preconditioner trains on."""

    name = "darcy-rhs"
    defaults = {**COEFFICIENT_DEFAULTS, "mesh": None}

    def __init__(self, n, seed, params=None):
        _GridProblem.__init__(self, n, seed, params)
        p = self.params
        self.a_grid = coefficient_grid(p["coefficient"], self.n, self.seed, 0, p, self.view)
        A = self.asm.matrix(self.asm.stiffness_operator() @ self.view.to_dofs(self.a_grid))
        self.solver = reused_solver(A, p["solver"])
        self.solver.factor(A.data)

    def fixed_arrays(self) -> dict:
        return {"coefficient": self.a_grid}


GENERATORS = {g.name: g for g in (DarcyData, PoissonData, DarcyRhsData)}


def _generator_class(problem: str):
    try:
        return GENERATORS[problem]
    except KeyError:
        raise ValueError(f"unknown problem {problem!r}; choose one of: {', '.join(GENERATORS)}") from None


def check_generator_params(problem: str, params: dict | None = None) -> dict:
    """The parameters ``make_generator`` would use (defaults filled in), checked without building anything;
    ``ValueError`` naming the bad key or value."""
    return _generator_class(problem).validate_params(params or {})


def make_generator(problem: str, n: int, seed: int, params: dict | None = None):
    """The generator of ``problem``; every parameter is checked here, before any file is written."""
    return _generator_class(problem)(n, seed, params)


def _arclength(xy: np.ndarray) -> np.ndarray:
    """Counter-clockwise arclength from the origin of points on the unit square's boundary."""
    x, y = xy[:, 0], xy[:, 1]
    return np.where(np.isclose(y, 0.0), x, np.where(np.isclose(x, 1.0), 1.0 + y,
                    np.where(np.isclose(y, 1.0), 3.0 - x, 4.0 - y)))


class HelmholtzData(_GridProblem):
    """``-Laplace(u) - (omega / c(x))^2 u = f`` with a random wave speed ``c`` and absorbing boundaries.

    ``c = c0 * exp(sigma * GRF)``; the source is a Gaussian bump at ``(x0, y0)``; the first-order
    absorbing condition ``du/dn - i (omega / c0) u = 0`` uses the background speed. Fields:
    ``wave_speed`` and the complex solution as ``solution_re``, ``solution_im``.
    """

    name = "helmholtz"
    defaults = {"omega": 20.0, "c0": 1.0, "sigma": 0.2, "alpha": 2.0, "tau": 3.0, "modes": 64,
                "x0": 0.5, "y0": 0.5, "width": 0.05}
    rules = {"omega": POSITIVE, "c0": POSITIVE, "width": POSITIVE, "x0": FINITE, "y0": FINITE,
             "sigma": real_rule(lambda x: x >= 0, "non-negative and finite")}  # sigma = 0: constant speed

    def __init__(self, n, seed, params=None):
        super().__init__(n, seed, params)
        p = self.params
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
        c = p["c0"] * np.exp(p["sigma"] * gaussian_random_field(self.n, self.seed, index, p["alpha"], p["tau"], p["modes"]))
        w = 1.0 / self.view.to_dofs(c) ** 2
        A = self.KB - p["omega"] ** 2 * self.asm.matrix(self.Mop @ w, eliminate=False)
        u = spla.splu(A.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.1,
                      options={"SymmetricMode": True}).solve(self.b)
        g = self.view.to_grid(u)
        return self.check(index, {"wave_speed": c, "solution_re": g.real, "solution_im": g.imag})


class EITData(_GridProblem):
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
        G = np.zeros((self.asm.n, len(self.patterns)))
        G[self.bdofs] = self.patterns.T
        rhs = -(A_full @ G)
        rhs[self.bdofs] = self.patterns.T
        dtn = np.empty((len(self.patterns), len(self.bdofs)))
        for m in range(len(self.patterns)):
            u = self.solver.solve(rhs[:, m])
            dtn[m] = (A_full @ u)[self.bdofs]
        return self.check(index, {"conductivity": sigma, "dtn": dtn})


GENERATORS.update({g.name: g for g in (HelmholtzData, EITData)})
