"""Error norms against exact UFL solutions (test helper)."""

import numpy as np

import dolfinx.fem as fem
import ufl


def errornorms(u_h: fem.Function, u_exact) -> tuple[float, float]:
    """(L2 error, H1 seminorm error) of ``u_h`` against the UFL expression ``u_exact``."""
    e = u_h - u_exact
    comm = u_h.function_space.mesh.comm
    l2 = fem.assemble_scalar(fem.form(ufl.inner(e, e) * ufl.dx(degree=8)))
    h1 = fem.assemble_scalar(fem.form(ufl.inner(ufl.grad(e), ufl.grad(e)) * ufl.dx(degree=8)))
    return float(np.sqrt(comm.allreduce(l2))), float(np.sqrt(comm.allreduce(h1)))


def rates(errors, hs) -> np.ndarray:
    errors, hs = np.asarray(errors), np.asarray(hs)
    return np.log(errors[1:] / errors[:-1]) / np.log(hs[1:] / hs[:-1])
