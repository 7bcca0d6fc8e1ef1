"""Train the learned Helmholtz correction network on a GPU from residuals collected on the CPU.

The lent GPU machines have torch but no DOLFINx, so the samples (the Arnoldi residuals of
``cslp+fgmres`` left by the shifted-Laplacian cycle, their errors from sparse LU, and ``k h``) are
collected here by :func:`hybrid.training.helmholtz.collect` and carried as one float16 file
(``scripts/device_helmholtz_data.py`` writes it); the training loop is
:func:`hybrid.training.helmholtz.train`, which imports nothing but torch and numpy. Writes the
checkpoint (the :mod:`hybrid.precond.net_checkpoint` format) and a JSON summary.

Run: python3 scripts/device_helmholtz_train.py --data FILE[,FILE...] --out DIR [--steps 3000]
     [--loss relative+residual] [--init CHECKPOINT (fine-tune)] [--equal-sizes] [--implicit]. Every size
     in the files trains (``tr64``, ``tr128``, ``tr256``, ...). ``--loss cycle --media m64.h5,...``: the
     residual left after the network's step and the second cycle (:mod:`hybrid.training.helmholtz_cycle`),
     with the operators of each sample's medium from the media files the data were collected from.
     Runs on the CPU too (the shipped bench/models/helmholtz_cslp.pt: the H200 run, then four CPU
     fine-tunings, lr 5e-4, batch 16: with the relative+residual loss on classical-solve residuals, on
     in-solve residuals, on in-solve residuals of the cycle-network-cycle scheme at 64, 128 and 256; then
     with the cycle loss on the in-solve residuals of that network; the README's Helmholtz section has the
     commands).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from hybrid.training.helmholtz import HelmholtzTrainConfig, evaluate, train  # noqa: E402


def _checkpoint_module():
    """hybrid/precond/net_checkpoint.py without hybrid.precond's package imports (which need the solvers)."""
    spec = importlib.util.spec_from_file_location("net_checkpoint", ROOT / "hybrid" / "precond" / "net_checkpoint.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _part(d, name, device):
    kh = d[f"{name}_kh"].astype(np.float32)[d[f"{name}_medium"]]
    return {"r1": torch.as_tensor(d[f"{name}_r1"].astype(np.float32), device=device),
            "e": torch.as_tensor(d[f"{name}_e"].astype(np.float32), device=device),
            "kh": torch.as_tensor(kh, device=device), "medium": d[f"{name}_medium"].astype(np.int64)}


def _operators(d, n, media_files, device):
    """``{"tr": MediumOperators, "te": ...}`` of size ``n`` for ``--loss cycle``: the wave speeds of the media
    file of that size (the data script's split: the first media train, the last ``--test`` ones test),
    checked against the ``k h`` stored with the samples (another file or order is a ValueError). Needs the
    solvers layer (its numpy assembly and ``ShiftedLaplacian``), unlike the other losses."""
    import h5py
    from hybrid.training.helmholtz_cycle import MediumOperators

    speeds = None
    for f in media_files:
        with h5py.File(f, "r") as h:
            if h["wave_speed"].shape[-1] == n + 1:
                speeds = h["wave_speed"][:]
                break
    if speeds is None:
        raise ValueError(f"--loss cycle: no --media file has n = {n} media")
    out = {}
    for part in ("tr", "te"):
        if f"{part}{n}_kh" not in d.files:
            continue
        stored = d[f"{part}{n}_kh"].astype(np.float32)
        if len(stored) > len(speeds):
            raise ValueError(f"--media: {part}{n} has {len(stored)} media, the n = {n} file only {len(speeds)}")
        ops = MediumOperators(speeds[:len(stored)] if part == "tr" else speeds[len(speeds) - len(stored):],
                              device=device)
        for m in sorted({0, len(stored) - 1}):
            if not np.allclose(ops[m][2], stored[m, 0], rtol=2e-3, atol=2e-3):
                raise ValueError(f"--media: medium {m} of {part}{n} does not match the samples' k h (another file "
                                 "or order than the data script's?)")
        out[part] = ops
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT / ".gpu" / "helmholtz_data.npz"),
                    help="one or more (comma-separated) files of scripts/device_helmholtz_data.py; every size in them trains")
    ap.add_argument("--out", default=".")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--loss", default="relative+residual")
    ap.add_argument("--residual-weight", type=float, default=1.0, help="weight of the residual in relative+residual")
    ap.add_argument("--max-seconds", type=float, default=240.0)
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--half", action="store_true", help="store the weights as float16 (smaller file)")
    ap.add_argument("--init", default=None, help="fine-tune this checkpoint (its channels/depth) instead of a new net")
    ap.add_argument("--implicit", action="store_true",
                    help="with an implicit layer on the coarsest grid (added to an --init network without one)")
    ap.add_argument("--equal-sizes", action="store_true", help="draw every resolution equally often")
    ap.add_argument("--implicit-lr-factor", type=float, default=1.0, help="learning rate of the implicit layer / --lr")
    ap.add_argument("--media", default=None,
                    help="--loss cycle: the media files (comma-separated) the --data files were collected from")
    a = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    files = [np.load(f) for f in a.data.split(",")]
    kinds = {bool(d["deflated"]) if "deflated" in d.files else False for d in files}
    if len(kinds) > 1:  # a network for the deflated loop and one for the cycle alone are different networks
        raise SystemExit("--data mixes deflated residuals (device_helmholtz_data.py --deflated) with the cycle's own")
    sizes = sorted(((int(k[2:-3]), i) for i, d in enumerate(files) for k in d.files
                    if k.startswith("tr") and k.endswith("_r1")))   # (n, file) of every training set
    train_sets = [_part(files[i], f"tr{n}", device) for n, i in sizes]
    ops = None
    if a.loss == "cycle":
        if not a.media:
            raise SystemExit("--loss cycle needs --media (the files the samples were collected from)")
        ops = {(n, i): _operators(files[i], n, a.media.split(","), device) for n, i in sizes}
    cfg = HelmholtzTrainConfig(steps=a.steps, batch=a.batch, lr=a.lr, channels=a.channels, depth=a.depth,
                               loss=a.loss, max_seconds=a.max_seconds, augment=not a.no_augment,
                               residual_weight=a.residual_weight, implicit=a.implicit, equal_sizes=a.equal_sizes,
                               implicit_lr_factor=a.implicit_lr_factor)
    t0 = time.perf_counter()
    start, init_extra = None, None
    if a.init:
        from hybrid.operators.helmholtz_net import HelmholtzNet, HelmholtzNetConfig

        def build(c):
            return HelmholtzNet(HelmholtzNetConfig(**{**c, "implicit": c.get("implicit", False) or a.implicit}))

        start = _checkpoint_module().load_net(a.init, "helmholtz-cslp-correction", build, "cpu",
                                              new_layers="unet.bottleneck.").float().to(device)
        a.channels, a.depth, a.implicit = start.config.channels, start.config.depth, start.config.implicit
        init_extra = torch.load(a.init, map_location="cpu", weights_only=True).get("extra", {})
    def test_losses(model, suffix=""):
        for n, i in sizes:
            if f"te{n}_r1" in files[i].files:
                te = {k: (v.cpu().numpy() if torch.is_tensor(v) else v) for k, v in _part(files[i], f"te{n}", "cpu").items()}
                info[f"test{n}{suffix}"] = evaluate(model, te, device, loss=a.loss,
                                                    operators=ops[(n, i)]["te"] if ops else None)

    info = {}
    if start is not None:
        test_losses(start.eval(), "_init")
    net, trained = train(train_sets, cfg, device=device, log=print, net=start,
                         operators=[ops[s]["tr"] for s in sizes] if ops else None)
    info.update(trained)
    info["device"] = name
    info["deflated"] = kinds.pop()
    test_losses(net)
    info["wall_s"] = time.perf_counter() - t0
    info["config"] = vars(a)
    print(json.dumps(info, indent=1))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    _checkpoint_module().save_net(out / f"helmholtz_cslp_c{a.channels}d{a.depth}.pt", "helmholtz-cslp-correction",
                                  net.cpu().half() if a.half else net.cpu(),
                                  {"train": info, **({"init": init_extra} if a.init else {})})
    (out / f"helmholtz_train_c{a.channels}d{a.depth}.json").write_text(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
