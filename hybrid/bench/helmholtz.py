"""``hybrid bench helmholtz``: Helmholtz at 10 points per wavelength, direct against iterative (issue 11).

``k = 2 pi n / 10`` on the unit square (10 points per wavelength where the speed is 1, the slowest),
absorbing boundaries on all sides, a Gaussian point source of width ``2 h`` at ``(0.5, 0.8)``, wave-speed
media of :mod:`solvers.sampling.media` (seed 99: none of them seen in training; ``grf`` and ``layered``
are in distribution, ``dipping``, ``salt``, ``checkerboard`` out of distribution). Methods:
``direct-mumps``, ``direct-superlu``, ``cslp+fgmres``, ``cslp2+fgmres`` (two cycles per application, the
classical counterpart of the learned method's cycle-network-cycle) and ``learned-cslp+fgmres`` (with a
model), each to a true relative residual of 1e-8; on request (``--methods``) ``cslp-sa+fgmres``,
``cslp-exact+fgmres`` (the shifted Laplacian inverted by sparse LU: the bound of every cycle), and
``cslp+gcrot`` / ``learned-cslp+gcrot`` (the two preconditioners inside GCROT(30, 10) instead of FGMRES(30)),
``cslp-def+fgmres`` / ``learned-cslp-def+fgmres`` (the two inside two-level deflation with an exact coarse
solve, :mod:`solvers.linear.preconditioners.deflation`), ``cslp2-def+fgmres`` (two cycles per deflated step),
``cslp-def2+fgmres`` / ``learned-def+fgmres`` (two deflated steps, without and with a network trained on what
the deflated step leaves between them; each learned method runs its own shipped network unless ``--model``
names one), ``cslp-deflin+fgmres`` (bilinear deflation) and
``mumps-blr+fgmres`` (MUMPS's block-low-rank factorization as FGMRES's preconditioner). Learned rows
record ``network_gain``, what the network's step leaves of the cycle's residual (geometric mean). With
``--sources K`` a row solves ``K - 1`` more sources after the first with the same setup (``init(...).solve(b)``:
factors, hierarchy and coarse factorization reused), recorded under ``more_sources``.

Every (n, medium, method) runs in a fresh process (``multiprocessing`` spawn), so its peak resident
memory (``VmHWM``, not ``ru_maxrss``, which starts at the parent's size) is its own. After assembly the mesh and the assembly's garbage are freed (for
every method alike; the solvers need ``A``, ``b``, ``k2M`` and the grid's dof order): ``rss_assembly_mb``
is the assembly's peak, ``rss_base_mb`` the process after freeing, ``rss_solver_mb`` what the solve added
to it at its peak, and ``rss_peak_mb`` the process's peak, assembly included; ``threads`` is ``OMP_NUM_THREADS`` of the row. A run that fails
(out of memory under the address-space limit ``memory_gb``, time limit ``max_seconds`` reached) is
recorded with its reason instead of a number. A figure of total time and peak memory against the
number of unknowns is written beside the JSON file.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import re
import time
from pathlib import Path

import numpy as np

from solvers.sampling.media import parse_medium

IN_DISTRIBUTION = ("grf", "layered")
OUT_OF_DISTRIBUTION = ("dipping", "salt", "checkerboard")
MEDIA = IN_DISTRIBUTION + OUT_OF_DISTRIBUTION
METHODS = ("direct-mumps", "direct-superlu", "cslp+fgmres", "cslp2+fgmres", "learned-cslp+fgmres")
#: not run by default: the shifted Laplacian by pyamg smoothed aggregation instead of geometric multigrid,
#: and inverted exactly by sparse LU (what no cycle can beat: tells a hard medium from a weak cycle)
EXTRA_METHODS = ("cslp-sa+fgmres", "cslp-exact+fgmres", "cslp+gcrot", "learned-cslp+gcrot", "cslp-def+fgmres",
                 "cslp2-def+fgmres", "cslp-def2+fgmres", "cslp-deflin+fgmres", "learned-cslp-def+fgmres",
                 "learned-def+fgmres", "mumps-blr+fgmres")
SEED = 99
SOURCE = (0.5, 0.8)
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "bench" / "models" / "helmholtz_cslp.pt"


def default_model(method: str) -> Path:
    """The shipped network of the learned method ``method`` (:func:`hybrid.names.shipped_model`;
    ``--model`` overrides it for every one)."""
    from ..names import shipped_model

    return DEFAULT_MODEL.with_name(shipped_model(method))


def more_sources(count: int) -> list[tuple[float, float]]:
    """The sources after the first (``SOURCE``) of a row with ``--sources count``: a line of shots at
    ``y = 0.7``, ``x`` from 0.2 to 0.8 (none of them the first, which is at ``y = 0.8``)."""
    k = int(count) - 1
    return [(round(0.2 + 0.6 * j / max(k - 1, 1), 6), 0.7) for j in range(k)]


def default_memory_gb() -> float | None:
    """85% of the machine's memory: the default limit of one row's process (``None``, no limit, where the
    OS does not say how much there is)."""
    from solvers.limits import total_memory_bytes

    total = total_memory_bytes()
    return None if total is None else 0.85 * total / 2**30


def needed_mb(record) -> float | None:
    """What an out-of-memory row would have needed, where its solver said (MUMPS's estimate of its
    factorization plus the process before it, ``rss_base_mb``); ``None`` otherwise."""
    est = re.search(r"MUMPS estimated (\d+) MB", record.get("message", ""))
    return float(est.group(1)) + record["rss_base_mb"] if est and "rss_base_mb" in record else None


def _worker(n, medium, method, model, device, rtol, maxiter, memory_gb, fgmres, queue, sources=1,
            network_precision=None):
    import os
    import resource

    # one thread per row unless OMP_NUM_THREADS says otherwise, as under the `hybrid` command (STACK.md
    # gotcha 8): every method on one core (MUMPS's dense fronts, numpy's BLAS, torch's convolutions alike)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if memory_gb:
        # address space, not resident memory: an allocation beyond it fails inside the process (MemoryError,
        # MUMPS error -13) instead of the kernel's OOM killer choosing a process of the machine
        limit = int(memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    oom = f"out of memory (limit {memory_gb:.1f} GB)" if memory_gb else "out of memory"
    try:
        from solvers.limits import release_memory, reset_peak_memory, resident_mb
        from solvers.linear import LinearProblem, init
        from solvers.problems.helmholtz import grid_helmholtz, wavenumber
        from solvers.problems.helmholtz_grid import point_sources
        from solvers.sampling.media import wave_speed

        t0 = time.perf_counter()
        system = grid_helmholtz(wave_speed(medium, n, SEED, 0), wavenumber(n), SOURCE)
        assemble_s = time.perf_counter() - t0
        assembly_peak = _peak_mb()
        # the solvers need A, b, the shifted Laplacian's k2M and the grid's dof order, not the mesh: free it
        # (1.3 GB at n = 2048) and the assembly's garbage for every method alike
        lp = LinearProblem.from_system(system)
        if hasattr(lp.p.grid, "detached"):
            lp = dataclasses.replace(lp, p=dataclasses.replace(lp.p, grid=lp.p.grid.detached()))
        dofs = int(system.A.shape[0])
        del system
        release_memory()
        base = resident_mb() or assembly_peak
        # from here the high-water mark is the solve's own (where it can be reset); the row's peak is the
        # larger of the two, so it still includes the assembly
        solve_only = reset_peak_memory()
        from ..commands.solve import make_method

        alg = make_method(method, model if method.startswith("learned") else None, device)
        applied = {}
        for key, value in (fgmres or {}).items():
            if hasattr(alg, key):
                alg = dataclasses.replace(alg, **{key: value})
                applied[key] = value
        if network_precision is not None and set_network_precision(alg, network_precision):
            applied["network_precision"] = network_precision
        cache = init(lp, alg, rtol=rtol, maxiter=maxiter)
        sol = cache.solve()
        more = []
        extra = more_sources(sources) if sol.converged else []
        for src, b in zip(extra, point_sources(n, extra)):
            # another right-hand side on the same system: the setup (factors, hierarchy, coarse solve) is reused
            s = cache.solve(lp.p.grid.to_dofs(b.reshape(n + 1, n + 1)))
            more.append({"source": list(src), "iterations": s.iterations, "solve_s": s.stats["solve_s"],
                         "rel_residual": s.residual, "converged": bool(s.converged and s.residual <= rtol)})
        solve_peak = _peak_mb()
        peak = max(solve_peak, assembly_peak)
        pc_stats = sol.stats.get("precond", {}) or {}
        rec = {"iterations": sol.iterations, "setup_s": sol.stats["setup_s"], "solve_s": sol.stats["solve_s"],
               "total_s": sol.stats["setup_s"] + sol.stats["solve_s"], "assemble_s": assemble_s,
               "rel_residual": sol.residual, "converged": bool(sol.converged and sol.residual <= rtol),
               "retcode": sol.retcode.name, "rss_assembly_mb": assembly_peak, "rss_base_mb": base,
               "rss_peak_mb": peak, "rss_solver_mb": (solve_peak if solve_only else peak) - base, "dofs": dofs, "threads": int(os.environ["OMP_NUM_THREADS"]),
               "history": [float(h) for h in sol.residuals]}
        if not rec["converged"]:
            rec["message"] = f"{oom}: {sol.message}" if "OUTMEMORY" in sol.message else sol.message
        rec.update({k: v for k, v in pc_stats.items() if k in ("network_s", "network_calls", "accepted", "rejected",
                                                                 "network_gain")})
        rec.update(applied)
        if more:
            rec["more_sources"] = more
        queue.put(rec)
    except MemoryError:
        queue.put({"failed": f"{oom}: MemoryError"})
    except Exception as e:  # noqa: BLE001 - recorded in the benchmark row, not raised
        msg = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        queue.put({"failed": f"{oom}: {msg}" if _is_oom(e) else msg})


def _peak_mb() -> float:
    """The row process's own resident peak (``VmHWM``; ``ru_maxrss`` would include the parent's size at the
    fork, :func:`solvers.limits.peak_mb`), ``ru_maxrss`` where ``/proc`` does not say."""
    import resource

    from solvers.limits import peak_mb

    own = peak_mb()
    return own if own is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_OOM_TEXT = re.compile(r"INFOG?\(1\)\s*=\s*-13|out of memory|insufficient memory|memory allocation", re.I)


def _is_oom(e: Exception) -> bool:
    """PETSc/MUMPS report a failed allocation as an error code, not MemoryError (PETSc 55 = PETSC_ERR_MEM;
    MUMPS INFOG(1) = -13)."""
    return getattr(e, "ierr", None) == 55 or bool(_OOM_TEXT.search(str(e)))


def set_network_precision(alg, precision: str) -> bool:
    """Set ``precision`` on the learned preconditioner inside ``alg`` (directly its ``precond`` or the ``inner``
    of a deflation around it); False when ``alg`` has none (a classical method: the row is left as it is)."""
    pc = getattr(alg, "precond", None)
    while pc is not None and not hasattr(pc, "precision"):
        pc = getattr(pc, "inner", None)
    if pc is None:
        return False
    from hybrid.precond.helmholtz import check_precision

    pc.precision = check_precision(precision)
    return True


def fgmres_options(restart=None, z_precision=None) -> dict:
    """The FGMRES settings that override the iterative methods' own (``None``: theirs)."""
    opts = {"restart": None if restart is None else int(restart), "z_precision": z_precision}
    return {k: v for k, v in opts.items() if v is not None}


