#!/usr/bin/env bash
# Operators benchmark on a lent GPU machine (see the device tool): one short, prepared command.
# It builds the venv there (or reuses a carried one), generates the n=128 datasets on the CPU cores
# (mpiexec -n 8) and trains MgNO, FNO and U-Net on CUDA. Results land in $OUT (or bench/results/).
# Budget: a lent machine has ~15 minutes in all; EPOCHS keeps the run inside it.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${EPOCHS:-60}
OUTDIR=${OUT:-bench/results}
[ -x .venv/bin/python ] || bash scripts/install.sh .venv
.venv/bin/python -m pip install -q "neuraloperator==2.0.0" || echo "neuraloperator unavailable: FNO is skipped"
nvidia-smi --query-gpu=name,memory.total --format=csv || true
export OMP_NUM_THREADS=1
for split in "train1000:0:1000:128" "test100:1:100:128" "test100:1:100:256"; do
  IFS=: read -r name seed samples n <<< "$split"
  .venv/bin/mpiexec -n 8 .venv/bin/hybrid generate darcy --samples "$samples" --n "$n" --seed "$seed" \
    --out "data/bench/darcy${n}_${name}.h5" --no-progress
done
.venv/bin/hybrid bench operators --sizes 128 --epochs "$EPOCHS" --device cuda --json "$OUTDIR/operators-gpu.json"
