"""Named learned solver configurations (``"learned-amg+cg"`` ...), beside ``solvers.linear.METHODS``.

A learned method needs a trained model: each factory takes the model (a checkpoint path or an
already-loaded network) and returns a fresh algorithm value. The command line (``hybrid solve
--method learned-amg+cg --model PATH``) and ``hybrid bench hybrid`` take their names from here.
"""

from __future__ import annotations

from typing import Callable

from solvers.linear import CG, Algorithm


def _net(model, learn_P=None, learn_omega=None):
    """The network from a checkpoint path or object, with one output switched off for ablations."""
    import copy

    from .learned_amg import PNet, load_checkpoint

    net = model if isinstance(model, PNet) else load_checkpoint(model)
    if learn_P is None and learn_omega is None:
        return net
    net = copy.deepcopy(net)
    if learn_P is not None:
        net.config.learn_P = learn_P
    if learn_omega is not None:
        net.config.learn_omega = learn_omega
    return net


def _learned_amg(**options):
    def make(model, device="cpu") -> Algorithm:
        from .learned_amg import LearnedAMG

        switches = {k: v for k, v in options.items() if k in ("learn_P", "learn_omega")}
        rest = {k: v for k, v in options.items() if k not in switches}
        return CG(precond=LearnedAMG(_net(model, **switches), device=device, **rest))
    return make


def _level_net_amg(cls_name: str):
    """A :mod:`.learned_smoother` hierarchy driven by a :class:`LevelNet` checkpoint (path or object)."""
    def make(model, device="cpu") -> Algorithm:
        from . import learned_smoother

        return CG(precond=getattr(learned_smoother, cls_name)(model))
    return make


def _learned_cslp(model, device="cpu") -> Algorithm:
    """Helmholtz: FGMRES with the shifted-Laplacian cycle and its learned correction (the restart of
    ``cslp+fgmres``)."""
    from solvers.linear import FGMRES
    from solvers.linear.methods import HELMHOLTZ_RESTART

    from .helmholtz import LearnedShiftedLaplacian

    return FGMRES(restart=HELMHOLTZ_RESTART, precond=LearnedShiftedLaplacian(model, device=device))


def _learned_cslp_gcrot(model, device="cpu") -> Algorithm:
    """Helmholtz: the same learned preconditioner inside GCROT(30, 10) (``cslp+gcrot``'s solver)."""
    from solvers.linear import GCROT
    from solvers.linear.methods import HELMHOLTZ_RESTART

    from .helmholtz import LearnedShiftedLaplacian

    return GCROT(m=HELMHOLTZ_RESTART, k=10, precond=LearnedShiftedLaplacian(model, device=device))


def _learned_cslp_def(model, device="cpu") -> Algorithm:
    """Helmholtz: the learned preconditioner as the inner step of two-level deflation (``cslp-def+fgmres``'s
    coarse space and exact coarse solve), inside FGMRES(30)."""
    from solvers.linear import FGMRES
    from solvers.linear.methods import HELMHOLTZ_RESTART
    from solvers.linear.preconditioners import TwoLevelDeflation

    from .helmholtz import LearnedShiftedLaplacian

    return FGMRES(restart=HELMHOLTZ_RESTART, precond=TwoLevelDeflation(LearnedShiftedLaplacian(model, device=device)))


def _learned_def(model, device="cpu") -> Algorithm:
    """Helmholtz: the learned correction of the deflated step (``cslp-def+fgmres``'s application is the
    classical part: deflated step, network on what it left, deflated step again), inside FGMRES(30). Its
    network is trained on the residuals the deflated step leaves (shipped: ``hybrid.names.shipped_model``);
    its classical counterpart with the same two deflated steps is ``cslp-def2+fgmres``."""
    from solvers.linear import FGMRES
    from solvers.linear.methods import HELMHOLTZ_RESTART
    from solvers.linear.preconditioners import TwoLevelDeflation

    from .helmholtz import LearnedShiftedLaplacian

    return FGMRES(restart=HELMHOLTZ_RESTART,
                  precond=LearnedShiftedLaplacian(model, classical=TwoLevelDeflation(), device=device))


#: name -> factory(model) returning a fresh algorithm value. The first three are the benchmark's learned
#: rows; the next two are ablations (one output of the same network switched off at inference); the last two take a
#: LevelNet checkpoint (hybrid.precond.learned_smoother: learned polynomial smoother, learned coarsening).
LEARNED_METHODS: dict[str, Callable[[object], Algorithm]] = {
    "learned-amg+cg": _learned_amg(),
    "learned-amg-2pass+cg": _learned_amg(second_pass=True),
    "learned-amg-l1+cg": _learned_amg(learn_levels=1),
    "learned-P+cg": _learned_amg(learn_omega=False),
    "learned-omega+cg": _learned_amg(learn_P=False),
    "learned-poly-amg+cg": _level_net_amg("PolyAMG"),
    "learned-coarsening-amg+cg": _level_net_amg("LearnedCoarseningAMG"),
    "learned-cslp+fgmres": _learned_cslp,
    "learned-cslp+gcrot": _learned_cslp_gcrot,
    "learned-cslp-def+fgmres": _learned_cslp_def,
    "learned-def+fgmres": _learned_def,
}
#: what ``hybrid bench hybrid`` runs by default
BENCH_LEARNED = ("learned-amg+cg", "learned-amg-2pass+cg", "learned-amg-l1+cg")


def learned_method(name: str, model, device="cpu") -> Algorithm:
    """The learned algorithm ``name`` with ``model``; unknown names or a missing model raise ``ValueError``."""
    if name not in LEARNED_METHODS:
        raise ValueError(f"unknown learned method {name!r}; choose one of: {', '.join(LEARNED_METHODS)}")
    if model is None:
        from ..names import shipped_model

        raise ValueError(f"method {name!r} needs a trained model: pass --model PATH (shipped: "
                         f"bench/models/{shipped_model(name)})")
    return LEARNED_METHODS[name](model, device)
