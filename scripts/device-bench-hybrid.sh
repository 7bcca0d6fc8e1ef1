#!/usr/bin/env bash
# Learned-AMG network timed on a lent GPU (issue 8: "time the network parts on it and name the device"):
# the same `hybrid bench hybrid` rows as bench/results/hybrid.json with the network on CUDA (features and
# the V-cycle stay on the CPU). One short, prepared command; a lent machine has ~15 minutes in all.
set -euo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${OUT:-bench/results}
[ -x .venv/bin/python ] || bash scripts/install.sh .venv
nvidia-smi --query-gpu=name,memory.total --format=csv || true
export OMP_NUM_THREADS=1
.venv/bin/hybrid bench hybrid --sizes 512,1024 --repeats 3 --loop-solves 0 --device cuda \
  --json "$OUTDIR/hybrid-gpu.json"
