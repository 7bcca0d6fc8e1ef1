"""Shared machinery of the PDE problems: spaces, boundary conditions by name, assembly."""

from __future__ import annotations

import abc
from typing import Sequence

import numpy as np

from meshes import Mesh
import dolfinx.fem as fem
import dolfinx.la as la
import ufl

from ..bcs import Dirichlet, Neumann, Robin
from ..dirichlet import eliminate, lift
from ..fields import as_expression
from ..system import LinearSystem


def default_bcs(mesh: Mesh) -> list[Dirichlet]:
    """``u = 0`` on every named boundary (the default when a problem gets ``bcs=None``)."""
    return [Dirichlet(name, 0.0) for name in mesh.boundaries]


def no_boundaries_message(mesh: Mesh) -> str:
    """Why a problem with default conditions cannot be built on a mesh without named boundaries."""
    group = "Physical Curve" if mesh.tdim == 2 else "Physical Surface"
    return ("the mesh has no named boundaries (a mesh file without boundary groups?), so the default condition "
            "u = 0 on every named boundary applies nowhere and the system would be singular (the solver would "
            f"report a breakdown); name the boundaries ({group} groups in gmsh, or mesh.with_boundaries("
            "{name: predicate})) and give conditions by name, or pass bcs=[] to solve a pure Neumann problem "
            "on purpose")


class Problem(abc.ABC):
    """Base class of the PDE problems.

    A subclass sets ``name`` and implements :meth:`forms` returning the UFL bilinear and linear forms
    without boundary terms; the base class adds Neumann/Robin terms, builds Dirichlet conditions by
    boundary name, assembles with dolfinx and returns a :class:`LinearSystem`.
    """

    name = "problem"
    value_shape: tuple[int, ...] = ()
    #: the operator annihilates constants (pure diffusion): without a Dirichlet or Robin condition the
    #: assembled system is singular with the constants as null space (``LinearSystem.nullspace``)
    constants_in_kernel = False

    def __init__(self, mesh: Mesh, bcs: Sequence | None, degree: int):
        if not isinstance(mesh, Mesh):
            raise TypeError(f"mesh must be a meshes.Mesh, got {type(mesh).__name__}")
        if int(degree) != degree or degree < 1:
            raise ValueError(f"degree must be a positive integer, got {degree!r}")
        self.mesh = mesh
        self.degree = int(degree)
        if bcs is None and not mesh.boundaries:
            raise ValueError(no_boundaries_message(mesh))
        self.bcs = list(default_bcs(mesh) if bcs is None else bcs)
        seen = {}
        for bc in self.bcs:
            if not isinstance(bc, (Dirichlet, Neumann, Robin)):
                raise TypeError(f"boundary conditions must be Dirichlet/Neumann/Robin, got {bc!r}")
            mesh.tag(bc.boundary)  # raises with the list of valid names
            if bc.boundary in seen:
                raise ValueError(f"boundary {bc.boundary!r} has two conditions: {seen[bc.boundary]!r} and {bc!r}")
            seen[bc.boundary] = bc
        self._space = None

    # ---- spaces and coefficients ----------------------------------------------------------------
    @property
    def space(self) -> fem.FunctionSpace:
        if self._space is None:
            el = ("Lagrange", self.degree, self.value_shape) if self.value_shape else ("Lagrange", self.degree)
            self._space = fem.functionspace(self.mesh.mesh, el)
        return self._space

    def coefficient(self, value, name: str, *, positive: bool = False, shape=()):
        """A checked UFL expression for a user value (callables are interpolated into P1)."""
        return as_expression(value, self.mesh, name, positive=positive, shape=shape)

    def data(self, value, name: str, shape=()):
        """Like :meth:`coefficient` but callables go into the solution space (boundary/forcing data)."""
        space = self.space if shape == self.value_shape else None
        return as_expression(value, self.mesh, name, space=space, shape=shape)

    # ---- forms ------------------------------------------------------------------------------------
    @abc.abstractmethod
    def forms(self, u, v):
        """``(a, L)``: volume forms of the PDE (no boundary terms)."""

    def boundary_forms(self, u, v):
        """Neumann and Robin contributions ``(a_b, L_b)`` (``None`` where absent)."""
        ds = self.mesh.ds
        a_b, L_b = None, None
        for bc in self.bcs:
            tag = self.mesh.tag(bc.boundary)
            if isinstance(bc, Neumann):
                g = self.data(bc.flux, f"Neumann flux on {bc.boundary!r}", shape=self.value_shape)
                term = ufl.inner(g, v) * ds(tag)
                L_b = term if L_b is None else L_b + term
            elif isinstance(bc, Robin):
                alpha = self.coefficient(bc.alpha, f"Robin alpha on {bc.boundary!r}", positive=True)
                g = self.data(bc.value, f"Robin value on {bc.boundary!r}", shape=self.value_shape)
                ta, tl = alpha * ufl.inner(u, v) * ds(tag), alpha * ufl.inner(g, v) * ds(tag)
                a_b = ta if a_b is None else a_b + ta
                L_b = tl if L_b is None else L_b + tl
        return a_b, L_b

    def full_forms(self):
        """UFL ``(a, L)`` including boundary terms."""
        V = self.space
        u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
        a, L = self.forms(u, v)
        a_b, L_b = self.boundary_forms(u, v)
        if a_b is not None:
            a = a + a_b
        if L_b is not None:
            L = L + L_b
        return a, L

    def dirichlet_bcs(self) -> list[fem.DirichletBC]:
        V, fdim = self.space, self.mesh.tdim - 1
        self.mesh.mesh.topology.create_connectivity(fdim, self.mesh.tdim)
        out = []
        for bc in self.bcs:
            if not isinstance(bc, Dirichlet):
                continue
            dofs = fem.locate_dofs_topological(V, fdim, self.mesh.facets(bc.boundary))
            value = bc.value
            label = f"Dirichlet value on {bc.boundary!r}"
            if isinstance(value, (int, float, np.number)) and not self.value_shape:
                as_expression(value, self.mesh, label)  # finiteness check
                out.append(fem.dirichletbc(np.float64(value), dofs, V))
            elif isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) == 1 and self.value_shape:
                arr = np.asarray(value, dtype=np.float64)
                as_expression(arr, self.mesh, label, shape=self.value_shape)
                out.append(fem.dirichletbc(arr, dofs, V))
            else:
                expr = as_expression(value, self.mesh, label, space=V, shape=self.value_shape)
                g = expr if isinstance(expr, fem.Function) and expr.function_space == V else None
                if g is None:
                    g = fem.Function(V)
                    g.interpolate(fem.Expression(expr, V.element.interpolation_points))
                out.append(fem.dirichletbc(g, dofs))
        return out

    # ---- assembly ---------------------------------------------------------------------------------
    def assemble(self) -> LinearSystem:
        """Assemble ``A x = b`` (dolfinx native CSR -> scipy; Dirichlet eliminated symmetrically)."""
        a, L = self.full_forms()
        a_form, L_form = fem.form(a), fem.form(L)
        bcs = self.dirichlet_bcs()
        A, b = assemble_system(a_form, L_form, bcs)
        return LinearSystem(A, b, self.space, constrained_dofs(bcs), self.mesh, (a_form, L_form), bcs, self.name,
                            self.nullspace(len(b)))

    def nullspace(self, owned: int) -> np.ndarray | None:
        """The unit constant vector (owned entries) for a pure Neumann problem of a pure diffusion
        operator (no Dirichlet, no Robin condition), otherwise ``None``."""
        if not self.constants_in_kernel or any(isinstance(bc, (Dirichlet, Robin)) for bc in self.bcs):
            return None
        total = self.mesh.comm.allreduce(owned)
        return np.full(owned, 1.0 / np.sqrt(total))


