"""``hybrid bench operators --domains l-shape,plate-holes``: AlgebraicMgNO against grid MgNO through transfer,
on nodal two-phase Darcy data of an L-shape and a plate with holes.

Both models see the same P1 dof vectors, train with the same loss (relative L2 of the P1 function, lumped
mass weights), optimizer, schedule, epochs and split, and are tested on the same last ``n_test`` samples of
each domain. The grid model reads the coefficient through ``meshes.mesh_to_grid`` (plus a channel marking the
grid nodes inside the domain) and its output is brought back with ``meshes.grid_to_mesh``; AlgebraicMgNO runs
on pyamg's hierarchy of the mesh's P1 matrix, with no grid. Dirichlet nodes are set to zero in both.

Two steps, so that the training can run where only torch/numpy/scipy are installed (a lent GPU machine):

- :func:`prepare` (needs DOLFINx and gmsh): meshes, data (``hybrid generate darcy --mesh``), transfer
  matrices and AMG levels of every domain into one ``.npz`` bundle;
- :func:`run` (torch, numpy, scipy): trains and tests every model on the bundle.

:func:`ensure_bundle` prepares what a bundle lacks; the bundle also feeds :mod:`hybrid.bench.mesh_precond`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

#: the JSON files' ``suite``
SUITE = "algebraic-mgno"

#: name: (mesh builder (meshes module, h) -> Mesh, mesh size h, grid extent of the grid model)
DOMAINS = {
    "l-shape": (lambda meshes, h: meshes.l_shape(h), 0.05, (-1.0, 1.0, -1.0, 1.0)),
    "plate-holes": (lambda meshes, h: meshes.rectangle_with_holes(h, holes=((0.3, 0.3, 0.12), (0.7, 0.65, 0.15))),
                    0.03, (0.0, 1.0, 0.0, 1.0)),
}

#: bundle variants: file tag, mesh size factor, samples per domain, grid of the grid model. ``quick`` is for
#: tests and smoke runs (a few hundred nodes per mesh).
VARIANTS = {
    "full": {"tag": "", "coarsen": 1.0, "samples": 1100, "shape": (65, 65)},
    "quick": {"tag": "-quick", "coarsen": 2.5, "samples": 60, "shape": (33, 33)},
}

#: label: (kind, config); grid models get the mesh -> grid -> mesh wrapper. ~90k parameters each (sized for
#: 2 shared CPU cores; the ~490k reference size is channels 58 / 64 / 24)
MODELS = {
    "algebraic-mgno": ("algebraic", {"channels": 25, "layers": 4, "stencils": 2, "amg": "rs",
                                     "levels": [[1, 0]] * 5 + [[2, 0]]}),
    "algebraic-mgno-sa": ("algebraic", {"channels": 28, "layers": 4, "stencils": 2, "amg": "sa",
                                        "levels": [[1, 0]] * 3 + [[2, 0]]}),
    "mgno-grid": ("grid", {"model": "mgno", "channels": 10, "layers": 4, "levels": [[1, 0]] * 5 + [[2, 0]]}),
}
#: the models of ``hybrid bench operators --domains`` unless ``--models`` names others
DEFAULT_MODELS = ("algebraic-mgno", "mgno-grid")


def check_domains(domains) -> list[str]:
    bad = [d for d in domains if d not in DOMAINS]
    if bad:
        raise ValueError(f"--domains {','.join(bad)}: mesh domains are {', '.join(DOMAINS)}")
    return list(domains)


# -- the bundle ---------------------------------------------------------------------------------------------
def _sparse_arrays(prefix: str, M) -> dict:
    M = sp.csr_matrix(M)
    return {f"{prefix}_data": M.data, f"{prefix}_indices": M.indices, f"{prefix}_indptr": M.indptr,
            f"{prefix}_shape": np.array(M.shape)}


def sparse(bundle, prefix: str) -> sp.csr_matrix:
    """The CSR matrix stored under ``prefix`` in a bundle."""
    return sp.csr_matrix((bundle[f"{prefix}_data"], bundle[f"{prefix}_indices"], bundle[f"{prefix}_indptr"]),
                         shape=tuple(bundle[f"{prefix}_shape"]))


def load_bundle(bundle) -> dict:
    """A bundle (path or dict already loaded) as a dict of arrays."""
    return bundle if isinstance(bundle, dict) else dict(np.load(bundle))


def bundle_domains(bundle) -> list[str]:
    return sorted({k.split("/")[0] for k in load_bundle(bundle) if k.endswith("/coefficient")})


def bundle_path(folder, variant: str = "full") -> Path:
    return Path(folder) / f"bundle{VARIANTS[variant]['tag']}.npz"


def ensure_bundle(folder, domains, variant: str = "full", max_levels: int = 6, log=print) -> Path:
    """The bundle of ``variant`` under ``folder``, with every domain of ``domains``: the missing ones are
    prepared (data generated unless its file exists) and added."""
    path = bundle_path(folder, variant)
    missing = check_domains(domains)
    if path.exists():
        have = bundle_domains(path)
        missing = [d for d in missing if d not in have]
    if missing:
        log(f"{path}: preparing {', '.join(missing)}")
        prepare(path, missing, variant=variant, max_levels=max_levels, log=log)
    return path


def prepare(bundle, domains=tuple(DOMAINS), variant: str = "full", samples: int | None = None,
            max_levels: int = 6, log=print) -> Path:
    """Meshes and data (``hybrid generate darcy --mesh``, unless the data file exists), transfer matrices and
    both AMG hierarchies (RS, SA) of each domain, written into ``bundle`` (domains already in an existing
    bundle and not named are kept). Files beside the bundle: ``NAME{tag}.msh``, ``darcy_NAME{tag}.h5``."""
    import h5py

    import meshes
    from ..operators.algebraic_mgconv import amg_levels
    from ..operators.algebraic_mgno import boundary_nodes, p1_laplacian
    from ..training.nodal import mesh_arrays

    v = VARIANTS[variant]
    samples = samples or v["samples"]
    bundle = Path(bundle)
    folder = bundle.parent
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    if bundle.exists():  # keep the other domains
        out = {k: a for k, a in load_bundle(bundle).items() if k.split("/")[0] not in domains}
    for name in check_domains(domains):
        builder, h, extent = DOMAINS[name]
        shape = v["shape"]
        msh, data = folder / f"{name}{v['tag']}.msh", folder / f"darcy_{name}{v['tag']}.h5"
        if not data.exists():
            meshes.write(msh, builder(meshes, h * v["coarsen"]))
            subprocess.run([sys.executable, "-m", "hybrid.cli", "generate", "darcy", "--mesh", str(msh), "--samples",
                            str(samples), "--seed", "0", "--out", str(data), "--no-progress"], check=True)
        with h5py.File(data, "r") as f:
            a, u = f["coefficient"][...].astype(np.float32), f["solution"][...].astype(np.float32)
        coords, cells = mesh_arrays(data)
        mesh = meshes.read(msh)
        to_grid = meshes.mesh_to_grid(mesh, shape, extent)
        to_mesh = meshes.grid_to_mesh(mesh, shape, extent)
        # the data's dof order is the file's; check that the mesh read back has the same dofs
        import dolfinx

        V = dolfinx.fem.functionspace(mesh.mesh, ("Lagrange", 1))
        if not np.allclose(V.tabulate_dof_coordinates()[:, :2], coords):
            raise RuntimeError(f"{msh}: dof order differs from the dataset's")
        A = p1_laplacian(coords, cells, boundary_nodes(cells, len(coords)))
        out.update({f"{name}/coefficient": a, f"{name}/solution": u, f"{name}/coordinates": coords,
                    f"{name}/cells": cells, f"{name}/inside": to_grid.inside, f"{name}/shape": np.array(shape),
                    **_sparse_arrays(f"{name}/to_grid", to_grid.matrix), **_sparse_arrays(f"{name}/to_mesh", to_mesh)})
        for kind in ("sa", "rs"):
            levels = amg_levels(A, kind, max_levels=max_levels)
            out[f"{name}/{kind}/count"] = np.array(len(levels))
            for l, lvl in enumerate(levels):
                out.update(_sparse_arrays(f"{name}/{kind}/A{l}", lvl.A))
                if lvl.P is not None:
                    out.update(_sparse_arrays(f"{name}/{kind}/P{l}", lvl.P))
                    out.update(_sparse_arrays(f"{name}/{kind}/R{l}", lvl.R))
        log(f"{name}: {len(coords)} nodes, {len(cells)} cells, {len(a)} samples, grid {shape}, "
            f"{int(to_grid.inside.sum())} grid nodes inside")
    tmp = bundle.with_name(bundle.stem + ".tmp.npz")
    np.savez_compressed(tmp, **out)
    tmp.replace(bundle)
    log(f"wrote {bundle} ({bundle.stat().st_size / 2**20:.1f} MiB)")
    return bundle


# -- the models ---------------------------------------------------------------------------------------------
def amg(bundle, name: str, kind: str):
    """The stored AMG hierarchy (``sa`` or ``rs``) of a domain's P1 matrix."""
    from ..operators.algebraic_mgconv import AMGLevel

    n = int(bundle[f"{name}/{kind}/count"])
    return [AMGLevel(sparse(bundle, f"{name}/{kind}/A{l}"),
                     sparse(bundle, f"{name}/{kind}/P{l}") if l < n - 1 else None,
                     sparse(bundle, f"{name}/{kind}/R{l}") if l < n - 1 else None) for l in range(n)]


