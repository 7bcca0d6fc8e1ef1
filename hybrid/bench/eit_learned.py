"""``hybrid bench inverse --problems eit-learned``: NIO against DeepONet on EIT, alone and as the adjoint's start.

- Data (``hybrid generate eit``, made under ``folder`` when missing): the randomized heart-and-lungs family
  (the NIO paper's EIT example: heart and lung conductivities times ``exp(0.5 U(-1, 1))``, shapes jittered by
  0.1) on ``unit_square(16)`` with 16 trigonometric voltage patterns; training file seed 0, test file seed 1.
- Models (:data:`MODELS`), trained by the toolkit's ``Trainer`` with the same data, epochs, batch, optimizer,
  schedule, loss and noise augmentation (:data:`TRAIN_NOISE`), ``seeds`` times each; EIT inputs are normalized as difference data (the background
  DtN map subtracted, :class:`hybrid.data.normalize.DtNNormalizer`) for every model alike. ``linear`` is a
  reference, not a network: ridge regression from the same difference data to the conductivity (with the
  same noise augmentation, weight chosen on the noisy validation split).
- ``learned`` rows: every test sample, noise added as in the adjoint rows (multiplicative, :data:`NOISE_MODEL`,
  seeded by the sample index), error as the inversion's: relative L2 of the nodal conductivity with
  the P1 mass matrix; mean over seeds of the median over samples, with the seeds' min/max.
- ``adjoint`` / ``MODEL+adjoint`` rows on the first ``samples`` test samples (:func:`invert_eit`, TV, L-BFGS-B,
  discrepancy principle when noisy; the hybrid starts from the model of seed 0 and counts its time), with the
  time the hybrid needs to reach the adjoint's final error on the same sample. ``adjoint-prior`` and
  ``nio+adjoint-prior`` replace TV by the learned regularizer (:class:`hybrid.inverse.prior.LearnedRegularizer`,
  a denoiser trained on the training file's conductivities only; its training time is not in the rows).
  ``nio+adjoint-fixed``: :data:`FIXED_ITERATIONS` TV iterations from the NIO estimate without the discrepancy
  stop.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np

from .results import median

N, PATTERNS = 16, 16
COEFFICIENT = "heart-lungs"
#: label -> (architecture, config): about 0.3M parameters each
MODELS = {"nio": ("nio", {"decoder": "cnn"}),
          "nio-fno": ("nio", {"decoder": "fno", "modes": 6, "decoder_channels": 16}),  # the paper's decoder
          "deeponet": ("deeponet", {"sensors": [PATTERNS, 4 * N]}),
          "deeponet-fourier": ("deeponet", {"sensors": [PATTERNS, 4 * N], "fourier": 8})}
WEIGHT = 1e-7  # TV weight of the adjoint rows (as the other EIT rows)
#: noise: the NIO paper's multiplicative model, entrywise ``d (1 + level xi)``; every model trains with noise
#: augmentation up to TRAIN_NOISE (each sample's level uniform in [0, TRAIN_NOISE], fresh every batch)
NOISE_MODEL, TRAIN_NOISE = "multiplicative", 0.1
#: the learned regularizer (hybrid.inverse.prior): denoiser level and weight, chosen by a sweep over weights
#: {3e-3, 1e-2, 3e-2, 1e-1} on 6 samples of the *training* file at 1% noise (median error 0.153 against TV's 0.179)
PRIOR_SIGMA, PRIOR_WEIGHT = 0.1, 3e-2
#: ``nio+adjoint-fixed``: refine the NIO estimate by a fixed budget past the discrepancy level (which the estimate
#: already meets at 1% noise, so the discrepancy-stopped hybrid returns it unchanged): TV weight and iterations
#: chosen on 8 training-file samples at 1% noise (median error 0.0845 -> 0.0752)
FIXED_WEIGHT, FIXED_ITERATIONS = 1e-5, 20


def datasets(folder: Path, train: int, test: int, log=print) -> dict:
    from solvers.data import generate

    folder.mkdir(parents=True, exist_ok=True)
    files = {"train": (folder / f"eit{N}_{COEFFICIENT}_train{train}.h5", 0, train),
             "test": (folder / f"eit{N}_{COEFFICIENT}_test{test}.h5", 1, test)}
    for key, (path, seed, samples) in files.items():
        s = generate("eit", samples, N, path, seed=seed, params={"coefficient": COEFFICIENT, "patterns": PATTERNS},
                     progress=False)
        log(f"{key:5s} {path} ({s.get('note') or f'generated in {s['seconds']:.1f} s'})")
    return {k: v[0] for k, v in files.items()}


def train_models(files: dict, folder: Path, labels, seeds, epochs: int, n_train: int, log=print) -> dict:
    """``{label: [(checkpoint, summary) per seed]}``; a run whose ``summary.json`` exists is reused."""
    from ..training import Trainer, TrainConfig

    out = {}
    for label in labels:
        arch, config = MODELS[label]
        out[label] = []
        for seed in seeds:
            run = folder / f"run_{label}_s{seed}_e{epochs}"
            if not (run / "summary.json").exists():
                cfg = TrainConfig(epochs=epochs, n_train=n_train, n_test=1, seed=seed, inputs=("patterns", "dtn"),
                                  outputs=("conductivity",), train_noise=TRAIN_NOISE)
                Trainer(arch, config, files["train"], run, cfg, test_data=files["test"]).fit(progress=False)
            summary = json.loads((run / "summary.json").read_text())
            out[label].append((run / "best.pt", summary))
            log(f"{label} seed {seed}: {summary.get('params')} parameters, train {summary.get('train_s', 0):.0f} s")
    return out


def _test_arrays(path):
    import h5py

    with h5py.File(path, "r") as f:
        return f["fixed/patterns"][:], f["dtn"][:], f["conductivity"][:]


def _noisy(dtn, noise: float, seed: int):
    from ..inverse.eit_inversion import noisy_dtn

    return noisy_dtn(dtn, noise, NOISE_MODEL, seed)[0]


def _ridge(files: dict, n_train: int):
    """Ridge regression from difference data to the conductivity grid: trained on the clean data and one copy
    with the models' noise augmentation, weight chosen on the validation split with that noise."""
    import torch

    from ..data import training_noise
    from ..data.normalize import DtNNormalizer

    g, dtn, sigma = _test_arrays(files["train"])
    x = torch.as_tensor(np.stack([np.broadcast_to(g, dtn.shape), dtn], 1)[:n_train], dtype=torch.float64)
    norm = DtNNormalizer(dtn.shape[-1]).fit(x)

    def features(xx):
        return norm.encode(xx)[:, 1].reshape(len(xx), -1).numpy()

    n_val = max(1, n_train // 10)
    X, Xn = features(x), features(training_noise(x, TRAIN_NOISE, [1], seed=0))
    Y = sigma[:n_train].reshape(n_train, -1)
    tr, va = slice(0, n_train - n_val), slice(n_train - n_val, n_train)
    mu, ym = X[tr].mean(0), Y[tr].mean(0)

    def fit(lam, rows):
        Xc = np.concatenate([X[rows], Xn[rows]]) - mu
        Yc = np.concatenate([Y[rows], Y[rows]]) - ym
        return np.linalg.solve(Xc.T @ Xc + lam * np.eye(X.shape[1]), Xc.T @ Yc)

    def err(W):
        P = (Xn[va] - mu) @ W + ym
        return np.mean(np.linalg.norm(P - Y[va], axis=1) / np.linalg.norm(Y[va], axis=1))

    lam = min((10.0 ** k for k in range(-3, 5)), key=lambda l: err(fit(l, tr)))
    W = fit(lam, slice(0, n_train))

    def predict(g1, d1):
        xx = torch.as_tensor(np.stack([g1, d1])[None], dtype=torch.float64)
        return ((features(xx) - mu) @ W + ym).reshape(sigma.shape[1:])
    return predict, lam


def _denoiser(files: dict, folder: Path, log=print):
    """The prior denoiser trained on the training file's log-conductivities (reused when present)."""
    import h5py

    from ..inverse.prior import PriorDenoiser, train_denoiser

    path = folder / "prior_denoiser.pt"
    if not path.exists():
        with h5py.File(files["train"], "r") as f:
            train_denoiser(np.log(f["conductivity"][:]), path, log=log)
    return PriorDenoiser.from_checkpoint(path)


def run(folder: Path, labels=tuple(MODELS), seeds=(0, 1, 2), epochs: int = 60, n_train: int = 2000,
        n_test: int = 400, samples: int = 20, noises=(0.0, 0.01, 0.05, 0.1), maxiter: int = 200, figure=None,
        log=print) -> list[dict]:
    import time

    from meshes import GridView
    from ..inverse import LearnedEIT, eit_from_file, invert_eit, invert_eit_hybrid
    from ..inverse.prior import LearnedRegularizer
    from ..inverse.darcy_inversion import mass_matrix, relative_l2_error
    from .inverse import seconds_to_reach

    for label in labels:
        if label not in MODELS:
            raise ValueError(f"unknown EIT model {label!r}; use one of: {', '.join(MODELS)}")
    folder = Path(folder)
    files = datasets(folder, n_train, n_test, log)
    trained = train_models(files, folder, labels, seeds, epochs, n_train, log)
    models = {label: [LearnedEIT.from_checkpoint(ckpt) for ckpt, _ in runs] for label, runs in trained.items()}
    ridge, lam = _ridge(files, n_train)
    denoiser = _denoiser(files, folder, log)
    g, dtn, sigma = _test_arrays(files["test"])
    base = eit_from_file(files["test"], 0)
    view, M = GridView(base.solver.family.mesh), mass_matrix(base.solver.darcy)
    prior = LearnedRegularizer(denoiser, view, PRIOR_SIGMA)  # the same mesh for every test sample
    truth = [view.to_dofs(s) for s in sigma]
    common = dict(problem="eit", coefficients=f"eit-learned ({COEFFICIENT}, n={N})", n=N, patterns=PATTERNS,
                  n_train=n_train, epochs=epochs, dofs=base.solver.ndofs, data_refine=1)
    records = []
    for noise in noises:
        data = [_noisy(dtn[i], noise, i) for i in range(len(dtn))]
        rows = {"linear": [[relative_l2_error(view.to_dofs(ridge(g, d)), t, M) for d, t in zip(data, truth)]]}
        times = {}
        for label, seeded in models.items():
            rows[label], times[label] = [], []
            for m in seeded:
                errs = []
                t = time.perf_counter()
                for d, t_i in zip(data, truth):
                    errs.append(relative_l2_error(m.predict_nodal(g, d, view), t_i, M))
                times[label].append((time.perf_counter() - t) / len(data))
                rows[label].append(errs)
        for label, per_seed in rows.items():
            medians = [median(e) for e in per_seed]
            rec = dict(common, method=label, noise=noise, samples=len(truth), seeds=len(per_seed),
                       rel_l2_coeff=statistics.fmean(medians), rel_l2_coeff_seeds=medians,
                       rel_l2_coeff_mean=statistics.fmean(statistics.fmean(e) for e in per_seed),
                       rel_l2_coeff_spread=[min(medians), max(medians)],
                       seconds_per_reconstruction=statistics.fmean(times[label]) if label in times else None)
            if label == "linear":
                rec["ridge_weight"] = lam
            else:
                rec["params"] = trained[label][0][1].get("params")
            records.append(rec)
            log(f"eit-learned noise={noise:g} {label}: median rel. L2 {rec['rel_l2_coeff']:.4f} "
                f"[{rec['rel_l2_coeff_spread'][0]:.4f}, {rec['rel_l2_coeff_spread'][1]:.4f}] over {len(per_seed)} "
                f"seed(s), {len(truth)} samples")
        # the adjoint and the hybrids on the first samples
        runs = {"adjoint": [], "adjoint-prior": []} | {f"{label}+adjoint": [] for label in models}
        if "nio" in models:
            runs["nio+adjoint-prior"] = []
            runs["nio+adjoint-fixed"] = []
        for i in range(samples):
            p = eit_from_file(files["test"], i, noise=noise, noise_model=NOISE_MODEL, seed=i)
            for method in runs:
                stamps = []
                opts = dict(noise_norm=p.noise_norm if noise > 0 else None, reg="tv", weight=WEIGHT, maxiter=maxiter,
                            truth=p.truth)
                if method.endswith("-prior"):
                    opts.update(reg=prior, weight=PRIOR_WEIGHT)
                if method.endswith("-fixed"):
                    opts.update(noise_norm=None, weight=FIXED_WEIGHT, maxiter=FIXED_ITERATIONS)
                t0 = time.perf_counter()
                cb = (lambda rec, s=stamps: s.append(time.perf_counter()))
                if method.startswith("adjoint"):
                    r = invert_eit(p.data, p.solver, callback=cb, **opts)
                else:
                    r = invert_eit_hybrid(p.data, p.solver, models[method.split("+")[0]][0], callback=cb, **opts)
                errors = r.history["rel_error"]
                runs[method].append(dict(rel_l2_coeff=errors[-1], rel_l2_initial=errors[0], seconds=r.seconds,
                                         iterations=r.iterations, stopped=r.stopped, errors=list(errors),
                                         times=[s - t0 for s in stamps]))
        for method, rs in runs.items():
            col = {k: [r[k] for r in rs] for k in ("rel_l2_coeff", "rel_l2_initial", "seconds", "iterations")}
            rec = dict(common, method=method, noise=noise, samples=samples,
                       reg="learned" if method.endswith("-prior") else "tv",
                       weight=PRIOR_WEIGHT if method.endswith("-prior") else
                       FIXED_WEIGHT if method.endswith("-fixed") else WEIGHT,
                       rel_l2_coeff=median(col["rel_l2_coeff"]), rel_l2_coeff_initial=median(col["rel_l2_initial"]),
                       rel_l2_coeff_spread=[min(col["rel_l2_coeff"]), max(col["rel_l2_coeff"])],
                       seconds_per_reconstruction=median(col["seconds"]), iterations=median(col["iterations"]),
                       stopped=sorted({r["stopped"] for r in rs}))
            if method != "adjoint":
                reach = [seconds_to_reach(r, a["rel_l2_coeff"]) for r, a in zip(rs, runs["adjoint"])]
                t_reach = median([np.inf if t is None else t for t in reach])
                rec["seconds_to_adjoint_error"] = t_reach if np.isfinite(t_reach) else None
                rec["reached_adjoint_error"] = sum(t is not None for t in reach)
                rec["time_ratio_to_adjoint"] = (None if not np.isfinite(t_reach) else
                                                t_reach / median([a["seconds"] for a in runs["adjoint"]]))
            records.append(rec)
            log(f"eit-learned noise={noise:g} {method}: median rel. L2 {rec['rel_l2_coeff']:.4f} (initial "
                f"{rec['rel_l2_coeff_initial']:.3f}), {rec['seconds_per_reconstruction']:.2f} s, "
                f"{rec['iterations']:.0f} it" + ("" if method == "adjoint" or rec["time_ratio_to_adjoint"] is None
                                                else f", adjoint's error at {rec['time_ratio_to_adjoint']:.2f} x its time"))
    if figure is not None:
        _figure(figure, files, view, ridge, models, maxiter, log)
    return records


def _figure(path, files: dict, view, ridge, models: dict, maxiter: int, log=print) -> None:
    """Test sample 0 at 1% noise: truth, the linear map, each model (seed 0), TV adjoint, nio+adjoint."""
    from ..inverse import eit_from_file, invert_eit, invert_eit_hybrid
    from ..plots import save_fields

    p = eit_from_file(files["test"], 0, noise=0.01, noise_model=NOISE_MODEL, seed=0)
    g, _, _ = _test_arrays(files["test"])
    opts = dict(noise_norm=p.noise_norm, reg="tv", weight=WEIGHT, maxiter=maxiter, truth=p.truth)
    fields = {"truth": view.to_grid(p.truth), "linear": ridge(g, p.data)}
    fields.update({label: view.to_grid(m[0](p.data, p.solver)) for label, m in models.items()})
    fields["adjoint (TV)"] = view.to_grid(invert_eit(p.data, p.solver, **opts).a)
    if "nio" in models:
        fields["nio+adjoint"] = view.to_grid(invert_eit_hybrid(p.data, p.solver, models["nio"][0], **opts).a)
    log(f"wrote {save_fields(path, fields)}")