def assemble_system(a_form, L_form, bcs):
    """dolfinx assembly into (scipy CSR, ndarray of owned entries), Dirichlet conditions eliminated by
    :func:`solvers.dirichlet.eliminate` (the one elimination every serial assembly path shares).

    Distributed meshes keep dolfinx's own elimination (``assemble_matrix(bcs=...)``, ``apply_lifting``): the
    matrix's column map there holds ghost columns that the space's index map lacks, so their boundary
    values are not available locally for the scipy-side lifting. A test checks that both give the same."""
    A_full = assemble_matrix(a_form)
    if A_full is None:
        Am = fem.assemble_matrix(a_form, bcs=bcs)
        Am.scatter_reverse()
        return Am.to_scipy().tocsr(), assemble_rhs(a_form, L_form, bcs)
    A, _ = eliminate(A_full, local_constrained(bcs), None)
    return A, assemble_rhs(a_form, L_form, bcs, A_full=A_full)


def assemble_matrix(a_form):
    """The matrix of ``a_form`` without boundary conditions (scipy CSR, sorted indices); ``None`` on a
    distributed mesh (see :func:`assemble_system`)."""
    if a_form.mesh.comm.size > 1:
        return None
    Am = fem.assemble_matrix(a_form)
    Am.scatter_reverse()
    A = Am.to_scipy().tocsr()
    A.sort_indices()
    return A


def assemble_rhs(a_form, L_form, bcs, coeffs=None, A_full=None) -> np.ndarray:
    """Right-hand side with Dirichlet lifting (:func:`solvers.dirichlet.lift`; dolfinx's ``apply_lifting`` on
    a distributed mesh), owned entries only. ``A_full``: the matrix of ``a_form`` without conditions, when
    the caller has it."""
    bv = fem.assemble_vector(L_form, coeffs=coeffs)
    distributed = a_form.mesh.comm.size > 1
    if distributed:
        fem.apply_lifting(bv.array, [a_form], bcs=[bcs])
    bv.scatter_reverse(la.InsertMode.add)
    im = L_form.function_spaces[0].dofmap
    n = im.index_map.size_local * im.index_map_bs
    if distributed:
        for bc in bcs:
            bc.set(bv.array)
        return bv.array[:n].copy()
    b = bv.array[:n].copy()
    if not bcs:
        return b
    g = np.zeros(len(bv.array), dtype=b.dtype)
    for bc in bcs:
        bc.set(g)
    return lift(assemble_matrix(a_form) if A_full is None else A_full, b, local_constrained(bcs), g)


def local_constrained(bcs) -> np.ndarray:
    """Local (owned and ghost), block-unrolled indices of the Dirichlet dofs."""
    out = [bc.dof_indices()[0] for bc in bcs]
    return np.unique(np.concatenate(out)).astype(np.int64) if out else np.zeros(0, dtype=np.int64)


def constrained_dofs(bcs) -> np.ndarray:
    """Owned, block-unrolled indices of the Dirichlet dofs."""
    out = []
    for bc in bcs:
        dofs, first_ghost = bc.dof_indices()
        out.append(dofs[:first_ghost])
    return np.unique(np.concatenate(out)).astype(np.int64) if out else np.zeros(0, dtype=np.int64)
