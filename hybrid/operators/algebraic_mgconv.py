"""``AlgebraicMgConv``: the MgConv V-cycle on the AMG hierarchy of a sparse matrix instead of a grid.

MgConv (He, Liu & Xu, ICLR 2024) smooths with 3x3 convolutions and transfers with stride-2 convolutions,
so it needs a grid. Here the transfers are pyamg's: level ``l`` has ``A_l``, prolongation ``P_l`` and
restriction ``R_l`` (``A_{l+1} = R_l A_l P_l``), fixed, as torch sparse matrices. What is learned lives on
each level's own sparsity pattern: with ``T_l = D_l^{-1} A_l / rho`` (Jacobi-scaled and normalized to spectral
radius one, so invariant to the level's scale), a learned sparse operator is ``L(x) = sum_k T_l^k x W_k`` for ``k = 0 .. stencils`` with ``W_k``
channel-mixing matrices (``stencils = 1``: exactly the pattern of ``A_l``). On level ``l`` with right-hand
side ``f_l`` and iterate ``u_l``:

- smoothing ``u <- u + S(f - K u)`` with learned sparse ``S`` and ``K`` (the first step from zero:
  ``u = S f``);
- restriction ``f_{l+1} = (R_l f_l) M_f``, ``u_{l+1} = (R_l u_l) M_u`` (pyamg's ``R_l``, rows scaled to sum
  one, then a learned channel mixing ``M``);
- after the coarser level returns, ``u_l <- u_l + P_l (u_{l+1} M_p)`` and post-smoothing.

Every operation is linear and bias-free, so the V-cycle is linear in ``f`` (a test checks superposition),
and nothing in it refers to a grid or to coordinates: only the matrix. Vectors are ``(batch, channels,
dofs)``; inside, the layout is ``(dofs, batch, channels)`` so that one sparse product serves the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn


class AMGLevel(NamedTuple):
    """Level ``l`` of an AMG hierarchy as scipy CSR: ``A`` (n_l x n_l); ``P`` (n_l x n_{l+1}) and ``R``
    (n_{l+1} x n_l) are ``None`` on the coarsest level."""

    A: sp.csr_matrix
    P: sp.csr_matrix | None
    R: sp.csr_matrix | None


AMG_KINDS = ("sa", "rs")


def amg_levels(A: sp.spmatrix, kind: str = "sa", max_levels: int = 4, max_coarse: int = 10) -> list[AMGLevel]:
    """pyamg's hierarchy of ``A`` (``sa``: smoothed aggregation, ``rs``: Ruge-Stuben), as plain levels.

    >>> import pyamg
    >>> levels = amg_levels(pyamg.gallery.poisson((20, 20), format="csr"), "sa", max_levels=3)
    >>> [lvl.A.shape[0] for lvl in levels]
    [400, 70, 10]
    """
    import pyamg

    if kind not in AMG_KINDS:
        raise ValueError(f"unknown AMG kind {kind!r}; use one of {', '.join(AMG_KINDS)}")
    if max_levels < 1:
        raise ValueError(f"max_levels must be >= 1, got {max_levels}")
    A = sp.csr_matrix(A, dtype=np.float64)
    if max_levels == 1:
        return [AMGLevel(A, None, None)]
    state = np.random.get_state()  # pyamg's spectral radius estimates start from np.random: fix them, so the
    np.random.seed(0)              # same matrix always gives the same P (a model rebuilt from its checkpoint)
    try:
        if kind == "sa":
            ml = pyamg.smoothed_aggregation_solver(A, max_levels=max_levels, max_coarse=max_coarse)
        else:
            ml = pyamg.ruge_stuben_solver(A, max_levels=max_levels, max_coarse=max_coarse)
    finally:
        np.random.set_state(state)
    out = []
    for i, lvl in enumerate(ml.levels):
        last = i == len(ml.levels) - 1
        out.append(AMGLevel(sp.csr_matrix(lvl.A), None if last else sp.csr_matrix(lvl.P),
                            None if last else sp.csr_matrix(lvl.R)))
    return out


def torch_sparse(M: sp.spmatrix, dtype=torch.float32) -> torch.Tensor:
    """scipy sparse -> coalesced torch COO (supports autograd through ``torch.sparse.mm`` w.r.t. the dense side)."""
    M = sp.coo_matrix(M)
    idx = torch.from_numpy(np.vstack([M.row, M.col]).astype(np.int64))
    return torch.sparse_coo_tensor(idx, torch.as_tensor(M.data, dtype=dtype), M.shape,
                                   check_invariants=True).coalesce()


def scaled_operator(A: sp.spmatrix) -> sp.csr_matrix:
    """``D^{-1} A / rho(D^{-1} A)``: Jacobi-scaled and normalized to spectral radius one (pyamg's estimate), so
    its powers neither grow nor depend on the level's scale."""
    from pyamg.util.linalg import approximate_spectral_radius

    d = A.diagonal()
    T = sp.csr_matrix(sp.diags(1.0 / np.where(np.abs(d) > 0, d, 1.0)) @ A)
    start = np.random.default_rng(0).random(T.shape[0])  # deterministic (pyamg's default is np.random)
    return T / max(float(approximate_spectral_radius(T, initial_guess=start)), 1e-12)


def _spmm(M: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``M @ x`` for ``x`` of shape ``(n, batch, channels)``."""
    n, b, c = x.shape
    return torch.sparse.mm(M, x.reshape(n, b * c)).reshape(M.shape[0], b, c)


class SparseChannelOperator(nn.Module):
    """``x -> sum_k T^k x W_k`` (``k = 0 .. stencils``): a learned operator on the pattern of ``T`` (and of its
    powers), channel mixing ``cin -> cout`` per power."""

    def __init__(self, cin: int, cout: int, stencils: int):
        super().__init__()
        scale = 1.0 / np.sqrt(cin * (stencils + 1))
        self.weight = nn.Parameter(torch.randn(stencils + 1, cin, cout) * scale)

    def forward(self, T: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        y = x @ self.weight[0]
        for k in range(1, self.weight.shape[0]):
            x = _spmm(T, x)
            y = y + x @ self.weight[k]
        return y


class SmoothingStep(nn.Module):
    """``u <- u + S(f - K u)`` (``u = S f`` for the first step from zero)."""

    def __init__(self, cu: int, cf: int, stencils: int, first: bool = False):
        super().__init__()
        self.S = SparseChannelOperator(cf, cu, stencils)
        self.K = None if first else SparseChannelOperator(cu, cf, stencils)

    def forward(self, T, u, f):
        if u is None or self.K is None:
            return self.S(T, f) if u is None else u + self.S(T, f)
        return u + self.S(T, f - self.K(T, u))


@dataclass
class AlgebraicMgConvConfig:
    """``levels[l] = (pre, post)`` smoothing steps on level ``l`` (finest first); the hierarchy used has
    ``min(len(levels), levels pyamg made)`` levels (the coarsest one's counts then apply to the last one made)."""

    in_channels: int = 1
    channels: int = 32
    levels: tuple = ((1, 0), (1, 0), (1, 0), (2, 0))
    stencils: int = 1


def _mixing(c: int, scale: float = 1.0) -> nn.Parameter:
    return nn.Parameter(scale * torch.eye(c) + 0.1 * torch.randn(c, c) / np.sqrt(c))


class AlgebraicMgConv(nn.Module):
    """V-cycle ``f -> u`` on fixed AMG levels (see the module docstring); ``(batch, in_channels, n)`` ->
    ``(batch, channels, n)``.

    >>> import pyamg, torch
    >>> levels = amg_levels(pyamg.gallery.poisson((10, 10), format="csr"), "sa", max_levels=3)
    >>> m = AlgebraicMgConv(levels, AlgebraicMgConvConfig(in_channels=1, channels=4))
    >>> m(torch.randn(2, 1, 100)).shape
    torch.Size([2, 4, 100])
    """

    def __init__(self, amg: list[AMGLevel], config: AlgebraicMgConvConfig):
        super().__init__()
        if not config.levels or any(len(l) != 2 or min(l) < 0 for l in config.levels):
            raise ValueError(f"levels must be a non-empty list of [pre, post] counts, got {config.levels}")
        if config.levels[0][0] < 1:
            raise ValueError("the finest level needs at least one pre-smoothing step")
        if config.stencils < 0:
            raise ValueError(f"stencils must be >= 0, got {config.stencils}")
        self.config = config
        counts = [tuple(l) for l in config.levels][:len(amg)]
        counts[-1] = tuple(config.levels[-1]) if len(counts) > 1 else counts[-1]
        self.counts = counts
        self.set_hierarchy(amg)
        cu, cf, k = config.channels, config.in_channels, config.stencils
        self.pre = nn.ModuleList()
        self.post = nn.ModuleList()
        for l, (npre, npost) in enumerate(counts):
            self.pre.append(nn.ModuleList(SmoothingStep(cu, cf, k, first=(l == 0 and i == 0)) for i in range(npre)))
            self.post.append(nn.ModuleList(SmoothingStep(cu, cf, k) for _ in range(npost)))
        nl = len(counts) - 1
        self.mix_f = nn.ParameterList(_mixing(cf) for _ in range(nl))
        self.mix_u = nn.ParameterList(_mixing(cu) for _ in range(nl))
        # coarse corrections start at half weight: with the identity they add up over many levels (Ruge-Stuben
        # makes 5-6 here) and the V-cycle's gain grew ~3x per layer at initialization
        self.mix_p = nn.ParameterList(_mixing(cu, 0.5) for _ in range(nl))

    def set_hierarchy(self, amg: list[AMGLevel]) -> None:
        """Use the levels of another matrix's hierarchy (the learned weights do not depend on the level sizes,
        only on the number of levels: ``amg`` needs at least as many as this V-cycle uses)."""
        if len(amg) < len(self.counts):
            raise ValueError(f"this V-cycle uses {len(self.counts)} levels; the hierarchy has {len(amg)}")
        amg = amg[:len(self.counts)]
        self.sizes = [lvl.A.shape[0] for lvl in amg]
        device = next((b.device for b in self.buffers()), torch.device("cpu"))
        for l, lvl in enumerate(amg):
            self.register_buffer(f"T{l}", torch_sparse(scaled_operator(lvl.A)).to(device), persistent=False)
            if l < len(amg) - 1:
                R = sp.csr_matrix(lvl.R)
                rows = np.asarray(R.sum(axis=1)).ravel()
                rows = np.where(np.abs(rows) > 1e-12, rows, 1.0)
                self.register_buffer(f"R{l}", torch_sparse(sp.diags(1.0 / rows) @ R).to(device), persistent=False)
                self.register_buffer(f"P{l}", torch_sparse(lvl.P).to(device), persistent=False)

    def hierarchy_state(self) -> dict:
        """The current levels' operators (to switch between matrices without rebuilding them)."""
        return {name: buf for name, buf in self.named_buffers() if name[0] in "TRP" and name[1:].isdigit()} | \
            {"sizes": list(self.sizes)}

    def load_hierarchy_state(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def _op(self, name: str, l: int) -> torch.Tensor:
        return getattr(self, f"{name}{l}")

    def cycle(self, f: torch.Tensor) -> torch.Tensor:
        """The V-cycle on ``(n, batch, in_channels)`` -> ``(n, batch, channels)`` (the internal layout)."""
        us, fs = [], []
        u = None
        L = len(self.counts)
        for l in range(L):
            T = self._op("T", l)
            for step in self.pre[l]:
                u = step(T, u, f)
            us.append(u)
            fs.append(f)
            if l < L - 1:
                R = self._op("R", l)
                f = _spmm(R, f) @ self.mix_f[l]
                u = None if u is None else _spmm(R, u) @ self.mix_u[l]
        u = us[-1]
        for l in range(L - 2, -1, -1):
            u = us[l] + _spmm(self._op("P", l), u @ self.mix_p[l])
            for step in self.post[l]:
                u = step(self._op("T", l), u, fs[l])
        return u

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        if f.ndim != 3 or f.shape[-1] != self.sizes[0]:
            raise ValueError(f"expected (batch, channels, {self.sizes[0]}) dof vectors, got {tuple(f.shape)}")
        return self.cycle(f.permute(2, 0, 1)).permute(1, 2, 0)
