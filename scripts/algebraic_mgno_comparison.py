"""AlgebraicMgNO against grid MgNO through transfer, on nodal Darcy data of an L-shape and a plate with holes.

Both models see the same P1 dof vectors, train with the same loss (relative L2 of the P1 function, lumped
mass weights), optimizer, schedule, epochs and split, and are tested on the same last 100 samples of each
file. The grid model reads the coefficient through ``meshes.mesh_to_grid`` (plus a channel marking the grid
nodes inside the domain) and its output is brought back with ``meshes.grid_to_mesh``; AlgebraicMgNO runs on
pyamg's hierarchy of the mesh's P1 matrix, with no grid. Dirichlet nodes are set to zero in both.

Two steps, so the training can run where only torch/numpy/scipy are installed (a lent GPU machine):

    # here: meshes, data (hybrid generate --mesh), transfer matrices and AMG levels -> one .npz bundle
    python scripts/algebraic_mgno_comparison.py prepare --bundle data/mesh/bundle.npz
    # anywhere: train and test every model, write the results
    python scripts/algebraic_mgno_comparison.py run --bundle data/mesh/bundle.npz --epochs 40 \
        --json bench/results/algebraic-mgno.json
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOMAINS = {  # name: (mesh builder expression, grid shape, grid extent)
    "l-shape": ("meshes.l_shape(0.05)", (65, 65), (-1.0, 1.0, -1.0, 1.0)),
    "plate-holes": ("meshes.rectangle_with_holes(0.03, holes=((0.3, 0.3, 0.12), (0.7, 0.65, 0.15)))", (65, 65),
                    (0.0, 1.0, 0.0, 1.0)),
}


def _sparse_arrays(prefix: str, M) -> dict:
    M = sp.csr_matrix(M)
    return {f"{prefix}_data": M.data, f"{prefix}_indices": M.indices, f"{prefix}_indptr": M.indptr,
            f"{prefix}_shape": np.array(M.shape)}


def _sparse(bundle, prefix: str) -> sp.csr_matrix:
    return sp.csr_matrix((bundle[f"{prefix}_data"], bundle[f"{prefix}_indices"], bundle[f"{prefix}_indptr"]),
                         shape=tuple(bundle[f"{prefix}_shape"]))


def prepare(args) -> None:
    import meshes
    from hybrid.operators.algebraic_mgconv import amg_levels
    from hybrid.operators.algebraic_mgno import boundary_nodes, p1_laplacian
    from hybrid.training.nodal import mesh_arrays

    out = {}
    folder = Path(args.bundle).parent
    folder.mkdir(parents=True, exist_ok=True)
    for name, (builder, shape, extent) in DOMAINS.items():
        msh, data = folder / f"{name}.msh", folder / f"darcy_{name}.h5"
        if not data.exists():
            meshes.write(msh, eval(builder, {"meshes": meshes}))
            subprocess.run([sys.executable, "-m", "hybrid.cli", "generate", "darcy", "--mesh", str(msh), "--samples",
                            str(args.samples), "--seed", "0", "--out", str(data), "--no-progress"], check=True)
        import h5py

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
            levels = amg_levels(A, kind, max_levels=args.max_levels)
            out[f"{name}/{kind}/count"] = np.array(len(levels))
            for l, lvl in enumerate(levels):
                out.update(_sparse_arrays(f"{name}/{kind}/A{l}", lvl.A))
                if lvl.P is not None:
                    out.update(_sparse_arrays(f"{name}/{kind}/P{l}", lvl.P))
                    out.update(_sparse_arrays(f"{name}/{kind}/R{l}", lvl.R))
        print(f"{name}: {len(coords)} nodes, {len(cells)} cells, grid {shape}, "
              f"{int(to_grid.inside.sum())} grid nodes inside")
    np.savez_compressed(args.bundle, **out)
    print(f"wrote {args.bundle} ({Path(args.bundle).stat().st_size / 2**20:.1f} MiB)")


def _amg(bundle, name, kind):
    from hybrid.operators.algebraic_mgconv import AMGLevel

    n = int(bundle[f"{name}/{kind}/count"])
    return [AMGLevel(_sparse(bundle, f"{name}/{kind}/A{l}"),
                     _sparse(bundle, f"{name}/{kind}/P{l}") if l < n - 1 else None,
                     _sparse(bundle, f"{name}/{kind}/R{l}") if l < n - 1 else None) for l in range(n)]


def _grid_model(bundle, name, cfg: dict, free):
    import torch
    from torch import nn
    from hybrid.operators.algebraic_mgconv import torch_sparse

    shape = tuple(int(s) for s in bundle[f"{name}/shape"])
    inside = torch.from_numpy(bundle[f"{name}/inside"].astype(np.float32)).reshape(1, 1, *shape)

    class ThroughGrid(nn.Module):
        """mesh -> grid (P1 at the grid nodes, + an inside-the-domain channel) -> grid model -> mesh (bilinear)."""

        def __init__(self, model):
            super().__init__()
            self.model = model
            self.register_buffer("to_grid", torch_sparse(_sparse(bundle, f"{name}/to_grid")), persistent=False)
            self.register_buffer("to_mesh", torch_sparse(_sparse(bundle, f"{name}/to_mesh")), persistent=False)
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
        from hybrid.operators.mgno import MgNO, MgNOConfig

        return ThroughGrid(MgNO(MgNOConfig(in_channels=2, out_channels=1, **cfg)))
    from hybrid.operators.unet import UNet, UNetConfig

    return ThroughGrid(UNet(UNetConfig(in_channels=2, out_channels=1, **cfg)))


MODELS = {  # label: (kind, config); grid models get the mesh -> grid -> mesh wrapper. ~90k parameters each (sized
    # for 2 shared CPU cores; the ~490k reference size is channels 58 / 64 / 24)
    "algebraic-mgno": ("algebraic", {"channels": 25, "layers": 4, "stencils": 2, "amg": "rs",
                                     "levels": [[1, 0]] * 5 + [[2, 0]]}),
    "algebraic-mgno-sa": ("algebraic", {"channels": 28, "layers": 4, "stencils": 2, "amg": "sa",
                                        "levels": [[1, 0]] * 3 + [[2, 0]]}),
    "mgno-grid": ("grid", {"model": "mgno", "channels": 10, "layers": 4, "levels": [[1, 0]] * 5 + [[2, 0]]}),
}


def run(args) -> None:
    import torch
    from hybrid.data import DataProcessor
    from hybrid.operators.algebraic_mgno import AlgebraicMgNO, AlgebraicMgNOConfig
    from hybrid.training.nodal import evaluate_nodal, fit_nodal
    from hybrid.training.trainer import TrainConfig

    torch.set_num_threads(args.threads)
    device = args.device
    bundle = dict(np.load(args.bundle))
    records = []
    result = {"suite": "algebraic-mgno", "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "command": " ".join(sys.argv),
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": torch.get_num_threads(),
                          "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"},
              "versions": {"python": platform.python_version(), "torch": torch.__version__,
                           "numpy": np.__version__, "scipy": _version("scipy"), "pyamg": _version("pyamg")},
              "records": records}
    models = args.models.split(",") if args.models else list(MODELS)
    domains = args.domains.split(",")
    prepared = {name: _domain(bundle, name, args) for name in domains}

    def make(name, label):
        d = prepared[name]
        kind, mcfg = MODELS[label]
        torch.manual_seed(0)
        if kind == "algebraic":
            model = AlgebraicMgNO(AlgebraicMgNOConfig(coordinates=d["coords"].tolist(), cells=d["cells"].tolist(),
                                                      **mcfg), amg=_amg(bundle, name, mcfg["amg"]))
            levels = model.levels
        else:
            model = _grid_model(bundle, name, dict(mcfg), d["free"])
            levels = list(bundle[f"{name}/shape"].tolist())
        model = model.to(device)
        processor = DataProcessor(1, 1).fit(d["a"][d["tr"]], d["u"][d["tr"]]).to(device)
        model.init_boundary_value(processor.out.encode(torch.zeros(1, 1, 1, device=device)))
        return model, processor, levels

    epochs = args.epochs
    if args.time_budget:  # one epoch count for every model, chosen so that all of them fit the budget
        per_epoch = {}
        for name in domains:
            for label in models:
                model, processor, _ = make(name, label)
                per_epoch[name, label] = _seconds_per_epoch(model, processor, prepared[name], args, device)
                print(f"{name} {label}: ~{per_epoch[name, label]:.2f} s per epoch", flush=True)
        epochs = max(1, min(args.epochs, int(args.time_budget / sum(per_epoch.values()))))
        print(f"{epochs} epochs for every model (time budget {args.time_budget:.0f} s)", flush=True)
        result["time_budget_s"] = args.time_budget
    for name in domains:
        d = prepared[name]
        cfg = TrainConfig(epochs=epochs, batch_size=args.batch_size, lr=args.lr, n_train=args.n_train,
                          n_test=args.n_test)
        tr, va, te = d["tr"], d["va"], d["te"]
        a, u, mass = d["a"], d["u"], d["mass"]
        for label in models:
            model, processor, levels = make(name, label)
            params = sum(p.numel() for p in model.parameters())
            print(f"{name} {label}: {params} parameters, levels {levels}", flush=True)
            fit = fit_nodal(model, processor, a[tr], u[tr], a[va], u[va], mass, cfg, device,
                            log=print if args.verbose else None)
            res = evaluate_nodal(model, processor, a[te], u[te], mass, cfg.batch_size, device)
            rec = {"model": label, "dataset": f"darcy-two-phase-{name}", "nodes": len(d["coords"]), "levels": levels,
                   "n_train": len(tr), "n_val": len(va), "n_test": len(te), "params": params, "seed": 0,
                   "epochs": fit["epochs_run"], "train_s": round(fit["train_s"], 2),
                   "best_val_rel_l2": fit["best_val_rel_l2"], "rel_l2_test": res["rel_l2_mean"],
                   "rel_l2_test_median": res["rel_l2_median"], "infer_ms_per_sample": res["infer_ms_per_sample"],
                   "device": result["machine"]["device"], "config": MODELS[label][1],
                   "val_curve": [round(v, 5) for v in fit["history"]["val_rel_l2"]]}
            records.append(rec)
            print(f"  test rel L2 {res['rel_l2_mean']:.4f} (median {res['rel_l2_median']:.4f}), "
                  f"train {fit['train_s']:.0f} s", flush=True)
            if args.json:
                Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                Path(args.json).write_text(json.dumps(result, indent=2))


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _domain(bundle, name, args) -> dict:
    """Data of one domain as tensors ``(samples, 1, n)``, the split, lumped mass and free-node mask."""
    import torch
    from hybrid.operators.algebraic_mgno import boundary_nodes
    from hybrid.training.nodal import lumped_mass

    a = torch.from_numpy(bundle[f"{name}/coefficient"])[:, None]
    u = torch.from_numpy(bundle[f"{name}/solution"])[:, None]
    coords, cells = bundle[f"{name}/coordinates"], bundle[f"{name}/cells"]
    n_val = max(1, round(0.1 * args.n_train))
    free = np.ones(len(coords), dtype=np.float32)
    free[boundary_nodes(cells, len(coords))] = 0
    return {"a": a, "u": u, "coords": coords, "cells": cells, "free": torch.from_numpy(free),
            "tr": np.arange(args.n_train - n_val), "va": np.arange(args.n_train - n_val, args.n_train),
            "te": np.arange(len(a) - args.n_test, len(a)),
            "mass": torch.as_tensor(lumped_mass(coords, cells), dtype=torch.float32)}


def _seconds_per_epoch(model, processor, d, args, device, steps: int = 4) -> float:
    """Training steps timed after one warm-up, scaled to an epoch, plus the validation pass."""
    import torch
    from hybrid.training.nodal import evaluate_nodal, nodal_relative_l2

    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    mass = d["mass"].to(device)
    x, y = d["a"][:args.batch_size].to(device), d["u"][:args.batch_size].to(device)

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
    evaluate_nodal(model, processor, d["a"][d["va"]], d["u"][d["va"]], d["mass"], args.batch_size, device)
    return per_step * np.ceil(len(d["tr"]) / args.batch_size) + (time.perf_counter() - t)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="step", required=True)
    q = sub.add_parser("prepare")
    q.add_argument("--bundle", default="data/mesh/bundle.npz")
    q.add_argument("--samples", type=int, default=1100)
    q.add_argument("--max-levels", type=int, default=6)
    r = sub.add_parser("run")
    r.add_argument("--bundle", default="data/mesh/bundle.npz")
    r.add_argument("--domains", default=",".join(DOMAINS))
    r.add_argument("--models", default=None, help=f"comma-separated, of {', '.join(MODELS)}")
    r.add_argument("--epochs", type=int, default=40, help="epochs (with --time-budget: at most this many)")
    r.add_argument("--time-budget", type=float, default=None, metavar="S",
                   help="choose one epoch count for all models so that their training fits S seconds (timed)")
    r.add_argument("--n-train", type=int, default=1000)
    r.add_argument("--n-test", type=int, default=100)
    r.add_argument("--batch-size", type=int, default=20)
    r.add_argument("--lr", type=float, default=1e-3)
    r.add_argument("--device", default="cpu")
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--json", default=None)
    r.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    (prepare if args.step == "prepare" else run)(args)


if __name__ == "__main__":
    main()
