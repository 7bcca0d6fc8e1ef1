"""Collect the training residuals of the learned Helmholtz correction into one float16 file for a GPU.

Input: media files from the toolkit's generator, e.g.
    hybrid generate helmholtz --n 64 --samples 80 --seed 1 --param medium=mixed --out m64.h5
    hybrid generate helmholtz --n 128 --samples 16 --seed 2 --param medium=mixed --out m128.h5
Output (``--out``, default .gpu/helmholtz_data.npz): for each file ``tr{n}_*`` (all media but the last
``--test`` of each file) and ``te{n}_*``: ``r1``, ``e`` (N, 2, H, W), ``kh`` once per medium with a
``medium`` index per sample (k h repeats for every residual of a medium). About 50 MiB for the
defaults above: under the 64 MiB that travels to a lent GPU machine.

Run: python scripts/device_helmholtz_data.py m64.h5 m128.h5 [--vectors 12] [--test 8,2] [--max-train 0,120]
     [--model CHECKPOINT (record the residuals inside learned-cslp+fgmres with this network) [--scheme VN]]
     [--deflated (what a deflated step leaves, inside cslp-def+fgmres or, with --model, learned-def+fgmres:
     the data of bench/models/helmholtz_cslp_def(_c4).pt; recorded in the file as ``deflated``)]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np

from hybrid.training.helmholtz import collect


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--vectors", type=int, default=12, help="residuals kept per medium")
    ap.add_argument("--test", default="8,2", help="media held out for testing, per file")
    ap.add_argument("--max-train", default="0,120", help="cap on training samples per file (0: none)")
    ap.add_argument("--out", type=Path, default=Path(".gpu/helmholtz_data.npz"))
    ap.add_argument("--model", type=Path, default=None,
                    help="record the residuals inside learned-cslp+fgmres (with --deflated: learned-def+fgmres) "
                         "with this checkpoint (default: cslp+fgmres, or cslp-def+fgmres)")
    ap.add_argument("--scheme", default="VNV", help="the learned correction's scheme with --model (VNV or VN)")
    ap.add_argument("--deflated", action="store_true",
                    help="residuals of the deflated cycle (learned-def+fgmres's network) instead of the cycle alone")
    a = ap.parse_args()
    tests = [int(t) for t in a.test.split(",")]
    caps = [int(t) for t in a.max_train.split(",")]
    out = {}
    for i, f in enumerate(a.files):
        c = h5py.File(f, "r")["wave_speed"][:]
        n = c.shape[-1] - 1
        k = tests[min(i, len(tests) - 1)]
        for part, media, seed in (("tr", c[:-k], 2 * i), ("te", c[-k:], 2 * i + 1)):
            d = collect(media, a.vectors, seed=seed, log=print, model=a.model, scheme=a.scheme,
                        deflated=a.deflated)
            cap = caps[min(i, len(caps) - 1)] if part == "tr" else 0
            m = len(d["r1"]) if not cap else min(cap, len(d["r1"]))
            med = d["medium"]
            out[f"{part}{n}_r1"] = d["r1"][:m].astype(np.float16)
            out[f"{part}{n}_e"] = d["e"][:m].astype(np.float16)
            first = np.r_[0, np.flatnonzero(np.diff(med)) + 1]
            out[f"{part}{n}_kh"] = d["kh"][first].astype(np.float16)
            out[f"{part}{n}_medium"] = med[:m].astype(np.int16)
            print(f"{f}: {part}{n}: {m} samples from {len(media)} media")
    out["deflated"] = np.array(a.deflated)  # which residuals these are (the two kinds must not be mixed up)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(a.out, **out)
    print(f"wrote {a.out} ({a.out.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