def run_one(n, medium, method, model=None, device="cpu", rtol=1e-8, maxiter=3000, max_seconds=1800.0,
            memory_gb=None, restart=None, z_precision=None, sources=1, network_precision=None) -> dict:
    """One row in a fresh process (peak memory of its own, address space limited to ``memory_gb``);
    failures are recorded, not raised. ``restart`` and ``z_precision`` override the FGMRES settings of the
    iterative methods (restart 30, double). ``sources > 1``: after the first solve, ``sources - 1`` more
    right-hand sides (:func:`more_sources`) with the same setup, recorded under ``more_sources``.
    ``network_precision``: the learned rows' network pass (``"bfloat16"``: autocast), recorded in the row."""
    fgmres = fgmres_options(restart, z_precision)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_worker, args=(n, medium, method, None if model is None else str(model), device, rtol,
                                          maxiter, memory_gb, fgmres, q, int(sources), network_precision))
    t0 = time.perf_counter()
    p.start()
    rec = None
    while rec is None:
        try:
            rec = q.get(timeout=5)
        except Exception:  # noqa: BLE001 - queue.Empty
            if not p.is_alive():
                limit = f", under the {memory_gb:.1f} GB address-space limit" if memory_gb else ""
                rec = {"failed": f"process died (exit code {p.exitcode}{limit}; out of memory if -9)"}
            elif time.perf_counter() - t0 > max_seconds:
                p.kill()
                rec = {"failed": f"time limit {max_seconds:.0f} s"}
    p.join(timeout=30)
    row = {"n": n, "medium": medium, "method": method, "distribution": distribution(medium), **rec}
    if model is not None and method.startswith("learned"):  # which network a learned row ran (a user trial)
        row["model"] = _shown_path(model)
    return row


