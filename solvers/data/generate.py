"""``generate(problem, samples, n, out, ...)``: produce a dataset with workers or MPI ranks, resumably.

Blocks of consecutive samples are the unit of work and of writing (see :mod:`solvers.data.store`).
Parallelism is MPI's: under ``mpiexec -n K`` rank ``r`` takes the missing blocks ``r, r+K, ...`` and
rank 0 indexes and consolidates; ``workers=K`` from a single process relaunches the same generation
under ``mpiexec -n K`` (the MPICH that ships with the dolfinx wheel), so there is one parallel code
path. Sample ``i`` depends on ``(seed, i)`` only, so every split gives the same arrays.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from meshes import _mpi
from ..limits import check_disk, check_memory, unit_square_dofs
from ..versions import versions
from . import store
from .generators import GenerationError, make_generator
from .lock import DatasetBusy, WriterLock


#: the index file is rewritten at most this often while generating (and always at the end)
INDEX_EVERY_S = 2.0


def run_attrs(problem: str, samples: int, n: int, seed: int, params: dict, block: int, gen) -> dict:
    return {"problem": problem, "n": int(n), "seed": int(seed), "samples": int(samples), "block": int(block),
            "params": gen.params, "pde": type(gen).__doc__.strip().splitlines()[0],
            "mesh": (f"{gen.params['mesh']}, P1, {gen.asm.n} nodes (arrays are nodal values, dof order; "
                     "n = 0: not applicable)"
                     if gen.params.get("mesh") else
                     f"unit_square({n}), P1, {n + 1}x{n + 1} nodes (grid arrays: row j at y=j/n)"),
            "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "versions": versions()}


def _make_block(gen, block: int, block_size: int, samples: int) -> tuple[int, dict]:
    start, stop = block * block_size, min(samples, (block + 1) * block_size)
    outs = [gen.sample(i) for i in range(start, stop)]
    return start, {k: np.stack([o[k] for o in outs]) for k in outs[0]}


def stop_of(block, block_size, samples):
    return min(samples, (block + 1) * block_size)


def generate(problem: str, samples: int, n: int, out, seed: int = 0, params: dict | None = None,
             workers: int = 1, block: int = 16, progress: bool = True, comm=None) -> dict:
    """Generate (or complete) ``out``; returns a summary with timing.

    Raises :class:`store.DatasetMismatch` when ``out`` holds data from other parameters.
    """
    out = Path(out)
    comm = comm or _mpi.COMM_WORLD
    on_mesh = bool((params or {}).get("mesh"))
    if on_mesh and n:
        raise ValueError(f"n={n} does not apply to a mesh file (params['mesh'] sets the resolution); pass n=0")
    n = 0 if on_mesh else n
    if samples < 1 or block < 1 or workers < 1 or (n < 2 and not on_mesh):
        raise ValueError(f"need samples >= 1, n >= 2, block >= 1, workers >= 1 (got {samples}, {n}, {block}, {workers})")
    if not on_mesh:
        check_memory(f"n={n}", unit_square_dofs(n))
    if workers > 1 and comm.size == 1:
        return _relaunch_under_mpi(problem, samples, n, out, seed, params, workers, block, progress)
    t0 = time.perf_counter()
    gen = make_generator(problem, n, seed, params)  # validates parameters before touching files
    attrs = run_attrs(problem, samples, n, seed, params, block, gen)
    fields = gen.fields()
    check_disk(f"{samples} samples", samples * sum(int(np.prod(shape)) for shape in fields.values()) * 8, out)
    mesh = gen.mesh_arrays()
    fixed = gen.fixed_arrays() if hasattr(gen, "fixed_arrays") else {}
    summary = {"problem": problem, "samples": samples, "n": n, "out": str(out), "processes": max(workers, comm.size)}
    # one writer per file: rank 0 takes the lock, every rank learns whether it got it
    lock = WriterLock(out)
    busy = None
    if comm.rank == 0:
        try:
            lock.acquire()
        except DatasetBusy as e:
            busy = str(e)
    busy = comm.bcast(busy, root=0)
    if busy:
        raise DatasetBusy(busy)
    previous = _terminate_cleanly()
    try:
        return _generate_locked(gen, out, attrs, fields, mesh, fixed, samples, block, problem, progress, comm,
                                summary, t0)
    finally:
        if comm.rank == 0:
            lock.release()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived while generating: unwinds like Ctrl-C (it is one, to every handler), so the index
    is written on the way out."""