def grid_model(bundle, name: str, cfg: dict, free):
    """A grid model (``cfg["model"]``: ``mgno`` or ``unet``) behind mesh -> grid and grid -> mesh transfers."""
    import torch
    from torch import nn

    from ..operators.algebraic_mgconv import torch_sparse

    cfg = dict(cfg)
    shape = tuple(int(s) for s in bundle[f"{name}/shape"])
    inside = torch.from_numpy(bundle[f"{name}/inside"].astype(np.float32)).reshape(1, 1, *shape)

    class ThroughGrid(nn.Module):
        """mesh -> grid (P1 at the grid nodes, + an inside-the-domain channel) -> grid model -> mesh (bilinear)."""

        def __init__(self, model):
            super().__init__()
            self.model = model
            self.register_buffer("to_grid", torch_sparse(sparse(bundle, f"{name}/to_grid")), persistent=False)
            self.register_buffer("to_mesh", torch_sparse(sparse(bundle, f"{name}/to_mesh")), persistent=False)
            self.register_buffer("inside", inside, persistent=False)
            self.register_buffer("free", free, persistent=False)
            self.register_buffer("boundary_value", torch.zeros(1))

        def init_boundary_value(self, value):
            self.boundary_value.copy_(value.reshape(-1).to(self.boundary_value))

        def forward(self, x):
            b, c, n = x.shape
            g = torch.sparse.mm(self.to_grid, x.reshape(b * c, n).T).T.reshape(b, c, *shape)
            g = torch.cat([g, self.inside.expand(b, 1, *shape)], dim=1)
            y = self.model(g)
            co = y.shape[1]
            y = torch.sparse.mm(self.to_mesh, y.reshape(b * co, -1).T).T.reshape(b, co, -1)
            return y * self.free + self.boundary_value.view(1, -1, 1) * (1 - self.free)

    kind = cfg.pop("model")
    if kind == "mgno":
        from ..operators.mgno import MgNO, MgNOConfig

        return ThroughGrid(MgNO(MgNOConfig(in_channels=2, out_channels=1, **cfg)))
    from ..operators.unet import UNet, UNetConfig

    return ThroughGrid(UNet(UNetConfig(in_channels=2, out_channels=1, **cfg)))


