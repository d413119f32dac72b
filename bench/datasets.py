"""The two benchmark problems: ml100k split-loo (D = 384) and a synthetic Amazon-shaped set."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from amrlite.containers import EvalRows, Split

HERE = Path(__file__).resolve().parent
ML100K = Path(os.environ.get("AMRLITE_ML100K", HERE.parent.parent / "shared" / "data" / "ml100k"))
if not ML100K.exists():
    ML100K = Path("/work/shared/data/ml100k")

AMAZON_SHAPE = dict(n_users=20_000, n_items=60_000, n_train=150_000, n_features=2048)


def _rows(path):
    return np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int32).reshape(-1, 2)


def load_ml100k():
    """``(split, features)`` for ml100k split-loo, or None when the data is absent."""
    loo = ML100K / "split-loo"
    if not (loo / "train.csv").exists():
        return None
    train, valid, test = (_rows(loo / f"{n}.csv") for n in ("train", "valid", "test"))
    features = np.load(ML100K / "features.npy")
    split = Split("loo", 943, features.shape[0], train[:, 0].copy(), train[:, 1].copy(),
                  EvalRows(valid[:, 0].copy(), valid[:, 1].copy(),
                           np.load(loo / "valid_negatives.npy")),
                  EvalRows(test[:, 0].copy(), test[:, 1].copy(), np.load(loo / "test_negatives.npy")))
    return split, features


def synthetic_amazon(seed=0, **shape):
    """A random set shaped like the paper's Amazon data scaled to this machine: 20,000 users,
    60,000 items, 150,000 distinct training pairs (popularity-skewed items), D = 2048 float32
    features (standard normal, L2-normalised rows)."""
    s = {**AMAZON_SHAPE, **shape}
    rng = np.random.default_rng(seed)
    n_u, n_i, n = s["n_users"], s["n_items"], s["n_train"]
    pop = 1.0 / np.arange(1, n_i + 1) ** 0.6
    pop /= pop.sum()
    users = rng.integers(0, n_u, size=int(n * 1.3))
    items = rng.choice(n_i, size=len(users), p=pop)
    keys = np.unique(users.astype(np.int64) * n_i + items)
    keys = rng.permutation(keys)[:n]
    users, items = (keys // n_i).astype(np.int32), (keys % n_i).astype(np.int32)
    feats = rng.standard_normal((n_i, s["n_features"]), dtype=np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    test_u = np.arange(n_u, dtype=np.int32)
    test = EvalRows(test_u, rng.integers(0, n_i, n_u).astype(np.int32))
    split = Split("amazon-shaped", n_u, n_i, users, items, None, test)
    return split, feats
