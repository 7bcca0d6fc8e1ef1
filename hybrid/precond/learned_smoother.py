"""Learned AMG components predicted from cheap *level statistics* (a dozen scalars per level, so inference
is microseconds): a learned polynomial smoother and a learned coarsening choice, both on Ruge-Stuben
hierarchies built with pyamg's kernels.

- :class:`PolyAMG`: RS hierarchy (strength, C/F splitting, classical interpolation, Galerkin coarse
  operators, pyamg's compiled V-cycle with ``R = P^T``) whose smoother on every level is a polynomial in
  ``D^{-1} A`` applied as ``x <- x + p(D^{-1} A) D^{-1} (b - A x)``, written in product (Richardson) form
  ``q(lam) = 1 - lam p(lam) = prod_k (1 - lam / r_k)``. ``p(D^{-1}A) D^{-1}`` is symmetric, so pre = post
  smoother gives an ``A``-self-adjoint error propagation ``S = q(D^{-1}A)``. With ``model=None`` the roots
  are classical Chebyshev roots on ``[g / ratio, g]``; with a :class:`LevelNet` the roots are predicted per
  level from :func:`level_stats`. ``g`` is the Gershgorin bound of ``D^{-1} A`` (a rigorous upper bound of
  its spectrum); every root set is checked to satisfy ``|q| < 1`` on ``(0, g]`` (else the level falls back
  to the classical roots), so ``S`` is an ``A``-contraction and the V-cycle is SPD for any network.
- :class:`LearnedCoarseningAMG`: RS-AMG with symmetric Gauss-Seidel whose strength threshold ``theta`` and
  RS second pass are chosen from a small menu (:data:`COARSENING_MENU`) by a :class:`LevelNet` classifier
  on the finest level's statistics and used on every level (the oracle at n = 512 showed the coarse
  levels' choice matters more than the finest one's). Training is grid search + regression on small
  matrices (:func:`train_coarsening`): for every small training matrix and every menu entry (on all
  levels), the cost proxy ``CG iterations x cycle complexity + setup complexity`` labels the best choice. SPD by the usual Galerkin + symmetric smoothing argument.

Training matrices are P1 Darcy at ``n <= 64`` with field seeds ``>= 1000`` (the benchmark uses seed 0).
Checkpoints hold ``state_dict`` + config and load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from pyamg.multilevel import MultilevelSolver
from torch import nn

from solvers.linear.preconditioners.multigrid import AMG

from .learned_amg import SSOR, rs_level
from .net_checkpoint import load_net, save_net

N_STATS = 10
#: (theta, second_pass) choices of :class:`LearnedCoarseningAMG`
COARSENING_MENU = ((0.25, True), (0.25, False), (0.5, True), (0.5, False), (0.1, True))
ROOT_MIN = 0.02  # roots as fractions of the Gershgorin bound: (ROOT_MIN, 1]


# ----------------------------------------------------------------------------------------------- statistics
def gershgorin(A: sp.csr_matrix) -> float:
    """Rigorous upper bound of the spectrum of ``D^{-1} A``: ``max_i sum_j |a_ij| / a_ii``."""
    d = A.diagonal()
    absrow = np.asarray(abs(A).sum(axis=1)).ravel()
    return float(np.max(absrow / np.where(d > 0, d, 1.0)))


def level_stats(A, level: int = 0, power_iters: int = 6, seed: int = 0) -> np.ndarray:
    """A dozen-ish scale-invariant scalars of one level (O(nnz) plus ``power_iters`` SpMVs): Gershgorin bound
    of ``D^-1 A``, power estimate of its largest eigenvalue relative to it, mean/max off-diagonal weight,
    mean row sum, positive off-diagonal fraction, stencil size, diagonal spread, log size, finest flag."""
    A = sp.csr_matrix(A)
    n = A.shape[0]
    d = A.diagonal()
    d = np.where(d > 0, d, 1.0)
    arow = np.repeat(np.arange(n), np.diff(A.indptr))
    off = arow != A.indices
    absoff = np.bincount(arow[off], np.abs(A.data[off]), n) / d
    rowsum = np.bincount(arow, A.data, n) / d
    pos = float(np.mean(A.data[off] > 0)) if off.any() else 0.0
    g = float(np.max(1.0 + absoff))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    lam = 0.0
    for _ in range(power_iters):
        y = (A @ x) / d
        lam = float(np.linalg.norm(y) / max(np.linalg.norm(x), 1e-300))
        x = y
    logd = np.log(d)
    return np.array([g / 2.0, lam / g, absoff.mean(), min(absoff.max(), 10.0) / 10.0, rowsum.mean(), pos,
                     A.nnz / n / 10.0, min(logd.std(), 10.0) / 5.0, math.log10(max(n, 1)) / 7.0,
                     1.0 if level == 0 else 0.0])


# ----------------------------------------------------------------------------------------------- network
@dataclass
class LevelNetConfig:
    kind: str = "poly"        # "poly": outputs ``degree`` root fractions; "coarsening": menu logits
    degree: int = 2
    hidden: int = 16


class LevelNet(nn.Module):
    """A tiny MLP on :func:`level_stats`: root fractions in ``(ROOT_MIN, 1]`` of the Gershgorin bound
    (``kind="poly"``) or logits over :data:`COARSENING_MENU` (``kind="coarsening"``)."""

    def __init__(self, config: LevelNetConfig | None = None):
        super().__init__()
        self.config = config or LevelNetConfig()
        h = self.config.hidden
        out = self.config.degree if self.config.kind == "poly" else len(COARSENING_MENU)
        self.mlp = nn.Sequential(nn.Linear(N_STATS, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh(), nn.Linear(h, out))
        if self.config.kind == "poly":  # start at the classical Chebyshev roots on [g/4, g]
            with torch.no_grad():
                self.mlp[-1].weight.mul_(0.01)
                self.mlp[-1].bias.copy_(torch.logit(_to_unit(torch.as_tensor(
                    chebyshev_fractions(self.config.degree, 4.0)))))

    def forward(self, stats):
        z = self.mlp(stats)
        if self.config.kind == "poly":
            return ROOT_MIN + (1.0 - ROOT_MIN) * torch.sigmoid(z)
        return z


def _to_unit(f):
    return ((f - ROOT_MIN) / (1.0 - ROOT_MIN)).clamp(1e-4, 1 - 1e-4)


def chebyshev_fractions(degree: int, ratio: float) -> np.ndarray:
    """Roots (fractions of the upper end ``b = 1``) of the degree-``degree`` Chebyshev residual polynomial
    on ``[1/ratio, 1]``: ``|q| < 1`` on ``(0, 1]`` and minimal max-norm on the interval."""
    a, b = 1.0 / ratio, 1.0
    k = np.arange(1, degree + 1)
    return (a + b) / 2 + (b - a) / 2 * np.cos((2 * k - 1) * np.pi / (2 * degree))


def contracts(fractions, grid: int = 4001, margin: float = 1e-6) -> bool:
    """``|prod_k (1 - t / f_k)| < 1`` on ``t in (0, 1]`` (``t = lam / g``), checked on a fine grid."""
    t = np.linspace(0.0, 1.0, grid)[1:]
    q = np.prod(1.0 - t[:, None] / np.asarray(fractions, float)[None, :], axis=1)
    return bool(np.all(np.abs(q) < 1.0 - margin))


# ----------------------------------------------------------------------------------------------- smoother
class PolySmoother:
    """``x <- x + p(D^-1 A) D^-1 (b - A x)`` with ``1 - lam p(lam) = prod_k (1 - lam / r_k)``: one SpMV per
    root. ``p(D^-1 A) D^-1`` is symmetric, so the same object is pre- and post-smoother of an SPD V-cycle."""

    def __init__(self, A, roots):
        d = A.diagonal()
        self.dinv = 1.0 / np.where(d != 0, d, 1.0)
        self.steps = tuple(float(1.0 / r) for r in roots)

    def __call__(self, A, x, b):
        first = not x.any()
        for k, c in enumerate(self.steps):
            r = b if (first and k == 0) else b - A @ x
            x += c * (self.dinv * r)
        return x


# ----------------------------------------------------------------------------------------------- hierarchies
def _build(A, choose, max_coarse: int, max_levels: int, interpolation: str = "classical"):
    """RS hierarchy with per-level ``(theta, second_pass) = choose(level, A_l)``: pyamg levels, stats time."""
    levels = [MultilevelSolver.Level()]
    Al = sp.csr_matrix(A)
    Al.sort_indices()
    levels[0].A = Al
    choice_s = 0.0
    while len(levels) < max_levels and Al.shape[0] > max_coarse:
        t = time.perf_counter()
        theta, second = choose(len(levels) - 1, Al)
        choice_s += time.perf_counter() - t
        _, splitting, P = rs_level(Al, theta, "RS", second, interpolation)
        nc = int(splitting.sum())
        if nc == 0 or nc == Al.shape[0]:
            break
        lvl = levels[-1]
        lvl.P, lvl.R, lvl.splitting = P, sp.csr_matrix(P.T), splitting
        Al = sp.csr_matrix(lvl.R @ Al @ P)
        Al.sort_indices()
        levels.append(MultilevelSolver.Level())
        levels[-1].A = Al
    return levels, choice_s


def _load(model, kind):
    if isinstance(model, (str, Path)):
        model = load_level_checkpoint(model)
    if model is not None and model.config.kind != kind:
        raise ValueError(f"expected a {kind!r} LevelNet, got {model.config.kind!r}")
    return model


class PolyAMG(AMG):
    """RS-AMG (``theta``, ``second_pass``) with a polynomial smoother of ``degree`` on every level: classical
    Chebyshev roots on ``[g/ratio, g]`` (``model=None``) or roots predicted by a ``kind="poly"``
    :class:`LevelNet` from :func:`level_stats`. SPD for any network (see module). ``stats`` gains
    ``setup_network_s`` (statistics + inference), ``roots`` and ``fallbacks`` (levels whose predicted roots
    failed the contraction check)."""

    linear = True
    symmetric = True

    def __init__(self, model=None, degree: int = 2, ratio: float = 4.0, theta: float = 0.25,
                 second_pass: bool = True, max_coarse: int = 10, max_levels: int = 30):
        super().__init__("rs")
        self.model = _load(model, "poly")
        self.degree = self.model.config.degree if self.model is not None else degree
        self.ratio, self.theta, self.second_pass = ratio, theta, second_pass
        self.max_coarse, self.max_levels = max_coarse, max_levels

    def _fractions(self, level, A):
        if self.model is None:
            return chebyshev_fractions(self.degree, self.ratio), False
        with torch.inference_mode():
            s = torch.as_tensor(level_stats(A, level), dtype=torch.float32)
            f = self.model(s).double().numpy()
        if contracts(f):
            return f, False
        return chebyshev_fractions(self.degree, self.ratio), True

    def _smoothers(self):
        roots, fallbacks, t = [], 0, time.perf_counter()
        for i, lvl in enumerate(self.ml.levels[:-1]):
            f, fell = self._fractions(i, lvl.A)
            fallbacks += fell
            g = gershgorin(lvl.A)
            lvl.presmoother = lvl.postsmoother = PolySmoother(lvl.A, g * np.asarray(f))
            roots.append([round(float(x), 4) for x in f])
        return roots, fallbacks, time.perf_counter() - t

    def setup(self, A, p=None):
        self.A, self.p = A, p
        levels, _ = _build(A, lambda i, Al: (self.theta, self.second_pass), self.max_coarse, self.max_levels)
        self.ml = MultilevelSolver(levels, coarse_solver="pinv")
        self.ml.symmetric_smoothing = True
        roots, fallbacks, net_s = self._smoothers()
        self._op = self.ml.aspreconditioner(cycle="V")
        s = self.stats
        s["setup_network_s"] = net_s if self.model is not None else 0.0
        s["roots"], s["fallbacks"] = roots, fallbacks
        return self

    @property
    def symmetric(self) -> bool:
        return True

    def _refresh_smoothers(self) -> None:
        self._smoothers()

    def __repr__(self):
        return (f"PolyAMG(model={'none' if self.model is None else 'LevelNet'}, degree={self.degree}, "
                f"theta={self.theta}, second_pass={self.second_pass})")


class LearnedCoarseningAMG(AMG):
    """RS-AMG + symmetric Gauss-Seidel whose ``(theta, second_pass)`` per level comes from a
    ``kind="coarsening"`` :class:`LevelNet` over :data:`COARSENING_MENU` (``model=None``: RS2 everywhere).
    ``stats`` gains ``setup_network_s`` and the per-level ``choices``."""

    linear = True
    symmetric = True

    def __init__(self, model=None, max_coarse: int = 10, max_levels: int = 30):
        super().__init__("rs")
        self.model = _load(model, "coarsening")
        self.max_coarse, self.max_levels = max_coarse, max_levels
        self._choice = COARSENING_MENU[0]

    def choose(self, level, A):
        """Decided once from the finest level's statistics, then kept on every coarser level."""
        if self.model is None:
            return COARSENING_MENU[0]
        if level == 0:
            with torch.inference_mode():
                z = self.model(torch.as_tensor(level_stats(A, level), dtype=torch.float32))
            self._choice = COARSENING_MENU[int(torch.argmax(z))]
        return self._choice

    def setup(self, A, p=None):
        self.A, self.p = A, p
        choices = []

        def choose(i, Al):
            c = self.choose(i, Al)
            choices.append(c)
            return c

        levels, net_s = _build(A, choose, self.max_coarse, self.max_levels)
        self.ml = MultilevelSolver(levels, coarse_solver="pinv")
        for lvl in self.ml.levels[:-1]:
            lvl.presmoother = lvl.postsmoother = SSOR(1.0)
        self.ml.symmetric_smoothing = True
        self._op = self.ml.aspreconditioner(cycle="V")
        s = self.stats
        s["setup_network_s"] = net_s if self.model is not None else 0.0
        s["choices"] = [list(c) for c in choices]
        return self

    @property
    def symmetric(self) -> bool:
        return True

    def _refresh_smoothers(self) -> None:
        """SSOR reads the level matrix when called: nothing to rebuild."""

    def __repr__(self):
        return f"LearnedCoarseningAMG(model={'none' if self.model is None else 'LevelNet'})"


