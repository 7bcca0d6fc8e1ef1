"""Issue 9, items 1 and 2: one writer per dataset, no orphans, an index that never shrinks, and an error
on one MPI rank ends the whole job with its message (no hang)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from solvers.data import generate, make_generator, store
from solvers.data.generate import run_attrs
from solvers.data.lock import DatasetBusy, WriterLock, lock_path

BIN = Path(sys.executable).parent


def count(path):
    with h5py.File(path, "r") as f:
        return int(f["complete"][...].sum()), bool(f.attrs["consolidated"])


def test_second_writer_is_refused_and_nothing_changes(tmp_path):
    out = tmp_path / "d.h5"
    with WriterLock(out):  # another writer holds the file
        with pytest.raises(DatasetBusy, match=r"d\.h5 is being written by another process \(pid \d+"):
            generate("darcy", 8, 8, out, block=4, progress=False)
        assert not out.exists() and not store.parts_dir(out).exists()
    s = generate("darcy", 8, 8, out, block=4, progress=False)  # released: the run goes through
    assert s["generated"] == 8 and count(out) == (8, True)
    assert not lock_path(out).exists()


def test_index_never_replaces_a_complete_file(tmp_path):
    """Before: a failing second writer's final index(force=True) replaced 2000 complete samples by 0."""
    out = tmp_path / "d.h5"
    generate("darcy", 12, 8, out, block=4, progress=False)
    gen = make_generator("darcy", 8, 0, {})
    attrs = run_attrs("darcy", 12, 8, 0, {}, 4, gen)
    store.write_index(out, attrs, gen.fields(), gen.mesh_arrays(), {})  # the parts folder is gone
    assert count(out) == (12, True)
    with h5py.File(out, "r") as f:
        assert np.isfinite(f["solution"][...]).all()


