"""One writer per dataset file: an advisory ``flock`` on ``FILE.h5.lock``.

Why: two ``hybrid generate`` runs on one ``--out`` (or a rerun while orphaned ranks of a killed run
still write) raced on the parts folder and the index; the second writer could replace a complete file
with an empty index. The kernel releases an ``flock`` when its holder dies, however it dies (``kill
-9`` included), so a stale lock never blocks a later run. The lock file is removed on release; a
waiter that opened the old file notices (its inode is no longer the one at the path) and retries.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path


class DatasetBusy(ValueError):
    """Another live process is writing this dataset."""


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


class WriterLock:
    """Exclusive, non-blocking writer lock for ``path`` (``with WriterLock(path): ...``)."""

    def __init__(self, path):
        self.path = Path(path)
        self.fd = None

    def acquire(self) -> "WriterLock":
        lp = lock_path(self.path)
        lp.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(10):
            fd = os.open(lp, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise DatasetBusy(f"{self.path} is being written by another process ({holder}); wait for it to "
                                  f"finish, stop it, or use another --out") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(lp).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
                self.fd = fd
                return self
            os.close(fd)  # the holder released and removed it between our open and flock: retry
        raise DatasetBusy(f"{self.path}: could not take the writer lock {lp}")

    def release(self) -> None:
        if self.fd is not None:
            try:
                lock_path(self.path).unlink(missing_ok=True)
            finally:
                os.close(self.fd)
                self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