# ----------------------------------------------------------------------------------------------- checkpoints
def save_level_checkpoint(path, net: LevelNet, extra: dict | None = None) -> Path:
    return save_net(path, "level_net", net, extra)


def load_level_checkpoint(path, device="cpu") -> LevelNet:
    return load_net(path, "level_net", lambda config: LevelNet(LevelNetConfig(**config)), device)


# ----------------------------------------------------------------------------------------------- training
def training_matrices(n: int = 32, per_kind: int = 4, seed: int = 1000,
                      kinds=("two-phase", "contrast", "log-normal")) -> list[sp.csr_matrix]:
    """P1 Darcy matrices (Dirichlet rows eliminated) at a small ``n``, field seeds ``>= 1000``."""
    import meshes
    import solvers
    from solvers.sampling import make_field

    if n > 64 or seed < 1000:
        raise ValueError("train on small matrices (n <= 64) with seeds >= 1000 (the benchmark uses seed 0)")
    mesh = meshes.unit_square(n)
    out = []
    for kind in kinds:
        for i in range(per_kind):
            A = sp.csr_matrix(solvers.Darcy(mesh, a=make_field(kind, seed=seed, index=i), f=1.0).assemble().A)
            A.sort_indices()
            out.append(A)
    return out


def _dense_hierarchy(A, max_coarse=10):
    """RS2 hierarchy of a small matrix as dense torch matrices, with each level's stats and Gershgorin bound."""
    levels, _ = _build(A, lambda i, Al: (0.25, True), max_coarse, 30)
    As = [torch.as_tensor(lvl.A.toarray()) for lvl in levels]
    Ps = [torch.as_tensor(lvl.P.toarray()) for lvl in levels[:-1]]
    stats = [torch.as_tensor(level_stats(lvl.A, i), dtype=torch.float64) for i, lvl in enumerate(levels[:-1])]
    gs = [gershgorin(lvl.A) for lvl in levels[:-1]]
    return As, Ps, stats, gs