def _shown_path(path) -> str:
    """``path`` relative to the repository when inside it (as the README's commands name checkpoints)."""
    p = Path(path).resolve()
    root = Path(__file__).resolve().parents[2]
    return str(p.relative_to(root)) if p.is_relative_to(root) else str(p)


def distribution(medium: str) -> str:
    """``"in"`` for the training media at the training contrast (``c_max = 2``), ``"out"`` otherwise."""
    name, c_max = parse_medium(medium)
    return "in" if name in IN_DISTRIBUTION and c_max in (None, 2.0) else "out"


def check_media(media) -> list[str]:
    """The media of ``--problems`` (names of :data:`MEDIA`, or ``NAME@C_MAX`` with another contrast than
    2, e.g. ``checkerboard@1.4``), each once; a clear error for anything else."""
    for m in media:
        # the name first: the generator's own message would list media the benchmark does not run
        if str(m).split("@")[0] not in MEDIA:
            raise ValueError(f"--problems {m}: helmholtz media are {', '.join(MEDIA)} (optionally NAME@C_MAX)")
        parse_medium(m)  # the contrast
    if len(set(media)) < len(media):
        raise ValueError(f"--problems {','.join(media)}: each medium once")
    return list(media)


def check_sizes(sizes, multigrid: bool = True) -> list[int]:
    """The ``--sizes`` of a Helmholtz suite, each once; with ``multigrid`` even numbers >= 8 (the shifted
    Laplacian's geometric multigrid halves the grid at least once), else numbers >= 2."""
    if len(set(sizes)) < len(sizes):
        raise ValueError(f"--sizes {','.join(map(str, sizes))}: each size once")
    for n in sizes:
        if (n < 8 or n % 2) if multigrid else n < 2:
            rule = "even numbers >= 8 (the multigrid halves the grid)" if multigrid else "numbers >= 2"
            raise ValueError(f"--sizes {n}: helmholtz sizes are {rule}")
    return list(sizes)


