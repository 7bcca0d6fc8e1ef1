"""Learned algebraic multigrid: a graph network run once at setup re-weights Ruge-Stuben's prolongation
and picks each level's smoother damping, on pyamg's own C/F splitting, sparsity and compiled cycle.

Method (Luz, Galun, Maron, Basri, Yavneh 2020, "Learning algebraic multigrid using graph neural
networks"; Greenfeld et al. 2019 for the geometric case):

- per level, pyamg computes classical strength of connection, the Ruge-Stuben C/F splitting and
  (modified) classical interpolation ``P_rs``; the network sees one feature vector per stored entry of
  ``P_rs`` in an F-row (``-a_ij/a_ii``, ``p_ij``, ``a_jj/a_ii``, row sums, strong F/C/weak sums, ...:
  only local matrix entries, so it runs on unstructured matrices and at any size), does one round of
  message passing (mean over the row and over the coarse column) and returns a bounded factor
  ``p_ij <- p_ij * exp(2 tanh(delta_ij))``. C-rows stay injection rows, the sparsity of ``P_rs`` is
  kept, and (``keep_rowsum=True``) every F-row is rescaled to the row sum of ``P_rs``, so ``P``
  reproduces constants exactly where RS does.
- a graph-level read-out of the same embeddings gives the level's SSOR damping ``omega in (0.6, 1.8)``;
- coarse operators are Galerkin ``A_{l+1} = P^T A_l P`` (the true operator on every level), the
  coarsest level is pyamg's pseudo-inverse, and the cycle is pyamg's compiled V-cycle with ``R = P^T``.

Why it is SPD for *any* network weights (and thus plain CG applies; a test checks an untrained net):
every ``P`` has an identity block on the C-points, so it has full column rank and ``P^T A P`` is SPD
when ``A`` is; the smoother on every level is a symmetric SOR sweep (forward then backward with the
same ``0 < omega < 2``), whose ``A``-adjoint is itself; with ``R = P^T`` and the same smoother before
and after, ``I - M A = S (I - P A_c^{-1} P^T A) S`` level by level is ``A``-self-adjoint with
``A``-norm below 1, so ``M`` is symmetric positive definite. The network can make the preconditioner
worse, never indefinite.

What is hand-written and why: the SSOR smoother callable (pyamg's ``sor``/``gauss_seidel`` with
``sweep="symmetric"`` silently drops ``omega``; forward/backward with ``omega`` uses pyamg's compiled
``sor_gauss_seidel`` kernel), the per-level loop (pyamg's ``ruge_stuben_solver`` has no hook between
interpolation and the Galerkin product), the feature extraction and the dense torch two-grid loss for
training. Splitting, strength, interpolation, relaxation kernels and the cycle itself are pyamg's.

Training (:func:`train`): Darcy matrices at one small size (P1, ``n=32`` by default) with two-phase,
``{1, 1e4}`` contrast and log-normal coefficients (seeds disjoint from the benchmark's), plus their
RS level-1 Galerkin operators (so the network also sees coarse-level stencils); loss = the two-grid
error ``E = S (I - P (P^T A P)^{-1} P^T A) S`` measured on random probes in the energy norm,
``mean ||E z||_A^2 / ||z||_A^2`` (a stochastic estimate of the ``A``-Frobenius norm, as in Luz et al.).
Checkpoints hold ``state_dict`` + config and load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyamg
import scipy.sparse as sp
import torch
from pyamg.classical import split as pyamg_split
from pyamg.classical.interpolate import classical_interpolation, direct_interpolation
from pyamg.multilevel import MultilevelSolver
from pyamg.relaxation import relaxation as pyamg_relax
from pyamg.strength import classical_strength_of_connection
from torch import nn

from solvers.linear.preconditioners.multigrid import AMG

from .net_checkpoint import load_net, save_net

N_FEATURES = 12
OMEGA_MIN, OMEGA_MAX = 0.6, 1.8


# ----------------------------------------------------------------------------------------------- smoother
@dataclass(frozen=True)
class SSOR:
    """Symmetric SOR: one forward then one backward sweep with damping ``omega`` (pyamg's compiled
    kernel). Self-adjoint in the ``A`` inner product for ``0 < omega < 2``, so the same object serves as
    pre- and post-smoother of a symmetric V-cycle; ``omega = 1`` is symmetric Gauss-Seidel."""

    omega: float = 1.0
    sweeps: int = 1

    def __call__(self, A, x, b):
        for _ in range(self.sweeps):
            pyamg_relax.gauss_seidel(A, x, b, iterations=1, sweep="forward", omega=self.omega)
            pyamg_relax.gauss_seidel(A, x, b, iterations=1, sweep="backward", omega=self.omega)
        return x

    def adjoint(self) -> "SSOR":
        return self


# ----------------------------------------------------------------------------------------------- features
@dataclass
class LevelData:
    """One level's RS ingredients and the network's inputs (numpy, float64 features)."""

    A: sp.csr_matrix
    splitting: np.ndarray          # 1 = C-point
    P: sp.csr_matrix               # RS prolongation (sorted indices)
    f_rows: np.ndarray             # fine row of each F-entry of P
    f_cols: np.ndarray             # coarse column of each F-entry of P
    f_pos: np.ndarray              # position of each F-entry in P.data
    features: np.ndarray           # (n_entries, N_FEATURES)


def rs_level(A, theta: float = 0.25, CF="RS", second_pass: bool = False, interpolation: str = "classical"):
    """pyamg's strength of connection, C/F splitting and interpolation for one level: ``(C, splitting, P)``."""
    A = sp.csr_matrix(A)
    C = classical_strength_of_connection(A, theta=theta)
    if CF == "RS":
        splitting = pyamg_split.RS(C, second_pass=second_pass)
    else:
        splitting = getattr(pyamg_split, CF)(C)
    if interpolation == "classical":
        P = classical_interpolation(A, C, splitting)
    else:
        P = direct_interpolation(A, C, splitting)
    P = sp.csr_matrix(P)
    P.sort_indices()
    return C, np.asarray(splitting), P