def poly_vcycle_loss(net: LevelNet, hier, probes: int = 16, power: int = 8, generator=None) -> torch.Tensor:
    """log of the V-cycle's slowest-mode energy reduction (power iteration on ``I - M A``, dense torch), the
    polynomial roots of every level predicted from its statistics with gradients."""
    As, Ps, stats, gs = hier
    roots = [g * net(s) for s, g in zip(stats, gs)]
    dinv = [1.0 / torch.diagonal(A) for A in As[:-1]]
    Lc = torch.linalg.cholesky(As[-1])

    def smooth(l, x, b):
        for r in roots[l]:
            x = x + (dinv[l][:, None] * (b - As[l] @ x)) / r
        return x

    def cycle(l, b):
        if l == len(Ps):
            return torch.cholesky_solve(b, Lc)
        x = smooth(l, torch.zeros_like(b), b)
        x = x + Ps[l] @ cycle(l + 1, Ps[l].T @ (b - As[l] @ x))
        return smooth(l, x, b)

    A0 = As[0]
    w = torch.randn(A0.shape[0], probes, dtype=torch.float64, generator=generator)
    with torch.no_grad():
        for _ in range(power):
            w = w - cycle(0, A0 @ w)
            w = w / torch.sqrt((w * (A0 @ w)).sum(0))
    e = w - cycle(0, A0 @ w)
    return torch.log((e * (A0 @ e)).sum(0).mean() / (w * (A0 @ w)).sum(0).mean())