def run(sizes, media=MEDIA, methods=METHODS, model=None, device="cpu", max_seconds=1800.0, skip=None, log=print,
        plot=None, on_record=None, memory_gb=None, restart=None, z_precision=None, sources=1,
        network_precision=None, repeats: int = 1) -> list[dict]:
    """Rows for every size, medium and method. ``skip(n, method)`` -> True leaves a row out (e.g.
    SuperLU beyond 512, which took 352 s at n = 1024). ``on_record(records)`` after every run (the
    command writes the partial results file, so an interrupted run of an hour keeps what it measured).
    ``repeats > 1``: each row that many times, the methods interleaved within each repeat (machine noise
    hits them alike), recorded as the run of median total time with every run's (:func:`median_run`)."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    records = []
    for n in sizes:
        for medium in media:
            runs: dict[str, list] = {}
            for _ in range(repeats):
                for name in methods:
                    net = model if model is not None or not name.startswith("learned") else default_model(name)
                    if name.startswith("learned") and not Path(net).exists():
                        continue
                    if skip is not None and skip(n, name):
                        continue
                    if any("failed" in r or not r["converged"] for r in runs.get(name, ())):  # once is enough
                        continue
                    rec = run_one(n, medium, name, net, device, max_seconds=max_seconds, memory_gb=memory_gb,
                                  restart=restart, z_precision=z_precision, sources=sources,
                                  network_precision=network_precision)
                    runs.setdefault(name, []).append(rec)
                    if on_record is not None:  # what is measured so far, the medium's rows included
                        on_record(records + [median_run(r) for r in runs.values()])
                    if "failed" in rec:
                        log(f"n={n:5d} {medium:16s} {name:20s} FAILED: {rec['failed']}")
                    else:
                        log(f"n={n:5d} {medium:16s} {name:20s} {rec['retcode']:9s} it={rec['iterations']:5d} "
                            f"total={rec['total_s']:8.2f}s peak={rec['rss_peak_mb']:7.0f} MB "
                            f"res={rec['rel_residual']:.1e}")
            records += [median_run(r) for r in runs.values()]
    if plot is not None and any("failed" not in r for r in records):
        figure(records, plot)
    return records


def median_run(runs: list[dict]) -> dict:
    """One row from the runs of one (n, medium, method): the run of median total time (the lower one of
    an even number), with ``repeats`` (1 for a single run) and every run's ``total_s_runs``; a run that
    failed or did not converge is the row (with ``bad_runs``, how many did): a method that fails once is
    not reliable."""
    if len(runs) == 1:
        return {**runs[0], "repeats": 1}
    bad = [r for r in runs if "failed" in r or not r.get("converged")]
    if bad:
        return {**bad[0], "repeats": len(runs), "bad_runs": len(bad)}
    ordered = sorted(runs, key=lambda r: r["total_s"])
    return {**ordered[(len(ordered) - 1) // 2], "repeats": len(runs), "total_s_runs": [r["total_s"] for r in runs]}


def table(records) -> str:
    head = ("| n | dofs | medium | method | iters | setup s | solve s | total s | network s | peak RSS MB | "
            "true rel. res. | converged |")
    rows = [head, "|" + "---|" * 12]
    for r in records:
        if "failed" in r:
            rows.append(f"| {r['n']} | | {r['medium']} | {r['method']} | | | | | | | | {r['failed']} |")
            continue
        net = f"{r['network_s']:.2f}" if "network_s" in r else ""
        spread = f" ({min(r['total_s_runs']):.2f}-{max(r['total_s_runs']):.2f})" if "total_s_runs" in r else ""
        rows.append(f"| {r['n']} | {r['dofs']} | {r['medium']} | {r['method']} | {r['iterations']} | {r['setup_s']:.2f} | "
                    f"{r['solve_s']:.2f} | {r['total_s']:.2f}{spread} | {net} | {r['rss_peak_mb']:.0f} | {r['rel_residual']:.1e} | "
                    f"{r['converged']}{' (' + r['message'] + ')' if r.get('message') else ''} |")
    if any("more_sources" in r for r in records):  # a --sources run: its further solves too
        rows += ["", sources_table([r for r in records if "more_sources" in r or "failed" in r])]
    return "\n".join(rows)


SUMMARY_METHODS = ("direct-mumps", "direct-superlu", "cslp+fgmres", "cslp2+fgmres", "learned-cslp+fgmres")


def _per_medium_table(records, methods, cell, ratio=("learned-cslp+fgmres", "cslp+fgmres"),
                      ratio_label="learned / cslp iterations") -> str:
    """One line per (n, medium), one ``cell(row)`` per method (``None`` when absent), and the iteration
    ratio of the two methods ``ratio`` (learned, classical) where both converged: the layout of the
    README's Helmholtz tables."""
    head = "| n | medium | " + " | ".join(methods) + f" | {ratio_label} |"
    rows = [head, "|---|---|" + "---|" * (len(methods) + 1)]
    order = {m: i for i, m in enumerate(MEDIA)}
    media = sorted(dict.fromkeys(r["medium"] for r in records),
                   key=lambda m: (order.get(parse_medium(m)[0], len(order)), m))
    for n in sorted({r["n"] for r in records}):
        for medium in media:
            row = {r["method"]: r for r in records if r["n"] == n and r["medium"] == medium}
            if not row:
                continue
            cells = [cell(row.get(m)) for m in methods]
            lrn, c = row.get(ratio[0]), row.get(ratio[1])
            ok = c and lrn and all("failed" not in x and x["converged"] for x in (c, lrn))
            its = f"{lrn['iterations'] / c['iterations']:.2f}" if ok else ""
            tag = medium if distribution(medium) == "in" else f"{medium} (OOD)"
            rows.append(f"| {n} | {tag} | " + " | ".join(cells) + f" | {its} |")
    return "\n".join(rows)


