"""Learned EIT inversion: a ``hybrid train nio`` or ``hybrid train deeponet`` checkpoint (EIT inputs ``patterns
dtn``, output ``conductivity``) as an inverse map, alone or as the initial guess of the adjoint inversion.

- :class:`LearnedEIT`: load the checkpoint (refusing one trained on other fields, with the boundary size it
  expects named) and map DtN data ``(K, nboundary)`` of an :class:`EITSolver` on ``unit_square(n)`` to the
  nodal conductivity. The measurements are stacked as the training files store them: channel 0 the pattern,
  channel 1 its response, boundary nodes counter-clockwise from the origin (the order of both
  ``hybrid generate eit`` and :class:`EITSolver`); the checkpoint's normalizer subtracts the background DtN map
  (:class:`hybrid.data.normalize.DtNNormalizer`), so any patterns in the training patterns' span are read.
- :func:`invert_eit_learned` (the network alone) and :func:`invert_eit_hybrid` (its estimate as ``a0`` of
  :func:`invert_eit`, same regularization and discrepancy stop, network time counted; the estimate is kept
  when the adjoint would end with a worse data fit), both returning an :class:`InversionResult`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .darcy_inversion import InversionResult, mass_matrix
from .eit_inversion import invert_eit
from .eit_solver import EITSolver
from .learned import LearnedInverseError, estimate_result, keep_better

#: operators that read EIT measurements (they take ``out_shape``)
EIT_MODELS = ("nio", "deeponet")


class LearnedEIT:
    """A trained EIT inverse map (NIO or DeepONet).

    >>> est = LearnedEIT.from_checkpoint("runs/nio/best.pt")       # doctest: +SKIP
    >>> sigma = est(problem.data, problem.solver)                  # doctest: +SKIP
    """

    #: CPU threads for inference (one sample: more threads only add overhead on shared cores)
    threads = 1

    def __init__(self, model, processor, name: str, path: str):
        self.model, self.processor, self.name, self.path = model.eval(), processor, name, path

    @classmethod
    def from_checkpoint(cls, path, device: str = "cpu") -> "LearnedEIT":
        from ..training import checkpoint

        path = Path(path)
        if path.is_dir():
            path = path / "best.pt"
        payload = checkpoint.read_payload(path, device)
        name = payload.get("model")
        fields = payload.get("train", {}).get("config", {})
        inputs, outputs = list(fields.get("inputs", [])), list(fields.get("outputs", []))
        if name not in EIT_MODELS or inputs != ["patterns", "dtn"] or outputs != ["conductivity"]:
            raise LearnedInverseError(f"{path} is a {name} checkpoint trained {inputs or '?'} -> {outputs or '?'}; "
                                      f"the EIT inverse map is a {' or '.join(EIT_MODELS)} trained on a "
                                      f"`hybrid generate eit` file (patterns dtn -> conductivity)")
        _, model, processor, _ = checkpoint.load(path, device)
        return cls(model, processor, name, str(path))

    @property
    def boundary_points(self) -> int | None:
        inp = self.processor.inp if self.processor is not None else None
        return int(inp.background.shape[0]) if hasattr(inp, "background") else None

    @torch.no_grad()
    def predict_grid(self, patterns, data, out_shape) -> np.ndarray:
        """Conductivity grid ``out_shape`` from patterns and their DtN data, both ``(K, nboundary)``."""
        g, d = np.asarray(patterns, dtype=float), np.asarray(data, dtype=float)
        nb = self.boundary_points
        if g.shape != d.shape or g.ndim != 2 or (nb is not None and g.shape[1] != nb):
            raise LearnedInverseError(f"{self.path}: expects patterns and data of equal shape (K, {nb or 'nb'}); got "
                                      f"{g.shape} and {d.shape} (a model trained at another n?)")
        x = torch.as_tensor(np.stack([g, d])[None], dtype=torch.float32)
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(self.threads)
            xn, _ = self.processor.preprocess(x)
            y = self.processor.postprocess(self.model(xn, out_shape=tuple(out_shape)))
        finally:
            torch.set_num_threads(threads)
        return y[0, 0].double().numpy()

    def __call__(self, data, solver: EITSolver) -> np.ndarray:
        """Nodal conductivity (clipped at 1e-3 from below: the adjoint optimizes its logarithm) on ``solver``'s
        mesh, a ``unit_square(n)``."""
        from meshes import GridView

        try:
            view = GridView(solver.family.mesh)
        except Exception as e:
            raise LearnedInverseError(f"the learned EIT map needs a structured unit-square mesh: {e}") from None
        return self.predict_nodal(solver.patterns, solver.check_data(data), view)

    def predict_nodal(self, patterns, data, view) -> np.ndarray:
        """Nodal conductivity on ``view``'s mesh (a :class:`meshes.GridView`), clipped at 1e-3 from below."""
        return np.maximum(view.to_dofs(self.predict_grid(patterns, data, view.shape)), 1e-3)


def _as_model(model) -> LearnedEIT:
    return model if isinstance(model, LearnedEIT) else LearnedEIT.from_checkpoint(model)


def invert_eit_learned(data, solver: EITSolver, model, *, truth=None, noise_level: float | None = None,
                       noise_norm: float | None = None, tau: float = 1.1, callback=None,
                       **_ignored) -> InversionResult:
    """The network's estimate alone (iteration 0); ``seconds`` is the network's time (the forward pass for the
    reported data misfit is outside it)."""
    model = _as_model(model)
    t = time.perf_counter()
    a = model(data, solver)
    seconds = time.perf_counter() - t
    f0 = solver.counts.forward
    D, _ = solver.forward(a)
    truth_and_mass = None if truth is None else (solver.family.nodal(truth), mass_matrix(solver.darcy))
    res = estimate_result(a, D, solver.check_data(data), seconds, solver.counts.forward - f0, model.path,
                          noise_level, noise_norm, tau, truth_and_mass)
    if callback is not None:
        callback({k: v[0] for k, v in res.history.items()})
    return res


def invert_eit_hybrid(data, solver: EITSolver, model, **invert_kwargs) -> InversionResult:
    """:func:`invert_eit` from the network's estimate; ``seconds`` includes the network's time."""
    if "a0" in invert_kwargs:
        raise TypeError("invert_eit_hybrid takes its initial guess from the network; do not pass a0")
    model = _as_model(model)
    t = time.perf_counter()
    a0 = model(data, solver)
    t_net = time.perf_counter() - t
    res = invert_eit(data, solver, a0=a0, **invert_kwargs)
    return keep_better(res, a0, t_net, model.path, lambda a: solver.forward(a)[0])
