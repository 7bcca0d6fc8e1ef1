"""Training loop: Adam + OneCycle or cosine schedule, validation split, early stopping, checkpoints,
resume, progress bar, and PNGs of the loss curves and of a prediction.

The normalizer (a :class:`hybrid.data.DataProcessor` fitted on the training split) is kept outside the
model and saved in the checkpoint, as in neuraloperator.

Inputs and outputs need not share a grid: models whose ``forward`` takes ``out_shape`` (DeepONet, NIO) are
asked for the target's grid, so EIT measurements ``(patterns, boundary nodes)`` train against the
conductivity on ``(n+1, n+1)``; other models must map a grid to the same grid (checked up front).
``noise`` perturbs the measured inputs of the validation and test sets (multiplicative, fixed seed).
"""

from __future__ import annotations

import inspect
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..data import DataProcessor, FieldDataset, multiplicative_noise, training_noise
from ..operators import MODELS, build, config_dict, real_parameter_count
from . import checkpoint, distributed, rundir
from .losses import LOSSES, relative_h1, relative_l2
from .split import split_indices


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 20
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "onecycle"     # or "cosine"
    loss: str = "l2"               # or "h1"
    n_train: int = 1000
    n_test: int = 100
    val_fraction: float = 0.1
    patience: int = 0              # epochs without validation improvement before stopping (0: never)
    seed: int = 0
    inputs: tuple = ("coefficient",)
    outputs: tuple = ("solution",)
    noise: float = 0.0             # multiplicative noise on the measured inputs at validation and test (0.1 = 10%)
    #: noise augmentation: multiplicative noise on the measured inputs of every training batch, fresh each batch,
    #: each sample's level uniform in [0, train_noise] (0: clean training data)
    train_noise: float = 0.0
    #: mixed resolutions: batch b is trained on every ``subsample[b % len]``-th node (injection, exact for
    #: P1 nodal data: the coarse grid's own coefficient, the fine solution's values at the coarse nodes)
    subsample: tuple = (1,)

    def __post_init__(self):
        def need(ok, name, what):
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r}: {what}")

        for name in ("epochs", "batch_size", "n_test"):
            need(_integer(getattr(self, name)) and getattr(self, name) >= 1, name, "must be a positive integer")
        need(_integer(self.n_train) and self.n_train >= 2, "n_train",
             "need at least 2 samples (one to train on, one to validate)")
        need(_integer(self.patience) and self.patience >= 0, "patience", "must be a non-negative integer")
        need(_integer(self.seed) and self.seed >= 0, "seed", "must be a non-negative integer")
        need(math.isfinite(self.lr) and self.lr > 0, "lr", "the learning rate must be positive and finite")
        need(math.isfinite(self.weight_decay) and self.weight_decay >= 0, "weight_decay",
             "must be non-negative and finite")
        need(0 < self.val_fraction < 1, "val_fraction", "must lie in (0, 1)")
        need(isinstance(self.noise, (int, float)) and not isinstance(self.noise, bool) and math.isfinite(self.noise)
             and self.noise >= 0, "noise", "must be a non-negative finite number (0.1 = 10% multiplicative noise)")
        need(isinstance(self.train_noise, (int, float)) and not isinstance(self.train_noise, bool)
             and math.isfinite(self.train_noise) and self.train_noise >= 0, "train_noise",
             "must be a non-negative finite number (0.1 = up to 10% multiplicative noise)")
        need(self.schedule in ("onecycle", "cosine"), "schedule", "use onecycle or cosine")
        need(self.loss in LOSSES, "loss", f"use {', '.join(LOSSES)}")
        need(len(self.inputs) > 0 and len(self.outputs) > 0, "inputs", "need at least one input and one output field")
        need(len(self.subsample) > 0 and all(_integer(f) and f >= 1 for f in self.subsample), "subsample",
             "must be positive integer factors, e.g. (1, 2)")


def subsample(x, y, factor: int):
    """Every ``factor``-th node of inputs and outputs on the same grid (both grids must coarsen exactly)."""
    if factor == 1:
        return x, y
    if x.shape[-2:] != y.shape[-2:] or any((s - 1) % factor for s in y.shape[-2:]):
        raise ValueError(f"subsample={factor} needs inputs and outputs on one grid of k*{factor}+1 nodes per side, "
                         f"got {tuple(x.shape[-2:])} -> {tuple(y.shape[-2:])}")
    return x[..., ::factor, ::factor], y[..., ::factor, ::factor]


def _integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


class TrainingError(ValueError):
    """Training produced non-finite values (loss, weights, validation error); nothing of it was saved."""


