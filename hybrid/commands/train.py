"""``hybrid train MODEL --data FILE.h5 --out RUN_DIR`` and ``hybrid evaluate RUN_DIR --data FILE.h5``."""

from __future__ import annotations

import json
import sys
from pathlib import Path


from ..names import MODELS
from . import train_learned_amg, train_precond


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a learned operator on a generated dataset, or a preconditioner")
    p.add_argument("model", choices=(*MODELS, "precond", "learned-amg"),
                   help="an operator (regression on --data), precond (SPD V-cycle trained on solver error) or "
                        "learned-amg (network for Ruge-Stuben AMG; --out FILE.pt)")
    p.add_argument("--data", type=Path, help="HDF5 dataset from `hybrid generate` (operators only)")
    p.add_argument("--inputs", nargs="+", default=None, metavar="FIELD",
                   help="dataset fields stacked as the model's input channels (default: coefficient; EIT files: "
                        "patterns dtn)")
    p.add_argument("--outputs", nargs="+", default=None, metavar="FIELD",
                   help="dataset fields the model predicts (default: solution; EIT files: conductivity)")
    p.add_argument("--noise", type=float, default=0.0, metavar="LEVEL",
                   help="multiplicative noise on the measured inputs of the validation and test sets (0.1 = 10%%)")
    p.add_argument("--train-noise", type=float, default=0.0, metavar="LEVEL",
                   help="noise augmentation: multiplicative noise on the measured inputs of every training batch, "
                        "each sample's level uniform in [0, LEVEL]")
    p.add_argument("--out", type=Path, required=True, help="run directory (checkpoints, summary, PNGs)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=None, help="samples per step (default 20; precond: 4 fields)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3; precond: 3e-3)")
    p.add_argument("--weight-decay", type=float, default=None, help="Adam L2 weight decay (default 1e-4)")
    p.add_argument("--schedule", choices=["onecycle", "cosine"], default="onecycle")
    p.add_argument("--loss", choices=["l2", "h1", "energy", "unrolled"], default=None,
                   help="operators: l2 (default) or h1; precond: energy (default) or unrolled")
    p.add_argument("--n-train", type=int, default=None,
                   help="first N samples for training and validation (default 1000, or 90%% of a smaller file)")
    p.add_argument("--n-test", type=int, default=None,
                   help="last N samples for testing (default 100, or 10%% of a smaller file)")
    p.add_argument("--patience", type=int, default=0, help="early stopping patience in epochs (0: off)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--nproc", type=int, default=None, metavar="N",
                   help="operators: train on N processes (relaunches under `torchrun --nproc-per-node N`; "
                        "DistributedDataParallel, gloo on CPU, nccl and one GPU per process with --device cuda); "
                        "the global batch (--batch-size) is split across them, so the loss curve is that of one "
                        "process")
    p.add_argument("--config", default="{}", help="model config as JSON, e.g. '{\"channels\": 16}'")
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR/last.pt")
    p.add_argument("--no-progress", action="store_true")
    train_precond.add_arguments(p)
    p.set_defaults(run=run_train)

    e = sub.add_parser("evaluate", help="evaluate a trained run on a dataset (any resolution)")
    e.add_argument("run_dir", type=Path)
    e.add_argument("--data", type=Path, required=True)
    e.add_argument("--last", type=int, default=100, help="evaluate on the last N samples (default 100)")
    e.add_argument("--noise", type=float, default=0.0, metavar="LEVEL",
                   help="multiplicative noise on the measured inputs (0.1 = 10%%)")
    e.add_argument("--device", default="cpu")
    e.set_defaults(run=run_evaluate)


def _device(name: str) -> str:
    import torch

    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available here")
    return name


