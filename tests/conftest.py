import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import meshes  # noqa: E402,F401  (MPI before dolfinx)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
