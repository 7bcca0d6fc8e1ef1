"""The Helmholtz time and memory scaling figure over every `hybrid bench helmholtz` results file of the
README (the 1024 and 2048 rows come from separate runs) and the GPU rows of
bench/results/helmholtz-gpu-solve.json (methods marked "(H200)", memory = host + device peak):
bench/results/helmholtz-scaling.png; prints the README's summary table of the CPU rows, its table of the
deflated methods (bench/results/helmholtz-deflation.json and the 2048 rows of DEFLATION_FILES), its table of
the n = 1024 time goal in repeated runs (GOAL_FILE), its table of many sources with one setup
(bench/results/helmholtz-sources.json) and its GPU table.

Run: python scripts/helmholtz_figure.py [--readme]   (--readme: also replace the four CPU tables in README.md)
"""

import json
import sys
from pathlib import Path

from hybrid.bench.helmholtz import deflation_table, figure, goal_table, gpu_table, sources_table, summary_table

ROOT = Path(__file__).resolve().parents[1] / "bench" / "results"
#: in order; a row of a later file replaces the same (n, medium, method) of an earlier one (n = 2048: the
#: classical rows and the learned row are separate runs, each an hour)
FILES = ("helmholtz.json", "helmholtz-checkerboard.json", "helmholtz-1024.json", "helmholtz-2048-lean.json",
         "helmholtz-2048-learned.json", "helmholtz-2048-mumps.json")
#: MUMPS's rows of the table come from deflation runs (where MUMPS factorizes by 2 x 2 blocks), for the
#: (n, medium) the table has: the run of 12:24-12:47 UTC (the README's text quotes it; the later run of
#: helmholtz-deflation.json gave MUMPS 20.7-23.5 s at n = 1024 instead of 20.5-23.7 s)
MUMPS_FILES = ("helmholtz-deflation-c8.json", "helmholtz-2048-deflation.json")
GPU_FILE = "helmholtz-gpu-solve.json"
#: the deflated methods and MUMPS side by side (n = 128-1024 in one run; n = 2048: one run of MUMPS and the two
#: deflated methods, and the learned one again with a higher address-space limit: torch's libraries)
#: later files' rows replace earlier ones': the 2048 rows of MUMPS, cslp2-def and learned-def shown are those of
#: the last run (helmholtz-2048-deflation-c4.json, the 4-channel network); cslp-def and learned-cslp-def ran in
#: helmholtz-2048-deflation(-learned).json, the 8-channel learned-def in helmholtz-2048-deflation2.json
DEFLATION_FILES = ("helmholtz-deflation.json", "helmholtz-2048-deflation2.json", "helmholtz-2048-deflation.json",
                   "helmholtz-2048-deflation-learned.json", "helmholtz-2048-deflation-c4.json")
#: the time goal at n = 1024 in repeated runs (``--repeats 3``: the median and the spread)
GOAL_FILE = "helmholtz-1024-repeats.json"
#: many right-hand sides with one setup (``--sources``)
SOURCES_FILE = "helmholtz-sources.json"
README = ROOT.parents[1] / "README.md"


def replace_table(text: str, table: str) -> str:
    """``text`` with the markdown table that starts with ``table``'s header line replaced by ``table``."""
    lines, new = text.split("\n"), table.strip().split("\n")
    if new[0] not in lines:
        raise SystemExit(f"README.md has no table with the header {new[0]!r}")
    i = j = lines.index(new[0])
    while j < len(lines) and lines[j].startswith("|"):
        j += 1
    return "\n".join(lines[:i] + new + lines[j:])


def load(names) -> list[dict]:
    """The rows of the files ``names`` that exist, a later file's row replacing an earlier one's."""
    rows = {}
    for name in names:
        path = ROOT / name
        if path.exists():
            rows.update({(r["n"], r["medium"], r["method"]): r for r in json.loads(path.read_text())["records"]})
    return list(rows.values())


if __name__ == "__main__":
    records = load(FILES)
    present = {(r["n"], r["medium"]) for r in records}
    records = [r for r in records if r["method"] != "direct-mumps"] + [
        r for r in load(MUMPS_FILES) if r["method"] == "direct-mumps" and (r["n"], r["medium"]) in present]
    print(summary_table(records))
    deflated = load(DEFLATION_FILES)
    if deflated:
        print()
        print(deflation_table(deflated))
    goal = load([GOAL_FILE])
    if goal:
        print()
        print(goal_table(goal))
    sources = load([SOURCES_FILE])
    if sources:
        print()
        print(sources_table(sources))
    if "--readme" in sys.argv[1:]:
        text = replace_table(README.read_text(), summary_table(records))
        text = replace_table(text, deflation_table(deflated)) if deflated else text
        text = replace_table(text, goal_table(goal)) if goal else text
        README.write_text(replace_table(text, sources_table(sources)) if sources else text)
        print(f"replaced the tables in {README}")
    gpu = []
    if (ROOT / GPU_FILE).exists():
        # the n = 128 check rows (agreement with the CPU path, CUDA start-up included) are not timings
        gpu = [r for r in json.loads((ROOT / GPU_FILE).read_text())["records"]
               if "failed" not in r and not r.get("check")]
        print()
        print(gpu_table(gpu))
    drawn = records + [r for r in deflated if r["method"] != "direct-mumps"] + [{**r, "method": f"{r['method']} (H200)", "rss_peak_mb": r["rss_peak_mb"] + r["device_peak_mb"]}
                       for r in gpu if r.get("rss_peak_mb") is not None]
    print(f"wrote {figure(drawn, ROOT / 'helmholtz-scaling.png')} from {len(drawn)} rows")
