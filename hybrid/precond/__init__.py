"""Learned preconditioners with the ``solvers.linear`` protocol (one concept per module).

- :class:`NeuralPreconditioner`: any torch grid model as ``z = M(r)`` (dof <-> grid map, ``||r||``
  normalisation, Dirichlet rows, float32 inference, batches, device); traits from the model.
- :class:`Safeguarded`: a learned step replaced by a classical one whenever it does not contract,
  with a switch to the classical preconditioner after repeated rejections.
- The SPD-by-construction V-cycle model is :class:`hybrid.operators.SymmetricMgConv`.
- :class:`LearnedAMG`: Ruge-Stuben AMG whose prolongation weights and SSOR damping come from a graph
  network (:class:`PNet`) run once at setup; SPD for any weights (``learned_amg`` module docstring).
"""

from .neural import NeuralPreconditioner, identity_rows
from .safeguard import Safeguarded
from .hints import HybridRelaxation, SmoothedWarmStart
from ..operators.symmetric_mgconv import SymmetricMgConv
from .learned_amg import LearnedAMG, PNet, load_checkpoint as load_learned_amg, train as train_learned_amg

__all__ = ["NeuralPreconditioner", "Safeguarded", "SymmetricMgConv", "identity_rows", "LearnedAMG", "PNet",
           "load_learned_amg", "train_learned_amg"]