def takes_out_shape(model) -> bool:
    """Whether the model's ``forward`` accepts ``out_shape`` (its output grid may differ from its input's)."""
    model = getattr(model, "module", model)  # DistributedDataParallel: the wrapped model's forward
    try:
        return "out_shape" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def predict(model, x, out_shape):
    """``model(x)`` on the grid ``out_shape``: passed to models that take it, checked for the others."""
    if takes_out_shape(model):
        return model(x, out_shape=tuple(out_shape))
    return model(x)


#: input fields that are EIT measurements (boundary pattern, its Dirichlet-to-Neumann response)
EIT_INPUTS = ("patterns", "dtn")


def make_processor(inputs, outputs, x) -> DataProcessor:
    """The normalizer for these fields: difference data (:class:`hybrid.data.normalize.DtNNormalizer`) for EIT
    measurements, per-channel statistics otherwise."""
    if tuple(inputs) == EIT_INPUTS:
        return DataProcessor(2, len(outputs), "dtn", boundary_points=x.shape[-1])
    return DataProcessor(len(inputs), len(outputs))


def check_shapes(model_name: str, model, x_shape, y_shape) -> None:
    """A model without ``out_shape`` maps a grid to the same grid: refuse other data before training."""
    if takes_out_shape(model) or tuple(x_shape[-2:]) == tuple(y_shape[-2:]):
        return
    others = [name for name, (cls, _) in MODELS.items() if "out_shape" in inspect.signature(cls.forward).parameters]
    raise ValueError(f"{model_name} maps its input grid to the same grid, but the inputs are {tuple(x_shape)} per "
                     f"sample and the outputs {tuple(y_shape)} (e.g. EIT measurements (patterns, boundary nodes) -> "
                     f"the conductivity): use {' or '.join(others)}, or other --inputs/--outputs")


@torch.no_grad()
def evaluate_model(model, processor, x, y, batch_size: int = 20, device="cpu") -> dict:
    """Relative L2 and H1 errors (mean, median) and inference time per sample, in physical units."""
    model.eval()
    preds = []
    t = time.perf_counter()
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(device)
        xn, _ = processor.preprocess(xb)
        preds.append(processor.postprocess(predict(model, xn, y.shape[-2:])).cpu())
    if device != "cpu" and torch.cuda.is_available():
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    pred = torch.cat(preds)
    l2, h1 = relative_l2(pred, y), relative_h1(pred, y)
    return {"rel_l2_mean": float(l2.mean()), "rel_l2_median": float(l2.median()), "rel_h1_mean": float(h1.mean()),
            "rel_h1_median": float(h1.median()), "infer_ms_per_sample": 1e3 * dt / len(x), "n": len(x),
            "pred": pred}


