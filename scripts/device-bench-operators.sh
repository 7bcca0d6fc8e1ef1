#!/usr/bin/env bash
# Paper-size operators benchmark on a lent GPU machine (python3 with torch, numpy, scipy, h5py; no DOLFINx,
# pyamg, neuraloperator or network): two-phase Darcy at 256 x 256 cells, 1280 training samples, 112 test
# samples at 256 and 512 (the same functions), generated there with numpy/scipy (hybrid/bench/darcy_numpy.py,
# equal to the toolkit's DOLFINx data to round-off) on all CPU cores, then MgNO (both cycle forms) and U-Net
# (FNO too when neuraloperator imports) trained on CUDA. Nothing to carry: the working tree is enough.
# Results: $OUT/operators-gpu.json and .md (or bench/results/). EPOCHS/SEEDS keep it inside the device budget.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUTDIR=${OUT:-bench/results}
nvidia-smi --query-gpu=name,memory.total --format=csv || true
export OMP_NUM_THREADS=1
"$PY" scripts/device_bench_operators.py --epochs "${EPOCHS:-30}" --seeds "${SEEDS:-1}" --factors "${FACTORS:-1,2}" \
  --json "$OUTDIR/operators-gpu.json" "$@"