def domain_data(bundle, name: str, n_train: int, n_test: int) -> dict:
    """Data of one domain as tensors ``(samples, 1, n)``, the split (the first ``n_train`` samples, 10% of them
    for validation; the last ``n_test`` for testing), lumped mass and free-node mask."""
    import torch

    from ..operators.algebraic_mgno import boundary_nodes
    from ..training.nodal import lumped_mass

    a = torch.from_numpy(bundle[f"{name}/coefficient"])[:, None]
    u = torch.from_numpy(bundle[f"{name}/solution"])[:, None]
    if n_train + n_test > len(a):
        raise ValueError(f"{name}: {n_train} training + {n_test} test samples, the bundle has {len(a)}")
    coords, cells = bundle[f"{name}/coordinates"], bundle[f"{name}/cells"]
    n_val = max(1, round(0.1 * n_train))
    free = np.ones(len(coords), dtype=np.float32)
    free[boundary_nodes(cells, len(coords))] = 0
    return {"a": a, "u": u, "coords": coords, "cells": cells, "free": torch.from_numpy(free),
            "tr": np.arange(n_train - n_val), "va": np.arange(n_train - n_val, n_train),
            "te": np.arange(len(a) - n_test, len(a)),
            "mass": torch.as_tensor(lumped_mass(coords, cells), dtype=torch.float32)}


