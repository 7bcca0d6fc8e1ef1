"""Paper-size operators benchmark on a machine with torch, numpy, scipy and h5py only (no DOLFINx, pyamg,
neuraloperator or network): run by scripts/device-bench-operators.sh.

Data: two-phase Darcy at n = 256 (257 x 257 nodes), 1280 training samples (seed 0), 112 test samples (seed 1)
at n = 256 and the same functions at n = 512, from hybrid.bench.darcy_numpy (scipy sparse LU; equal to the
toolkit's DOLFINx data to round-off, tested). Models: hybrid.bench.operators.MODEL_CONFIGS; FNO only when
neuraloperator imports.
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybrid.bench import darcy_numpy, operators  # noqa: E402
from hybrid.bench.results import write_results  # noqa: E402
from hybrid.operators import neuraloperator_available  # noqa: E402
import torch  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=256)
p.add_argument("--train", type=int, default=1280)
p.add_argument("--test", type=int, default=112)
p.add_argument("--epochs", type=int, default=30)
p.add_argument("--seeds", type=int, default=1)
p.add_argument("--batch", type=int, default=8)
p.add_argument("--factors", default="1,2")
p.add_argument("--models", default=",".join(operators.DEFAULT_MODELS))
p.add_argument("--workers", type=int, default=os.cpu_count())
p.add_argument("--data", type=Path, default=Path("data/gpu"))
p.add_argument("--json", type=Path, required=True)
a = p.parse_args()

device = "cuda" if torch.cuda.is_available() else "cpu"
factors = tuple(int(f) for f in a.factors.split(","))
files = {"train": darcy_numpy.generate(a.n, a.train, a.data / f"darcy{a.n}_train{a.train}.h5", 0, a.workers)}
for f in factors:
    files[f] = darcy_numpy.generate(f * a.n, a.test, a.data / f"darcy{f * a.n}_test{a.test}.h5", 1, a.workers)
models = [m for m in a.models.split(",") if operators.MODEL_CONFIGS[m][0] != "fno" or neuraloperator_available()]
if len(models) < len(a.models.split(",")):
    print("fno skipped: neuraloperator is not installed here")
records = operators.run(a.n, a.train, a.test, a.epochs, models, a.data, device=device, batch_size=a.batch,
                        seeds=tuple(range(a.seeds)), factors=factors, subsample=(1, 2), files=files)

path = write_results(a.json, "operators", records, device=torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
                     extra={"command": "scripts/device-bench-operators.sh " + " ".join(sys.argv[1:])})
table = operators.table(records)
path.with_suffix(".md").write_text(table + "\n")
print(table)
