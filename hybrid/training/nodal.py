"""Training on nodal mesh datasets (``hybrid generate --mesh``): fields are P1 dof vectors ``(channels, n)``.

The grid trainer's losses use finite differences on ``(ny, nx)`` arrays; here the relative L2 error is the
P1 function's, with the lumped mass matrix as weights (``||u||^2 ~ sum_i m_i u_i^2``), and no H1 loss is
offered. The loop (Adam, OneCycle or cosine, validation split, best checkpoint, ``summary.json``) follows
:class:`hybrid.training.Trainer` with its :class:`TrainConfig`, split and normalizer, so a mesh run reads
like a grid run. :func:`fit_nodal` trains any module on dof vectors (the comparison script trains a grid
model through transfer with it, under the same loss and budget).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from ..data import DataProcessor, FieldDataset
from . import checkpoint
from .split import split_indices


def mesh_arrays(path) -> tuple[np.ndarray, np.ndarray] | None:
    """``(coordinates (n, 2), cells (m, 3))`` of a nodal mesh dataset, or ``None`` for grid data (``n > 0``)."""
    with h5py.File(path, "r") as f:
        if "mesh" not in f or int(f.attrs.get("n", -1)) != 0:
            return None
        return np.asarray(f["mesh/coordinates"][...])[:, :2], np.asarray(f["mesh/cells"][...])


def lumped_mass(coordinates: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Row sums of the P1 mass matrix: a third of the area of every triangle at each node.

    >>> lumped_mass(np.array([[0, 0], [1, 0], [0, 1]]), np.array([[0, 1, 2]])).tolist()
    [0.16666666666666666, 0.16666666666666666, 0.16666666666666666]
    """
    xy = np.asarray(coordinates, dtype=np.float64)[np.asarray(cells)]
    d1, d2 = xy[:, 1] - xy[:, 0], xy[:, 2] - xy[:, 0]
    area = 0.5 * np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0])
    return np.bincount(np.asarray(cells).ravel(), weights=np.repeat(area / 3, 3), minlength=len(coordinates))


