"""The n = 1024 and 2048 rows of ``hybrid bench helmholtz`` on a lent GPU (issue 11: "when a GPU is
available, rerun the n = 1024 and 2048 rows there and name the device").

The lent machines have torch, numpy and scipy but no DOLFINx or PETSc, so here the system is assembled by
:func:`solvers.problems.helmholtz_grid.assemble` (DOLFINx's matrices to rounding, in grid order; same media,
seed, wavenumber and source as the CPU benchmark) and solved by :mod:`hybrid.gpu.helmholtz`: the
shifted-Laplacian hierarchy built on the CPU, the cycle, FGMRES(30) and the network on the GPU. pyamg
(the hierarchy's smoother objects) travels as a wheel. ``direct-mumps`` cannot run there (no PETSc): its
rows stay the CPU ones. A first row at n = 128 checks that the GPU path gives the CPU path's iterations.

Rows are written after every solve (``--json``); a row that would start after ``--budget`` seconds is
skipped, so the command ends inside the lease.

Run (device):  python3 scripts/device_helmholtz_bench.py --json $OUT/helmholtz-gpu-solve.json
Run (here, CPU, small): python scripts/device_helmholtz_bench.py --sizes 64,128 --device cpu --json /tmp/h.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _packages_without_dolfinx():
    """Register ``solvers``, ``solvers.problems`` and ``hybrid.precond`` as bare packages, so that their
    numpy/torch-only modules import without the ``__init__`` files that load DOLFINx (no-op when DOLFINx
    is installed)."""
    try:
        import dolfinx  # noqa: F401
        return
    except ImportError:
        pass
    for name in ("solvers", "solvers.problems", "hybrid.precond"):
        mod = types.ModuleType(name)
        mod.__path__ = [str(ROOT / name.replace(".", "/"))]
        sys.modules[name] = mod


def _reset_peak_rss() -> None:
    """Start a new high-water mark of resident memory (Linux: ``echo 5 > /proc/self/clear_refs``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss_mb() -> float | None:
    """Peak resident memory since the last reset (``VmHWM``), in MB; ``None`` where /proc says nothing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1024,2048")
    ap.add_argument("--media", default="layered")
    ap.add_argument("--extra", default="1024:checkerboard,1024:grf,2048:checkerboard",
                    help="n:medium rows run after the main ones while the budget lasts")
    ap.add_argument("--check", type=int, default=128, help="size of the first, CPU-agreement row (0: none)")
    ap.add_argument("--model", default=str(ROOT / "bench" / "models" / "helmholtz_cslp.pt"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--coarse", default="cpu", help="coarsest-grid solve: cpu (the host LU), cupy, auto (the faster of the two on one trial) or krylov")
    ap.add_argument("--inner", type=int, default=10, help="FGMRES iterations of --coarse krylov")
    ap.add_argument("--budget", type=float, default=420.0, help="seconds after which no new row starts")
    ap.add_argument("--maxiter", type=int, default=3000)
    ap.add_argument("--scheme", default="VNV", help="learned correction: VNV (cycle, network, cycle) or VN")
    ap.add_argument("--methods", default="cslp+fgmres,learned-cslp+fgmres")
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    t_start = time.perf_counter()
    _packages_without_dolfinx()

    import torch

    from hybrid.bench.results import write_results
    from hybrid.gpu.helmholtz import solve_helmholtz
    from solvers.problems.helmholtz_grid import assemble, wavenumber
    from solvers.sampling.media import wave_speed

    SEED, SOURCE = 99, (0.5, 0.8)  # hybrid.bench.helmholtz's (that module imports the DOLFINx stack)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {name}; torch {torch.__version__}; {os.cpu_count()} CPU cores", flush=True)

    plan, methods = [], args.methods.split(",")
    if args.check:
        plan += [(args.check, "layered", m) for m in methods]
    for n in (int(s) for s in args.sizes.split(",") if s):
        for medium in args.media.split(","):
            plan += [(n, medium, m) for m in methods]
    for item in (s for s in args.extra.split(",") if s):
        n, medium = item.split(":")
        plan += [(int(n), medium, m) for m in methods]

    records, systems = [], {}
    checks = len(methods) if args.check else 0
    for i, (n, medium, method) in enumerate(plan):
        if time.perf_counter() - t_start > args.budget:
            print(f"n={n} {medium} {method}: skipped (budget {args.budget:.0f} s spent)", flush=True)
            continue
        _reset_peak_rss()
        try:
            if (n, medium) not in systems:
                systems.clear()  # one system in memory at a time
                t0 = time.perf_counter()
                A, k2M, b = assemble(wave_speed(medium, n, SEED, 0), wavenumber(n), SOURCE)
                systems[(n, medium)] = (A, k2M, b, time.perf_counter() - t0)
            A, k2M, b, assemble_s = systems[(n, medium)]
            model = args.model if method.startswith("learned") else None
            row = solve_helmholtz(A, k2M, b, (n + 1, n + 1), model=model, device=device, coarse=args.coarse,
                                  inner=args.inner, maxiter=args.maxiter, scheme=args.scheme)
            row.pop("x")
            row["rss_peak_mb"] = _peak_rss_mb()  # host: this row's peak (assembly, hierarchy, solve)
            row.update({"n": n, "medium": medium, "method": method, "assemble_s": assemble_s, "device": name,
                        "distribution": "in" if medium in ("grf", "layered") else "out",
                        "threads": torch.get_num_threads()})
            if model:
                row["model"], row["scheme"] = Path(model).name, args.scheme
            if i < checks:
                row["check"] = True  # the agreement row: includes CUDA's start-up, not a timing
            print(f"n={n:5d} {medium:12s} {method:20s} it={row['iterations']:5d} setup={row['setup_s']:6.2f}s "
                  f"solve={row['solve_s']:7.2f}s net={row.get('network_s', 0):6.2f}s coarse={row['coarse']}:"
                  f"{row['coarse_s']:6.2f}s res={row['rel_residual']:.1e} dev={row.get('device_peak_mb', 0):.0f}MB "
                  f"rss={row['rss_peak_mb'] or 0:.0f}MB", flush=True)
        except Exception as e:  # noqa: BLE001 - recorded as a failed row; the next one still runs
            row = {"n": n, "medium": medium, "method": method, "failed": f"{type(e).__name__}: {str(e)[:300]}"}
            print(f"n={n} {medium} {method}: FAILED {row['failed']}", flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
        records.append(row)
        write_results(args.json, "helmholtz-gpu-solve", records, device=name,
                      extra={"seed": SEED, "source": list(SOURCE), "rtol": 1e-8,
                             "note": "GPU path (hybrid.gpu); direct-mumps rows: bench/results/helmholtz-1024.json, "
                                     "helmholtz-2048.json (CPU)"})
    print(f"done in {time.perf_counter() - t_start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
