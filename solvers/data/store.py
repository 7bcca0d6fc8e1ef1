"""Crash-safe, resumable HDF5 datasets: atomic block shards while generating, one file at the end.

Protocol (why: a process killed inside an HDF5 write can leave a file that no longer opens):

- Samples are produced in blocks of ``block`` consecutive indices. A finished block is written to
  ``FILE.h5.parts/block_NNNNNN.h5`` under a temporary name and renamed, so a shard is either complete
  or absent; nothing half-written is ever readable.
- While generation is under way ``FILE.h5`` is a small file of HDF5 *virtual datasets* mapping the
  finished shards into the full arrays, plus a ``complete`` mask; it too is replaced atomically after
  each block, so at any moment (Ctrl-C, ``kill -9``, disk full) it is a valid file whose complete
  samples are readable.
- When every block exists the shards are consolidated into a self-contained ``FILE.h5`` (again via a
  temporary name and rename) and the parts folder is removed.
- Rerunning the same command skips the blocks whose shard exists. A run with different parameters is
  refused: the parameters are stored as attributes and compared.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np

FORMAT = "hybrid-dataset"
FORMAT_VERSION = 1


class DatasetMismatch(ValueError):
    """The target file (or its parts) was made with different parameters."""


def parts_dir(path: Path) -> Path:
    return path.with_name(path.name + ".parts")


def shard_path(path: Path, block: int) -> Path:
    return parts_dir(path) / f"block_{block:06d}.h5"


def _atomic_h5(path: Path):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    return tmp, h5py.File(tmp, "w")


def identity(attrs) -> dict:
    """The attributes that must agree for two runs to write the same dataset."""
    return {k: attrs[k] for k in ("problem", "n", "seed", "samples", "params", "block") if k in attrs}


def read_identity(path: Path) -> dict | None:
    meta = parts_dir(path) / "meta.json"
    if meta.exists():
        return identity(json.loads(meta.read_text()))
    if path.exists():
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise DatasetMismatch(f"{path} exists and is not a {FORMAT} file; refusing to overwrite it")
            a = dict(f.attrs)
            return identity({**a, "params": json.loads(a["params"]), "n": int(a["n"]), "seed": int(a["seed"]),
                             "samples": int(a["samples"]), "block": int(a["block"])})
    return None


def check_compatible(path: Path, attrs: dict) -> None:
    """Refuse to mix samples made with different parameters."""
    have = read_identity(path)
    want = identity(attrs)
    if have is not None and have != want:
        diff = {k: (have.get(k), want.get(k)) for k in want if have.get(k) != want.get(k)}
        raise DatasetMismatch(f"{path} holds a dataset made with different parameters "
                              f"({', '.join(f'{k}: file {a!r} vs now {b!r}' for k, (a, b) in diff.items())}); "
                              "use another --out or delete it")


def is_complete(path: Path) -> bool:
    if not path.exists() or parts_dir(path).exists():
        return False
    with h5py.File(path, "r") as f:
        return bool(f.attrs.get("consolidated", False)) and bool(np.all(f["complete"][...]))


def begin(path: Path, attrs: dict) -> None:
    """Record the run's parameters beside the parts (first run) after checking compatibility."""
    check_compatible(path, attrs)
    d = parts_dir(path)
    d.mkdir(parents=True, exist_ok=True)
    meta = d / "meta.json"
    if not meta.exists():
        tmp = meta.with_suffix(".tmp")
        tmp.write_text(json.dumps(attrs))
        tmp.replace(meta)