def summary_table(records) -> str:
    """The README's table: iterations, total time, peak memory per method (what an out-of-memory row
    would have needed), and the learned / classical iteration ratio."""
    return _per_medium_table(records, SUMMARY_METHODS, _summary_cell)


#: the deflated methods in pairs of equal work per iteration: one deflated step with one / two cycles (the
#: cycle-network-cycle of learned-cslp-def has two), two deflated steps with and without a network between
DEFLATION_METHODS = ("direct-mumps", "mumps-blr+fgmres", "cslp-def+fgmres", "cslp2-def+fgmres",
                     "learned-cslp-def+fgmres", "cslp-def2+fgmres", "learned-def+fgmres")


def deflation_table(records) -> str:
    """The README's table of the deflated methods beside MUMPS, exact and block-low-rank
    (``helmholtz-deflation.json``), with the iterations of ``learned-def+fgmres`` over those of its
    classical counterpart ``cslp-def2+fgmres`` (the same two deflated steps without the network)."""
    return _per_medium_table(records, DEFLATION_METHODS, _summary_cell,
                             ratio=("learned-def+fgmres", "cslp-def2+fgmres"),
                             ratio_label="learned-def / cslp-def2 iterations")


#: the time goal at n = 1024 (less total time than MUMPS), measured with ``--repeats 3``: MUMPS, the fastest
#: classical deflated method and the learned one
GOAL_METHODS = ("direct-mumps", "cslp2-def+fgmres", "learned-def+fgmres")


