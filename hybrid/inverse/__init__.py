"""Inverse problems: differentiable FEM solves (adjoint backward) and PDE-constrained optimization.

- :class:`DarcySolver` (forward/adjoint solves of a ``DarcyFamily``, exact coefficient gradients),
- :func:`differentiable_solve` (``torch.autograd.Function``: coefficient -> solution),
- observation operators :class:`AllNodes`, :class:`Sensors`,
- :func:`darcy_problem` (synthetic data from a finer mesh), :func:`add_noise`, regularizers (``l2``, ``h1``, ``tv``), and :func:`invert_darcy`;
- EIT (:mod:`.eit_solver`, :mod:`.eit_inversion`, :mod:`.phantoms`): Dirichlet-to-Neumann data as a differentiable
  function of the conductivity (:class:`EITSolver`, :func:`eit_forward`), synthetic or file data
  (:func:`eit_problem`, :func:`eit_from_file`), phantoms (:func:`phantom`), and :func:`invert_eit`;
- hybrid inversion (:mod:`.learned`): a trained pressure -> coefficient network (:class:`LearnedInverse`,
  :func:`train_inverse_map`) alone (:func:`invert_learned`) or as the adjoint's initial guess (:func:`invert_hybrid`).
"""

from .darcy_solver import DarcySolver, SolveCounts
from .differentiable import DarcySolve, differentiable_solve, sparse_apply
from .observations import AllNodes, Observation, Sensors, halton_points, p1_interpolation_matrix
from .noise import NOISE_MODELS, add_noise
from .regularization import REGULARIZERS, make_regularizer
from .synthetic import DarcyInverseProblem, darcy_problem
from .darcy_inversion import OPTIMIZERS, InversionResult, invert_darcy, relative_l2_error, mass_matrix
from .eit_solver import EITSolver, eit_forward
from .eit_inversion import EITInverseProblem, eit_from_file, eit_problem, invert_eit
from .phantoms import PHANTOMS, phantom
from .eit_learned import LearnedEIT, invert_eit_hybrid, invert_eit_learned
from .learned import (InverseTrainConfig, LearnedInverse, LearnedInverseError, invert_hybrid, invert_learned,
                      train_inverse_map)

__all__ = ["LearnedEIT", "invert_eit_hybrid", "invert_eit_learned", "DarcySolver", "SolveCounts", "DarcySolve", "differentiable_solve", "sparse_apply", "AllNodes",
           "Observation", "Sensors", "halton_points", "p1_interpolation_matrix", "NOISE_MODELS", "add_noise",
           "REGULARIZERS", "make_regularizer", "OPTIMIZERS", "InversionResult", "invert_darcy",
           "relative_l2_error", "mass_matrix", "DarcyInverseProblem", "darcy_problem", "InverseTrainConfig",
           "LearnedInverse", "LearnedInverseError", "invert_hybrid", "invert_learned", "train_inverse_map",
           "EITSolver", "eit_forward", "EITInverseProblem", "eit_from_file", "eit_problem", "invert_eit",
           "PHANTOMS", "phantom"]
