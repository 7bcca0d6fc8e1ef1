"""``hybrid bench SUITE [--quick] --json PATH``: benchmark suites (see shared BENCH.md)."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

from ..names import BENCH_SUITES


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark suite and write bench/results JSON")
    p.add_argument("suite", choices=BENCH_SUITES)
    p.add_argument("--quick", action="store_true", help="small sizes (under ~2 minutes on 2 cores)")
    p.add_argument("--sizes", type=lambda s: [int(t) for t in s.split(",")], default=None,
                   help="comma-separated n values (overrides --quick)")
    p.add_argument("--problems", type=lambda s: s.split(","), default=None,
                   help="solvers/hybrid: problems; inverse: test sets (log-normal,two-phase,eit-inclusions,"
                        "eit-disk-inclusions; eit-learned: NIO vs DeepONet, trains them); helmholtz: media "
                        "(grf,layered,dipping,salt,checkerboard; NAME@C_MAX for another contrast, e.g. "
                        "checkerboard@1.4)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed runs per row, recorded as the median with the spread (default 3; helmholtz 1: "
                        "a row of its table at n = 1024 is a process of 20 s or more)")
    p.add_argument("--epochs", type=int, default=None, help="operators, inverse eit-learned: training epochs per model")
    p.add_argument("--models", type=lambda s: s.split(","), default=None, help="operators: e.g. mgno,fno,unet; inverse eit-learned: nio,deeponet,deeponet-fourier")
    p.add_argument("--seeds", type=int, default=None, help="operators, inverse eit-learned: training seeds per model (default 3)")
    p.add_argument("--samples", type=int, default=None,
                   help="operators: training samples (default 300); hybrid --domains: training matrices (default 8); "
                        "inverse eit-learned: training samples (default 2000)")
    p.add_argument("--subsample", type=lambda s: tuple(int(t) for t in s.split(",")), default=(1, 2),
                   help="operators: mixed-resolution training for every model (default 1,2: every other batch on "
                        "every 2nd node); 1 trains at the file's resolution only")
    p.add_argument("--device", default="cpu", help="operators, hybrid (the learned-AMG network): cpu or cuda")
    p.add_argument("--model", type=Path, default=None,
                   help="hybrid: learned-AMG checkpoint (default bench/models/learned_amg.pt when present); "
                        "inverse: pressure -> coefficient map (default bench/models/darcy_inverse_mgno_nN.pt); "
                        "helmholtz: the network of every learned method (default: each its own, bench/models/"
                        "helmholtz_cslp.pt, for learned-def+fgmres helmholtz_cslp_def_c4.pt)")
    p.add_argument("--methods", type=lambda s: s.split(","), default=None,
                   help="hybrid: learned methods to run (default learned-amg+cg,learned-amg-2pass+cg,learned-amg-l1+cg); "
                        "inverse: adjoint,learned,learned+adjoint (default all when a model exists); helmholtz: "
                        "methods to run (default direct-mumps,direct-superlu,cslp+fgmres,cslp2+fgmres,"
                        "learned-cslp+fgmres; more in hybrid.bench.helmholtz.EXTRA_METHODS)")
    p.add_argument("--loop-n", type=int, default=None, help="hybrid: size of the 50-solve loop (default 256)")
    p.add_argument("--loop-solves", type=int, default=None, help="hybrid: solves in the loop (default 50; 0 skips the loop)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="operators: datasets and runs (default data/bench); with --domains: the mesh bundle, its "
                        "meshes and data (default data/mesh; prepared when missing)")
    p.add_argument("--domains", type=lambda s: s.split(","), default=None,
                   help="operators, hybrid: mesh domains (l-shape,plate-holes) instead of the grid suites: "
                        "operators compares AlgebraicMgNO with grid MgNO through transfer, hybrid runs the "
                        "algebraic V-cycle as a preconditioner beside SA/RS-AMG (hybrid.bench.mesh_*)")
    p.add_argument("--max-seconds", type=float, default=1800.0,
                   help="helmholtz: time limit of one row (the row is recorded as failed beyond it)")
    p.add_argument("--restart", type=int, default=None,
                   help="helmholtz: FGMRES restart of the iterative methods (default: theirs, 30)")
    p.add_argument("--z-precision", choices=("double", "single"), default=None,
                   help="helmholtz: precision of FGMRES's preconditioned basis (single: half its memory; "
                        "default: the methods' own, double)")
    p.add_argument("--network-precision", choices=("float32", "bfloat16"), default=None,
                   help="helmholtz: the learned rows' network pass (bfloat16: torch autocast, for CPUs with native "
                        "bfloat16; default float32)")
    p.add_argument("--sources", type=int, default=1,
                   help="helmholtz: right-hand sides per row, solved one after another with one setup (the "
                        "further point sources on the line y = 0.7; default 1)")
    p.add_argument("--memory-gb", type=float, default=None,
                   help="helmholtz: address-space limit of one row's process (default 85%% of the machine's "
                        "memory); a row beyond it is recorded as out of memory")
    p.add_argument("--json", type=Path, required=True, help="output file, e.g. bench/results/solvers.json")
    p.add_argument("--report", action="store_true", help="only print the markdown table of an existing --json file")
    p.set_defaults(run=run)


# -- suites: name -> records(args, module); each module (hybrid.bench.NAME) has run() and COLUMNS ------------
def _solvers(args, suite):
    sizes = args.sizes or ([128, 256] if args.quick else [128, 256, 512, 1024])
    return suite.run(sizes, args.problems or list(suite.PROBLEMS), repeats(args))


def _operators(args, suite):
    if args.domains:
        return _mesh_operators(args, suite)
    # the default fits well under 30 minutes on 2 shared CPU cores; the paper-size setting is a GPU script
    n, n_train, n_test, epochs, seeds = (16, 60, 10, 2, (0,)) if args.quick else (32, 300, 100, 12, (0, 1, 2))
    n = args.sizes[0] if args.sizes else n
    return suite.run(n, args.samples or n_train, n_test, args.epochs or epochs, args.models or list(suite.DEFAULT_MODELS),
                     args.data_dir or Path("data/bench"), device=args.device,
                     seeds=tuple(range(args.seeds)) if args.seeds else seeds,
                     subsample=args.subsample, batch_size=10)


def _datagen(args, suite):
    plan = [(64, 200, 40), (128, 100, 20)] if args.quick else [(64, 1200, 200), (128, 400, 100), (256, 100, 30)]
    if args.sizes:
        plan = [p for p in plan if p[0] in args.sizes] or [(n, 20, 5) for n in args.sizes]
    return suite.run(plan, repeats=repeats(args))


def _hybrid(args, suite):
    if args.domains:
        return _mesh_precond(args, suite)
    sizes = args.sizes or ([128, 256] if args.quick else [128, 256, 512, 1024])
    model = args.model
    if model is None and DEFAULT_MODEL.exists():
        model = DEFAULT_MODEL
    if model is not None and not Path(model).exists():
        raise FileNotFoundError(f"--model {model}: no such checkpoint")
    plot = args.json.with_name(args.json.stem + "-convergence.png")
    return suite.run(sizes, args.problems or list(suite.PROBLEMS), repeats(args), model=model,
                     methods=args.methods, loop_n=args.loop_n or (128 if args.quick else 256),
                     loop_solves=(20 if args.quick else 50) if args.loop_solves is None else args.loop_solves, plot=plot, device=args.device)


def _mesh_bundle(args, mesh_operators):
    variant = "quick" if args.quick else "full"
    return mesh_operators.ensure_bundle(args.data_dir or Path("data/mesh"), args.domains, variant)


def _mesh_operators(args, suite):
    """``operators --domains``: AlgebraicMgNO vs grid MgNO (hybrid.bench.mesh_operators); --quick: coarse
    meshes, 60 samples, 40 for training (10% validation), 10 for testing, 20 epochs."""
    suite.check_domains(args.domains)
    models = args.models or list(suite.DEFAULT_MODELS)
    for m in models:
        if m not in suite.MODELS:
            raise ValueError(f"--models {m}: with --domains the models are {', '.join(suite.MODELS)}")
    from ..bench.results import write_results

    n_train, n_test, epochs = (40, 10, 20) if args.quick else (300, 100, 5)
    bundle = _mesh_bundle(args, suite)
    partial = lambda records: write_results(args.json, suite.SUITE, records, device=_device_name(args),  # noqa: E731
                                            extra={"partial": True})
    return suite.run(bundle, args.domains, models, epochs=args.epochs or epochs, n_train=args.samples or n_train,
                     n_test=n_test, batch_size=10, lr=2e-3, device=args.device, on_record=partial,
                     log=lambda *a: print(*a, flush=True))


def _mesh_precond(args, suite):
    """``hybrid --domains``: the algebraic V-cycle as a preconditioner (hybrid.bench.mesh_precond); --quick:
    coarse meshes, 2 training and 2 test matrices, 10 training steps."""
    from ..bench import mesh_operators

    suite.check_domains(args.domains)
    train, test, steps = (2, 2, 10) if args.quick else (8, 5, 100)
    return suite.run(_mesh_bundle(args, mesh_operators), args.domains, train=args.samples or train, test=test,
                     steps=steps, log=lambda *a: print(*a, flush=True))


def _inverse(args, suite):
    n, samples = (32, 3) if args.quick else (64, 10)
    n = args.sizes[0] if args.sizes else n
    problems = list(args.problems or suite.COEFFICIENTS)
    records = []
    if "eit-learned" in problems:  # NIO vs DeepONet on EIT (hybrid.bench.eit_learned): trains its models
        from ..bench import eit_learned

        problems.remove("eit-learned")
        quick = dict(n_train=200, n_test=40, epochs=3, samples=1, maxiter=20) if args.quick else {}
        seeds = tuple(range(args.seeds or (1 if args.quick else 3)))
        opts = {**quick, **({"epochs": args.epochs} if args.epochs else {}),
                **({"n_train": args.samples} if args.samples else {})}
        records += eit_learned.run(args.data_dir or Path("data/bench/eit"), labels=args.models or tuple(eit_learned.MODELS),
                                   seeds=seeds, figure=args.json.with_suffix(".png"), **opts)
        if not problems:
            return records
    model = args.model
    if model is None and inverse_model(n).exists():
        model = inverse_model(n)
    if model is not None and not Path(model).exists():
        raise FileNotFoundError(f"--model {model}: no such checkpoint")
    methods = args.methods or (list(suite.METHODS) if model is not None else ["adjoint"])
    if model is None and args.methods is None:
        print(f"no inverse map for n = {n} ({inverse_model(n)}): adjoint only")
    return records + suite.run(n, samples, coefficients=problems, methods=methods, model=model)


def _helmholtz(args, suite):
    from ..bench.results import write_results

    sizes = suite.check_sizes(args.sizes or ([64, 128] if args.quick else [128, 256, 512, 1024]))
    model = args.model  # None: each learned method's own shipped network (suite.default_model)
    if model is not None and not Path(model).exists():
        raise FileNotFoundError(f"--model {model}: no such checkpoint")
    methods = args.methods or list(suite.METHODS)
    known = suite.METHODS + suite.EXTRA_METHODS
    if len(set(methods)) < len(methods):
        raise ValueError(f"--methods {','.join(methods)}: each method once")
    unknown = set(methods) - set(known)
    if unknown:
        raise ValueError(f"--methods {','.join(sorted(unknown))}: helmholtz methods are {', '.join(known)}")
    media = suite.check_media(args.problems or list(suite.MEDIA))
    if args.restart is not None and args.restart < 1:
        raise ValueError(f"--restart {args.restart}: the FGMRES restart must be at least 1")
    if args.memory_gb is not None and not (math.isfinite(args.memory_gb) and args.memory_gb > 0):
        raise ValueError(f"--memory-gb {args.memory_gb}: must be a positive (finite) number of GB")
    if not (math.isfinite(args.max_seconds) and args.max_seconds > 0):
        raise ValueError(f"--max-seconds {args.max_seconds}: must be a positive number of seconds")
    learned = [m for m in methods if m.startswith("learned")]
    if args.network_precision is not None and not learned:
        raise ValueError(f"--network-precision is for the learned methods, none of which is in --methods "
                         f"{','.join(methods)}")
    # a checkpoint of another kind fails here, not in every row; a learned method without a network (none
    # given, none shipped) is left out by suite.run
    nets = {model} if model is not None else {suite.default_model(m) for m in learned}
    nets = sorted(n for n in nets if Path(n).exists())
    if nets:
        from ..precond.helmholtz import load_helmholtz_net
    for net in nets:
        try:
            load_helmholtz_net(net)
        except Exception as e:  # noqa: BLE001 - reported as the bad argument it is
            raise ValueError(f"--model {net}: {e}") from None
    if args.sources < 1:
        raise ValueError(f"--sources {args.sources}: at least 1")
    plot = args.json.with_name(args.json.stem + "-scaling.png")
    # SuperLU needs 352 s at n = 1024 (bench/results/solvers-helmholtz.json): only up to 512 unless asked for
    skip = None if args.methods else (lambda n, name: name == "direct-superlu" and n > 512)
    partial = lambda records: write_results(args.json, "helmholtz", records, extra={"partial": True})  # noqa: E731
    return suite.run(sizes, media, methods, model=model, device=args.device, skip=skip, plot=plot, on_record=partial,
                     max_seconds=args.max_seconds,
                     memory_gb=args.memory_gb if args.memory_gb is not None else suite.default_memory_gb(),
                     restart=args.restart, z_precision=args.z_precision, sources=args.sources,
                     network_precision=args.network_precision, repeats=repeats(args, default=1))


#: the suites whose rows take ``--repeats`` (the others train networks, or time a whole study once)
REPEATS_SUITES = ("solvers", "datagen", "hybrid", "helmholtz")


def repeats(args, default: int = 3) -> int:
    """``--repeats``, or the suite's default where it is not given."""
    if args.repeats is None:
        return default
    if args.repeats < 1:
        raise ValueError(f"--repeats {args.repeats}: at least 1")
    return args.repeats