def make_model(bundle, name: str, label: str, d: dict, device: str = "cpu"):
    """(model, fitted data processor, level sizes) of ``label`` for domain ``name``, seed 0."""
    import torch

    from ..data import DataProcessor
    from ..operators.algebraic_mgno import AlgebraicMgNO, AlgebraicMgNOConfig

    if label not in MODELS:
        raise ValueError(f"--models {label}: mesh models are {', '.join(MODELS)}")
    kind, mcfg = MODELS[label]
    torch.manual_seed(0)
    if kind == "algebraic":
        model = AlgebraicMgNO(AlgebraicMgNOConfig(coordinates=d["coords"].tolist(), cells=d["cells"].tolist(), **mcfg),
                              amg=amg(bundle, name, mcfg["amg"]))
        levels = model.levels
    else:
        model = grid_model(bundle, name, mcfg, d["free"])
        levels = list(bundle[f"{name}/shape"].tolist())
    model = model.to(device)
    processor = DataProcessor(1, 1).fit(d["a"][d["tr"]], d["u"][d["tr"]]).to(device)
    model.init_boundary_value(processor.out.encode(torch.zeros(1, 1, 1, device=device)))
    return model, processor, levels


# -- the comparison -----------------------------------------------------------------------------------------
def run(bundle, domains=tuple(DOMAINS), models=DEFAULT_MODELS, epochs: int = 5, n_train: int = 300,
        n_test: int = 100, batch_size: int = 10, lr: float = 2e-3, device: str = "cpu",
        time_budget: float | None = None, verbose: bool = False, on_record=None, log=print) -> list[dict]:
    """Train every model of ``models`` on each domain of ``domains`` (same split, loss, optimizer, schedule
    and epochs, seed 0) and test it; one record per domain and model. ``time_budget`` (seconds): one epoch
    count for every model (at most ``epochs``), timed so that all of them fit. ``on_record(records)`` is
    called after each record (partial result files)."""
    import torch

    from ..training.nodal import evaluate_nodal, fit_nodal
    from ..training.trainer import TrainConfig

    bundle = load_bundle(bundle)
    domains = check_domains(domains)
    for label in models:
        if label not in MODELS:
            raise ValueError(f"--models {label}: mesh models are {', '.join(MODELS)}")
    absent = [d for d in domains if f"{d}/coefficient" not in bundle]
    if absent:
        raise ValueError(f"the bundle has no {', '.join(absent)} (it has {', '.join(bundle_domains(bundle))})")
    prepared = {name: domain_data(bundle, name, n_train, n_test) for name in domains}
    extra = {}
    if time_budget:  # one epoch count for every model, chosen so that all of them fit the budget
        per_epoch = {}
        for name in domains:
            for label in models:
                model, processor, _ = make_model(bundle, name, label, prepared[name], device)
                per_epoch[name, label] = _seconds_per_epoch(model, processor, prepared[name], batch_size, device)
                log(f"{name} {label}: ~{per_epoch[name, label]:.2f} s per epoch")
        epochs = max(1, min(epochs, int(time_budget / sum(per_epoch.values()))))
        log(f"{epochs} epochs for every model (time budget {time_budget:.0f} s)")
        extra["time_budget_s"] = time_budget
    records = []
    for name in domains:
        d = prepared[name]
        cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, n_train=n_train, n_test=n_test)
        tr, va, te = d["tr"], d["va"], d["te"]
        a, u, mass = d["a"], d["u"], d["mass"]
        for label in models:
            model, processor, levels = make_model(bundle, name, label, d, device)
            params = sum(p.numel() for p in model.parameters())
            log(f"{name} {label}: {params} parameters, levels {levels}")
            fit = fit_nodal(model, processor, a[tr], u[tr], a[va], u[va], mass, cfg, device,
                            log=log if verbose else None)
            res = evaluate_nodal(model, processor, a[te], u[te], mass, cfg.batch_size, device)
            rec = {"model": label, "dataset": f"darcy-two-phase-{name}", "domain": name, "nodes": len(d["coords"]),
                   "levels": levels, "n_train": len(tr), "n_val": len(va), "n_test": len(te), "params": params,
                   "seed": 0, "epochs": fit["epochs_run"], "batch_size": batch_size, "lr": lr,
                   "train_s": round(fit["train_s"], 2), "best_val_rel_l2": fit["best_val_rel_l2"],
                   "rel_l2_test": res["rel_l2_mean"], "rel_l2_test_median": res["rel_l2_median"],
                   "infer_ms_per_sample": res["infer_ms_per_sample"], "device": device,
                   "threads": torch.get_num_threads(), "config": MODELS[label][1],
                   "val_curve": [round(v, 5) for v in fit["history"]["val_rel_l2"]], **extra}
            records.append(rec)
            log(f"  test rel L2 {res['rel_l2_mean']:.4f} (median {res['rel_l2_median']:.4f}), "
                f"train {fit['train_s']:.0f} s")
            if on_record is not None:
                on_record(records)
    return records


