"""``hybrid train --nproc 2``: DistributedDataParallel under torchrun (gloo on CPU) reaches the loss curve of one
process with the same global batch, rank 0 alone writes the run directory, a failing rank ends the whole job,
and a run interrupted that way resumes to the uninterrupted curve."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

BIN = Path(sys.executable).parent
TINY = {"unet": {"channels": 4, "depth": 2}, "mgno": {"channels": 6, "layers": 2, "levels": [[1, 1], [1, 0], [2, 0]]}}
RUN_FILES = {"best.pt", "last.pt", "summary.json", "history.json", "loss.png", "prediction.png"}
# a rank that fails at a chosen epoch (before its first batch), injected into the torchrun workers only
FAIL_ON_RANK = textwrap.dedent("""
    import os
    if os.environ.get("RANK") == os.environ.get("HYBRID_TEST_FAIL_RANK"):
        import hybrid.training.trainer as tr
        real_epoch = tr.Trainer._epoch

        def _epoch(self):
            if self.epoch == int(os.environ["HYBRID_TEST_FAIL_EPOCH"]):
                raise RuntimeError(f"injected failure at epoch {self.epoch}")
            return real_epoch(self)

        tr.Trainer._epoch = _epoch
""")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("ddp") / "darcy.h5"
    proc = subprocess.run([str(BIN / "hybrid"), "generate", "darcy", "--samples", "24", "--n", "8", "--out", str(path),
                           "--no-progress"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return path


def train(data, out, model, nproc, batch_size, *extra, env=None, check=True):
    cmd = [str(BIN / "hybrid"), "train", model, "--data", str(data), "--out", str(out), "--epochs", "2",
           "--batch-size", str(batch_size), "--config", json.dumps(TINY[model]), "--no-progress",
           "--nproc", str(nproc), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})))
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def history(run):
    return json.loads((run / "history.json").read_text())


# 20 training samples: batches of 3 split 2 + 1 across the ranks (the last batch of 2: 1 + 1); batches of 19 leave
# rank 1 without a share of the last batch (1 sample), which it must still join with a zero-weight gradient
@pytest.mark.parametrize("model, batch_size", [("unet", 3), ("mgno", 19)])
def test_two_processes_match_one_process(data, tmp_path, model, batch_size):
    one, two = tmp_path / "one", tmp_path / "two"
    train(data, one, model, 1, batch_size)
    proc = train(data, two, model, 2, batch_size)
    h1, h2 = history(one), history(two)
    assert h2["epoch"] == h1["epoch"] == [0, 1]
    np.testing.assert_allclose(h2["train_loss"], h1["train_loss"], rtol=1e-5, atol=0)
    np.testing.assert_allclose(h2["val_rel_l2"], h1["val_rel_l2"], rtol=1e-5, atol=0)
    np.testing.assert_allclose(h2["lr"], h1["lr"], rtol=1e-12)
    # the run directory is rank 0's alone: the same files as one process, no stray temporary, one report
    assert {p.name for p in two.iterdir()} == RUN_FILES
    assert proc.stdout.count("Wrote ") == 1 and "on 2 processes" in proc.stdout
    s1, s2 = (json.loads((run / "summary.json").read_text()) for run in (one, two))
    assert s2["processes"] == 2 and s1["processes"] == 1
    assert s2["test_rel_l2_mean"] == pytest.approx(s1["test_rel_l2_mean"], rel=1e-4)
    # the checkpoint loads with weights_only=True and holds the plain model (no DDP ``module.`` prefix)
    a = torch.load(one / "last.pt", map_location="cpu", weights_only=True)
    b = torch.load(two / "last.pt", map_location="cpu", weights_only=True)
    sa, sb = a["state_dict"], b["state_dict"]
    assert sa.keys() == sb.keys() and not any(k.startswith("module.") for k in sb)
    for k in sa:  # Adam turns rounding in a near-zero gradient into up to lr-sized steps: atol well below lr
        torch.testing.assert_close(sb[k], sa[k], rtol=1e-4, atol=1e-5)
    assert b["train"]["history"]["train_loss"] == h2["train_loss"]


def test_failing_rank_ends_the_job_and_the_run_resumes(data, tmp_path):
    """Rank 1 fails at epoch 1 while rank 0 waits for it in a collective: the job exits with the error (no
    hang); rank 0's epoch-0 checkpoint resumes on 2 processes to the uninterrupted 1-process curve."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FAIL_ON_RANK)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
           "HYBRID_TEST_FAIL_RANK": "1", "HYBRID_TEST_FAIL_EPOCH": "1"}
    one, two = tmp_path / "one", tmp_path / "two"
    train(data, one, "unet", 1, 3, "--epochs", "3")
    proc = train(data, two, "unet", 2, 3, "--epochs", "3", env=env, check=False)
    assert proc.returncode != 0
    assert "hybrid train: error (rank 1 of 2): injected failure at epoch 1" in proc.stderr
    saved = torch.load(two / "last.pt", map_location="cpu", weights_only=True)
    assert saved["train"]["epoch"] == 0 and not (two / "summary.json").exists()

    proc = train(data, two, "unet", 2, 3, "--epochs", "3", "--resume")
    assert "resuming" in proc.stdout and "at epoch 1" in proc.stdout
    h1, h2 = history(one), history(two)
    assert h2["epoch"] == h1["epoch"] == [0, 1, 2]
    np.testing.assert_allclose(h2["train_loss"], h1["train_loss"], rtol=1e-5, atol=0)
    np.testing.assert_allclose(h2["val_rel_l2"], h1["val_rel_l2"], rtol=1e-5, atol=0)


def test_nproc_refused_where_it_does_not_apply(data, tmp_path):
    from hybrid.cli import main

    assert main(["train", "precond", "--out", str(tmp_path / "p"), "--nproc", "2"]) == 2
    assert main(["train", "unet", "--data", str(data), "--out", str(tmp_path / "u"), "--nproc", "0"]) == 2
    assert not (tmp_path / "u").exists()
