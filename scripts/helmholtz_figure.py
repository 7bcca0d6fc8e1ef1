"""The Helmholtz time and memory scaling figure over every `hybrid bench helmholtz` results file of the
README (the 1024 and 2048 rows come from separate runs): bench/results/helmholtz-scaling.png; prints the
README's summary table of the same rows.

Run: python scripts/helmholtz_figure.py
"""

import json
from pathlib import Path

from hybrid.bench.helmholtz import figure, summary_table

ROOT = Path(__file__).resolve().parents[1] / "bench" / "results"
FILES = ("helmholtz.json", "helmholtz-checkerboard.json", "helmholtz-1024.json", "helmholtz-2048.json")

if __name__ == "__main__":
    records = []
    for name in FILES:
        path = ROOT / name
        if path.exists():
            records += json.loads(path.read_text())["records"]
    print(summary_table(records))
    print(f"wrote {figure(records, ROOT / 'helmholtz-scaling.png')} from {len(records)} rows")
