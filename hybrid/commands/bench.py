"""``hybrid bench SUITE [--quick] --json PATH``: benchmark suites (see shared BENCH.md)."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark suite and write bench/results JSON")
    p.add_argument("suite", choices=["solvers", "datagen"])
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

    from ..bench import datagen, solvers
    from ..bench.results import markdown_table, write_results

    suite = {"solvers": solvers, "datagen": datagen}[args.suite]

    if args.report:
        doc = json.loads(args.json.read_text())
        print(f"{doc['command']}  ({doc['created']}, {doc['machine']['cpu']}, {doc['machine']['cores']} cores)\n")
        print(markdown_table(doc["records"], suite.COLUMNS))
        return 0

    command = f"hybrid bench {args.suite}{' --quick' if args.quick else ''} --json {args.json}"
    if args.suite == "solvers":
        sizes = args.sizes or ([128, 256] if args.quick else [128, 256, 512, 1024])
        records = solvers.run(sizes, args.problems or list(solvers.PROBLEMS), args.repeats)
    else:
        plan = [(64, 200, 40), (128, 100, 20)] if args.quick else [(64, 1200, 200), (128, 400, 100), (256, 100, 30)]
        if args.sizes:
            plan = [p for p in plan if p[0] in args.sizes] or [(n, 20, 5) for n in args.sizes]
        records = datagen.run(plan)
    path = write_results(args.json, args.suite, records, extra={"command": command})
    print(markdown_table(records, suite.COLUMNS))
    print(f"wrote {path}")
    return 0