def _seconds_per_epoch(model, processor, d, batch_size: int, device, steps: int = 4) -> float:
    """Training steps timed after one warm-up, scaled to an epoch, plus the validation pass."""
    import torch

    from ..training.nodal import evaluate_nodal, nodal_relative_l2

    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    mass = d["mass"].to(device)
    x, y = d["a"][:batch_size].to(device), d["u"][:batch_size].to(device)

    def step():
        loss = nodal_relative_l2(processor.postprocess(model(processor.preprocess(x)[0])), y, mass).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    per_step = (time.perf_counter() - t) / steps
    t = time.perf_counter()
    evaluate_nodal(model, processor, d["a"][d["va"]], d["u"][d["va"]], d["mass"], batch_size, device)
    return per_step * np.ceil(len(d["tr"]) / batch_size) + (time.perf_counter() - t)


COLUMNS = [("domain", "domain", ""), ("nodes", "nodes", "d"), ("model", "model", ""), ("params", "params", "d"),
           ("train samples", "n_train", "d"), ("epochs", "epochs", "d"), ("train s", "train_s", ".0f"),
           ("rel. L2 mean", "rel_l2_test", ".4f"), ("rel. L2 median", "rel_l2_test_median", ".4f"),
           ("ms/sample", "infer_ms_per_sample", ".1f"), ("device", "device", "")]
