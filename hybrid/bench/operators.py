"""``hybrid bench operators``: MgNO vs FNO (neuraloperator) vs U-Net on toolkit-generated Darcy data.

Training set: two-phase Darcy (values 12 and 3) at ``n`` cells per side, seed 0. Test sets: seed 1,
at ``n`` and at ``2n`` -- the same coefficient functions at both resolutions (the sampler is
resolution-independent), so the ``2n`` error measures resolution transfer alone. Every model gets
the same epochs, batch size, optimizer and schedule; training seconds are reported, never hidden.
"""

from __future__ import annotations

from pathlib import Path


MODEL_CONFIGS = {
    "mgno": {},                                   # 6 levels, 24 channels, 4 layers (492,021 params)
    "fno": {"modes": 12, "channels": 32},         # the FNO paper's Darcy setting (neuraloperator)
    "unet": {"channels": 16, "depth": 3},         # ~480k params
}


def datasets(folder: Path, n: int, n_train: int, n_test: int, log=print) -> dict:
    from solvers.data import generate

    folder.mkdir(parents=True, exist_ok=True)
    files = {"train": (folder / f"darcy{n}_train{n_train}.h5", n, 0, n_train),
             "test": (folder / f"darcy{n}_test{n_test}.h5", n, 1, n_test),
             "transfer": (folder / f"darcy{2 * n}_test{n_test}.h5", 2 * n, 1, n_test)}
    for key, (path, res, seed, samples) in files.items():
        s = generate("darcy", samples, res, path, seed=seed, progress=False)
        log(f"{key:9s} {path} ({s.get('note') or f'generated in {s['seconds']:.1f} s'})")
    return {k: v[0] for k, v in files.items()}


def run(n: int, n_train: int, n_test: int, epochs: int, models, folder: Path, device: str = "cpu",
        batch_size: int = 20, log=print) -> list[dict]:
    import torch

    from ..data import FieldDataset
    from ..operators import neuraloperator_available
    from ..training import Trainer, TrainConfig, evaluate_model, load

    files = datasets(folder, n, n_train, n_test, log)
    records = []
    for name in models:
        if name == "fno" and not neuraloperator_available():
            log("fno: skipped (pip install 'hybrid-solvers[baselines]' for the neuraloperator reference FNO)")
            continue
        torch.manual_seed(0)
        cfg = TrainConfig(epochs=epochs, n_train=n_train, n_test=n_test, batch_size=batch_size)
        trainer = Trainer(name, MODEL_CONFIGS[name], files["train"], folder / f"run_{name}_{n}", cfg,
                          device=device, test_data=files["test"])
        s = trainer.fit(progress=False)
        x, y = FieldDataset(files["transfer"]).arrays()
        _, best, proc, _ = load(folder / f"run_{name}_{n}" / "best.pt", device)
        tr = evaluate_model(best, proc, x, y, batch_size, device)
        base = {"model": name, "dataset": f"darcy two-phase {{12,3}}, n={n}", "n_train": n_train, "n_test": n_test,
                "params": s["params"], "epochs": s["epochs_run"], "train_s": s["train_s"], "device": device}
        records.append({**base, "n_train_res": n + 1, "n_test_res": n + 1, "rel_l2_test": s["test_rel_l2_mean"],
                        "rel_l2_test_median": s["test_rel_l2_median"], "rel_h1_test": s["test_rel_h1_mean"],
                        "infer_ms_per_sample": s["test_infer_ms_per_sample"]})
        records.append({**base, "n_train_res": n + 1, "n_test_res": 2 * n + 1, "rel_l2_test": tr["rel_l2_mean"],
                        "rel_l2_test_median": tr["rel_l2_median"], "rel_h1_test": tr["rel_h1_mean"],
                        "infer_ms_per_sample": tr["infer_ms_per_sample"]})
        log(f"{name:5s} params={s['params']:8d} train={s['train_s']:7.1f}s test rel L2 {s['test_rel_l2_mean']:.4f} "
            f"(median {s['test_rel_l2_median']:.4f}); at {2 * n + 1}^2: {tr['rel_l2_mean']:.4f}")
    return records


COLUMNS = [("model", "model", ""), ("params", "params", "d"), ("epochs", "epochs", "d"), ("train s", "train_s", ".0f"),
           ("train res", "n_train_res", "d"), ("test res", "n_test_res", "d"), ("rel. L2 mean", "rel_l2_test", ".4f"),
           ("rel. L2 median", "rel_l2_test_median", ".4f"), ("rel. H1 mean", "rel_h1_test", ".4f"),
           ("ms/sample", "infer_ms_per_sample", ".2f"), ("device", "device", "")]
