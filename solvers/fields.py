"""Turn user values (numbers, callables, grid arrays, Functions, UFL) into UFL expressions, checked.

Every coefficient of every problem goes through :func:`as_expression`, so a NaN, an infinity, a
non-positive diffusion coefficient or a grid array of the wrong shape is caught in one place with
a message that names the coefficient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from meshes import _mpi, Mesh
import dolfinx.fem as fem
import ufl


def _is_ufl(value) -> bool:
    return isinstance(value, (ufl.core.expr.Expr,)) and not isinstance(value, fem.Function)


def _check_values(name: str, values: np.ndarray, comm, positive: bool, where: str = "") -> None:
    values = np.asarray(values)
    bad = ~np.isfinite(values)
    if comm.allreduce(int(bad.sum())):
        idx = np.flatnonzero(bad.ravel())[:5]
        raise ValueError(f"coefficient {name!r} has non-finite values (NaN or inf) at entries {idx.tolist()}")
    if positive:
        if np.iscomplexobj(values):
            raise ValueError(f"coefficient {name!r} must be real and positive, got complex values")
        lo = comm.allreduce(float(values.min()) if values.size else np.inf, op=_mpi.MPI.MIN)
        if not lo > 0:
            raise ValueError(f"coefficient {name!r} must be positive everywhere, its minimum is {lo:g}{where}")


class _WrongShape(ValueError):
    pass


def _checked_callable(fn, name: str, shape: tuple[int, ...]):
    """Wrap ``fn`` so that dolfinx only ever sees values of the right shape.

    dolfinx reads a callable's result as a flat buffer of ``value_size * npoints`` values without
    checking its length (a wrong-length array is read out of bounds: garbage, not an error), so the
    shape is checked here: ``(npoints,)`` (or ``(1, npoints)``) for scalars, ``(value_size, npoints)``
    for vectors; a single number is broadcast to every point."""
    size = int(np.prod(shape)) if shape else 1

    def wrapped(x):
        npts = x.shape[1]
        values = np.asarray(fn(x))
        if np.iscomplexobj(values):  # interpolated into a real space, the imaginary part would be dropped
            if np.any(values.imag != 0):
                raise _WrongShape(f"coefficient {name!r}: the callable returned complex values; PETSc here is "
                                  "real, pass real values")
            values = values.real
        if values.ndim == 0:
            return np.full((size, npts) if shape else npts, values[()])
        expected = [(npts,), (1, npts)] if not shape else [(size, npts)]
        if values.shape not in expected:
            raise _WrongShape(f"coefficient {name!r}: the callable returned an array of shape {values.shape} "
                              f"for {npts} points; expected {expected[0]} (one value per column of x)")
        return values

    return wrapped


#: degree of the quadrature rule whose points (with the P1 nodes) check a UFL coefficient's values
CHECK_QUADRATURE_DEGREE = 4


def _sample_ufl(expr, msh) -> np.ndarray:
    """Values of a UFL expression in every cell at the P1 nodes *and* at the points of a degree-4
    quadrature rule (for validation only).

    Nodes alone are not enough: ``-0.5 + 1.5 cos(2 pi n x)`` on an ``n x n`` mesh is 1 at every node
    and has mean -0.5. The assembled forms integrate with their own rules, so this is a check at
    representative interior points, not a proof of positivity everywhere."""
    import basix

    pts, _ = basix.make_quadrature(msh.basix_cell(), CHECK_QUADRATURE_DEGREE)
    V = fem.functionspace(msh, ("Lagrange", 1))
    X = np.vstack([V.element.interpolation_points, pts])
    cells = np.arange(msh.topology.index_map(msh.topology.dim).size_local, dtype=np.int32)
    return fem.Expression(expr, X).eval(msh, cells)


def as_expression(value: Any, mesh: Mesh, name: str, *, space=None, positive: bool = False,
                  shape: tuple[int, ...] = ()):
    """A checked UFL expression for ``value``.

    Parameters
    ----------
    value : number, sequence of numbers, callable, ndarray, dolfinx Function or UFL expression
        Callables ``x -> values`` (``x`` of shape ``(3, npoints)``) are interpolated into ``space``
        (default: P1). An ndarray of shape ``(ny+1, nx+1)`` is a nodal grid on a structured 2D mesh
        (through :class:`meshes.GridView`); a 1D array of length ndofs is taken as P1 nodal values.
    name : str
        The coefficient's name, used in error messages.
    positive : bool
        Require values > 0 (diffusion coefficients, stiffness moduli).
    shape : tuple
        Expected value shape: ``()`` scalar, ``(gdim,)`` vector.
    """
    for accepts, convert in CONVERSIONS:
        if accepts(value, shape):
            return convert(value, mesh, name, space=space, positive=positive, shape=shape)
    raise TypeError(f"coefficient {name!r}: cannot use a value of type {type(value).__name__}")


# -- one converter per kind of value; CONVERSIONS (below) tries them in order ------------------------------------
def _none(value, mesh, name, **_):
    raise ValueError(f"coefficient {name!r} is None")


def _bool(value, mesh, name, **_):
    raise TypeError(f"coefficient {name!r}: got a bool")


def _is_constant(value, shape) -> bool:
    """A number, or a vector of numbers of the expected length for a vector coefficient."""
    return isinstance(value, (int, float, complex, np.number)) or (
        isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) == 1 and shape != ()
        and len(value) == shape[0])


def _constant(value, mesh, name, *, positive, shape, **_):
    msh = mesh.mesh
    arr = np.asarray(value, dtype=np.complex128 if np.iscomplexobj(value) else np.float64)
    if arr.shape != shape:
        raise ValueError(f"coefficient {name!r} has shape {arr.shape}, expected {shape or 'a scalar'}")
    _check_values(name, arr, msh.comm, positive)
    if np.iscomplexobj(arr):
        raise ValueError(f"coefficient {name!r} is complex; PETSc here is real, pass real values")
    return fem.Constant(msh, arr)


def _function(value, mesh, name, *, positive, shape, **_):
    msh = mesh.mesh
    if tuple(value.ufl_shape) != shape:
        raise ValueError(f"coefficient {name!r} has value shape {tuple(value.ufl_shape)}, expected {shape}")
    if value.function_space.mesh is not msh:
        raise ValueError(f"coefficient {name!r} lives on another mesh")
    _check_values(name, value.x.array, msh.comm, positive)
    return value


def _ufl(value, mesh, name, *, positive, shape, **_):
    msh = mesh.mesh
    if tuple(value.ufl_shape) != shape:
        raise ValueError(f"coefficient {name!r} has value shape {tuple(value.ufl_shape)}, expected {shape}")
    try:
        sampled = _sample_ufl(value, msh)
    except RuntimeError:  # facet quantities (FacetNormal) cannot be evaluated inside cells
        sampled = None
    if sampled is not None:
        _check_values(name, sampled, msh.comm, positive,
                      f" (checked at the P1 nodes and degree-{CHECK_QUADRATURE_DEGREE} quadrature points of every cell)")
    elif positive:
        raise ValueError(f"coefficient {name!r} must be positive, but it cannot be evaluated in cells "
                         "to check (it uses facet quantities)")
    return value


def _array(value, mesh, name, *, positive, shape, **_):
    msh = mesh.mesh
    if shape != ():
        raise ValueError(f"coefficient {name!r}: grid arrays are supported for scalar coefficients only")
    if value.ndim == 2:
        try:
            view = mesh.grid_view()
        except ValueError as e:
            raise ValueError(f"coefficient {name!r}: a 2D grid array needs a structured 2D mesh ({e})") from None
        if value.shape != view.shape:
            raise ValueError(f"coefficient {name!r} has grid shape {value.shape}; this mesh needs "
                             f"{view.shape} nodal values (n+1 per side)")
        _check_values(name, value, msh.comm, positive)
        return view.function(value, name=name)
    if value.ndim == 1:
        V = fem.functionspace(msh, ("Lagrange", 1))
        nd = V.dofmap.index_map.size_local + V.dofmap.index_map.num_ghosts
        if value.shape[0] != nd:
            raise ValueError(f"coefficient {name!r} has {value.shape[0]} nodal values, the P1 space has {nd}")
        _check_values(name, value, msh.comm, positive)
        u = fem.Function(V, name=name)
        u.x.array[:] = value
        return u
    raise ValueError(f"coefficient {name!r}: array of shape {value.shape} is neither a grid nor nodal values")


def _callable(value, mesh, name, *, space, positive, shape):
    msh = mesh.mesh
    if space is None:
        space = fem.functionspace(msh, ("Lagrange", 1, shape) if shape else ("Lagrange", 1))
    u = fem.Function(space, name=name)
    try:
        u.interpolate(_checked_callable(value, name, tuple(u.ufl_shape)))
    except _WrongShape as e:
        raise ValueError(str(e)) from None
    except Exception as e:  # numpy broadcasting errors etc.: name the coefficient
        raise ValueError(f"coefficient {name!r}: evaluating the callable failed: {e}") from e
    _check_values(name, u.x.array, msh.comm, positive)
    return u


#: ``(accepts(value, shape), convert(value, mesh, name, *, space, positive, shape))`` in the order tried: the
#: first kind that accepts a value converts it (bool before numbers, a Function before UFL, arrays before
#: callables)
CONVERSIONS = (
    (lambda v, shape: v is None, _none),
    (lambda v, shape: isinstance(v, (bool, np.bool_)), _bool),
    (_is_constant, _constant),
    (lambda v, shape: isinstance(v, fem.Function), _function),
    (lambda v, shape: _is_ufl(v), _ufl),
    (lambda v, shape: isinstance(v, np.ndarray), _array),
    (lambda v, shape: callable(v), _callable),
)
