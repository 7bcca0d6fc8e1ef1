"""``LinearSystem``: an assembled PDE, ``A x = b``, with the space and constraints it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from meshes import Mesh
import meshes
import dolfinx.fem as fem


@dataclass(eq=False)
class LinearSystem:
    """``A x = b`` from a finite element problem.

    Attributes
    ----------
    A : scipy.sparse.csr_matrix
        System matrix with Dirichlet rows *and* columns eliminated (identity on constrained dofs),
        so a symmetric PDE gives a symmetric matrix. Owned rows only on a distributed mesh.
    b : ndarray
        Right-hand side with the Dirichlet values lifted; ``b[constrained]`` holds the boundary values.
    space : dolfinx.fem.FunctionSpace
        The space whose dofs index ``x`` (for vector spaces, blocked: ``x[bs*node + component]``).
    constrained : ndarray of int
        Local indices (unrolled by block size) of the Dirichlet dofs.
    mesh : meshes.Mesh
    forms : (a, L) compiled dolfinx forms, or None for systems assembled from several real forms
    bcs : list of dolfinx DirichletBC
    name : str
        The problem's name (``"poisson"``, ``"darcy"``, ...).
    aux : dict
        Auxiliary data a preconditioner may need beyond ``A``: Helmholtz stores ``"k2M"``, the
        ``k(x)^2``-weighted mass matrix (Dirichlet rows and columns zero) that the complex shifted
        Laplacian ``A - i beta k2M`` needs, and ``"grid"``, a :class:`meshes.GridView` when the mesh is a
        structured grid (geometric multigrid).
    nullspace : ndarray or None
        Unit-norm basis of the null space of ``A`` (owned entries), or ``None`` when ``A`` is nonsingular.
        A Poisson/Darcy problem with neither a Dirichlet nor a Robin condition (pure Neumann) has the
        constants: ``LinearProblem.from_system`` passes it on, and the solve checks that ``b`` is consistent
        and returns the zero-mean solution (see ``solvers.linear.LinearProblem``).
    """

    A: sp.csr_matrix
    b: np.ndarray
    space: fem.FunctionSpace
    constrained: np.ndarray
    mesh: Mesh
    forms: tuple | None = None
    bcs: list = field(default_factory=list)
    name: str = "problem"
    nullspace: np.ndarray | None = None
    aux: dict = field(default_factory=dict)

    @property
    def ndofs(self) -> int:
        """Global number of unknowns."""
        im = self.space.dofmap.index_map
        return im.size_global * self.space.dofmap.index_map_bs

    @property
    def dtype(self):
        return self.A.dtype

    def __repr__(self) -> str:
        return (f"LinearSystem({self.name}, ndofs={self.ndofs}, nnz={self.A.nnz}, "
                f"dtype={self.A.dtype}, constrained={len(self.constrained)})")

    def relative_residual(self, x: np.ndarray) -> float:
        """True relative residual ``||b - A x|| / ||b||`` (serial scipy arrays)."""
        nb = np.linalg.norm(self.b)
        r = np.linalg.norm(self.b - self.A @ x)
        return float(r / nb) if nb > 0 else float(r)

    def function(self, x: np.ndarray, name: str = "u") -> fem.Function:
        """The solution vector ``x`` as a dolfinx Function (ghost values updated)."""
        if np.iscomplexobj(x):
            raise ValueError("a complex solution cannot become a dolfinx Function with real PETSc; "
                             "use x.real and x.imag separately")
        u = fem.Function(self.space, name=name)
        n = len(x)
        owned = self.space.dofmap.index_map.size_local * self.space.dofmap.index_map_bs
        if n != owned:
            raise ValueError(f"solution vector has length {n}, the space has {owned} owned dofs")
        u.x.array[:n] = x
        u.x.scatter_forward()
        return u

    def write(self, path, x: np.ndarray, name: str = "u") -> Path:
        """Write the solution to ``.xdmf`` or ``.vtu`` (complex solutions as ``name_re``/``name_im``)."""
        if np.iscomplexobj(x):
            fields = {f"{name}_re": self.function(x.real, f"{name}_re"),
                      f"{name}_im": self.function(x.imag, f"{name}_im")}
        else:
            fields = {name: self.function(x, name)}
        return meshes.write(path, self.mesh, fields)

    def to_petsc(self):
        """``(A, b)`` as PETSc ``Mat``/``Vec``, assembled in parallel by dolfinx with the same BCs.

        The caller owns (and should ``destroy()``) them. Complex systems cannot go to PETSc here:
        this PETSc build is real.
        """
        if self.forms is None or np.iscomplexobj(self.b):
            raise ValueError(f"{self.name}: this system was combined from several real forms into a "
                             "complex matrix; PETSc here is real-only, use the scipy A and b")
        import dolfinx.fem.petsc as fpetsc
        from petsc4py import PETSc

        a, L = self.forms
        A = fpetsc.assemble_matrix(a, bcs=self.bcs)
        A.assemble()
        b = fpetsc.assemble_vector(L)
        fpetsc.apply_lifting(b, [a], bcs=[self.bcs])
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        fpetsc.set_bc(b, self.bcs)
        return A, b
