"""Names the command line offers as choices, without importing the packages that implement them.

``hybrid --help`` must answer in well under a second, so building the argument parser may not import
dolfinx, PETSc or torch (that took 2.9 s). The registries stay the source of truth: each tuple here
names its registry, and ``tests/test_structure.py`` checks that both list the same names in the same order.
"""

#: ``hybrid solve PDE``: :data:`hybrid.commands.solve.PDE_BUILDERS`
PDES = ("poisson", "darcy", "convection-diffusion", "elasticity", "helmholtz")
#: ``--method``: :data:`solvers.linear.methods.METHODS`
METHODS = ("pyamg-sa+cg", "pyamg-rs+cg", "pyamg-rs2+cg", "pyamg-sa+gmres", "petsc-gamg+cg", "petsc-gamg+gmres", "jacobi+cg",
           "ilu+gmres", "cslp+fgmres", "cslp2+fgmres", "cslp-def+fgmres", "cslp2-def+fgmres", "cslp-def2+fgmres", "cslp-deflin+fgmres", "cslp-sa+fgmres", "cslp+gcrot", "cslp-exact+fgmres", "mumps-blr+fgmres", "direct-superlu", "direct-mumps")
#: ``hybrid generate PROBLEM``: :data:`solvers.data.GENERATORS`
GENERATORS = ("darcy", "poisson", "darcy-rhs", "helmholtz", "eit")
#: ``hybrid train MODEL``: :data:`hybrid.operators.MODELS`
MODELS = ("mgno", "unet", "fno", "deeponet", "nio", "algebraic-mgno")
#: ``--method`` with ``--model``: :data:`hybrid.precond.methods.LEARNED_METHODS`
LEARNED_METHODS = ("learned-amg+cg", "learned-amg-2pass+cg", "learned-amg-l1+cg", "learned-P+cg", "learned-omega+cg",
                   "learned-poly-amg+cg", "learned-coarsening-amg+cg", "learned-cslp+fgmres", "learned-cslp+gcrot",
                   "learned-cslp-def+fgmres", "learned-def+fgmres")


def shipped_model(method: str) -> str:
    """The checkpoint under ``bench/models/`` shipped for the learned method ``method`` (what ``hybrid solve``
    suggests for ``--model`` and ``hybrid bench helmholtz`` runs by default)."""
    if method == "learned-def+fgmres":  # trained on what the deflated step leaves; 4 channels (faster than 8)
        return "helmholtz_cslp_def_c4.pt"
    if "cslp" in method:
        return "helmholtz_cslp.pt"
    return {"learned-poly-amg+cg": "learned_poly2.pt", "learned-coarsening-amg+cg": "learned_coarsening.pt"}.get(
        method, "learned_amg.pt")


#: ``hybrid bench SUITE``: :data:`hybrid.bench.SUITES`
BENCH_SUITES = ("solvers", "datagen", "operators", "hybrid", "inverse", "helmholtz", "helmholtz-norm")
#: ``hybrid invert PROBLEM``: :data:`hybrid.commands.invert.PROBLEMS`
INVERSE_PROBLEMS = ("darcy", "eit")
#: ``hybrid invert --method``: :data:`hybrid.commands.invert.METHODS`
INVERSE_METHODS = ("adjoint", "learned", "learned+adjoint")
#: ``hybrid invert --reg``: :data:`hybrid.inverse.regularization.REGULARIZERS`
INVERSE_REGULARIZERS = ("none", "l2", "h1", "tv")
#: ``hybrid invert --optimizer``: :data:`hybrid.inverse.darcy_inversion.OPTIMIZERS`
INVERSE_OPTIMIZERS = ("lbfgs", "adam")
#: ``hybrid invert --noise-model``: :data:`hybrid.inverse.noise.NOISE_MODELS`
NOISE_MODELS = ("additive", "multiplicative")
