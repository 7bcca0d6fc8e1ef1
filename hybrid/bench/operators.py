"""``hybrid bench operators``: MgNO vs FNO (neuraloperator) vs U-Net on toolkit-generated Darcy data, fairly.

- Data: two-phase Darcy (values 12 and 3) from the toolkit's FEM solver; training set at ``n`` cells per
  side (seed 0), test sets (seed 1) at ``n``, ``2n`` and ``4n``: the *same* coefficient functions at every
  resolution (the sampler is resolution-independent), so the finer columns measure resolution transfer.
- The reference solutions themselves differ between resolutions (P1 discretization error): the gap
  ``||u_n - u_2n|| / ||u_2n||`` at the shared nodes is recorded (``model = "fem-gap"``), so that a transfer
  error is read against it.
- Budgets: every model within 10% of the same number of **real** parameters (a complex weight counts twice),
  every model gets the node coordinates as two extra input channels (FNO's grid embedding; the others
  append the same channels), FNO keeps the FNO paper's two 12 x 12 corners of Fourier modes.
- Same epochs, batch size, optimizer, schedule and relative-L2 loss for every model; ``seeds`` repetitions
  (model initialization and batch order), reported as mean and spread (min-max); relative L2 and relative
  H1 errors; training seconds are reported, never hidden.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from ..operators.mgno import PRESETS

#: name -> (architecture, config): budgets of about 0.3M real parameters (a test checks: within 10% of BUDGET)
_CYCLE = {"coarsest": 5, "dirichlet_mask": True, "levels": [[1, 1], [1, 1], [2, 2]], "coordinates": True}
MODEL_CONFIGS = {
    # resolution-aware MgNO: correction scheme (restricted residual, one A per level), fixed full-weighting /
    # bilinear transfers, 3 learned levels (coarsest 5 x 5), so the finest level at 33 x 33 is already a shared
    # level (spacing-scaled weights of the 17 x 17 one), Dirichlet nodes masked
    "mgno": ("mgno", {**_CYCLE, "channels": 31, "scheme": "correction", "transfers": "fixed"}),
    # issue 13: the same model with the shared levels' A scaled moment by moment (sum x 1, first moments x s, the
    # rest x s^2) instead of A x s^2; S / s^2, or S following the growth of the scaled A's columns
    "mgno-moments": ("mgno", {**_CYCLE, "channels": 31, "scheme": "correction", "transfers": "fixed",
                              "spacing_scaling": "moments"}),
    "mgno-moments-relative": ("mgno", {**_CYCLE, "channels": 31, "scheme": "correction", "transfers": "fixed",
                                       "spacing_scaling": "moments-relative"}),
    # moments and a continuous output at the boundary: out = b + tanh(dist / (1/32)) g instead of the mask, whose
    # jump between the boundary node and the first interior node is learned at the training spacing (at 65 x 65
    # the same jump sits half as far from the boundary: most of mgno-moments' error there)
    "mgno-moments-distance": ("mgno", {**PRESETS["resolution-aware"], "coordinates": True, "channels": 31}),
    # baselines, not transferring operators: above the training resolution's spacing factor (2) the cycles only
    # restrict and prolongate (transfer), or the whole network runs on the injected input and its output is
    # interpolated (resample); both are the mgno model at the training resolution
    "mgno-transfer": ("mgno", {**_CYCLE, "channels": 31, "scheme": "correction", "transfers": "fixed",
                               "transfer_above": 2}),
    "mgno-resample": ("mgno", {**_CYCLE, "channels": 31, "scheme": "correction", "transfers": "fixed",
                               "resample_above": 2}),
    # the same depth rule in the reference code's form (restrict f and the iterate, learned transfers)
    "mgno-reference-form": ("mgno", {**_CYCLE, "channels": 21, "scheme": "reference"}),
    # the FNO paper's modes (two 12 x 12 corners); width 11 for the budget (the paper's width 32: 2.37M real)
    "fno": ("fno", {"modes": 12, "corners": True, "channels": 11, "coordinates": True}),
    "unet": ("unet", {"channels": 13, "depth": 3, "coordinates": True}),
}
#: what ``hybrid bench operators`` trains without ``--models``: the resolution-aware MgNO (moment-wise scaling,
#: continuous boundary output), the plain correction-scheme MgNO and the reference form, FNO and U-Net
DEFAULT_MODELS = ("mgno-moments-distance", "mgno", "mgno-reference-form", "fno", "unet")
BUDGET = 300_000
BUDGET_TOLERANCE = 0.10


def build_model(name: str, in_channels: int = 1):
    from ..operators import build

    arch, cfg = MODEL_CONFIGS[name]
    return build(arch, {"in_channels": in_channels, "out_channels": 1, **cfg})


def datasets(folder: Path, n: int, n_train: int, n_test: int, factors=(1, 2, 4), log=print) -> dict:
    """Training file at ``n`` and test files at ``f * n`` for each factor (same seed: same functions)."""
    from solvers.data import generate

    folder.mkdir(parents=True, exist_ok=True)
    files = {"train": (folder / f"darcy{n}_train{n_train}.h5", n, 0, n_train)}
    for f in factors:
        files[f] = (folder / f"darcy{f * n}_test{n_test}.h5", f * n, 1, n_test)
    for key, (path, res, seed, samples) in files.items():
        s = generate("darcy", samples, res, path, seed=seed, progress=False)
        log(f"{str(key):6s} {path} ({s.get('note') or f'generated in {s['seconds']:.1f} s'})")
    return {k: v[0] for k, v in files.items()}


def discretization_gaps(files: dict, n: int, factors) -> list[dict]:
    """Relative L2 difference between the FEM solutions at ``f n`` and ``2 f n`` on the coarser nodes."""
    from ..data import FieldDataset
    from ..training import relative_l2

    out = []
    for a, b in zip(factors, factors[1:]):
        _, ya = FieldDataset(files[a]).arrays()
        _, yb = FieldDataset(files[b]).arrays()
        step = (yb.shape[-1] - 1) // (ya.shape[-1] - 1)
        gap = relative_l2(ya.double(), yb[..., ::step, ::step].double())
        out.append({"model": "fem-gap", "n_test_res": a * n + 1, "n_fine_res": b * n + 1,
                    "rel_l2_test": float(gap.mean()), "rel_l2_test_median": float(gap.median())})
    return out


def run(n: int, n_train: int, n_test: int, epochs: int, models, folder: Path, device: str = "cpu",
        batch_size: int = 20, seeds=(0, 1, 2), factors=(1, 2, 4), subsample=(1,), files: dict | None = None,
        log=print) -> list[dict]:
    """Train every model ``len(seeds)`` times, test at ``factors`` times the resolution. ``files`` (keys
    ``"train"`` and the factors) replaces the toolkit's data generation (machines without DOLFINx)."""
    import torch

    from ..data import FieldDataset
    from ..operators import neuraloperator_available
    from ..training import Trainer, TrainConfig, evaluate_model, load

    files = files or datasets(folder, n, n_train, n_test, factors, log)
    records = discretization_gaps(files, n, factors)
    for r in records:
        log(f"FEM gap {r['n_test_res']} vs {r['n_fine_res']}: {r['rel_l2_test']:.4f}")
    tests = {f: FieldDataset(files[f]).arrays() for f in factors}
    for name in models:
        arch, config = MODEL_CONFIGS[name]
        if arch == "fno" and not neuraloperator_available():
            raise RuntimeError("fno needs the neuraloperator library (scripts/install.sh installs it)")
        runs = []
        for seed in seeds:
            torch.manual_seed(seed)
            cfg = TrainConfig(epochs=epochs, n_train=n_train, n_test=n_test, batch_size=batch_size, seed=seed,
                              subsample=tuple(subsample))
            out = folder / f"run_{name}_{n}_s{seed}"
            trainer = Trainer(arch, config, files["train"], out, cfg, device=device, test_data=files[factors[0]])
            s = trainer.fit(progress=False)
            _, best, proc, _ = load(out / "best.pt", device)
            base = {"model": name, "dataset": f"darcy two-phase {{12,3}}, n={n}", "n_train": n_train,
                    "n_test": n_test, "params": s["params"], "seed": seed, "epochs": s["epochs_run"],
                    "train_s": s["train_s"], "device": device, "n_train_res": n + 1}
            for f in factors:
                x, y = tests[f]
                r = evaluate_model(best, proc, x, y, batch_size, device)
                runs.append({**base, "n_test_res": f * n + 1, "rel_l2_test": r["rel_l2_mean"],
                             "rel_l2_test_median": r["rel_l2_median"], "rel_h1_test": r["rel_h1_mean"],
                             "infer_ms_per_sample": r["infer_ms_per_sample"]})
            log(f"{name:20s} seed {seed} params={s['params']:8d} train={s['train_s']:6.0f}s rel L2 " +
                ", ".join(f"{r['n_test_res']}: {r['rel_l2_test']:.4f}" for r in runs[-len(factors):]))
        records += runs + summarize(runs, factors, n)
    return records


