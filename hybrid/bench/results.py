"""Benchmark result files: header (suite, time, machine, versions) + records; timing helpers."""

from __future__ import annotations

import json
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

from ..environment import machine, versions


def timed(fn, repeats: int):
    """Run ``fn()`` ``repeats`` times: (last result, list of seconds)."""
    out, times = None, []
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, times


def median(xs) -> float:
    return float(statistics.median(xs))


def write_results(path, suite: str, records: list[dict], device: str = "cpu", extra: dict | None = None) -> Path:
    """Write the JSON file atomically (temporary name, then rename)."""
    doc = {"suite": suite, "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "machine": machine(device), "versions": versions(), **(extra or {}), "records": records}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=1, default=float))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def markdown_table(records: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """``columns``: (header, key, format) triples."""
    head = "| " + " | ".join(h for h, _, _ in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    rows = []
    for r in records:
        cells = []
        for _, key, fmt in columns:
            v = r.get(key)
            cells.append("-" if v is None else (format(v, fmt) if fmt else str(v)))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join([head, sep, *rows])
