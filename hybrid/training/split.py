"""Train / validation / test split of a dataset's samples, and sizes for datasets smaller than the defaults."""

from __future__ import annotations

import numpy as np

#: ``hybrid train``'s sizes when the file has room for them
DEFAULT_N_TRAIN, DEFAULT_N_TEST = 1000, 100


def validation_count(n_train: int, val_fraction: float) -> int:
    """Samples of the first ``n_train`` held out for validation: at least one, and at least one left to train on."""
    return min(max(1, int(round(val_fraction * n_train))), n_train - 1)


def split_indices(n_total: int, cfg, separate_test: bool = False):
    """Train/validation from the first ``n_train`` complete samples, test from the last ``n_test``
    (or, with a separate test file, none here)."""
    n_val = validation_count(cfg.n_train, cfg.val_fraction)
    if separate_test:
        if cfg.n_train > n_total:
            raise ValueError(f"the dataset has {n_total} samples; n_train={cfg.n_train} exceeds it")
        return np.arange(0, cfg.n_train - n_val), np.arange(cfg.n_train - n_val, cfg.n_train), None
    if cfg.n_train + cfg.n_test > n_total:
        raise ValueError(f"the dataset has {n_total} samples; n_train={cfg.n_train} + n_test={cfg.n_test} exceed it")
    train = np.arange(0, cfg.n_train - n_val)
    val = np.arange(cfg.n_train - n_val, cfg.n_train)
    test = np.arange(n_total - cfg.n_test, n_total)
    return train, val, test


def default_sizes(n_total: int, n_train: int | None, n_test: int | None,
                  val_fraction: float = 0.1) -> tuple[int, int, str | None]:
    """``(n_train, n_test, note)`` for sizes left out (``None``): 1000 and 100 when the file holds them,
    else 90% (training and validation) / 10% (test) of the file;
    ``note`` says what was chosen when it is not the default.

    >>> default_sizes(5000, None, None)
    (1000, 100, None)
    >>> default_sizes(300, None, None)[:2]
    (270, 30)
    """
    given = (n_train is not None, n_test is not None)
    if given == (False, False):
        if DEFAULT_N_TRAIN + DEFAULT_N_TEST <= n_total:
            return DEFAULT_N_TRAIN, DEFAULT_N_TEST, None
        n_test = max(1, int(round(0.1 * n_total)))
        n_train = n_total - n_test
    elif given == (True, False):
        n_test = max(1, min(DEFAULT_N_TEST, n_total - n_train))
    elif given == (False, True):
        n_train = min(DEFAULT_N_TRAIN, n_total - n_test)
    if all(given) or (n_train, n_test) == (DEFAULT_N_TRAIN, DEFAULT_N_TEST) or n_train + n_test > n_total \
            or n_train < 2:
        return n_train, n_test, None  # as asked, the default, or refused by the split with its own message
    n_val = validation_count(n_train, val_fraction)
    chosen = (f"n_train={n_train} ({n_train - n_val} training, {n_val} validation) and n_test={n_test}")
    if given == (False, False):
        return n_train, n_test, (f"{n_total} samples, fewer than n_train={DEFAULT_N_TRAIN} + "
                                 f"n_test={DEFAULT_N_TEST}: using {chosen}")
    return n_train, n_test, f"{n_total} samples: using {chosen}"
