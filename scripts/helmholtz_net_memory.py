"""Peak memory and time of one forward pass of the shipped Helmholtz network, plain against memory-lean
(:mod:`hybrid.operators.unet_lean`), each in NCHW and in channels-last layout (``-cl``,
:func:`hybrid.operators.unet.cpu_layout`, what the learned preconditioner runs on the CPU), each (n, mode)
in a fresh process on one thread.

Run: python scripts/helmholtz_net_memory.py --sizes 512,1024,2048 --json bench/results/helmholtz-net-memory.json
"""

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "bench" / "models" / "helmholtz_cslp.pt"

_ONE = """
import json, sys, time, torch
torch.set_num_threads(1)
import hybrid.operators.unet as U
from hybrid.precond.helmholtz import load_helmholtz_net
from solvers.limits import release_memory, reset_peak_memory, resident_mb
n, mode, model = int(sys.argv[1]) + 1, sys.argv[2], sys.argv[3]
U.LEAN_MIN_PIXELS = 1 if mode.startswith("lean") else 10**12
net = load_helmholtz_net(model).eval()
r, kh = torch.randn(1, 2, n, n), torch.rand(1, 1, n, n) * 0.6
if mode.endswith("-cl"):  # what LearnedShiftedLaplacian runs on the CPU
    net = U.cpu_layout(net)
    r, kh = r.contiguous(memory_format=torch.channels_last), kh.contiguous(memory_format=torch.channels_last)
with torch.inference_mode():
    net(r[..., :64, :64], kh[..., :64, :64])
times, peaks = [], []
for _ in range(2):
    release_memory(); reset_peak_memory(); base = resident_mb()
    t = time.perf_counter()
    with torch.inference_mode():
        net(r, kh)
    times.append(time.perf_counter() - t)
    peaks.append([int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")][0] - base)
print(json.dumps({"seconds": min(times), "peak_over_base_mb": max(peaks)}))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="512,1024,2048")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    rows = []
    for n in (int(s) for s in a.sizes.split(",")):
        for mode in ("plain", "lean", "plain-cl", "lean-cl"):
            out = subprocess.run([sys.executable, "-c", _ONE, str(n), mode, str(MODEL)], capture_output=True,
                                 text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if out.returncode:
                raise SystemExit(out.stderr[-2000:])
            rows.append({"n": n, "mode": mode, **json.loads(out.stdout.splitlines()[-1])})
            print(f"n={n:5d} {mode:8s} {rows[-1]['seconds']:.2f} s  {rows[-1]['peak_over_base_mb']:.0f} MB", flush=True)
    if a.json:
        a.json.write_text(json.dumps({"command": " ".join(["python"] + sys.argv), "machine": platform.processor()
                                      or platform.machine(), "records": rows}, indent=1))


if __name__ == "__main__":
    main()