def nodal_relative_l2(pred: torch.Tensor, true: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
    """Per-sample relative L2 error of P1 functions ``(batch, channels, n)`` with lumped-mass weights."""
    num = ((pred - true) ** 2 * mass).flatten(1).sum(1)
    den = (true ** 2 * mass).flatten(1).sum(1).clamp_min(1e-30)
    return torch.sqrt(num / den)


@torch.no_grad()
def evaluate_nodal(model, processor, x, y, mass, batch_size: int = 20, device="cpu") -> dict:
    """Relative L2 (mean, median, per sample) and inference ms per sample, in physical units."""
    model.eval()
    preds = []
    t = time.perf_counter()
    for i in range(0, len(x), batch_size):
        xn, _ = processor.preprocess(x[i:i + batch_size].to(device))
        preds.append(processor.postprocess(model(xn)).cpu())
    dt = time.perf_counter() - t
    pred = torch.cat(preds)
    err = nodal_relative_l2(pred, y, mass.cpu())
    return {"rel_l2_mean": float(err.mean()), "rel_l2_median": float(err.median()),
            "infer_ms_per_sample": 1e3 * dt / len(x), "n": len(x), "pred": pred}


def fit_nodal(model, processor, xtr, ytr, xva, yva, mass, cfg, device="cpu", log=None, on_best=None) -> dict:
    """Train ``model`` on normalized dof vectors with the relative L2 loss; keeps the weights of the best
    validation epoch (loaded back at the end). ``cfg``: a :class:`hybrid.training.TrainConfig`.
    Returns ``{"history", "best_val_rel_l2", "train_s", "epochs_run"}``."""
    device = torch.device(device)
    mass = torch.as_tensor(mass, dtype=torch.float32, device=device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = max(1, cfg.epochs * math.ceil(len(xtr) / cfg.batch_size))
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps) if cfg.schedule == "onecycle"
             else torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps))
    history = {"epoch": [], "train_loss": [], "val_rel_l2": [], "seconds": []}
    best, best_state, bad, train_s = float("inf"), None, 0, 0.0
    for epoch in range(cfg.epochs):
        t = time.perf_counter()
        model.train()
        perm = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch))
        total = 0.0
        for i in range(0, len(perm), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            x, y = xtr[idx].to(device), ytr[idx].to(device)
            xn, _ = processor.preprocess(x)
            loss = nodal_relative_l2(processor.postprocess(model(xn)), y, mass).mean()
            if not torch.isfinite(loss):
                raise ValueError(f"non-finite training loss at epoch {epoch}; lower the learning rate ({cfg.lr:g})")
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        train_s += time.perf_counter() - t
        val = evaluate_nodal(model, processor, xva, yva, mass, cfg.batch_size, device)["rel_l2_mean"]
        for k, v in zip(history, (epoch, total / len(perm), val, train_s)):
            history[k].append(v)
        if log:
            log(f"epoch {epoch}: train {total / len(perm):.4f} val {val:.4f} ({train_s:.0f} s)")
        if val < best:
            best, bad = val, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if on_best:
                on_best(epoch)
        else:
            bad += 1
            if cfg.patience and bad >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return {"history": history, "best_val_rel_l2": best, "train_s": train_s, "epochs_run": len(history["epoch"])}


def train_on_mesh_data(model_name: str, model_config: dict, data, out, cfg, device="cpu", log=None) -> dict:
    """``hybrid train algebraic-mgno`` on a nodal dataset: the model is built for the file's mesh, trained with
    :func:`fit_nodal`, saved to ``out/best.pt`` (config with the mesh, weights, normalizer) and evaluated on
    the test split; writes ``out/summary.json``."""
    from ..operators import build

    data, out = Path(data), Path(out)
    arrays = mesh_arrays(data)
    if arrays is None:
        raise ValueError(f"{data} is not a nodal mesh dataset (`hybrid generate --mesh`); {model_name} trains on "
                         f"mesh data")
    coords, cells = arrays
    full = FieldDataset(data, cfg.inputs, cfg.outputs)
    tr, va, te = split_indices(len(full), cfg)
    xtr, ytr = FieldDataset(data, cfg.inputs, cfg.outputs, indices=tr).arrays()
    xva, yva = FieldDataset(data, cfg.inputs, cfg.outputs, indices=va).arrays()
    xte, yte = FieldDataset(data, cfg.inputs, cfg.outputs, indices=te).arrays()
    torch.manual_seed(cfg.seed)
    config = {"in_channels": len(cfg.inputs), "out_channels": len(cfg.outputs), **(model_config or {}),
              "coordinates": coords.tolist(), "cells": cells.tolist()}
    model = build(model_name, config).to(device)
    processor = DataProcessor(len(cfg.inputs), len(cfg.outputs)).fit(xtr, ytr).to(device)
    if hasattr(model, "init_boundary_value"):
        model.init_boundary_value(processor.out.encode(torch.zeros(1, len(cfg.outputs), 1, device=device)))
    out.mkdir(parents=True, exist_ok=True)
    mass = torch.as_tensor(lumped_mass(coords, cells), dtype=torch.float32)
    fit = fit_nodal(model, processor, xtr, ytr, xva, yva, mass, cfg, device, log=log)
    checkpoint.save(out / "best.pt", model_name, model, processor,
                    {"train": {"history": fit["history"], "data": full.identity(),
                               "config": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(cfg).items()}}})
    res = evaluate_nodal(model, processor, xte, yte, mass, cfg.batch_size, device)
    res.pop("pred")
    summary = {"model": model_name, "params": sum(p.numel() for p in model.parameters()), "epochs_run": fit["epochs_run"],
               "train_s": fit["train_s"], "best_val_rel_l2": fit["best_val_rel_l2"],
               **{f"test_{k}": v for k, v in res.items()}, "device": str(device), "data": str(data),
               "nodes": len(coords), "levels": getattr(model, "levels", None)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "history.json").write_text(json.dumps(fit["history"]))
    return summary