def goal_table(records) -> str:
    """The README's table of repeated runs (``--repeats``): the median total time with the spread of the
    runs, for MUMPS and the two fastest deflated methods, and the learned / classical iteration ratio."""
    return _per_medium_table(records, GOAL_METHODS, _summary_cell, ratio=("learned-def+fgmres", "cslp2-def+fgmres"),
                             ratio_label="learned-def / cslp2-def iterations")


def sources_table(records) -> str:
    """The README's table of many right-hand sides with one setup (``--sources``): the setup, the first
    solve, the further solves (mean time and iterations) and all of them together."""
    rows = ["| n | medium | method | sources | setup s | first solve s (it) | each further source s (it) | "
            "all sources s |", "|---|---|---|---|---|---|---|---|"]
    for r in records:
        if "failed" in r or not r.get("converged"):
            rows.append(f"| {r['n']} | {r['medium']} | {r['method']} | | | | | "
                        f"{r.get('failed') or r.get('message', 'not converged')} |")
            continue
        more = r.get("more_sources", [])
        ok = all(m["converged"] for m in more)
        its = [m["iterations"] for m in more]
        each = (f"{np.mean([m['solve_s'] for m in more]):.2f} ({min(its)}-{max(its)})" if more else "-") + \
            ("" if ok else " (not all converged)")
        total = r["total_s"] + sum(m["solve_s"] for m in more)
        rows.append(f"| {r['n']} | {r['medium']} | {r['method']} | {1 + len(more)} | {r['setup_s']:.1f} | "
                    f"{r['solve_s']:.2f} ({r['iterations']}) | {each} | {total:.1f} |")
    return "\n".join(rows)


