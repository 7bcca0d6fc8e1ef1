"""``NeuralPreconditioner``: any torch model on grids as a ``solvers.linear`` preconditioner.

Why hand-written: the glue between a sparse FEM system and a CNN-type operator (dof <-> grid
permutation, Dirichlet rows, residual normalisation, float32 inference on a device, batches of
right-hand sides, traits for the Krylov method) is specific to this toolkit's ``GridView`` and
preconditioner protocol; no library provides it, and writing it by hand in every script is what the
issue found to fail (``Breakdown`` after two iterations from a wrong sign/scale convention).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import torch

from solvers.linear.preconditioners.base import Preconditioner, param


def _grid_maps(grid, n: int):
    """``(shape, grid_of_dof, dof_of_grid)`` from a ``GridView`` (or an object with ``shape`` and
    ``grid_of_dof``) or a plain shape ``(ny, nx)`` for dofs already in grid (row-major) order."""
    if isinstance(grid, tuple):
        shape = (int(grid[0]), int(grid[1]))
        g2d = np.arange(shape[0] * shape[1])
    else:
        shape = tuple(grid.shape)
        g2d = np.asarray(grid.grid_of_dof)
    if shape[0] * shape[1] != n:
        raise ValueError(f"NeuralPreconditioner: the grid {shape} has {shape[0] * shape[1]} nodes, the matrix "
                         f"{n} rows")
    d2g = np.empty_like(g2d)
    d2g[g2d] = np.arange(len(g2d))
    return shape, g2d, d2g


def identity_rows(A) -> np.ndarray:
    """Rows of sparse ``A`` whose only stored nonzero is the diagonal (eliminated Dirichlet dofs)."""
    A = sp.csr_matrix(A, copy=True)  # never modify the caller's matrix
    A.eliminate_zeros()
    one = np.flatnonzero(np.diff(A.indptr) == 1)
    return one[A.indices[A.indptr[one]] == one]


class NeuralPreconditioner(Preconditioner):
    """A torch model mapping a residual grid ``(B, 1, ny, nx)`` (plus optional coefficient channels)
    to a correction grid ``(B, 1, ny, nx)``, used as ``z = M(r)``.

    What ``apply(r)`` does, for ``r`` of shape ``(n,)`` or ``(n, k)`` (``k`` right-hand sides, one batch):

    1. constrained (Dirichlet) dofs are cut out: the model sees ``r`` with zeros there, and the result
       there is ``r_i / A_ii`` (the identity rows of the eliminated system are solved exactly);
    2. each column is scaled by ``s = ||r_free||`` and mapped to the grid (``GridView`` permutation,
       exact), so the model always sees unit-norm input; its output is scaled back by ``s``. The map is
       therefore positively homogeneous (``M(c r) = c M(r)`` for ``c > 0``) for any model, and exactly
       as linear as the model for a linear one;
    3. inference runs under ``torch.inference_mode`` in ``dtype`` (float32 by default) on ``device``;
       the result returns to float64 dof order.

    Parameters
    ----------
    model : ``torch.nn.Module``. It may declare ``is_linear``/``is_symmetric`` (default ``False``): the
        preconditioner's traits follow (so a linear symmetric model, e.g. ``SymmetricMgConv``, runs
        in plain CG; anything else needs ``FlexibleCG``/``FGMRES``). A model with
        ``set_coefficient(a)`` gets the coefficient grid once at setup (weights set by the coefficient).
    grid : ``meshes.GridView`` or ``(ny, nx)`` for dofs in grid order; ``None``: ``p.grid`` at setup.
    device, dtype : where and in which precision the model runs (``p.device`` overrides ``device``).
    coefficient : ``"auto"`` (``set_coefficient`` when the model has it, else extra input channels when
        the model's ``config.in_channels > 1``, else ignored), ``"set"``, ``"input"`` or ``"ignore"``;
        the coefficient comes from ``p.coefficient`` (grid array or nodal values in dof order).
    coefficient_transform : applied to the coefficient grid first (e.g. ``np.log``).
    batch_size : at most this many right-hand sides per model call.

    The model is moved to ``device``/``dtype`` in place and put in ``eval`` mode at setup.
    """

    def __init__(self, model, grid=None, device="cpu", dtype=torch.float32, coefficient: str = "auto",
                 coefficient_transform=None, batch_size: int = 64):
        if coefficient not in ("auto", "set", "input", "ignore"):
            raise ValueError(f"coefficient must be 'auto', 'set', 'input' or 'ignore', got {coefficient!r}")
        self.model = model
        self.grid = grid
        self.device = device
        self.dtype = dtype
        self.coefficient_mode = coefficient
        self.coefficient_transform = coefficient_transform
        self.batch_size = int(batch_size)
        self.linear = bool(getattr(model, "is_linear", False))
        self.symmetric = bool(getattr(model, "is_symmetric", False)) and self.linear

    @classmethod
    def from_checkpoint(cls, path, grid=None, device="cpu", **kwargs) -> "NeuralPreconditioner":
        """The preconditioner of a ``hybrid train precond`` checkpoint (``RUN/best.pt`` or the run directory),
        loaded with ``torch.load(weights_only=True)``; its coefficient transform comes from the run."""
        from pathlib import Path

        from ..training.precond import TRANSFORMS, load_model

        path = Path(path)
        model, payload = load_model(path / "best.pt" if path.is_dir() else path, device)
        transform = payload.get("train", {}).get("config", {}).get("coefficient_transform")
        kwargs.setdefault("coefficient_transform", TRANSFORMS.get(transform))
        return cls(model, grid=grid, device=device, **kwargs)

    def setup(self, A, p=None):
        super().setup(A, p)
        n = A.shape[0]
        grid = self.grid if self.grid is not None else param(p, "grid")
        if grid is None:
            raise ValueError("NeuralPreconditioner needs a grid: NeuralPreconditioner(model, grid=GridView(...)) "
                             "or LinearProblem(..., p=PrecondParams(grid=...))")
        self.shape, self._g2d, self._d2g = _grid_maps(grid, n)
        self._device = torch.device(param(p, "device", self.device))
        constrained = param(p, "constrained")
        if constrained is None:
            constrained = identity_rows(A) if sp.issparse(A) else np.zeros(0, dtype=np.int64)
        self.constrained = np.asarray(constrained, dtype=np.int64)
        diag = A.diagonal() if sp.issparse(A) else np.diag(np.asarray(A)) if isinstance(A, np.ndarray) else None
        if len(self.constrained) and diag is None:
            raise ValueError("NeuralPreconditioner: constrained dofs need an explicit matrix (their diagonal)")
        self._dc = diag[self.constrained] if len(self.constrained) else np.zeros(0)
        if np.any(self._dc == 0):
            raise ValueError("NeuralPreconditioner: a constrained dof has a zero diagonal entry")
        self.model.to(device=self._device, dtype=self.dtype).eval()
        self._coef = None
        mode = self._coefficient_mode()
        a = param(p, "coefficient")
        if a is not None and mode != "ignore":
            a = getattr(getattr(a, "x", None), "array", a)  # a dolfinx Function -> nodal values
            a = np.asarray(a, dtype=float)
            if a.ndim == 1:
                if a.shape[0] != n:
                    raise ValueError(f"coefficient has {a.shape[0]} nodal values, the matrix {n} rows")
                a = a[self._d2g].reshape(self.shape)
            a = a.reshape(-1, *self.shape) if a.shape[-2:] == self.shape else None
            if a is None:
                raise ValueError(f"coefficient grid must have shape {self.shape}")
            if self.coefficient_transform is not None:
                a = np.asarray(self.coefficient_transform(a), dtype=float)
            t = torch.as_tensor(a, dtype=self.dtype, device=self._device)
            if mode == "set":
                with torch.no_grad():
                    self.model.set_coefficient(t[0] if t.shape[0] == 1 else t)
            else:
                self._coef = t.unsqueeze(0)  # (1, C, ny, nx)
        elif mode == "set" and hasattr(self.model, "set_coefficient"):
            with torch.no_grad():
                self.model.set_coefficient(None)
        s = self.stats
        s.setdefault("vectors", 0)
        s.setdefault("inference_s", 0.0)
        return self

    def _coefficient_mode(self) -> str:
        if self.coefficient_mode != "auto":
            return self.coefficient_mode
        if hasattr(self.model, "set_coefficient"):
            return "set"
        cin = getattr(getattr(self.model, "config", None), "in_channels", 1)
        return "input" if cin and cin > 1 else "ignore"

    def _infer(self, X: np.ndarray) -> np.ndarray:
        """Model on unit-norm grids ``X`` of shape ``(k, ny, nx)`` -> ``(k, ny, nx)`` float64."""
        out = []
        with torch.inference_mode():
            for i in range(0, X.shape[0], self.batch_size):
                x = torch.as_tensor(X[i:i + self.batch_size, None], dtype=self.dtype, device=self._device)
                if self._coef is not None:
                    x = torch.cat([x, self._coef.expand(x.shape[0], -1, -1, -1)], dim=1)
                y = self.model(x)
                if y.dim() != 4 or y.shape[1] != 1 or tuple(y.shape[-2:]) != self.shape:
                    raise ValueError(f"NeuralPreconditioner: the model returned shape {tuple(y.shape)}, expected "
                                     f"({x.shape[0]}, 1, {self.shape[0]}, {self.shape[1]})")
                out.append(y[:, 0].to(device="cpu", dtype=torch.float64).numpy())
        return np.concatenate(out, axis=0)

    def apply(self, r):
        r = np.asarray(r)
        single = r.ndim == 1
        R = r.reshape(r.shape[0], -1)
        Rf = np.array(R, dtype=np.float64, copy=True)
        Rf[self.constrained] = 0.0
        scale = np.linalg.norm(Rf, axis=0)
        Z = np.zeros_like(Rf)
        cols = np.flatnonzero(scale != 0)
        if len(cols):
            G = (Rf[:, cols] / scale[cols]).T[:, self._d2g].reshape(len(cols), *self.shape)
            t = time.perf_counter()
            Y = self._infer(G)
            s = self.stats
            s["inference_s"] = s.get("inference_s", 0.0) + time.perf_counter() - t
            s["vectors"] = s.get("vectors", 0) + len(cols)
            Z[:, cols] = (Y.reshape(len(cols), -1)[:, self._g2d] * scale[cols, None]).T
        if len(self.constrained):
            Z[self.constrained] = R[self.constrained] / self._dc[:, None]
        return Z[:, 0] if single else Z

    def __repr__(self):
        return (f"NeuralPreconditioner({type(self.model).__name__}, linear={self.linear}, "
                f"symmetric={self.symmetric}, device={self.device!r})")