@torch.no_grad()
def predict_nodal(run_or_checkpoint, coefficient, device="cpu") -> np.ndarray:
    """Apply a trained nodal operator (``hybrid train algebraic-mgno``) to coefficients given as nodal values.

    ``run_or_checkpoint``: a run directory (its ``best.pt``), a checkpoint file (loaded with
    ``weights_only=True`` by :func:`hybrid.training.load`), or the ``(name, model, processor, payload)`` that
    ``load`` returned (to predict many times without rebuilding the AMG hierarchy). ``coefficient``: values at
    the model's nodes, in the order of its mesh (``model.config.coordinates``: the P1 dof order of the dataset,
    which ``meshes.read`` of the same mesh file gives in serial), in physical units, shaped ``(n,)`` (one sample,
    one input channel), ``(in_channels, n)`` (one sample) or ``(batch, in_channels, n)``. Returns the prediction
    in physical units as float64, shaped ``(n,)``, ``(out_channels, n)`` or ``(batch, out_channels, n)`` to
    match (``(n,)`` only for a single-output model). ``ValueError`` for a model that is not a nodal one or a
    coefficient with the wrong number of nodes or channels.

    >>> import tempfile, numpy as np, torch
    >>> from hybrid.data import DataProcessor
    >>> from hybrid.operators import AlgebraicMgNO
    >>> from hybrid.training import save
    >>> X, Y = np.meshgrid(np.linspace(0, 1, 5), np.linspace(0, 1, 5))
    >>> k = np.arange(25).reshape(5, 5)[:-1, :-1].ravel()
    >>> cells = np.vstack([np.c_[k, k + 1, k + 6], np.c_[k, k + 6, k + 5]])
    >>> model = AlgebraicMgNO.for_mesh(np.c_[X.ravel(), Y.ravel()], cells, channels=4, layers=1, levels=[[1, 0]])
    >>> proc = DataProcessor(1, 1).fit(torch.rand(4, 1, 25), torch.rand(4, 1, 25))
    >>> ck = save(tempfile.mkdtemp() + "/best.pt", "algebraic-mgno", model, proc)
    >>> predict_nodal(ck, np.ones(25)).shape, predict_nodal(ck, np.ones((3, 1, 25))).shape
    ((25,), (3, 1, 25))
    """
    if isinstance(run_or_checkpoint, tuple):
        name, model, processor, _ = run_or_checkpoint
        where = f"the loaded {name}"
    else:
        from . import load

        path = Path(run_or_checkpoint)
        path = path / "best.pt" if path.is_dir() else path
        name, model, processor, _ = load(path, device)
        where = str(path)
    nodes = len(getattr(getattr(model, "config", None), "coordinates", None) or ())
    if not nodes:
        raise ValueError(f"{where} is a {name}, not an operator on a mesh's nodes (train algebraic-mgno on data "
                         f"from `hybrid generate --mesh`); grid models predict with hybrid.training.predict")
    cin, cout = model.config.in_channels, model.config.out_channels
    x = np.asarray(coefficient, dtype=np.float64)
    ndim = x.ndim
    if ndim == 1 and cin != 1:
        raise ValueError(f"{where} takes {cin} input channels: pass the coefficient as ({cin}, {nodes})")
    x = x.reshape((1, 1, -1) if ndim == 1 else (1, *x.shape) if ndim == 2 else x.shape)
    if ndim > 3 or x.shape[1:] != (cin, nodes):
        raise ValueError(f"coefficient of shape {np.shape(coefficient)}: {where} predicts on a mesh of {nodes} "
                         f"nodes with {cin} input channel(s): pass ({nodes},), ({cin}, {nodes}) or (batch, {cin}, "
                         f"{nodes}) nodal values in the order of the model's mesh")
    if not np.all(np.isfinite(x)):
        raise ValueError("the coefficient has non-finite values")
    model.eval()
    dev = next(model.parameters()).device
    xt = torch.as_tensor(x, dtype=torch.float32, device=dev)
    xn = processor.preprocess(xt)[0] if processor is not None else xt
    y = model(xn)
    y = (processor.postprocess(y) if processor is not None else y).cpu().double().numpy()
    if ndim == 1:
        return y[0, 0] if cout == 1 else y[0]
    return y[0] if ndim == 2 else y
