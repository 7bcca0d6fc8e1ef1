"""Training on several processes with ``torch.distributed`` (DistributedDataParallel).

``hybrid train MODEL ... --nproc N`` relaunches the same command under ``torchrun --standalone
--nproc-per-node N`` (:func:`launch`); ``torchrun --nproc-per-node N -m hybrid.cli train MODEL ...`` works
too. Each worker sees ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` from torchrun, joins the process group
(:func:`setup`: gloo on CPU, nccl on CUDA with one GPU per local rank), and the :class:`Trainer` then splits
every global batch across the ranks (rank ``r`` takes samples ``r, r + N, ...`` of it) and weights each rank's
loss so that DDP's gradient average is the gradient of the global batch mean: the global batch, the
schedule and the loss curve are those of one process, up to the order of floating-point sums. Rank 0 alone
writes checkpoints, the summary and the PNGs.

Failures: a rank that raises exits non-zero, and torchrun's agent then stops the other workers (they may be
waiting in a collective) and exits non-zero itself; no rank is left hanging.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys

#: how long a collective waits for the other ranks before failing (a rank stuck without crashing)
TIMEOUT = datetime.timedelta(minutes=float(os.environ.get("HYBRID_DIST_TIMEOUT_MIN", "30")))


def launched() -> bool:
    """Whether this process is one worker of a ``torchrun`` job with more than one process."""
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def initialized() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    import torch.distributed as dist

    return dist.get_rank() if initialized() else 0


def size() -> int:
    """Number of processes training together (1 without a process group)."""
    import torch.distributed as dist

    return dist.get_world_size() if initialized() else 1


def setup(device: str, nproc: int | None = None) -> str:
    """Join the torchrun job's process group; the device this rank trains on (``cuda`` -> ``cuda:LOCAL_RANK``)."""
    import torch
    import torch.distributed as dist

    world = int(os.environ["WORLD_SIZE"])
    if nproc is not None and nproc != world:
        raise ValueError(f"--nproc {nproc} inside a torchrun job of {world} processes: leave --nproc out under "
                         f"torchrun, or run `hybrid train ... --nproc {nproc}` without torchrun")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        if torch.cuda.device_count() <= local:
            raise ValueError(f"rank {os.environ['RANK']} needs GPU {local}, but {torch.cuda.device_count()} "
                             f"visible: use at most one process per GPU, or --device cpu")
        device = f"cuda:{local}"
        torch.cuda.set_device(local)
    if not initialized():
        kwargs = {"device_id": torch.device(device)} if device.startswith("cuda") else {}
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", timeout=TIMEOUT, **kwargs)
    return device


def teardown() -> None:
    """Leave the process group together: a barrier first (rank 0 may still be writing checkpoints and PNGs),
    then ``destroy_process_group``. Without the barrier a rank that tore gloo down while its peer was still
    busy died with ``terminate called without an active exception`` (SIGABRT) in one CI run. Only called
    after a successful run: after a failure torchrun's agent stops the ranks."""
    import torch.distributed as dist

    if initialized():
        dist.barrier()
        dist.destroy_process_group()


def exit_worker(code: int) -> None:
    """End a torchrun worker after :func:`teardown` without running interpreter-exit destructors: even with
    the barrier, a rank died at exit with ``terminate called without an active exception`` (SIGABRT, C++
    threads of gloo or MPI/PETSc's finalization torn down in the wrong order) in a loaded CI run, after
    training and writing had finished. Everything is written and closed by then; output is flushed first."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code))


def without_nproc(argv: list[str]) -> list[str]:
    """``argv`` less ``--nproc N`` (or ``--nproc=N``, or an abbreviation): the workers know their number from
    torchrun, and torchrun's own parser refuses ``--nproc`` as an ambiguous ``--nproc-per-node``.

    >>> without_nproc(["train", "unet", "--nproc", "2", "--out", "r", "--npr=3"])
    ['train', 'unet', '--out', 'r']
    """
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--":
            return out + argv[i:]
        name = a.split("=", 1)[0]
        if len(name) > 3 and "--nproc".startswith(name):
            skip = "=" not in a
            continue
        out.append(a)
    return out


def launch(argv: list[str], nproc: int) -> int:
    """Run ``hybrid ARGV`` under ``torchrun --standalone --nproc-per-node NPROC``; its exit status."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "hybrid.cli", *without_nproc(argv)]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's own default, without its warning
    return subprocess.call(cmd, env=env)


def broadcast_float(value: float, device) -> float:
    """Rank 0's ``value`` on every rank (so that decisions taken on it, e.g. early stopping, agree)."""
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(t, 0)
    return float(t.item())
