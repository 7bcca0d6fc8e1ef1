"""``hybrid bench helmholtz-norm``: how the norm of the Helmholtz solution operator grows with ``k`` per medium.

The systems of ``hybrid bench helmholtz`` (same media, seed, source, ``k = 2 pi n / 10``); for each,
``||A^{-1}||_2`` (:func:`solvers.linear.conditioning.inverse_norm`) and, between consecutive sizes, the
exponent ``p`` of ``||A^{-1}|| ~ k^p``: about 1 where no ray is trapped (Helmholtz at fixed points per
wavelength) and larger where the medium traps waves. A checkerboard of slow and fast squares traps rays
by total internal reflection from a contrast of about ``sqrt(2)`` up (the 45-degree diamond orbits of a
slow square then meet every side beyond the critical angle ``arcsin(1 / c_max)``; just below it they are
still reflected almost totally: measured, p = 1.17-1.25 at contrast 1.4 against 1.07-1.23 at 1.2); media
``NAME@C_MAX`` (e.g. ``checkerboard@1.4``) vary the contrast. Tells a medium whose solves are hard from a
preconditioner that is weak: iterative solvers' counts follow this norm, learned or not.
"""

from __future__ import annotations

import math
import time

from .helmholtz import MEDIA, SEED, SOURCE, check_media, check_sizes, distribution  # noqa: F401 - the CLI's

SUITE = "helmholtz-norm"


def run(sizes, media=MEDIA, log=print) -> list[dict]:
    from solvers.linear.conditioning import inverse_norm
    from solvers.problems.helmholtz import grid_helmholtz, wavenumber
    from solvers.sampling.media import wave_speed

    records = []
    for medium in media:
        for n in sizes:
            system = grid_helmholtz(wave_speed(medium, n, SEED, 0), wavenumber(n), SOURCE)
            t0 = time.perf_counter()
            norm = inverse_norm(system.A)
            rec = {"n": n, "medium": medium, "distribution": distribution(medium), "k": wavenumber(n),
                   "dofs": int(system.A.shape[0]), "inverse_norm": norm, "seconds": time.perf_counter() - t0}
            records.append(rec)
            log(f"{medium:18s} n={n:5d} k={rec['k']:7.1f} ||A^-1||_2 = {norm:10.4g} ({rec['seconds']:.1f} s)")
    return records


def growth(records) -> dict:
    """``(medium, n) -> p`` with ``||A^{-1}|| ~ k^p`` between ``n`` and the next smaller size of the records."""
    out = {}
    for medium in dict.fromkeys(r["medium"] for r in records):
        rows = sorted((r for r in records if r["medium"] == medium), key=lambda r: r["n"])
        for a, b in zip(rows, rows[1:]):
            out[(medium, b["n"])] = math.log(b["inverse_norm"] / a["inverse_norm"]) / math.log(b["k"] / a["k"])
    return out


def table(records) -> str:
    """One line per medium: ``||A^{-1}||_2`` per size, with the exponent ``p`` from the size before."""
    sizes = sorted({r["n"] for r in records})
    p = growth(records)
    rows = ["| medium | " + " | ".join(f"n = {n}" for n in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for medium in dict.fromkeys(r["medium"] for r in records):
        by_n = {r["n"]: r for r in records if r["medium"] == medium}
        cells = []
        for n in sizes:
            r = by_n.get(n)
            cells.append("-" if r is None else f"{r['inverse_norm']:.4g}" +
                         (f" (p = {p[(medium, n)]:.2f})" if (medium, n) in p else ""))
        tag = medium if distribution(medium) == "in" else f"{medium} (OOD)"
        rows.append(f"| {tag} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