def inverse_model(n: int) -> Path:
    """The learned Darcy inverse map shipped for grid size ``n`` (pressure -> log-coefficient, MgNO)."""
    return DEFAULT_MODEL.parent / f"darcy_inverse_mgno_n{n}.pt"


#: the learned-AMG checkpoint shipped with the repository (trained at n = 32, 12 KB)
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "bench" / "models" / "learned_amg.pt"

#: suites with mesh rows (``--domains``): suite -> module of hybrid.bench
MESH_SUITES = {"operators": "mesh_operators", "hybrid": "mesh_precond"}

def _helmholtz_norm(args, suite):
    sizes = suite.check_sizes(args.sizes or ([32, 64] if args.quick else [64, 128, 256]), multigrid=False)
    return suite.run(sizes, suite.check_media(args.problems or list(suite.MEDIA)))


SUITES = {"solvers": _solvers, "datagen": _datagen, "operators": _operators, "hybrid": _hybrid, "inverse": _inverse,
          "helmholtz": _helmholtz, "helmholtz-norm": _helmholtz_norm}


def run(args) -> int:
    import json

    from ..bench.results import markdown_table, write_results

    if args.domains and args.suite not in MESH_SUITES:
        raise ValueError(f"--domains: only for {' and '.join(MESH_SUITES)}")
    if args.repeats is not None and (args.suite not in REPEATS_SUITES or args.domains):
        raise ValueError(f"--repeats: only for the suites {', '.join(REPEATS_SUITES)} (without --domains); "
                         f"{args.suite}{' --domains' if args.domains else ''} runs each row once")
    if args.json.is_dir() and not args.report:  # refused before the run, not after it
        raise ValueError(f"--json {args.json}: is a directory; give a file name, e.g. {args.json / (args.suite + '.json')}")
    module = MESH_SUITES[args.suite] if args.domains else args.suite.replace("-", "_")
    suite = importlib.import_module(f"hybrid.bench.{module}")
    if args.report:
        doc = json.loads(args.json.read_text())
        if args.suite in MESH_SUITES:  # a mesh-rows file reads with its own columns, --domains or not
            mesh = importlib.import_module(f"hybrid.bench.{MESH_SUITES[args.suite]}")
            suite = mesh if doc.get("suite") == mesh.SUITE else suite
        command = doc.get("command", "(partial results of an interrupted run)")  # partial files have none
        print(f"{command}  ({doc['created']}, {doc['machine']['cpu']}, {doc['machine']['cores']} cores)\n")
        print(suite.table(doc["records"]) if hasattr(suite, "table") else markdown_table(doc["records"], suite.COLUMNS))
        return 0

    command = "hybrid " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else \
        f"hybrid bench {args.suite}{' --quick' if args.quick else ''}" \
        f"{' --domains ' + ','.join(args.domains) if args.domains else ''} --json {args.json}"
    records = SUITES[args.suite](args, suite)
    path = write_results(args.json, getattr(suite, "SUITE", args.suite), records, device=_device_name(args),
                         extra={"command": command})
    table = suite.table(records) if hasattr(suite, "table") else markdown_table(records, suite.COLUMNS)
    print(table)
    if hasattr(suite, "table"):  # suites with a summary table also write it beside the JSON file
        doc = json.loads(path.read_text())
        path.with_suffix(".md").write_text(f"{command}  ({doc['created']}, {doc['machine']['cpu']}, "
                                           f"{doc['machine']['cores']} cores, {doc['machine']['device']})\n\n{table}\n")
    print(f"wrote {path}")
    return 0


def _device_name(args) -> str:
    device = getattr(args, "device", "cpu")
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(0)
    return "cpu"
