"""``FieldDataset``: a lazy torch view of a ``hybrid generate`` HDF5 file."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset


class FieldDataset(Dataset):
    """Pairs ``(x, y)`` of ``(channels, ny, nx)`` tensors read on demand from an HDF5 dataset.

    Parameters
    ----------
    path : file written by ``hybrid generate`` (complete or partial: only complete samples are used).
    inputs, outputs : field names stacked as channels (e.g. ``("coefficient",)``, ``("solution",)``).
    indices : subset of sample indices (after dropping incomplete ones), e.g. a train/test split.
    dtype : torch dtype of the returned tensors.

    The file is opened lazily in each process (h5py handles must not cross ``fork``), so the dataset
    works with ``DataLoader(num_workers > 0)``.
    """

    def __init__(self, path, inputs: Sequence[str] = ("coefficient",), outputs: Sequence[str] = ("solution",),
                 indices: Sequence[int] | None = None, dtype: torch.dtype = torch.float32):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"dataset not found: {self.path}")
        self.inputs, self.outputs, self.dtype = tuple(inputs), tuple(outputs), dtype
        with h5py.File(self.path, "r") as f:
            for name in (*self.inputs, *self.outputs):
                if name not in f:
                    fields = [k for k in f if k not in ("mesh", "complete", "fixed")]
                    raise ValueError(f"{self.path} has no field {name!r}; it has: {', '.join(fields)}")
            complete = np.flatnonzero(f["complete"][...])
            self.attrs = {k: f.attrs[k] for k in f.attrs}
            self.shape = tuple(f[self.outputs[0]].shape[1:])
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

    def _stack(self, names, i) -> torch.Tensor:
        f = self._h5()
        return torch.from_numpy(np.stack([f[name][i] for name in names])).to(self.dtype)

    def __getitem__(self, k: int):
        i = int(self.index[k])
        return self._stack(self.inputs, i), self._stack(self.outputs, i)

    def arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All selected samples at once ``(N, C, ny, nx)`` (for small datasets and statistics)."""
        f = self._h5()
        order = np.argsort(self.index)
        idx = self.index[order]
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        x = np.stack([f[n][idx] for n in self.inputs], axis=1)[inv]
        y = np.stack([f[n][idx] for n in self.outputs], axis=1)[inv]
        return torch.from_numpy(x).to(self.dtype), torch.from_numpy(y).to(self.dtype)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"] = None
        return state