def run_train(args) -> int:
    from ..training import distributed

    if args.nproc is not None and args.nproc < 1:
        raise ValueError(f"--nproc {args.nproc}: need at least one process")
    if args.model in ("precond", "learned-amg") and ((args.nproc or 1) > 1 or distributed.launched()):
        raise ValueError(f"--nproc trains the operators ({', '.join(MODELS)}); train {args.model} runs in one process")
    if (args.nproc or 1) > 1 and not distributed.launched():
        if args.data is None:
            raise ValueError(f"train {args.model} needs --data FILE.h5 (a dataset from `hybrid generate`)")
        code = distributed.launch(args.argv, args.nproc)
        if code:
            print(f"hybrid train: torchrun with {args.nproc} processes failed (exit status {code}); the failing "
                  f"rank's error is above", file=sys.stderr)
        return code
    if not distributed.launched():
        return _run_train(args, _device(args.device))
    device = distributed.setup(_device(args.device), args.nproc)  # a worker of torchrun
    result = _run_train(args, device)
    distributed.teardown()
    distributed.exit_worker(result)
    return result


def _run_train(args, device: str) -> int:
    from ..data import FieldDataset, default_fields
    from ..training import Trainer, TrainConfig, default_sizes, distributed

    say = print if distributed.rank() == 0 else (lambda *a, **k: None)
    if args.model == "precond":
        return train_precond.run(args, _device(args.device))
    if args.model == "learned-amg":
        return train_learned_amg.run(args)
    if args.data is None:
        raise ValueError(f"train {args.model} needs --data FILE.h5 (a dataset from `hybrid generate`)")
    if args.loss in ("energy", "unrolled"):
        raise ValueError(f"--loss {args.loss} trains a preconditioner: use `hybrid train precond`; {args.model} "
                         f"takes l2 or h1")
    if _is_mesh_data(args.data) or args.model == MESH_MODEL:
        return _run_train_mesh(args, device, say)
    inputs, outputs = default_fields(args.data)  # by the file's problem: EIT trains (patterns, dtn) -> conductivity
    inputs, outputs = tuple(args.inputs or inputs), tuple(args.outputs or outputs)
    n_train, n_test, note = default_sizes(len(FieldDataset(args.data, inputs, outputs)), args.n_train, args.n_test)
    if note:
        say(f"{args.data}: {note}")
    cfg = TrainConfig(epochs=args.epochs, batch_size=20 if args.batch_size is None else args.batch_size,
                      lr=1e-3 if args.lr is None else args.lr,
                      schedule=args.schedule, loss=args.loss or "l2", n_train=n_train, n_test=n_test,
                      patience=args.patience, inputs=inputs, outputs=outputs, noise=args.noise, train_noise=args.train_noise,
                      **({} if args.weight_decay is None else {"weight_decay": args.weight_decay}))
    try:
        model_config = json.loads(args.config)
    except json.JSONDecodeError as e:
        raise ValueError(f"--config is not valid JSON: {e}") from None
    trainer = Trainer(args.model, model_config, args.data, args.out, cfg, device=device)
    if args.resume and trainer.resume():
        say(f"resuming {args.out / 'last.pt'} at epoch {trainer.start_epoch}")
    s = trainer.fit(progress=not args.no_progress, log=print)
    if trainer.rank != 0:
        return 0  # rank 0 wrote the run directory and reports it
    procs = f" on {trainer.world} processes" if trainer.world > 1 else ""
    print(f"{args.model}: {s['params']} parameters, {s['epochs_run']} epochs in {s['train_s']:.1f} s{procs}; test relative "
          f"L2 mean {s['test_rel_l2_mean']:.4f} (median {s['test_rel_l2_median']:.4f}), H1 mean "
          f"{s['test_rel_h1_mean']:.4f}; {s['test_infer_ms_per_sample']:.2f} ms/sample. Wrote {args.out}/")
    return 0


MESH_MODEL = "algebraic-mgno"  # the operator that trains on nodal mesh data


def _is_mesh_data(path) -> bool:
    """Nodal data on an unstructured mesh (``hybrid generate --mesh``: ``n = 0``, no grid)."""
    import h5py

    if not Path(path).exists():
        return False  # default_fields names the missing file
    with h5py.File(path, "r") as f:
        return "mesh" in f and int(f.attrs.get("n", -1)) == 0


