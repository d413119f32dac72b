"""Data sets and splits: the containers every other module reads.

The containers are plain arrays so that every backend (NumPy, Numba, CuPy) can take them as they
are. Loaders for the native folder format, the official AMR format and plain CSV/TSV + ``.npy``
live here too; split generation is in :mod:`amrlite.splits`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass
class EvalRows:
    """Held-out rows: row ``r`` asks to rank ``items[r]`` for ``users[r]``.

    ``negatives[r]`` (int32 ``[n_rows, N]``) are the sampled items it is ranked against, or
    ``None`` when only full-ranking evaluation is possible.
    """

    users: np.ndarray
    items: np.ndarray
    negatives: np.ndarray | None = None

    def __len__(self):
        return len(self.users)


@dataclass
class Split:
    """A train / valid / test partition of one data set's interactions."""

    name: str
    n_users: int
    n_items: int
    train_users: np.ndarray   # int32 [n_train]
    train_items: np.ndarray   # int32 [n_train]
    valid: EvalRows | None
    test: EvalRows

    @cached_property
    def warm_items(self) -> np.ndarray:
        """Boolean mask ``[n_items]``: the item occurs in the training set.

        Items that never occur in training are *cold*: they are scored by content alone (zero ID
        embedding) and are never drawn as training negatives.
        """
        mask = np.zeros(self.n_items, dtype=bool)
        mask[self.train_items] = True
        return mask

    @cached_property
    def train_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """``(indptr int64 [n_users+1], indices int32)``: each user's training items, sorted."""
        order = np.lexsort((self.train_items, self.train_users))
        indices = self.train_items[order].astype(np.int32)
        counts = np.bincount(self.train_users, minlength=self.n_users)
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return indptr, indices

    @property
    def n_train(self) -> int:
        return len(self.train_users)


@dataclass
class Dataset:
    """Interactions of ``n_users`` users with ``n_items`` items, plus item content features.

    ``features`` is ``[n_items, D]`` float (possibly a read-only memory map) or ``None`` for an
    interaction-only data set. ``source`` is the folder or file it came from, or ``"synthetic"``.
    """

    name: str
    n_users: int
    n_items: int
    users: np.ndarray         # int32 [n_interactions]
    items: np.ndarray         # int32 [n_interactions]
    features: np.ndarray | None
    source: str
    synthetic: bool = False
    split_dirs: dict = field(default_factory=dict)   # split name -> folder on disk
    preset_splits: dict = field(default_factory=dict)  # split name -> Split made in memory

    @property
    def n_features(self) -> int:
        return 0 if self.features is None else int(self.features.shape[1])