def _spread(values) -> dict:
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def summarize(runs: list[dict], factors, n: int) -> list[dict]:
    """One record per test resolution over the seeds: mean and min/max/std of the errors."""
    out = []
    for f in factors:
        rows = [r for r in runs if r["n_test_res"] == f * n + 1]
        l2, h1 = _spread([r["rel_l2_test"] for r in rows]), _spread([r["rel_h1_test"] for r in rows])
        out.append({**{k: rows[0][k] for k in ("model", "dataset", "n_train", "n_test", "params", "epochs",
                                                "device", "n_train_res", "n_test_res")},
                    "seed": "all", "seeds": len(rows), "train_s": statistics.fmean(r["train_s"] for r in rows),
                    "rel_l2_test": l2["mean"], "rel_l2_test_min": l2["min"], "rel_l2_test_max": l2["max"],
                    "rel_l2_test_std": l2["std"],
                    "rel_l2_test_median": statistics.median(r["rel_l2_test_median"] for r in rows),
                    "rel_h1_test": h1["mean"], "rel_h1_test_min": h1["min"], "rel_h1_test_max": h1["max"],
                    "infer_ms_per_sample": statistics.median(r["infer_ms_per_sample"] for r in rows)})
    return out


def table(records: list[dict]) -> str:
    """Markdown: one row per model and test resolution (means over seeds with min-max), then the FEM gaps."""
    rows = ["| model | real params | train s | test res | rel. L2 mean [min, max] | x own | rel. H1 mean [min, max] "
            "| ms/sample |", "|---|---|---|---|---|---|---|---|"]
    summary = [r for r in records if r.get("seed") == "all"]
    own = {r["model"]: r["rel_l2_test"] for r in summary if r["n_test_res"] == r["n_train_res"]}
    for r in summary:
        rows.append(f"| {r['model']} | {r['params']:,} | {r['train_s']:.0f} | {r['n_test_res']} | "
                    f"{r['rel_l2_test']:.4f} [{r['rel_l2_test_min']:.4f}, {r['rel_l2_test_max']:.4f}] | "
                    f"{r['rel_l2_test'] / own[r['model']]:.2f} | "
                    f"{r['rel_h1_test']:.4f} [{r['rel_h1_test_min']:.4f}, {r['rel_h1_test_max']:.4f}] | "
                    f"{r['infer_ms_per_sample']:.2f} |")
    gaps = [r for r in records if r["model"] == "fem-gap"]
    if gaps:
        rows.append("")
        rows.append("FEM reference gap (same coefficient, rel. L2 between the two FEM solutions at the coarser "
                    "nodes): " + ", ".join(f"{g['n_test_res']} vs {g['n_fine_res']}: {g['rel_l2_test']:.4f}"
                                           for g in gaps))
    return "\n".join(rows)


COLUMNS = [("model", "model", ""), ("seed", "seed", ""), ("params", "params", "d"), ("epochs", "epochs", "d"),
           ("train s", "train_s", ".0f"), ("train res", "n_train_res", "d"), ("test res", "n_test_res", "d"),
           ("rel. L2 mean", "rel_l2_test", ".4f"), ("rel. L2 median", "rel_l2_test_median", ".4f"),
           ("rel. H1 mean", "rel_h1_test", ".4f"), ("ms/sample", "infer_ms_per_sample", ".2f"),
           ("device", "device", "")]
