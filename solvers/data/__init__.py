"""Training-data generation from the toolkit's own FEM solvers (numpy/scipy/h5py; no torch).

Example (what ``hybrid generate darcy --samples 1200 --n 64 --out data/darcy64.h5 --workers 2`` runs)::

    from solvers.data import generate
    generate("darcy", samples=1200, n=64, out="data/darcy64.h5", workers=2)
"""

from .generators import GENERATORS, GenerationError, check_generator_params, make_generator
from .generate import generate
from .store import DatasetMismatch

__all__ = ["GENERATORS", "GenerationError", "check_generator_params", "make_generator", "generate", "DatasetMismatch"]
