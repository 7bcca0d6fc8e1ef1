"""``hybrid bench SUITE [--quick] --json PATH``: benchmark suites (see shared BENCH.md)."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark suite and write bench/results JSON")
    p.add_argument("suite", choices=["solvers"])
    p.add_argument("--quick", action="store_true", help="small sizes (under ~2 minutes on 2 cores)")
    p.add_argument("--sizes", type=lambda s: [int(t) for t in s.split(",")], default=None,
                   help="comma-separated n values (overrides --quick)")
    p.add_argument("--problems", type=lambda s: s.split(","), default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path, required=True, help="output file, e.g. bench/results/solvers.json")
    p.add_argument("--report", action="store_true", help="only print the markdown table of an existing --json file")
    p.set_defaults(run=run)


def run(args) -> int:
    import json

    from ..bench import solvers as suite
    from ..bench.results import markdown_table, write_results

    if args.report:
        doc = json.loads(args.json.read_text())
        print(f"{doc['command']}  ({doc['created']}, {doc['machine']['cpu']}, {doc['machine']['cores']} cores)\n")
        print(markdown_table(doc["records"], suite.COLUMNS))
        return 0

    sizes = args.sizes or ([128, 256] if args.quick else [128, 256, 512, 1024])
    problems = args.problems or list(suite.PROBLEMS)
    records = suite.run(sizes, problems, args.repeats)
    path = write_results(args.json, "solvers", records,
                         extra={"command": f"hybrid bench solvers{' --quick' if args.quick else ''} --json {args.json}"})
    print(markdown_table(records, suite.COLUMNS))
    print(f"wrote {path}")
    return 0
