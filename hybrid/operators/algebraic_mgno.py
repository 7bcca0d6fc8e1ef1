"""``AlgebraicMgNO``: MgNO layers ``u <- sigma(V(u) + W u + b)`` whose V-cycle ``V`` runs on the AMG hierarchy
of the mesh's own FEM matrix (:class:`~hybrid.operators.algebraic_mgconv.AlgebraicMgConv`), so it acts on
P1 dof vectors of any triangle mesh with no grid anywhere.

The matrix is the P1 Laplacian of the mesh with ``u = 0`` on its boundary nodes (Dirichlet rows and columns
eliminated, as the toolkit's problems do), assembled from the mesh arrays that ``hybrid generate --mesh``
stores beside the data (``mesh/coordinates``, ``mesh/cells``). The config holds those arrays, so a checkpoint
describes its own model and its hierarchy is rebuilt identically on load (pyamg is deterministic).
Dirichlet nodes (``mask_boundary``) output a fixed value: :meth:`init_boundary_value` sets it to the
normalized zero, so predictions are exactly zero there in physical units.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .algebraic_mgconv import AlgebraicMgConv, AlgebraicMgConvConfig, AMGLevel, amg_levels

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}


def boundary_nodes(cells: np.ndarray, n: int) -> np.ndarray:
    """Nodes on edges that belong to exactly one triangle (the mesh boundary, holes included), sorted.

    >>> boundary_nodes(np.array([[0, 1, 2], [1, 3, 2]]), 4).tolist()
    [0, 1, 2, 3]
    """
    cells = np.asarray(cells, dtype=np.int64)
    edges = np.sort(np.concatenate([cells[:, [0, 1]], cells[:, [1, 2]], cells[:, [2, 0]]]), axis=1)
    uniq, count = np.unique(edges[:, 0] * n + edges[:, 1], return_counts=True)
    once = uniq[count == 1]
    return np.unique(np.concatenate([once // n, once % n]))


def p1_laplacian(coordinates: np.ndarray, cells: np.ndarray, constrained: np.ndarray | None = None,
                 coefficient: np.ndarray | None = None) -> sp.csr_matrix:
    """P1 stiffness matrix of ``-div(a grad u)`` on a triangle mesh (``a = 1`` unless a nodal ``coefficient`` is
    given), Dirichlet rows/columns of ``constrained`` eliminated (identity there), assembled by
    :class:`solvers.data.p1.P1Assembler`."""
    from solvers.data.p1 import P1Assembler

    coordinates, cells = np.asarray(coordinates, dtype=np.float64), np.asarray(cells, dtype=np.int64)
    n = len(coordinates)
    r = np.repeat(cells, 3, axis=1).ravel()
    c = np.tile(cells, (1, 3)).ravel()
    pattern = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, n))
    constrained = np.zeros(0, dtype=np.int64) if constrained is None else np.asarray(constrained, dtype=np.int64)
    asm = P1Assembler(coordinates, cells, pattern, constrained)
    return asm.matrix(asm.stiffness_operator() @ (np.ones(n) if coefficient is None else np.asarray(coefficient)))


@dataclass
class AlgebraicMgNOConfig:
    """``coordinates`` ``(n, 2)`` and ``cells`` ``(m, 3)``: the P1 mesh (nested lists, as checkpoints store
    them). ``amg``: ``sa`` or ``rs``; ``levels``: ``(pre, post)`` smoothing per AMG level, finest first;
    ``stencils``: powers of ``D^{-1} A`` in each learned sparse operator."""

    in_channels: int = 1
    out_channels: int = 1
    channels: int = 32
    layers: int = 4
    levels: list = field(default_factory=lambda: [[1, 0], [1, 0], [1, 0], [2, 0]])
    stencils: int = 1
    amg: str = "sa"
    activation: str = "gelu"
    mask_boundary: bool = True
    coordinates: list = field(default_factory=list)
    cells: list = field(default_factory=list)


class AlgebraicMgNO(nn.Module):
    """Multigrid neural operator on the AMG hierarchy of a mesh's FEM matrix, ``(batch, in_channels, n)`` ->
    ``(batch, out_channels, n)`` for the ``n`` P1 dofs of the mesh in its config.

    >>> import numpy as np, torch
    >>> X, Y = np.meshgrid(np.linspace(0, 1, 9), np.linspace(0, 1, 9))
    >>> k = np.arange(81).reshape(9, 9)[:-1, :-1].ravel()
    >>> cells = np.vstack([np.c_[k, k + 1, k + 10], np.c_[k, k + 10, k + 9]])
    >>> m = AlgebraicMgNO.for_mesh(np.c_[X.ravel(), Y.ravel()], cells, channels=4, layers=2)
    >>> m(torch.randn(3, 1, 81)).shape
    torch.Size([3, 1, 81])
    """

    def __init__(self, config: AlgebraicMgNOConfig, amg: list[AMGLevel] | None = None):
        super().__init__()
        if config.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {config.activation!r}; use one of {', '.join(ACTIVATIONS)}")
        if config.layers < 1:
            raise ValueError(f"layers must be >= 1, got {config.layers}")
        coords, cells = np.asarray(config.coordinates, dtype=np.float64), np.asarray(config.cells, dtype=np.int64)
        if coords.ndim != 2 or len(coords) == 0 or cells.ndim != 2 or cells.shape[1] != 3:
            raise ValueError("AlgebraicMgNO needs the P1 mesh in its config: coordinates (n, 2) and triangle cells "
                             "(m, 3), e.g. from a `hybrid generate --mesh` dataset (AlgebraicMgNO.for_mesh)")
        self.config = config
        n = len(coords)
        constrained = boundary_nodes(cells, n) if config.mask_boundary else np.zeros(0, dtype=np.int64)
        if amg is None:  # the hierarchy of the mesh's own matrix (given: precomputed, e.g. where pyamg is missing)
            amg = amg_levels(p1_laplacian(coords, cells, constrained), config.amg, max_levels=len(config.levels))
        self.amg = amg
        free = np.ones(n, dtype=np.float32)
        free[constrained] = 0.0
        self.register_buffer("free", torch.from_numpy(free), persistent=False)
        self.register_buffer("boundary_value", torch.zeros(config.out_channels))
        self.act = ACTIVATIONS[config.activation]()
        self.mg = nn.ModuleList()
        self.local = nn.ModuleList()
        for i in range(config.layers):
            cin = config.in_channels if i == 0 else config.channels
            self.mg.append(AlgebraicMgConv(self.amg, AlgebraicMgConvConfig(cin, config.channels, config.levels,
                                                                           config.stencils)))
            self.local.append(nn.Conv1d(cin, config.channels, 1, bias=True))
        self.head = nn.Conv1d(config.channels, config.out_channels, 1, bias=False)

    @classmethod
    def for_mesh(cls, coordinates, cells, **config) -> "AlgebraicMgNO":
        """The model for a P1 mesh given as arrays (dof coordinates ``(n, 2)``, cells ``(m, 3)``)."""
        coords = np.asarray(coordinates, dtype=np.float64)[:, :2]
        return cls(AlgebraicMgNOConfig(coordinates=coords.tolist(), cells=np.asarray(cells).tolist(), **config))

    @property
    def levels(self) -> list[int]:
        """Unknowns per level of the hierarchy the V-cycles use."""
        return self.mg[0].sizes

    def init_boundary_value(self, value: torch.Tensor) -> None:
        """Output at Dirichlet nodes (per output channel), e.g. the normalizer's image of zero."""
        self.boundary_value.copy_(value.reshape(-1).to(self.boundary_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Stages: ``layers`` x (V-cycle + pointwise linear + bias, activation), the pointwise head, then the
        Dirichlet nodes set to ``boundary_value``."""
        for mg, local in zip(self.mg, self.local):
            x = self.act(mg(x) + local(x))
        y = self.head(x)
        if not self.config.mask_boundary:
            return y
        return y * self.free + self.boundary_value.view(1, -1, 1) * (1 - self.free)
