"""Merge two media files of ``hybrid generate helmholtz`` for ``scripts/device_helmholtz_data.py``.

That script holds out the last ``--test`` media of each file; this one writes ``wave_speed`` as
``[A's training media, B's training media, A's test media, B's test media]``, so one ``--test TA+TB``
holds out both files' test media and the training split of each is kept. Used for the voronoi DAgger round
of the shipped Helmholtz network (README, Helmholtz section).

Run: python scripts/helmholtz_media_merge.py A.h5 B.h5 --test TA,TB --out AB.h5 [--take-b N (B's first N media)]
"""

from __future__ import annotations

import argparse

import h5py
import numpy as np


def merge(a: np.ndarray, b: np.ndarray, test_a: int, test_b: int) -> np.ndarray:
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"media of different grids: {a.shape[1:]} and {b.shape[1:]}")
    if not (0 < test_a < len(a) and 0 < test_b < len(b)):
        raise ValueError(f"test counts {test_a}, {test_b} must leave training media in files of {len(a)}, {len(b)}")
    return np.concatenate([a[:-test_a], b[:-test_b], a[-test_a:], b[-test_b:]])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--test", required=True, help="TA,TB: the media each file holds out (its last ones)")
    ap.add_argument("--take-b", type=int, default=0, help="use only B's first N media (0: all)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    ta, tb = (int(t) for t in args.test.split(","))
    with h5py.File(args.a, "r") as fa, h5py.File(args.b, "r") as fb:
        a, b = fa["wave_speed"][:], fb["wave_speed"][:]
    b = b[: args.take_b] if args.take_b else b
    c = merge(a, b, ta, tb)
    with h5py.File(args.out, "w") as f:
        f["wave_speed"] = c
    print(f"wrote {args.out}: {len(c)} media, the last {ta + tb} held out")


if __name__ == "__main__":
    main()