def _pids_writing(path) -> list[int]:
    out = subprocess.run(["pgrep", "-f", str(path)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out if int(p) != os.getpid()]


def test_kill_9_of_workers_parent_leaves_no_orphans_and_rerun_completes(tmp_path):
    """Before: the mpiexec ranks kept running after kill -9 of the parent, and the rerun left 0-1152 of
    2000 samples (`cannot consolidate ... blocks missing`)."""
    out = tmp_path / "w.h5"
    cmd = [str(BIN / "hybrid"), "generate", "darcy", "--samples", "4000", "--n", "32", "--workers", "2",
           "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(store.parts_dir(out).glob("block_*.h5"))) < 4:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and _pids_writing(out):
        time.sleep(0.1)
    assert _pids_writing(out) == [], "ranks outlived their parent"
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert count(out) == (4000, True)
    gen = make_generator("darcy", 32, 0)
    with h5py.File(out, "r") as f:
        for i in (0, 1999, 3999):
            assert np.array_equal(f["solution"][i], gen.sample(i)["solution"])


def _mpi(args, tmp_path, timeout=120):
    return subprocess.run([str(BIN / "mpiexec"), "-n", "2", str(BIN / "hybrid"), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout)


def test_error_on_one_rank_ends_generation(tmp_path):
    """Before: rank 1 raised (non-finite solution) and rank 0 waited forever."""
    proc = _mpi(["generate", "darcy", "--samples", "32", "--n", "16", "--param", "coefficient=log-normal",
                 "--param", "sigma=40", "--out", "f.h5", "--no-progress"], tmp_path)
    assert proc.returncode != 0, proc.stderr
    assert "non-finite values in 'solution'" in proc.stderr and "hybrid generate: error" in proc.stderr
    n, consolidated = count(tmp_path / "f.h5")  # what finished is indexed and kept
    assert not consolidated and n % 16 == 0


def test_error_under_mpi_ends_solve(tmp_path):
    """Before: `--out DIR` raised IsADirectoryError on rank 0 only (after the solve) and the job hung. Now
    every rank checks `--out` before any work, and whichever rank reports first ends the job."""
    import re

    (tmp_path / "D.xdmf").mkdir()
    proc = _mpi(["solve", "darcy", "--n", "16", "--method", "petsc-gamg+cg", "--out", "D.xdmf"], tmp_path)
    assert proc.returncode != 0, proc.stderr
    assert "D.xdmf" in proc.stderr and re.search(r"hybrid solve: error \(rank [01] of 2\)", proc.stderr), proc.stderr


# --- item 7: copies, moves, SIGTERM, stale temporaries, damaged shards ---------------------------------

def _partial(tmp_path, name="p.h5", samples=64, stop_after=2):
    """A partial dataset: generation interrupted (Ctrl-C) after ``stop_after`` blocks of 8."""
    out = tmp_path / name
    cls = type(make_generator("darcy", 8, 0))
    original = cls.sample

    def sample(self, i):
        if i >= stop_after * 8:
            raise KeyboardInterrupt
        return original(self, i)

    cls.sample = sample
    try:
        with pytest.raises(KeyboardInterrupt):
            generate("darcy", samples, 8, out, block=8, progress=False)
    finally:
        cls.sample = original
    return out


def test_copied_partial_dataset_reads_its_parts(tmp_path):
    """Before: the index held absolute shard paths; a moved copy read NaN for 'complete' samples."""
    import shutil

    out = _partial(tmp_path)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.move(str(out), moved / out.name)
    shutil.move(str(store.parts_dir(out)), moved / store.parts_dir(out).name)
    with h5py.File(moved / out.name, "r") as f:
        complete = f["complete"][...]
        assert complete.sum() == 16 and np.isfinite(f["solution"][complete]).all()
    store.check_readable(moved / out.name)


def test_partial_dataset_without_parts_is_refused(tmp_path):
    import shutil

    out = _partial(tmp_path)
    shutil.copy(out, tmp_path / "copy.h5")
    shutil.rmtree(store.parts_dir(out))
    with pytest.raises(ValueError, match=r"copy\.h5 is an unfinished dataset \(index over 16 complete samples\) "
                                         r"whose parts are missing"):
        store.check_readable(tmp_path / "copy.h5")


def test_stale_temporaries_removed_and_damaged_shard_regenerated(tmp_path):
    out = _partial(tmp_path)
    stale = tmp_path / f".{out.name}.999999.tmp"  # kill -9 during consolidation left this
    stale.write_bytes(b"x" * 1000)
    shard = store.shard_path(out, 1)
    shard.write_bytes(shard.read_bytes()[:300])  # truncated shard
    s = generate("darcy", 64, 8, out, block=8, progress=False)
    assert s["generated"] == 56 and count(out) == (64, True)
    assert not stale.exists()
    gen = make_generator("darcy", 8, 0)
    with h5py.File(out, "r") as f:
        assert np.array_equal(f["solution"][9], gen.sample(9)["solution"])


def test_sigterm_writes_the_index(tmp_path):
    """Before: PETSc's SIGTERM handler aborted with a stale index (0 listed while shards existed)."""
    import signal

    out = tmp_path / "t.h5"
    cmd = [str(BIN / "hybrid"), "generate", "darcy", "--samples", "40000", "--n", "16", "--block", "8",
           "--out", str(out), "--no-progress"]
    err = tmp_path / "stderr.txt"
    with open(err, "w") as fh:  # a file, not a pipe: an unread pipe can fill and block the child
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=fh, text=True)
        deadline = time.time() + 60
        while time.time() < deadline and len(list(store.parts_dir(out).glob("block_*.h5"))) < 30:
            time.sleep(0.02)
        assert proc.poll() is None, f"finished before SIGTERM: {err.read_text()[-2000:]}"
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"no exit 60 s after SIGTERM: {err.read_text()[-2000:]}") from None
    on_disk = len(list(store.parts_dir(out).glob("block_*.h5")))
    assert count(out) == (8 * on_disk, False)
    assert not lock_path(out).exists()