def _terminate_cleanly():
    """Turn SIGTERM into :class:`Terminated` for the duration of a run (PETSc installs a handler that
    aborts at once and left a stale index). Returns the previous handler (``None`` off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        _SIGTERM.set()
        raise Terminated(f"terminated by signal {signum}")

    _SIGTERM.clear()
    return signal.signal(signal.SIGTERM, handler)


#: set by the SIGTERM handler: an exception raised by a signal handler while C or Cython code runs (h5py's
#: callbacks) can be printed as "Exception ignored" and dropped, the likely reason why one loaded CI run
#: generated all 40000 samples after SIGTERM; the block loop checks the flag after every block
_SIGTERM = threading.Event()


def _generate_locked(gen, out, attrs, fields, mesh, fixed, samples, block, problem, progress, comm, summary, t0):
    if comm.rank == 0:
        try:
            store.check_compatible(out, attrs)
            already = store.is_complete(out)
        except Exception as e:  # noqa: BLE001 - every rank must learn about it, or the others wait forever
            already = e
    else:
        already = None
    already = comm.bcast(already, root=0)
    if isinstance(already, Exception):
        raise already
    if already:
        summary.update(generated=0, seconds=0.0, samples_per_s=0.0, note="already complete")
        return summary
    if comm.rank == 0:
        out.parent.mkdir(parents=True, exist_ok=True)
        store.begin(out, attrs)
        store.clean_stale(out)  # under the lock: leftovers of killed runs, nobody else's
    comm.barrier()
    last_index = [0.0]

    def index(force=False):
        """Rewrite the index over finished shards, at most every INDEX_EVERY_S seconds (a crash in
        between loses nothing: the shards are on disk and the next run re-indexes them)."""
        if comm.rank == 0 and (force or time.perf_counter() - last_index[0] >= INDEX_EVERY_S):
            store.write_index(out, attrs, fields, mesh, fixed)
            last_index[0] = time.perf_counter()

    nblocks = -(-samples // block)
    # rank 0 decides what is missing (before any rank writes), every rank takes every size-th block
    todo = sorted(set(range(nblocks)) - store.verified_blocks(out, fields, samples, block)) \
        if comm.rank == 0 else None
    todo = comm.bcast(todo, root=0)
    todo_count = sum(stop_of(b, block, samples) - b * block for b in todo)
    index(force=True)  # a valid (possibly empty) file exists from the start
    bar = _progress(todo_count, problem, progress and comm.rank == 0)
    made = 0
    failure = None
    t_gen = time.perf_counter()
    try:
        for b in todo[comm.rank::comm.size]:
            try:
                start, arrays = _make_block(gen, b, block, samples)
                store.write_shard(out, b, start, arrays)
            except Exception as e:  # noqa: BLE001 - reported on every rank below (no collective hangs)
                failure = f"{type(e).__name__}: {e}" if comm.size > 1 else None
                if comm.size == 1:
                    raise
                break
            count = stop_of(b, block, samples) - start
            made += count
            bar.update(count * comm.size)  # the other ranks progress alike
            index()
            if _SIGTERM.is_set():  # the handler's exception was swallowed (see _terminate_cleanly)
                raise Terminated("terminated by signal 15")
        if comm.size > 1:
            failures = comm.allgather(failure)
            made = comm.allreduce(made)
            bad = [(r, f) for r, f in enumerate(failures) if f]
            if bad:
                index(force=True)  # keep what the ranks finished
                r, f = bad[0]
                raise GenerationError(f"rank {r} of {comm.size} failed: {f} (finished blocks are kept; "
                                      f"rerunning resumes)")
    finally:
        bar.close()
        index(force=True)  # whatever happened, the file indexes every finished shard (rank 0, no collectives)
    seconds = time.perf_counter() - t_gen
    comm.barrier()
    if comm.rank == 0:
        store.consolidate(out, attrs, fields, mesh, fixed)
    comm.barrier()
    summary.update(generated=made, seconds=seconds, samples_per_s=made / seconds if seconds > 0 else 0.0,
                   total_s=time.perf_counter() - t0)
    return summary


def mpiexec() -> str:
    """The ``mpiexec`` beside this Python (the dolfinx wheel's MPICH), else the one on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = here if os.path.exists(here) else shutil.which("mpiexec")
    if not found:
        raise RuntimeError("mpiexec not found: it ships with dolfinx-solver-real in the virtual environment")
    return found


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the parent dies (``kill -9`` of
    ``hybrid generate --workers W`` must not leave mpiexec and its ranks running as orphans: they kept
    writing and raced with the rerun). mpiexec forwards SIGTERM to the ranks."""
    try:
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: orphans stay possible, the writer lock still prevents a race
        pass


def _relaunch_under_mpi(problem, samples, n, out, seed, params, workers, block, progress) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        summary = os.path.join(tmp, "summary.json")
        cmd = [mpiexec(), "-n", str(workers), sys.executable, "-m", "hybrid.cli", "generate", problem,
               "--samples", str(samples), "--n", str(n), "--out", str(out), "--seed", str(seed),
               "--block", str(block), "--summary-json", summary]
        cmd += [f"--param={k}={json.dumps(v)}" for k, v in (params or {}).items()]
        if not progress:
            cmd.append("--no-progress")
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, text=True, preexec_fn=_die_with_parent,
                              stderr=None if progress else subprocess.PIPE)  # the progress bar is on stderr
        if proc.returncode != 0:
            msg = (proc.stderr or "").strip().splitlines()
            raise RuntimeError(f"generation under mpiexec -n {workers} failed "
                               f"({msg[-1] if msg else f'exit code {proc.returncode}, see above'})")
        return json.loads(open(summary).read())


class _NoBar:
    def update(self, k):
        pass

    def close(self):
        pass


def _progress(total: int, desc: str, enabled: bool):
    if not enabled or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=f"generate {desc}", unit="sample", smoothing=0.1)
