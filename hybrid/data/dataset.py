"""``FieldDataset``: a lazy torch view of a ``hybrid generate`` HDF5 file, and the fields each problem's files
train on by default (:func:`default_fields`)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

#: ``problem`` attribute of a file -> (input fields, output fields) that ``hybrid train`` uses when
#: ``--inputs``/``--outputs`` are not given. EIT learns the inverse map: the measurements (each boundary
#: pattern beside its Dirichlet-to-Neumann response, two channels of shape ``(patterns, boundary nodes)``;
#: ``patterns`` is stored once under ``fixed/``) to the conductivity on the ``(n+1, n+1)`` grid.
TRAINING_FIELDS = {"eit": (("patterns", "dtn"), ("conductivity",))}
#: every other problem: coefficient -> solution
DEFAULT_FIELDS = (("coefficient",), ("solution",))


def default_fields(path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(inputs, outputs)`` for the file's problem (its ``problem`` attribute): see :data:`TRAINING_FIELDS`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset not found: {path}")
    with h5py.File(path, "r") as f:
        problem = f.attrs.get("problem", "")
    return TRAINING_FIELDS.get(str(problem), DEFAULT_FIELDS)


class FieldDataset(Dataset):
    """Pairs ``(x, y)`` of ``(channels, ny, nx)`` tensors read on demand from an HDF5 dataset.

    Parameters
    ----------
    path : file written by ``hybrid generate`` (complete or partial: only complete samples are used).
    inputs, outputs : field names stacked as channels (e.g. ``("coefficient",)``, ``("solution",)``). A name
        that is not a per-sample field but an array stored once under ``fixed/`` (EIT's ``patterns``) is
        repeated for every sample; the fields stacked together must have the same shape.
    indices : subset of sample indices (after dropping incomplete ones), e.g. a train/test split.
    dtype : torch dtype of the returned tensors.

    The file is opened lazily in each process (h5py handles must not cross ``fork``), so the dataset
    works with ``DataLoader(num_workers > 0)``.

    Fields must be real numbers: integer and half-precision fields are converted to ``dtype``, complex
    ones are refused (store real and imaginary parts as two fields). Samples with NaN or infinite values
    (also after conversion, e.g. float64 beyond the float32 range) raise ``ValueError`` naming the field
    and the sample, so one bad sample cannot poison a normalizer or a training run.
    """

    def __init__(self, path, inputs: Sequence[str] = ("coefficient",), outputs: Sequence[str] = ("solution",),
                 indices: Sequence[int] | None = None, dtype: torch.dtype = torch.float32):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"dataset not found: {self.path}")
        self.inputs, self.outputs, self.dtype = tuple(inputs), tuple(outputs), dtype
        with h5py.File(self.path, "r") as f:
            fixed = f["fixed"] if isinstance(f.get("fixed"), h5py.Group) else {}
            self.fixed = tuple(name for name in (*self.inputs, *self.outputs) if name not in f and name in fixed)
            for name in (*self.inputs, *self.outputs):
                if name not in f and name not in self.fixed:
                    fields = [k for k in f if k not in ("mesh", "complete", "fixed")]
                    stored = [f"{k} (fixed)" for k in fixed if k not in f]
                    raise ValueError(f"{self.path} has no field {name!r}; it has: {', '.join(fields + stored)}")
            shapes = {name: tuple(fixed[name].shape if name in self.fixed else f[name].shape[1:])
                      for name in (*self.inputs, *self.outputs)}
            for role, names in (("inputs", self.inputs), ("outputs", self.outputs)):
                if len({shapes[name] for name in names}) > 1:
                    listed = ", ".join(f"{name} {shapes[name]}" for name in names)
                    raise ValueError(f"{self.path}: the {role} are stacked as channels and need one shape per "
                                     f"sample; they have {listed}")
            for name in (*self.inputs, *self.outputs):
                kind = (fixed[name] if name in self.fixed else f[name]).dtype
                if kind.kind == "c":
                    raise ValueError(f"{self.path}: field {name!r} is complex ({kind}); store its real and imaginary "
                                     f"parts as two real fields (e.g. {name}_re, {name}_im)")
                if kind.kind not in "biuf":
                    raise ValueError(f"{self.path}: field {name!r} has dtype {kind}, not real numbers")
            complete = np.flatnonzero(f["complete"][...])
            self.attrs = {k: f.attrs[k] for k in f.attrs}
            self.shape = shapes[self.outputs[0]]
            self.input_shape = shapes[self.inputs[0]]
        if indices is not None:
            indices = np.asarray(indices)
            bad = indices[(indices < 0) | (indices >= len(complete))]
            if len(bad):
                raise IndexError(f"indices {bad[:5].tolist()} out of range for {len(complete)} complete samples")
            complete = complete[indices]
        self.index = complete
        self._file = None

    def __len__(self) -> int:
        return len(self.index)

    def _h5(self):
        if self._file is None:
            self._file = h5py.File(self.path, "r")
        return self._file

    @property
    def measured_inputs(self) -> tuple[int, ...]:
        """Input channels that vary per sample (not stored once under ``fixed/``): where measurement noise goes."""
        return tuple(c for c, name in enumerate(self.inputs) if name not in self.fixed)

    def _read(self, name: str, samples: np.ndarray) -> np.ndarray:
        """Field ``name`` of the file's samples ``samples`` (increasing), converted to ``dtype`` and checked."""
        dtype = torch.empty((), dtype=self.dtype).numpy().dtype
        if name in self.fixed:
            once = np.asarray(self._h5()["fixed"][name][...], dtype=dtype)
            if not np.isfinite(once).all():
                raise ValueError(f"{self.path}: the fixed field {name!r} has non-finite values; regenerate the file")
            return np.broadcast_to(once, (len(samples), *once.shape)).copy()
        values = np.asarray(self._h5()[name][samples], dtype=dtype)
        finite = np.isfinite(values.reshape(len(samples), -1))
        bad = np.flatnonzero(~finite.all(axis=1))
        if len(bad):
            first = bad[0]
            count = int((~finite[first]).sum())
            example = values.reshape(len(samples), -1)[first][~finite[first]][0]
            others = f" (and {len(bad) - 1} more samples)" if len(bad) > 1 else ""
            raise ValueError(f"{self.path}: field {name!r} of sample {int(samples[first])} has {count} non-finite "
                             f"value{'s' if count > 1 else ''} (e.g. {example}) of {finite.shape[1]}{others}; "
                             f"regenerate it or leave it out (indices)")
        return values

    def _stack(self, names, i) -> torch.Tensor:
        return torch.from_numpy(np.stack([self._read(name, np.array([i]))[0] for name in names]))

    def __getitem__(self, k: int):
        i = int(self.index[k])
        return self._stack(self.inputs, i), self._stack(self.outputs, i)

    def arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All selected samples at once ``(N, C, ...)`` (for small datasets and statistics)."""
        order = np.argsort(self.index)
        idx = self.index[order]
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        x = np.stack([self._read(n, idx) for n in self.inputs], axis=1)[inv]
        y = np.stack([self._read(n, idx) for n in self.outputs], axis=1)[inv]
        return torch.from_numpy(x), torch.from_numpy(y)

    def identity(self) -> dict:
        """What identifies the data of a training run: the resolved path and the file's creation stamp."""
        return {"path": str(self.path.resolve()), "created": str(self.attrs.get("created", ""))}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"] = None
        return state