def _summary_cell(r) -> str:
    if r is None:
        return "-"
    if "failed" in r:
        return f"failed: {r['failed']}"
    if not r["converged"]:
        need = needed_mb(r)
        limit = re.search(r"limit ([0-9.]+) GB", r.get("message", ""))
        if need is not None and limit:
            return (f"out of memory after {r['total_s']:.0f} s (limit {limit.group(1)} GB; MUMPS's estimate "
                    f"{(need - r['rss_base_mb']) / 1000:.1f} GB for the factorization)")
        return f"not converged: {r.get('message', r['retcode'])}"
    its = "" if r["method"].startswith("direct") else f"{r['iterations']} it, "
    spread = f" ({min(r['total_s_runs']):.1f}-{max(r['total_s_runs']):.1f})" if "total_s_runs" in r else ""
    return f"{its}{r['total_s']:.1f} s{spread}, {r['rss_peak_mb']:.0f} MB{_settings(r)}"


def _settings(r) -> str:
    """The settings of a row that overrode the methods' own (``--restart``, ``--z-precision``,
    ``--network-precision``)."""
    notes = ([f"FGMRES({r['restart']})"] if "restart" in r else []) + \
            (["single-precision Z"] if r.get("z_precision") == "single" else []) + \
            (["bfloat16 network"] if r.get("network_precision") == "bfloat16" else [])
    return f" ({', '.join(notes)})" if notes else ""


def gpu_table(records) -> str:
    """The README's table of the GPU rows (``scripts/device_helmholtz_bench.py``): iterations, total time
    with the network's and the host's coarse LU's share, device and host peak memory, and the ratio."""
    return _per_medium_table(records, ("cslp+fgmres", "learned-cslp+fgmres"), _gpu_cell)


def _gpu_cell(r) -> str:
    if r is None:
        return "not run"
    if "failed" in r:
        return f"failed: {r['failed']}"
    if not r["converged"]:
        return f"not converged: {r['iterations']} it, true residual {r['rel_residual']:.1e}, {r['total_s']:.0f} s"
    net = f"network {r['network_s']:.1f} s, " if "network_s" in r else ""
    host = f"{r['rss_peak_mb']:.0f} MB" if r.get("rss_peak_mb") is not None else "-"
    return (f"{r['iterations']} it, {r['total_s']:.1f} s ({net}coarse LU {r['coarse_s']:.1f} s), "
            f"GPU {r['device_peak_mb']:.0f} MB + host {host}")


def figure(records, path) -> Path:
    """Total time and peak memory against unknowns, one line per method (medians over media); a row that ran
    out of memory is an x at the memory its solver estimated it needed (MUMPS says so)."""
    import statistics

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    colors, markers = plt.get_cmap("tab20").colors, "os^DvPX<>h"
    for i, name in enumerate(dict.fromkeys(r["method"] for r in records)):
        pts = {}
        for r in records:
            if r["method"] == name and "failed" not in r and r["converged"]:
                pts.setdefault(r["dofs"], []).append((r["total_s"], r["rss_peak_mb"]))
        if not pts:
            continue
        dofs = sorted(pts)
        # one look per method (matplotlib's ten colours repeat beyond ten lines): learned methods dashed,
        # GPU rows dotted
        style = dict(color=colors[(2 * i) % 20 + (i // 10) % 2], marker=markers[i % len(markers)], label=name,
                     linestyle=":" if "(" in name else "--" if name.startswith("learned") else "-")
        axes[0].loglog(dofs, [statistics.median(t for t, _ in pts[d]) for d in dofs], **style)
        axes[1].loglog(dofs, [statistics.median(m for _, m in pts[d]) for d in dofs], **style)
    for r in records:  # out-of-memory rows: an x at what the solver would have needed, when it said so
        need = needed_mb(r)
        if need is not None and "dofs" in r:
            axes[1].loglog([r["dofs"]], [need], "x", color="k", ms=9)
            axes[1].annotate(f"{r['method']}: out of memory\n(its estimate, n = {r['n']})", (r["dofs"], need),
                             textcoords="offset points", xytext=(-150, -4), fontsize=8)
    axes[0].set(xlabel="unknowns", ylabel="total time (s), median over media", title="time to 1e-8")
    axes[1].set(xlabel="unknowns", ylabel="peak memory (MB; GPU rows: host + device)", title="peak memory")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    from meshes.plot import save_figure

    return save_figure(fig, path)
