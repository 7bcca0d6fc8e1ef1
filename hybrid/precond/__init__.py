"""Learned preconditioners with the ``solvers.linear`` protocol (one concept per module).

- :class:`NeuralPreconditioner`: any torch grid model as ``z = M(r)`` (dof <-> grid map, ``||r||``
  normalisation, Dirichlet rows, float32 inference, batches, device); traits from the model.
- :class:`Safeguarded`: a learned step replaced by a classical one whenever it does not contract,
  with a switch to the classical preconditioner after repeated rejections.
- The SPD-by-construction V-cycle model is :class:`hybrid.operators.SymmetricMgConv`.
"""

from .neural import NeuralPreconditioner, identity_rows
from .safeguard import Safeguarded
from ..operators.symmetric_mgconv import SymmetricMgConv

__all__ = ["NeuralPreconditioner", "Safeguarded", "SymmetricMgConv", "identity_rows"]
