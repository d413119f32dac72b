"""The data containers every other module reads: :class:`EvalRows`, :class:`Split`, :class:`Dataset`.

Plain arrays, so that every backend (NumPy, Numba, CuPy) takes them as they are. This module is a
leaf of the library (it imports only the error type): loaders (:mod:`amrlite.data`), split
generators (:mod:`amrlite.splits`) and the synthetic generator (:mod:`amrlite.synthetic`)
import it; it imports none of them.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from amrlite.errors import AmrliteError


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
    """A train / valid / test partition of one data set's interactions.

    ``test`` is ``None`` only for the split ``"none"`` (every interaction in training: nothing
    held out, nothing to evaluate). ``seed`` is the seed a generated split was drawn with
    (``None``: read from files or made in memory); ``notes`` are facts worth saying about it
    (e.g. how many users kept all their rows in training).
    """

    name: str
    n_users: int
    n_items: int
    train_users: np.ndarray   # int32 [n_train]
    train_items: np.ndarray   # int32 [n_train]
    valid: EvalRows | None
    test: EvalRows | None
    seed: int | None = None
    notes: list = field(default_factory=list)

    @cached_property
    def warm_items(self) -> np.ndarray:
        """Boolean mask ``[n_items]``: the item occurs in the training set.

        Items that never occur in training are *cold*: by default (``negative_pool="warm"``, see
        :meth:`id_items`) they are never drawn as training negatives and are scored by content
        alone (zero ID embedding). Evaluation reports warm and cold test rows by this mask.
        """
        mask = np.zeros(self.n_items, dtype=bool)
        mask[self.train_items] = True
        return mask

    def id_items(self, negative_pool="warm") -> np.ndarray:
        """Boolean mask ``[n_items]``: the items a BPR model trained with ``negative_pool``
        (:attr:`amrlite.train.TrainConfig.negative_pool`) draws negatives from, and so the items that
        get an ID embedding; the others are scored by content alone. ``"warm"``:
        :attr:`warm_items`; ``"all"``: every item — catalogue items without any interaction
        included: they are drawn as negatives only, so their ID embedding is pushed down and
        they rank below what their content alone would give them."""
        if negative_pool == "all":
            return np.ones(self.n_items, dtype=bool)
        return self.warm_items

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


def raw_indices(ids, n, raw):
    """Indices of the raw ids ``raw`` (strings or ints) in the id map ``ids`` (``None``: the ids
    are the indices 0..n−1); with an integer map the text ``"42"`` finds 42; −1 for an id the
    map does not hold."""
    text = [str(x).strip() for x in raw]
    if ids is None or ids.dtype.kind in "iu":
        keys = []
        for t in text:
            try:
                keys.append(int(t))
            except ValueError:
                keys.append(None)
        if ids is None:
            return np.array([k if k is not None and 0 <= k < n else -1 for k in keys],
                            dtype=np.int64)
        table = {v: k for k, v in enumerate(ids.tolist())}
        return np.array([table.get(k, -1) for k in keys], dtype=np.int64)
    table = {v: k for k, v in enumerate(ids.tolist())}
    return np.array([table.get(t, -1) for t in text], dtype=np.int64)


def id_hint(ids, n, what):
    """What the ids of an id map look like, for a message: ``users are numbered 0..59`` or
    ``60 users, e.g. A000X, A001X, A002X``."""
    if ids is None:
        return f"{what}s are numbered 0..{n - 1}"
    return f"{len(ids)} {what}s, e.g. {', '.join(map(str, ids[:3].tolist()))}"


def raw_index(ids, n, raw, what="user"):
    """The index of raw id ``raw`` in the id map ``ids`` (:func:`raw_indices`); an unknown id
    raises :class:`~amrlite.errors.AmrliteError`."""
    idx = int(raw_indices(ids, n, [raw])[0])
    if idx < 0:
        raise AmrliteError(f"{what} {raw!r}: no such {what} ({id_hint(ids, n, what)})")
    return idx


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
    meta: dict = field(default_factory=dict)          # extra facts (e.g. synthetic ground truth)
    #: raw ids: ``user_ids[u]`` is the id user index ``u`` had in the input file (int64 or
    #: unicode array); ``None`` when the indices are the ids (native 0-based data).
    user_ids: np.ndarray | None = None
    item_ids: np.ndarray | None = None
    #: one dict per feature modality, in concatenation order: ``name``, ``dim``, ``file``,
    #: ``normalize``, ``zero_rows`` (items without content of that modality), ``missing``.
    feature_info: list = field(default_factory=list)
    filters: dict = field(default_factory=dict)        # --min-rating / --k-core and their counts
    notes: list = field(default_factory=list)          # facts said at load time (CLI prints them)
    default_split: str = "loo"                         # "official" when neg.txt is present
    #: the load_dataset() keywords it was read with (not the defaults): a saved model records
    #: them, so that ``amrlite evaluate MODEL.npz`` reads the same data the same way
    options: dict = field(default_factory=dict)
    #: float64 ``[n_interactions]``: the time of each interaction in epoch seconds (UTC), from
    #: the file's time column (the earliest time of a repeated pair), or ``None`` without one
    times: np.ndarray | None = None
    #: ``splitter(dataset, name, *, seed, n_negatives) -> Split`` makes the splits that are not
    #: preset; given by whoever builds the data set: :func:`amrlite.data.load_dataset` passes
    #: :func:`amrlite.data.split_dataset` (a ``split-<name>/`` folder, else a generated split),
    #: :func:`amrlite.synthetic.make_synthetic` passes :func:`amrlite.splits.make_split`. The
    #: containers stay a leaf that imports no other module of amrlite, and nothing patches
    #: them from above: a data set built by hand without one has its preset splits only (pass
    #: ``splitter=amrlite.splits.make_split`` for the generated ones).
    splitter: object = field(default=None, repr=False, compare=False)
    _split_cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_features(self) -> int:
        return 0 if self.features is None else int(self.features.shape[1])

    @property
    def n_interactions(self) -> int:
        return len(self.users)

    def split_names(self) -> list[str]:
        """Names :meth:`split` accepts without generating anything new, plus the generated ones."""
        names = list(self.preset_splits) + [n for n in self.split_dirs if n not in self.preset_splits]
        return names + [n for n in ("loo", "temporal", "cold", "sparse<k>", "none")
                        if n not in names]

    def user_index(self, raw):
        """Index of the user whose raw id is ``raw`` (see :func:`raw_index`)."""
        return raw_index(self.user_ids, self.n_users, raw, "user")

    def split(self, name=None, *, seed=2019, n_negatives=99) -> Split:
        """The split called ``name``: a preset split made in memory (official ``neg.txt``, the
        synthetic ``loo``), else whatever :attr:`splitter` makes of the name (a folder
        ``split-<name>/`` next to the interactions, or a generated ``loo``, ``temporal``,
        ``cold`` or ``sparse<k>`` split: :func:`amrlite.splits.make_split`). ``seed`` and ``n_negatives`` only matter for generated splits.
        ``"none"`` trains on every interaction and holds nothing out. Results are cached.
        ``name=None`` is :attr:`default_split`."""
        name = self.default_split if name is None else name
        key = (name, seed, n_negatives)
        if key not in self._split_cache:
            if name in self.preset_splits:
                self._split_cache[key] = self.preset_splits[name]
            elif self.splitter is None:
                raise AmrliteError(f"data set '{self.name}' has no split '{name}' (preset: "
                                   f"{', '.join(self.preset_splits) or 'none'}; it was built "
                                   "without a splitter to generate others)")
            else:
                self._split_cache[key] = self.splitter(self, name, seed=seed,
                                                       n_negatives=n_negatives)
        return self._split_cache[key]

    def fingerprint(self) -> str:
        """Short sha256 hex of the sizes and the interactions: detects a model applied to other data."""
        h = hashlib.sha256()
        h.update(np.array([self.n_users, self.n_items, self.n_features], dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(self.users, dtype=np.int32).tobytes())
        h.update(np.ascontiguousarray(self.items, dtype=np.int32).tobytes())
        for ids in (self.user_ids, self.item_ids):      # absent for native data: old hashes hold
            if ids is not None:
                h.update("\x1f".join(map(str, ids.tolist())).encode())
        return h.hexdigest()[:16]


def as_split(data, split=None) -> Split:
    """The split a library call works on: ``data`` itself when it is a :class:`Split`, else
    ``split`` when that is one, else ``data.split(split)`` (a :class:`Dataset` and a split
    name; None is the data set's default split)."""
    if isinstance(data, Split):
        return data
    if isinstance(split, Split):
        return split
    return data.split(split)
