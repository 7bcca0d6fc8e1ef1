"""Time the learned Helmholtz correction network (bench/models/helmholtz_cslp.pt) on a GPU at n = 512,
1024, 2048 (issue 11: "when a GPU is available, rerun the n = 1024 and 2048 rows there").

The lent GPU machines have torch but neither DOLFINx nor pyamg, so the solve itself (assembly, the
shifted-Laplacian cycle, FGMRES) cannot run there; this times the part that moves to the GPU, one
network application including the host <-> device copies of the residual and the correction, with
the same weights and input sizes as the CPU benchmark. Torch only: hybrid.operators.helmholtz_net imports
nothing but torch (hybrid.precond, which loads checkpoints normally, needs the solvers).

Run: python3 scripts/device_helmholtz_network.py [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from hybrid.operators.helmholtz_net import HelmholtzNet, HelmholtzNetConfig  # noqa: E402


def load(path, device):
    payload = torch.load(path, map_location=device, weights_only=True)
    net = HelmholtzNet(HelmholtzNetConfig(**payload["config"]))
    net.load_state_dict(payload["state_dict"])
    return net.to(device).eval()


def time_one(net, n, device, repeats=10):
    r = np.random.default_rng(0).standard_normal((1, 2, n + 1, n + 1)).astype(np.float32)
    kh = np.full((1, 1, n + 1, n + 1), 2 * np.pi / 10, dtype=np.float32)
    khd = torch.as_tensor(kh, device=device)

    def once():
        x = torch.as_tensor(r, device=device)
        with torch.inference_mode():
            return net(x, khd).double().cpu().numpy()

    once()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        once()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), float(min(ts)), float(max(ts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "bench" / "models" / "helmholtz_cslp.pt"))
    ap.add_argument("--sizes", default="512,1024,2048")
    ap.add_argument("--out", default="helmholtz-network-gpu.json")
    a = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    net = load(a.model, device)
    rows = []
    for n in [int(s) for s in a.sizes.split(",")]:
        med, lo, hi = time_one(net, n, device)
        rows.append({"n": n, "device": name, "network_s_median": med, "network_s_min": lo, "network_s_max": hi})
        print(f"{name}: n={n}: one network application {1e3 * med:.1f} ms (min {1e3 * lo:.1f}, max {1e3 * hi:.1f})")
    Path(a.out).write_text(json.dumps({"device": name, "torch": torch.__version__, "model": a.model, "rows": rows},
                                      indent=1))


if __name__ == "__main__":
    main()
