"""PNG figures (matplotlib, Agg backend): fields on grids and convergence histories."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path) -> Path:
    from meshes.plot import save_figure

    return save_figure(fig, path)


def save_fields(path, fields: dict[str, np.ndarray], extent=(0, 1, 0, 1), cmap="viridis") -> Path:
    """Side-by-side images of 2D arrays (row 0 at the bottom, as from ``GridView.to_grid``)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(fields), figsize=(4.2 * len(fields), 3.6), squeeze=False)
    for ax, (title, arr) in zip(axes[0], fields.items()):
        im = ax.imshow(arr, origin="lower", extent=extent, cmap=cmap)
        ax.set_title(title)
        fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(plt, fig, path)


def save_mesh_fields(path, coordinates: np.ndarray, cells: np.ndarray, fields: dict[str, np.ndarray],
                     cmap="viridis") -> Path:
    """Side-by-side nodal P1 fields on a triangle mesh (``coordinates`` ``(N, 2)``, ``cells`` ``(C, 3)``)."""
    import matplotlib.tri as mtri

    plt = _plt()
    tri = mtri.Triangulation(coordinates[:, 0], coordinates[:, 1], cells)
    fig, axes = plt.subplots(1, len(fields), figsize=(4.2 * len(fields), 3.6), squeeze=False)
    for ax, (title, values) in zip(axes[0], fields.items()):
        im = ax.tripcolor(tri, values, shading="gouraud", cmap=cmap)
        ax.set_aspect("equal")
        ax.set_title(title)
        fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(plt, fig, path)


def save_convergence(path, histories: dict[str, np.ndarray], ylabel="relative residual") -> Path:
    """Semilog residual histories, one line per method."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, h in histories.items():
        h = np.asarray(h, dtype=float)
        if h.size:
            ax.semilogy(np.arange(len(h)), h / h[0], label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(plt, fig, path)


def save_loss_curves(path, history: dict) -> Path:
    """Training loss and validation relative L2 per epoch (log scale)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.semilogy(history["epoch"], history["train_loss"], label="train loss")
    ax.semilogy(history["epoch"], history["val_rel_l2"], label="validation rel. L2")
    ax.set_xlabel("epoch")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(plt, fig, path)


def save_history(path, histories: dict[str, np.ndarray], xlabel="iteration", ylabel="", hlines=None) -> Path:
    """Semilog curves in their own units (not normalized), with optional labelled horizontal lines
    (``{label: value}``, e.g. the discrepancy-principle target of an inversion)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, h in histories.items():
        h = np.asarray(h, dtype=float)
        if h.size:
            ax.semilogy(np.arange(len(h)), h, marker=".", label=label)
    for label, value in (hlines or {}).items():
        if value is not None and value > 0:
            ax.axhline(value, color="k", linestyle="--", linewidth=1, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(plt, fig, path)
