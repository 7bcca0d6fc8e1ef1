#!/usr/bin/env bash
# Create the virtual environment and install the project in editable mode.
# torch goes in first (neuraloperator and friends do not declare it; see STACK.md).
set -euo pipefail
venv=${1:-.venv}
here=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
  py=$(bash "$here/scripts/find-python.sh")
  echo "creating $venv with $py"
  rm -rf "$venv"
  "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
"$venv/bin/python" -m pip install --quiet "torch==2.14.1"
"$venv/bin/python" -m pip install --quiet -e "$here[test,mesh,baselines]"
# `import dolfinx` before `import meshes` would fail with `ImportError: libmpi.so.12`: a .pth file loads MPI
# first, on demand (see scripts/mpi_first/hybrid_solvers_mpi_first.py)
purelib=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp "$here/scripts/mpi_first/hybrid_solvers_mpi_first.py" "$here/scripts/mpi_first/hybrid_solvers_mpi_first.pth" "$purelib/"
"$venv/bin/python" -c 'import dolfinx, torch, pyamg, scipy, meshio, h5py; print("environment ok: dolfinx", dolfinx.__version__, "torch", torch.__version__, "pyamg", pyamg.__version__)'