def _lookup(A: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``A[rows, cols]`` for many pairs (0 where not stored), by binary search on sorted (row, col) keys."""
    A = A if A.has_sorted_indices else A.sorted_indices()
    n = A.shape[1]
    keys = np.repeat(np.arange(A.shape[0], dtype=np.int64), np.diff(A.indptr)) * n + A.indices
    q = rows.astype(np.int64) * n + cols
    pos = np.searchsorted(keys, q)
    pos = np.minimum(pos, len(keys) - 1)
    return np.where(keys[pos] == q, A.data[pos], 0.0)


def level_features(A, C, splitting, P) -> LevelData:
    """Scale-invariant per-entry features of the F-rows of ``P`` from local entries of ``A`` only."""
    A = sp.csr_matrix(A)
    if not A.has_sorted_indices:
        A = A.sorted_indices()
    n = A.shape[0]
    cpts = np.flatnonzero(splitting == 1)
    prow = np.repeat(np.arange(n), np.diff(P.indptr))
    fmask = splitting[prow] == 0
    f_pos = np.flatnonzero(fmask)
    f_rows, f_cols = prow[f_pos], P.indices[f_pos]
    fine_cols = cpts[f_cols]
    diag = A.diagonal()
    diag = np.where(diag > 0, diag, 1.0)
    arow = np.repeat(np.arange(n), np.diff(A.indptr))
    off = arow != A.indices
    a_off = np.where(off, A.data, 0.0)
    rowsum = np.bincount(arow, A.data, n)
    absoff = np.bincount(arow, np.abs(a_off), n)
    maxneg = np.zeros(n)
    np.maximum.at(maxneg, arow, -a_off)
    maxneg = np.where(maxneg > 0, maxneg, 1.0)
    # strong couplings split by C/F (strength matrix C has the pattern of strong off-diagonals)
    Cs = sp.csr_matrix(C)
    crow = np.repeat(np.arange(n), np.diff(Cs.indptr))
    cmask = crow != Cs.indices
    a_strong = _lookup(A, crow[cmask], Cs.indices[cmask])
    is_c = splitting[Cs.indices[cmask]] == 1
    strong_c = np.bincount(crow[cmask], np.where(is_c, -a_strong, 0.0), n)
    strong_f = np.bincount(crow[cmask], np.where(is_c, 0.0, -a_strong), n)
    a_ij = _lookup(A, f_rows, fine_cols)
    p_ij = P.data[f_pos]
    di = diag[f_rows]
    interp = np.bincount(f_rows, -a_ij, n)
    count = np.bincount(f_rows, minlength=n).astype(float)
    psum = np.bincount(f_rows, p_ij, n)
    ccount = np.bincount(f_cols, minlength=len(cpts)).astype(float)
    feats = np.stack([
        -a_ij / di,
        p_ij,
        np.log(diag[fine_cols] / di),
        rowsum[f_rows] / di,
        absoff[f_rows] / di,
        interp[f_rows] / di,
        1.0 / np.maximum(count[f_rows], 1.0),
        psum[f_rows],
        -a_ij / maxneg[f_rows],
        strong_f[f_rows] / di,
        strong_c[f_rows] / di,
        1.0 / np.maximum(ccount[f_cols], 1.0),
    ], axis=1)
    feats = np.nan_to_num(feats, nan=0.0, posinf=0.0, neginf=0.0)
    return LevelData(A, splitting, P, f_rows, f_cols, f_pos, np.clip(feats, -10.0, 10.0))


# ----------------------------------------------------------------------------------------------- network
@dataclass
class NetConfig:
    hidden: int = 16
    learn_P: bool = True
    learn_omega: bool = True
    keep_rowsum: bool = True
    max_log_factor: float = 2.0


class PNet(nn.Module):
    """Edge network on the F-entries of an RS prolongation: edge MLP, one message-passing round (means
    over each fine row and each coarse column), per-entry log-factor; a mean read-out gives the level's
    SSOR omega. Inputs are per-entry features, so the graph may be any sparse matrix's."""

    def __init__(self, config: NetConfig | None = None):
        super().__init__()
        self.config = config or NetConfig()
        h = self.config.hidden
        self.encode = nn.Sequential(nn.Linear(N_FEATURES, h), nn.GELU(), nn.Linear(h, h), nn.GELU())
        self.edge = nn.Sequential(nn.Linear(3 * h, h), nn.GELU(), nn.Linear(h, 1))
        self.omega = nn.Sequential(nn.Linear(2 * h, h), nn.GELU(), nn.Linear(h, 1))

    @staticmethod
    def _segment_mean(x, index, size):
        s = torch.zeros(size, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, index, x)
        c = torch.zeros(size, dtype=x.dtype, device=x.device).index_add_(0, index, torch.ones_like(x[:, 0]))
        return s / c.clamp_min(1.0)[:, None]

    def forward(self, feats, rows, cols, n_rows: int, n_cols: int):
        """``(log_factor per entry, omega)``; ``rows``/``cols`` index fine rows and coarse columns."""
        h = self.encode(feats)
        if h.shape[0] == 0:
            z = torch.zeros(0, dtype=feats.dtype, device=feats.device)
            return z, torch.tensor(1.0, dtype=feats.dtype, device=feats.device)
        mr = self._segment_mean(h, rows, n_rows)[rows]
        mc = self._segment_mean(h, cols, n_cols)[cols]
        cfg = self.config
        delta = cfg.max_log_factor * torch.tanh(self.edge(torch.cat([h, mr, mc], 1))[:, 0])
        if not cfg.learn_P:
            delta = torch.zeros_like(delta)
        g = torch.cat([h.mean(0), h.std(0, unbiased=False)])
        if cfg.learn_omega:
            omega = OMEGA_MIN + (OMEGA_MAX - OMEGA_MIN) * torch.sigmoid(self.omega(g)[0])
        else:
            omega = torch.tensor(1.0, dtype=feats.dtype, device=feats.device)
        return delta, omega


def _new_p_values(net: PNet, lvl: LevelData, device="cpu", dtype=torch.float32):
    """P data (torch, differentiable) and omega for one level."""
    n, nc = lvl.A.shape[0], lvl.P.shape[1]
    feats = torch.as_tensor(lvl.features, dtype=dtype, device=device)
    rows = torch.as_tensor(lvl.f_rows, dtype=torch.long, device=device)
    cols = torch.as_tensor(lvl.f_cols, dtype=torch.long, device=device)
    delta, omega = net(feats, rows, cols, n, nc)
    p_rs = torch.as_tensor(lvl.P.data[lvl.f_pos], dtype=dtype, device=device)
    p = p_rs * torch.exp(delta)
    if net.config.keep_rowsum:
        s_rs = torch.zeros(n, dtype=dtype, device=device).index_add_(0, rows, p_rs)
        s_new = torch.zeros(n, dtype=dtype, device=device).index_add_(0, rows, p)
        ok = s_new.abs() > 1e-12
        scale = torch.where(ok, s_rs / torch.where(ok, s_new, torch.ones_like(s_new)), torch.ones_like(s_new))
        p = p * scale[rows]
    return p, omega


def predict_level(net: PNet, lvl: LevelData, device="cpu") -> tuple[sp.csr_matrix, float]:
    """The learned prolongation (same sparsity as RS's) and SSOR omega for one level; the network runs on
    ``device`` (features are computed with numpy on the host and copied there)."""
    with torch.inference_mode():
        p, omega = _new_p_values(net, lvl, device=device)
        if str(device).startswith("cuda"):
            torch.cuda.synchronize()
    P = lvl.P.copy()
    P.data = P.data.copy()
    P.data[lvl.f_pos] = p.double().cpu().numpy()
    return P, float(omega)


# ----------------------------------------------------------------------------------------------- preconditioner
class LearnedAMG(AMG):
    """Ruge-Stuben AMG whose prolongation weights and per-level SSOR damping come from a trained
    :class:`PNet` evaluated once at setup; pyamg's compiled V-cycle; SPD for any weights (see module).

    Parameters
    ----------
    model : a :class:`PNet`, a checkpoint path (``.pt`` from :func:`save_checkpoint`), or ``None`` (plain RS
        weights with SSOR ``omega=1``, i.e. pyamg RS with symmetric Gauss-Seidel, built by this code path).
    theta, second_pass, interpolation : RS strength threshold, RS second pass, ``"classical"``/``"direct"``.
    learn_levels : apply the network on the first ``learn_levels`` levels (``None``: all); RS elsewhere.
    max_coarse, max_levels : as in pyamg.
    device : where the network runs (``"cpu"`` or ``"cuda"``); features and the cycle stay on the host.

    ``stats`` gains ``setup_network_s`` (features + inference) and the per-level ``omegas``.

    Examples
    --------
    >>> import numpy as np, pyamg
    >>> A = pyamg.gallery.poisson((32, 32), format="csr")
    >>> pc = LearnedAMG(PNet()).setup(A)
    >>> bool(pc.symmetric and pc.linear)
    True
    """

    linear = True
    symmetric = True

    def __init__(self, model=None, theta: float = 0.25, second_pass: bool = False,
                 interpolation: str = "classical", learn_levels: int | None = None, max_coarse: int = 10,
                 max_levels: int = 30, sweeps: int = 1, device="cpu"):
        super().__init__("rs")
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available here")
        if isinstance(model, (str, Path)):
            model = load_checkpoint(model, device=device)
        self.model = model.to(device) if model is not None else None
        self.device = device
        self.theta, self.second_pass, self.interpolation = theta, second_pass, interpolation
        self.learn_levels, self.max_coarse, self.max_levels, self.sweeps = learn_levels, max_coarse, max_levels, sweeps

    def setup(self, A, p=None):
        self.A, self.p = A, p
        net_s = 0.0
        levels = [MultilevelSolver.Level()]
        Al = sp.csr_matrix(A)
        Al.sort_indices()
        levels[0].A = Al
        omegas = []
        net = self.model
        if net is not None:
            net.eval()
        while len(levels) < self.max_levels and Al.shape[0] > self.max_coarse:
            C, splitting, P = rs_level(Al, self.theta, "RS", self.second_pass, self.interpolation)
            nc = int(splitting.sum())
            if nc == 0 or nc == Al.shape[0]:
                break
            omega = 1.0
            use_net = net is not None and (self.learn_levels is None or len(levels) <= self.learn_levels)
            if use_net:
                t = time.perf_counter()
                P, omega = predict_level(net, level_features(Al, C, splitting, P), self.device)
                net_s += time.perf_counter() - t
            lvl = levels[-1]
            lvl.P, lvl.R, lvl.splitting = P, sp.csr_matrix(P.T), splitting
            omegas.append(omega)
            Al = sp.csr_matrix(lvl.R @ Al @ P)
            Al.sort_indices()
            levels.append(MultilevelSolver.Level())
            levels[-1].A = Al
        self.ml = MultilevelSolver(levels, coarse_solver="pinv")
        for lvl, w in zip(self.ml.levels[:-1], omegas):
            lvl.presmoother = lvl.postsmoother = SSOR(w, self.sweeps)
        self.ml.symmetric_smoothing = True
        self.omegas = omegas
        self._op = self.ml.aspreconditioner(cycle="V")
        s = self.stats
        s["setup_network_s"] = net_s
        s["omegas"] = [round(w, 4) for w in omegas]
        return self

    @property
    def symmetric(self) -> bool:  # SSOR before and after, R = P^T, V-cycle: always
        return True

    def refresh(self, A, p=None):
        """Keep the learned ``P`` (the network is not run again) and the per-level ``omega``; recompute the
        Galerkin operators ``P^T A P`` and the coarse solver for the new matrix (same pattern as before).
        Falls back to :meth:`setup` before the first setup or when the size changed."""
        ml = self.__dict__.get("ml")
        reused = ml is not None and A.shape == ml.levels[0].A.shape
        out = super().refresh(A, p)
        if reused:
            self.stats["setup_network_s"] = 0.0
        return out

    def _refresh_smoothers(self) -> None:
        """The SSOR smoothers with the learned omegas stay: they read the level's matrix when called."""

    @property
    def hierarchy(self):
        from solvers.linear.hierarchy import Hierarchy, Level

        out = [Level(lvl.A, lvl.P, lvl.R, lvl.presmoother, lvl.postsmoother) for lvl in self.ml.levels[:-1]]
        out.append(Level(self.ml.levels[-1].A))
        return Hierarchy(out)

    def __repr__(self):
        return (f"LearnedAMG(model={'none' if self.model is None else 'PNet'}, theta={self.theta}, "
                f"second_pass={self.second_pass})")


# ----------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(path, net: PNet, extra: dict | None = None) -> Path:
    """``{"kind", "state_dict", "config", "extra"}`` with plain types only (loadable with ``weights_only=True``)."""
    return save_net(path, "learned_amg", net, extra)


def load_checkpoint(path, device="cpu") -> PNet:
    return load_net(path, "learned_amg", lambda config: PNet(NetConfig(**config)), device)


# ----------------------------------------------------------------------------------------------- training
@dataclass
class TrainConfig:
    n: int = 32
    kinds: tuple = ("two-phase", "contrast", "log-normal")
    samples_per_kind: int = 8
    seed: int = 1000                   # field seeds seed..; the benchmark uses seed 0
    coarse_levels: bool = False        # add RS level-1 Galerkin matrices (useful for the two-grid loss)
    steps: int = 400
    lr: float = 3e-3
    probes: int = 16
    power: int = 6                     # power-iteration steps towards the slow modes (0: white noise)
    batch: int = 3
    loss: str = "vcycle"                # "vcycle" (whole learned hierarchy) or "two-grid"
    net: NetConfig = field(default_factory=NetConfig)


def training_matrices(cfg: TrainConfig) -> list[sp.csr_matrix]:
    """Darcy P1 matrices at ``cfg.n`` (Dirichlet rows eliminated) and, optionally, their RS level-1
    Galerkin operators."""
    import meshes
    import solvers
    from solvers.sampling import make_field

    mesh = meshes.unit_square(cfg.n)
    mats = []
    for kind in cfg.kinds:
        for i in range(cfg.samples_per_kind):
            a = make_field(kind, seed=cfg.seed, index=i)
            A = sp.csr_matrix(solvers.Darcy(mesh, a=a, f=1.0).assemble().A)
            A.sort_indices()
            mats.append(A)
            if cfg.coarse_levels:
                _, _, P = rs_level(A)
                A1 = sp.csr_matrix(P.T @ A @ P)
                A1.sort_indices()
                mats.append(A1)
    return mats


@dataclass
class _Sample:
    lvl: LevelData
    A: torch.Tensor          # dense float64
    Lw: torch.Tensor         # strict lower part
    d: torch.Tensor          # diagonal
    P_rows: torch.Tensor
    P_cols: torch.Tensor
    P_fixed: torch.Tensor    # values of C-rows (injection); F-values replaced by the network


def _prepare(A: sp.csr_matrix) -> _Sample:
    C, splitting, P = rs_level(A)
    lvl = level_features(A, C, splitting, P)
    Ad = torch.as_tensor(A.toarray(), dtype=torch.float64)
    prow = np.repeat(np.arange(A.shape[0]), np.diff(P.indptr))
    return _Sample(lvl, Ad, torch.tril(Ad, -1), torch.diagonal(Ad).clone(), torch.as_tensor(prow),
                   torch.as_tensor(P.indices.astype(np.int64)), torch.as_tensor(P.data.copy()))


def _ssor_error(s: _Sample, e: torch.Tensor, omega) -> torch.Tensor:
    """Error propagation of one SSOR sweep (forward then backward) on error columns ``e``."""
    D = torch.diag(s.d / omega)
    lower = D + s.Lw
    e = e - torch.linalg.solve_triangular(lower, s.A @ e, upper=False)
    e = e - torch.linalg.solve_triangular(lower.T, s.A @ e, upper=True)
    return e


def _two_grid(s: _Sample, P, omega):
    """The two-grid error propagation ``e -> S (I - P A_c^{-1} P^T A) S e`` as a function (dense torch)."""
    AP = s.A @ P
    Ac = P.T @ AP
    L = torch.linalg.cholesky(0.5 * (Ac + Ac.T))

    def apply(e):
        e = _ssor_error(s, e, omega)
        e = e - P @ torch.cholesky_solve(AP.T @ e, L)
        return _ssor_error(s, e, omega)
    return apply


def two_grid_loss(net: PNet, s: _Sample, probes: int = 16, generator=None, power: int = 6) -> torch.Tensor:
    """Energy-norm two-grid error on random probes, ``E = S (I - P A_c^{-1} P^T A) S``.

    ``power = 0``: ``mean ||E z||_A^2 / ||z||_A^2`` over white-noise ``z`` (the stochastic ``A``-Frobenius
    norm of Luz et al.); white noise is mostly oscillatory, which the smoother removes anyway, so this
    loss barely sees the slow modes that decide CG's iteration count. ``power = k > 0``: the probes are
    first pushed through ``k`` applications of the current ``E`` (without gradient, normalised), i.e.
    power iteration towards the slowest two-grid modes, and the loss is the log of the mean Rayleigh
    quotient there (an estimate of ``log rho(E)^2``) plus the white-noise term."""
    p, omega = _new_p_values(net, s.lvl, dtype=torch.float64)
    vals = s.P_fixed.clone()
    vals = vals.index_put((torch.as_tensor(s.lvl.f_pos),), p)
    n, nc = s.A.shape[0], s.lvl.P.shape[1]
    P = torch.zeros(n, nc, dtype=torch.float64).index_put((s.P_rows, s.P_cols), vals, accumulate=True)
    z = torch.randn(n, probes, dtype=torch.float64, generator=generator)

    E = _two_grid(s, P, omega)

    def rayleigh(z):
        e = E(z)
        return (e * (s.A @ e)).sum(0) / (z * (s.A @ z)).sum(0)

    white = rayleigh(z).mean()
    if power <= 0:
        return white
    with torch.no_grad():
        E0, w = _two_grid(s, P.detach(), omega.detach()), z
        for _ in range(power):
            w = E0(w)
            w = w / torch.sqrt((w * (s.A @ w)).sum(0)).clamp_min(1e-300)
    return torch.log(rayleigh(w).mean() + 1e-12) + white


def _ssor_dense(A, Lw, d, omega, x, b):
    lower = torch.diag(d / omega) + Lw
    x = x + torch.linalg.solve_triangular(lower, b - A @ x, upper=False)
    return x + torch.linalg.solve_triangular(lower.T, b - A @ x, upper=True)


def vcycle_loss(net: PNet, A: sp.csr_matrix, probes: int = 16, generator=None, power: int = 6,
                max_coarse: int = 10, theta: float = 0.25) -> torch.Tensor:
    """Like :func:`two_grid_loss` but for the whole V-cycle that :class:`LearnedAMG` builds, learned
    ``P`` and ``omega`` on every level, dense torch, for small ``A``.

    The hierarchy's structure (C/F splittings, RS patterns, the network's input features) is computed
    first with the current network and no gradient, exactly as at setup; the torch pass then recomputes
    every level's ``P`` values and ``omega`` from those features with gradients and forms the Galerkin
    products, so the gradient flows through all coarse operators (not through the features)."""
    structure, Al = [], sp.csr_matrix(A)
    net_dtype = next(net.parameters()).dtype
    while Al.shape[0] > max_coarse:
        C, splitting, P = rs_level(Al, theta)
        nc = int(splitting.sum())
        if nc == 0 or nc == Al.shape[0]:
            break
        lvl = level_features(Al, C, splitting, P)
        with torch.no_grad():
            p, _ = _new_p_values(net, lvl, dtype=net_dtype)
        Pl = lvl.P.copy()
        Pl.data = Pl.data.copy()
        Pl.data[lvl.f_pos] = p.double().numpy()
        structure.append(lvl)
        Al = sp.csr_matrix(Pl.T @ Al @ Pl)
        Al.sort_indices()
    As = [torch.as_tensor(sp.csr_matrix(A).toarray(), dtype=torch.float64)]
    Ps, omegas = [], []
    for lvl in structure:
        p, omega = _new_p_values(net, lvl, dtype=torch.float64)
        prow = np.repeat(np.arange(lvl.A.shape[0]), np.diff(lvl.P.indptr))
        vals = torch.as_tensor(lvl.P.data.copy()).index_put((torch.as_tensor(lvl.f_pos),), p)
        P = torch.zeros(lvl.A.shape[0], lvl.P.shape[1], dtype=torch.float64).index_put(
            (torch.as_tensor(prow), torch.as_tensor(lvl.P.indices.astype(np.int64))), vals, accumulate=True)
        Ps.append(P)
        omegas.append(omega)
        Ac = P.T @ As[-1] @ P
        As.append(0.5 * (Ac + Ac.T))
    parts = [(Al_, torch.tril(Al_, -1), torch.diagonal(Al_)) for Al_ in As]
    Lc = torch.linalg.cholesky(As[-1])

    def cycle(level, b, Ps=Ps, omegas=omegas):
        if level == len(Ps):
            return torch.cholesky_solve(b, Lc)
        Al_, Lw, d = parts[level]
        x = _ssor_dense(Al_, Lw, d, omegas[level], torch.zeros_like(b), b)
        x = x + Ps[level] @ cycle(level + 1, Ps[level].T @ (b - Al_ @ x))
        return _ssor_dense(Al_, Lw, d, omegas[level], x, b)

    A0 = As[0]

    def rayleigh(z):
        e = z - cycle(0, A0 @ z)
        return (e * (A0 @ e)).sum(0) / (z * (A0 @ z)).sum(0)

    z = torch.randn(A0.shape[0], probes, dtype=torch.float64, generator=generator)
    white = rayleigh(z).mean()
    if power <= 0:
        return white
    with torch.no_grad():
        w = z
        for _ in range(power):
            w = w - cycle(0, A0 @ w)
            w = w / torch.sqrt((w * (A0 @ w)).sum(0)).clamp_min(1e-300)
    return torch.log(rayleigh(w).mean() + 1e-12) + white


def train(cfg: TrainConfig | None = None, out=None, log=print) -> tuple[PNet, dict]:
    """Train a :class:`PNet` on the two-grid energy loss; save to ``out`` when given. Returns
    ``(net, history)`` with the loss of RS weights (``omega=1``) for comparison."""
    cfg = cfg or TrainConfig()
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    mats = training_matrices(cfg)
    if cfg.loss == "vcycle":
        samples = mats

        def loss_fn(model, A, probes):
            return vcycle_loss(model, A, probes, gen, cfg.power)
    else:
        samples = [_prepare(A) for A in mats]

        def loss_fn(model, smp, probes):
            return two_grid_loss(model, smp, probes, gen, cfg.power)
    prep_s = time.perf_counter() - t0
    net = PNet(cfg.net).double()
    gen = torch.Generator().manual_seed(cfg.seed)
    baseline_net = PNet(NetConfig(learn_P=False, learn_omega=False)).double()
    with torch.no_grad():
        base = float(np.mean([loss_fn(baseline_net, s, 32).item() for s in samples]))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    rng = np.random.default_rng(cfg.seed)
    hist = []
    for step in range(cfg.steps):
        idx = rng.choice(len(samples), size=min(cfg.batch, len(samples)), replace=False)
        loss = sum(loss_fn(net, samples[i], cfg.probes) for i in idx) / len(idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        hist.append(loss.item())
        if log and (step % 50 == 0 or step == cfg.steps - 1):
            log(f"step {step:4d} loss {np.mean(hist[-50:]):.4f} (RS {base:.4f}) {time.perf_counter() - t0:.0f}s")
    with torch.no_grad():
        final = float(np.mean([loss_fn(net, s, 32).item() for s in samples]))
    net = net.float().eval()
    info = {"rs_loss": base, "final_loss": final, "train_s": time.perf_counter() - t0, "prep_s": prep_s,
            "matrices": len(mats), "config": _plain(asdict(cfg))}
    if out is not None:
        save_checkpoint(out, net, info)
    return net, info


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x