class Trainer:
    def __init__(self, model_name: str, model_config: dict, data, out: Path, cfg: TrainConfig, device: str = "cpu",
                 test_data=None):
        self.model_name, self.cfg, self.device = model_name, cfg, torch.device(device)
        self.out = Path(out)  # created by fit(), once everything is checked
        self.data = Path(data)
        full = FieldDataset(self.data, cfg.inputs, cfg.outputs, dtype=torch.float32)
        self.data_identity = full.identity()
        tr, va, te = split_indices(len(full), cfg, separate_test=test_data is not None)
        self.train_set = FieldDataset(self.data, cfg.inputs, cfg.outputs, indices=tr)
        self.xtr, self.ytr = self.train_set.arrays()
        self.xva, self.yva = FieldDataset(self.data, cfg.inputs, cfg.outputs, indices=va).arrays()
        if test_data is not None:
            test = FieldDataset(test_data, cfg.inputs, cfg.outputs)
            te = np.arange(min(cfg.n_test, len(test)))
            self.xte, self.yte = FieldDataset(test_data, cfg.inputs, cfg.outputs, indices=te).arrays()
        else:
            self.xte, self.yte = FieldDataset(self.data, cfg.inputs, cfg.outputs, indices=te).arrays()
        # measurement noise on the held-out inputs (not on fields stored once, such as EIT's patterns)
        self.xva = multiplicative_noise(self.xva, cfg.noise, full.measured_inputs, seed=cfg.seed * 2 + 1)
        self.xte = multiplicative_noise(self.xte, cfg.noise, full.measured_inputs, seed=cfg.seed * 2 + 2)
        self.measured_inputs = full.measured_inputs
        torch.manual_seed(cfg.seed)
        model_config = {"in_channels": len(cfg.inputs), "out_channels": len(cfg.outputs), **(model_config or {})}
        self.model = build(model_name, model_config).to(self.device)
        check_shapes(model_name, self.model, full.input_shape, full.shape)
        self.processor = make_processor(cfg.inputs, cfg.outputs, self.xtr).fit(self.xtr, self.ytr).to(self.device)
        if hasattr(self.model, "init_boundary_value"):  # masked Dirichlet nodes start at the normalized zero
            self.model.init_boundary_value(self.processor.out.encode(torch.zeros(1, len(cfg.outputs), 1, 1,
                                                                                 device=self.device)))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        steps = cfg.epochs * math.ceil(len(self.xtr) / cfg.batch_size)
        if cfg.schedule == "onecycle":
            self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=cfg.lr, total_steps=max(1, steps))
        else:
            self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=max(1, steps))
        self.loss_fn = LOSSES[cfg.loss]
        self.history = {"epoch": [], "train_loss": [], "val_rel_l2": [], "lr": [], "seconds": []}
        self.start_epoch, self.best, self.bad_epochs, self.train_s = 0, float("inf"), 0, 0.0
        self.resumed, self.saved_epoch = False, None
        # under torchrun: this rank and the number of processes (see distributed.py); rank 0 writes the files
        self.rank, self.world, self.net = distributed.rank(), distributed.size(), None

    @property
    def params(self) -> int:
        """Parameters in real numbers (a complex weight counts twice)."""
        return real_parameter_count(self.model)

    def _state(self) -> dict:
        return {"train": {"epoch": self.epoch, "best": self.best, "bad_epochs": self.bad_epochs,
                          "train_s": self.train_s, "optimizer": self.opt.state_dict(),
                          "scheduler": self.sched.state_dict(), "history": self.history,
                          "config": self._train_config(), "data": self.data_identity}}

    def _train_config(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.cfg).items()}

    def resume(self) -> bool:
        """Continue ``out/last.pt`` (False when there is none); refused when the checkpoint was made with
        another model, model config, training config or dataset (the message names what differs)."""
        last = self.out / "last.pt"
        if not last.exists():
            return False
        payload = checkpoint.read_payload(last, self.device)
        st = payload["train"]
        if st["config"]["epochs"] != self.cfg.epochs:
            raise ValueError(f"{last} is a run of {st['config']['epochs']} epochs (the schedule depends on it); "
                             f"resume with --epochs {st['config']['epochs']} or start a new run directory")
        rundir.check_resume(last, payload, self.model_name, config_dict(self.model), self._train_config(),
                            self.data_identity)
        _, model, _, payload = checkpoint.load(last, self.device)
        self.model.load_state_dict(model.state_dict())
        self.opt.load_state_dict(st["optimizer"])
        self.sched.load_state_dict(st["scheduler"])
        self.history, self.best, self.bad_epochs = st["history"], st["best"], st["bad_epochs"]
        self.train_s = st["train_s"]
        self.start_epoch = st["epoch"] + 1
        self.resumed, self.saved_epoch = True, st["epoch"]
        return True

    def fit(self, progress: bool = True, log=None) -> dict:
        """Train (refusing a run directory that holds another model's checkpoint unless resumed), then
        :meth:`finish`. A failure before the first checkpoint leaves no empty run directory behind."""
        if not self.resumed:
            rundir.check_new_run(self.out, self.model_name, config_dict(self.model))
        created = self.rank == 0 and not self.out.exists()
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
        try:
            return self._fit(progress, log)
        except BaseException:
            if created and self.out.is_dir() and not any(self.out.iterdir()):
                self.out.rmdir()
            raise

    def _diverged(self, what: str) -> TrainingError:
        kept = ("no checkpoint was written" if self.saved_epoch is None else
                f"{self.out / 'last.pt'} keeps epoch {self.saved_epoch}")
        return TrainingError(f"train {self.model_name}: {what}; stopped without saving these weights ({kept}); "
                             f"lower the learning rate (lr={self.cfg.lr:g}) or check the data")

    def _fit(self, progress: bool, log) -> dict:
        from tqdm import tqdm

        cfg = self.cfg
        if self.world > 1 and self.net is None:  # after resume(): DDP starts from the loaded weights
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(self.model, device_ids=[self.device] if self.device.type == "cuda"
                                               else None)
        main = self.rank == 0
        log = log if main else None
        bar = tqdm(range(self.start_epoch, cfg.epochs), desc=f"train {self.model_name}",
                   disable=not progress or not main,
                   initial=self.start_epoch, total=cfg.epochs)
        try:
            for self.epoch in bar:
                val, train_loss = self._epoch()
                h = self.history
                h["epoch"].append(self.epoch)
                h["train_loss"].append(train_loss)
                h["val_rel_l2"].append(val)
                h["lr"].append(self.sched.get_last_lr()[0])
                h["seconds"].append(self.train_s)
                bar.set_postfix(loss=f"{train_loss:.4f}", val=f"{val:.4f}")
                improved = val < self.best
                if improved:
                    self.best, self.bad_epochs = val, 0
                else:
                    self.bad_epochs += 1
                if main:
                    checkpoint.save(self.out / "last.pt", self.model_name, self.model, self.processor, self._state())
                self.saved_epoch = self.epoch
                if improved and main:
                    checkpoint.save(self.out / "best.pt", self.model_name, self.model, self.processor, self._state())
                if cfg.patience and self.bad_epochs >= cfg.patience:
                    if log:
                        log(f"early stop at epoch {self.epoch}: no validation improvement in {cfg.patience} epochs")
                    break
        finally:
            bar.close()
        return self.finish() if main else {}  # other ranks: nothing to write, and no collective left

    def _epoch(self) -> tuple[float, float]:
        """One epoch over the training split; ``(validation error, mean training loss)``. A non-finite loss,
        weight or validation error raises :class:`TrainingError` before anything is saved."""
        cfg = self.cfg
        t = time.perf_counter()
        self.model.train()
        # one generator per epoch: a resumed run sees the same batches as an uninterrupted one
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(len(self.xtr), generator=g)
        net = self.model if self.net is None else self.net
        total = 0.0
        for i in range(0, len(perm), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            n = len(idx)
            # several processes: this rank's share of the global batch (the same permutation on every rank);
            # a rank without a share (a last batch smaller than the world) runs one sample with zero weight
            mine = idx[self.rank::self.world]
            take = mine if len(mine) else idx[:1]
            x, y = self.xtr[take].to(self.device), self.ytr[take].to(self.device)
            x, y = subsample(x, y, cfg.subsample[(i // cfg.batch_size) % len(cfg.subsample)])
            if cfg.train_noise:  # seeded by (seed, epoch, batch): a resumed run draws the same noise
                x = training_noise(x, cfg.train_noise, self.measured_inputs,
                                   seed=(cfg.seed * 1_000_003 + self.epoch) * 100_003 + i // cfg.batch_size)
            xn, _ = self.processor.preprocess(x)
            pred = self.processor.postprocess(predict(net, xn, y.shape[-2:]))
            per_sample = self.loss_fn(pred, y)
            if self.world == 1:
                loss = objective = per_sample.mean()
            else:
                # DDP averages gradients over ranks: (world / n) * (sum of this rank's losses) makes the average
                # the gradient of the global batch's mean loss, whatever the shares' sizes
                local = per_sample[:len(mine)].sum()
                objective = local * (self.world / n)
                loss = local.detach().clone()
                torch.distributed.all_reduce(loss)  # the global batch's loss: the same decision on every rank
                loss = loss / n
            if not torch.isfinite(loss):
                raise self._diverged(f"non-finite training loss ({float(loss.detach())}) at epoch {self.epoch}, "
                                     f"batch {i // cfg.batch_size}")
            self.opt.zero_grad(set_to_none=True)
            objective.backward()
            self.opt.step()
            self.sched.step()
            total += float(loss.detach()) * n
        self.train_s += time.perf_counter() - t
        bad = [name for name, p in self.model.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise self._diverged(f"non-finite weights ({', '.join(bad[:3])}) after epoch {self.epoch}")
        val = evaluate_model(self.model, self.processor, self.xva, self.yva, cfg.batch_size, self.device)["rel_l2_mean"]
        if self.world > 1:
            val = distributed.broadcast_float(val, self.device)  # rank 0's: early stopping agrees on every rank
        if not math.isfinite(val):
            raise self._diverged(f"non-finite validation error ({val}) after epoch {self.epoch}")
        return val, total / len(perm)

    def finish(self) -> dict:
        from .. import plots

        _, best, _, _ = checkpoint.load(self.out / "best.pt", self.device)
        res = evaluate_model(best, self.processor, self.xte, self.yte, self.cfg.batch_size, self.device)
        pred = res.pop("pred")
        summary = {"model": self.model_name, "params": self.params, "epochs_run": len(self.history["epoch"]),
                   "train_s": self.train_s, "best_val_rel_l2": self.best, **{f"test_{k}": v for k, v in res.items()},
                   "device": str(self.device), "processes": self.world, "data": str(self.data)}
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
        (self.out / "history.json").write_text(json.dumps(self.history))
        x0, y0, p0 = self.xte[0, -1].numpy(), self.yte[0, 0].numpy(), pred[0, 0].numpy()  # last input: EIT's dtn
        try:
            plots.save_loss_curves(self.out / "loss.png", self.history)
            plots.save_fields(self.out / "prediction.png", {"input": x0, "truth": y0, "prediction": p0, "error": p0 - y0})
        except ImportError:  # no matplotlib/DOLFINx on this machine (the GPU benchmark scripts): numbers only
            pass
        return summary