def _run_train_mesh(args, device: str, say) -> int:
    """``train algebraic-mgno`` on nodal mesh data; other models are refused on mesh data and this one on grids."""
    from ..data import FieldDataset, default_fields
    from ..training import TrainConfig, default_sizes, distributed
    from ..training.nodal import train_on_mesh_data

    if args.model != MESH_MODEL:
        raise ValueError(f"{args.data} holds nodal values on an unstructured mesh (`hybrid generate --mesh`); "
                         f"{args.model} trains on grid data. Train {MESH_MODEL} on it (the V-cycle on the AMG "
                         f"hierarchy of the mesh's FEM matrix), or move the fields to a grid with meshes.mesh_to_grid")
    if not _is_mesh_data(args.data):
        raise ValueError(f"{MESH_MODEL} trains on nodal mesh data (`hybrid generate darcy --mesh FILE.msh`); "
                         f"{args.data} is grid data: use mgno, unet or fno")
    if distributed.launched() or (args.nproc or 1) > 1 or args.resume:
        raise ValueError(f"train {MESH_MODEL} runs in one process without --resume")
    if args.loss not in (None, "l2"):
        raise ValueError(f"--loss {args.loss}: {MESH_MODEL} trains on the relative L2 error of the P1 function")
    inputs, outputs = default_fields(args.data)
    inputs, outputs = tuple(args.inputs or inputs), tuple(args.outputs or outputs)
    n_train, n_test, note = default_sizes(len(FieldDataset(args.data, inputs, outputs)), args.n_train, args.n_test)
    if note:
        say(f"{args.data}: {note}")
    cfg = TrainConfig(epochs=args.epochs, batch_size=20 if args.batch_size is None else args.batch_size,
                      lr=1e-3 if args.lr is None else args.lr, schedule=args.schedule, n_train=n_train,
                      n_test=n_test, patience=args.patience, inputs=inputs, outputs=outputs,
                      **({} if args.weight_decay is None else {"weight_decay": args.weight_decay}))
    try:
        model_config = json.loads(args.config)
    except json.JSONDecodeError as e:
        raise ValueError(f"--config is not valid JSON: {e}") from None
    s = train_on_mesh_data(args.model, model_config, args.data, args.out, cfg, device,
                           log=None if args.no_progress else say)
    print(f"{args.model}: {s['params']} parameters, AMG levels {s['levels']}, {s['epochs_run']} epochs in "
          f"{s['train_s']:.1f} s; test relative L2 mean {s['test_rel_l2_mean']:.4f} (median "
          f"{s['test_rel_l2_median']:.4f}); {s['test_infer_ms_per_sample']:.2f} ms/sample. Wrote {args.out}/")
    return 0


def run_evaluate(args) -> int:
    from ..data import FieldDataset, multiplicative_noise
    from ..training import evaluate_model, load

    ck = args.run_dir / "best.pt" if args.run_dir.is_dir() else args.run_dir
    name, model, processor, payload = load(ck, _device(args.device))
    tc = payload.get("train", {}).get("config", {})
    full = FieldDataset(args.data, tc.get("inputs", ["coefficient"]), tc.get("outputs", ["solution"]))
    n = min(args.last, len(full))
    x, y = FieldDataset(args.data, full.inputs, full.outputs, indices=range(len(full) - n, len(full))).arrays()
    x = multiplicative_noise(x, args.noise, full.measured_inputs, seed=1)
    if _is_mesh_data(args.data):  # nodal data: relative L2 of the P1 function (lumped mass), no H1
        import torch
        from ..training.nodal import evaluate_nodal, lumped_mass, mesh_arrays

        coords, cells = mesh_arrays(args.data)
        if name != MESH_MODEL or len(coords) != len(getattr(model.config, "coordinates", ())):
            raise ValueError(f"{args.data} holds nodal data on a mesh of {len(coords)} nodes; {ck} is a {name} "
                             f"trained on another mesh or on grids")
        res = evaluate_nodal(model, processor, x, y, torch.as_tensor(lumped_mass(coords, cells), dtype=torch.float32),
                             device=args.device)
    else:
        res = evaluate_model(model, processor, x, y, device=args.device)
    res.pop("pred")
    res.update(model=name, data=str(args.data), resolution=list(y.shape[-2:]), noise=args.noise)
    print(json.dumps(res, indent=2))
    return 0