def clean_stale(path: Path) -> list[Path]:
    """Remove temporary files of earlier runs killed mid-write (``.FILE.h5.PID.tmp`` beside the file,
    ``.block_*.tmp`` in the parts). Only call it while holding the writer lock: then no live writer
    owns them."""
    stale = list(path.parent.glob(f".{path.name}.*.tmp"))
    if parts_dir(path).exists():
        stale += list(parts_dir(path).glob(".block_*.tmp"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def verified_blocks(path: Path, fields: dict[str, tuple], samples: int, block: int) -> set[int]:
    """The finished blocks whose shard opens and holds every field with the right shape; a damaged
    shard (truncated copy, disk error) is deleted so that the run makes it again."""
    good = set()
    for b in done_blocks(path):
        rows = min(samples, (b + 1) * block) - b * block
        try:
            with h5py.File(shard_path(path, b), "r") as f:
                ok = all(name in f and f[name].shape == (rows, *shape) for name, shape in fields.items())
                if ok:
                    for name in fields:  # read one sample per field: catches truncated data, not just headers
                        f[name][rows - 1]
        except (OSError, KeyError, ValueError):
            ok = False
        if ok:
            good.add(b)
        else:
            shard_path(path, b).unlink(missing_ok=True)
    return good


def check_readable(path: Path) -> None:
    """Refuse an unfinished dataset whose parts are gone (moved, deleted, copied without them):
    its virtual datasets would read as NaN while ``complete`` still claims the samples."""
    with h5py.File(path, "r") as f:
        if f.attrs.get("consolidated", True):
            return
        missing = set()
        for name, ds in f.items():
            if isinstance(ds, h5py.Dataset) and ds.is_virtual:
                for src in ds.virtual_sources():
                    if not (path.parent / src.file_name).exists():
                        missing.add(src.file_name)
        if missing:
            n = int(np.count_nonzero(f["complete"][...]))
            raise ValueError(f"{path} is an unfinished dataset (index over {n} complete samples) whose parts are "
                             f"missing ({len(missing)} shard file(s), e.g. {sorted(missing)[0]}); keep the "
                             f"{parts_dir(path).name} folder beside it, or rerun the generate command to finish it")


def done_blocks(path: Path) -> set[int]:
    d = parts_dir(path)
    return {int(p.stem.split("_")[1]) for p in d.glob("block_*.h5")} if d.exists() else set()


def write_shard(path: Path, block: int, start: int, arrays: dict[str, np.ndarray]) -> Path:
    """Write one block atomically (temporary name, fsync, rename)."""
    final = shard_path(path, block)
    tmp, f = _atomic_h5(final)
    try:
        with f:
            f.attrs["start"] = start
            for name, arr in arrays.items():
                f.create_dataset(name, data=arr)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        tmp.replace(final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def _write_header(f: h5py.File, attrs: dict, mesh: dict, fixed: dict) -> None:
    f.attrs["format"] = FORMAT
    f.attrs["format_version"] = FORMAT_VERSION
    for k, v in attrs.items():
        f.attrs[k] = json.dumps(v) if isinstance(v, (dict, list)) else v
    g = f.create_group("mesh")
    for k, v in mesh.items():
        g.create_dataset(k, data=v)
    for k, v in fixed.items():
        f.create_dataset(f"fixed/{k}", data=v)


def indexed_count(path: Path) -> int | None:
    """How many samples ``path`` holds (a consolidated file counts all), ``None`` if it is absent/unreadable."""
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                return None
            return int(np.count_nonzero(f["complete"][...]))
    except (OSError, KeyError):
        return None


def write_index(path: Path, attrs: dict, fields: dict[str, tuple], mesh: dict, fixed: dict) -> None:
    """(Re)write ``FILE.h5`` as virtual datasets over the finished shards, atomically."""
    N, B = int(attrs["samples"]), int(attrs["block"])
    blocks = sorted(done_blocks(path))
    complete = np.zeros(N, dtype=bool)
    for b in blocks:
        complete[b * B:min(N, (b + 1) * B)] = True
    have = indexed_count(path)
    if have is not None and have > int(complete.sum()):
        # never replace a file by one that indexes less (a consolidated file, or shards that vanished)
        return
    tmp, f = _atomic_h5(path)
    with f:
        _write_header(f, attrs, mesh, fixed)
        f.attrs["consolidated"] = False
        for name, shape in fields.items():
            layout = h5py.VirtualLayout(shape=(N, *shape), dtype=np.float64)
            for b in blocks:
                start, stop = b * B, min(N, (b + 1) * B)
                # relative to the index file's folder (HDF5 resolves it there): a copied or moved
                # dataset keeps reading its parts
                rel = f"{parts_dir(path).name}/{shard_path(path, b).name}"
                src = h5py.VirtualSource(rel, name, shape=(stop - start, *shape))
                layout[start:stop] = src
            f.create_virtual_dataset(name, layout, fillvalue=np.nan)
        f.create_dataset("complete", data=complete)
    tmp.replace(path)


def consolidate(path: Path, attrs: dict, fields: dict[str, tuple], mesh: dict, fixed: dict) -> None:
    """Copy every shard into one self-contained, chunked file; then drop the parts."""
    N, B = int(attrs["samples"]), int(attrs["block"])
    blocks = sorted(done_blocks(path))
    nblocks = -(-N // B)
    if blocks != list(range(nblocks)):
        raise RuntimeError(f"cannot consolidate {path}: blocks {sorted(set(range(nblocks)) - set(blocks))} missing")
    tmp, f = _atomic_h5(path)
    with f:
        _write_header(f, attrs, mesh, fixed)
        f.attrs["consolidated"] = True
        for name, shape in fields.items():
            ds = f.create_dataset(name, shape=(N, *shape), dtype=np.float64, chunks=(1, *shape))
            for b in blocks:
                with h5py.File(shard_path(path, b), "r") as s:
                    ds[b * B:min(N, (b + 1) * B)] = s[name][...]
        f.create_dataset("complete", data=np.ones(N, dtype=bool))
    tmp.replace(path)
    shutil.rmtree(parts_dir(path))
