"""The ``hybrid`` command: ``demo``, ``solve``, ``generate``, ``train``, ``evaluate``, ``bench``."""

from __future__ import annotations

import argparse
import os
import sys
import time

# Oversubscribed BLAS/OpenMP threads made pyamg setup 8x slower on 2 cores (STACK.md gotcha 8).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def build_parser() -> argparse.ArgumentParser:
    from .commands import bench, demo, generate, invert, solve, train

    parser = argparse.ArgumentParser(prog="hybrid", description="Solver-hybrid toolkit for PDEs.")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (demo, solve, generate, train, invert, bench):
        module.add_parser(sub)
    return parser


#: exceptions that are the user's input or the environment, printed as ``hybrid CMD: error: ...`` (exit 2);
#: anything else is a bug and keeps its traceback. ``HYBRID_TRACEBACK=1`` shows tracebacks for all.
USER_ERRORS = (ValueError, OSError, KeyError, RuntimeError)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for commands that relaunch themselves (torchrun)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print(f"hybrid {args.command}: interrupted", file=sys.stderr)
        _abort_other_ranks(130)
        return 130
    except Exception as e:  # noqa: BLE001
        user = isinstance(e, USER_ERRORS)
        where = _rank_note()
        if user and not os.environ.get("HYBRID_TRACEBACK"):
            text = str(e) if not isinstance(e, KeyError) else f"missing key {e}"
            print(f"hybrid {args.command}: error{where}: {text}", file=sys.stderr)
        else:
            import traceback

            traceback.print_exc()
            print(f"hybrid {args.command}: error{where}: {type(e).__name__}: {e}", file=sys.stderr)
        _abort_other_ranks(2 if user else 1)
        return 2 if user else 1


def _mpi_world():
    """MPI's COMM_WORLD if mpi4py is already loaded (never imported here: ``hybrid --help`` stays fast)."""
    mpi = sys.modules.get("mpi4py.MPI")
    return mpi.COMM_WORLD if mpi is not None else None


def _rank_note() -> str:
    comm = _mpi_world()
    if comm is not None and comm.size > 1:
        return f" (rank {comm.rank} of {comm.size})"
    dist = sys.modules.get("torch.distributed")  # a torchrun worker (`hybrid train --nproc N`)
    if dist is not None and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return f" (rank {dist.get_rank()} of {dist.get_world_size()})"
    return ""


def _abort_other_ranks(code: int) -> None:
    """Under ``mpiexec -n K`` an exception on one rank leaves the others waiting in a collective
    forever; ``MPI_Abort`` ends the whole job with the exit code (after the message is out)."""
    comm = _mpi_world()
    if comm is not None and comm.size > 1:
        sys.stderr.flush()
        sys.stdout.flush()
        # flushing only hands the message to mpiexec's proxy, which forwards it asynchronously; aborting at
        # once lost it in one CI run out of many (exit code 2, empty stderr): give the proxy a moment
        time.sleep(0.5)
        comm.Abort(code)


if __name__ == "__main__":
    sys.exit(main())