def train_poly(degree: int = 2, n: int = 32, per_kind: int = 4, steps: int = 150, lr: float = 3e-2,
               seed: int = 1000, out=None, log=print) -> tuple[LevelNet, dict]:
    """Train a ``kind="poly"`` :class:`LevelNet` on the dense V-cycle loss of small Darcy matrices."""
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    hiers = [_dense_hierarchy(A) for A in training_matrices(n, per_kind, seed)]
    net = LevelNet(LevelNetConfig("poly", degree)).double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        base = float(np.mean([poly_vcycle_loss(net, h, 32, 12, gen).item() for h in hiers]))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    for step in range(steps):
        idx = rng.choice(len(hiers), size=min(3, len(hiers)), replace=False)
        loss = sum(poly_vcycle_loss(net, hiers[i], 16, 8, gen) for i in idx) / len(idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log and (step % 25 == 0 or step == steps - 1):
            log(f"step {step:4d} loss {loss.item():.4f} (Chebyshev [g/4, g]: {base:.4f}) "
                f"{time.perf_counter() - t0:.0f}s")
    with torch.no_grad():
        final = float(np.mean([poly_vcycle_loss(net, h, 32, 12, gen).item() for h in hiers]))
    net = net.float().eval()
    info = {"chebyshev_loss": base, "final_loss": final, "train_s": time.perf_counter() - t0, "n": n,
            "seed": seed, "matrices": len(hiers), "degree": degree}
    if out is not None:
        save_level_checkpoint(out, net, info)
    return net, info


def coarsening_cost(A, choice, rtol: float = 1e-8, seed: int = 0) -> float:
    """Cost proxy of RS-AMG + CG with ``choice`` on every level: CG iterations x cycle
    complexity (2 x operator complexity + 1) + setup complexity (operator complexity), in fine SpMVs."""
    from solvers.linear import CG, LinearProblem, init

    class _Fixed(LearnedCoarseningAMG):
        def choose(self, level, Al):
            return choice

    b = np.random.default_rng(seed).standard_normal(A.shape[0])
    cache = init(LinearProblem(A, b), CG(precond=_Fixed()), rtol=rtol, maxiter=200)
    sol, pc = cache.solve(), cache.precond
    oc = sum(lvl.A.nnz for lvl in pc.ml.levels) / A.nnz
    return sol.iterations * (2 * oc + 1) + oc


def train_coarsening(n: int = 64, per_kind: int = 4, steps: int = 300, seed: int = 1000, out=None,
                     log=print) -> tuple[LevelNet, dict]:
    """Grid search + regression: label every small matrix with the menu entry of least
    :func:`coarsening_cost` on its finest level, fit the classifier (cross-entropy on the stats)."""
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    mats = training_matrices(n, per_kind, seed)
    X, Y, costs = [], [], []
    for A in mats:
        c = [coarsening_cost(A, ch) for ch in COARSENING_MENU]
        X.append(level_stats(A, 0))
        Y.append(int(np.argmin(c)))
        costs.append(c)
    X = torch.as_tensor(np.array(X), dtype=torch.float32)
    Y = torch.as_tensor(Y)
    net = LevelNet(LevelNetConfig("coarsening"))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = nn.functional.cross_entropy(net(X), Y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc = float((net(X).argmax(1) == Y).float().mean())
    info = {"labels": Y.tolist(), "costs": costs, "accuracy": acc, "train_s": time.perf_counter() - t0,
            "n": n, "seed": seed}
    if log:
        log(f"coarsening labels {np.bincount(Y.numpy(), minlength=len(COARSENING_MENU)).tolist()} "
            f"acc {acc:.2f} mean cost per choice {np.mean(costs, 0).round(1).tolist()}")
    net.eval()
    if out is not None:
        save_level_checkpoint(out, net, info)
    return net, info
