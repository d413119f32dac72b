"""Sampled evaluation negatives: for every held-out row, items its user never interacted with.

Used by the split generators (:mod:`amrlite.splits`) and the synthetic data set
(:mod:`amrlite.synthetic`); it imports only the error type.
"""
from __future__ import annotations

import numpy as np

from amrlite.errors import AmrliteError

_KEYS_PER_CHUNK = 4_000_000   # random keys held at once while sampling negatives (~32 MB)


def csr(n_users, users, items):
    """``(indptr, indices)``: each user's items, sorted (users and items int64 arrays)."""
    order = np.lexsort((items, users))
    counts = np.bincount(users, minlength=n_users)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, items[order]


def _segments(indptr, indices, rows_users):
    """For each row r (user ``rows_users[r]``): (row index, item) for every item the user has."""
    starts = indptr[rows_users]
    lens = indptr[rows_users + 1] - starts
    total = int(lens.sum())
    rows = np.repeat(np.arange(len(rows_users)), lens)
    offs = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens)
    return rows, indices[np.repeat(starts, lens) + offs]


def user_label(user_ids, u):
    """How a message names user index ``u``: its raw id where the data has an id map."""
    return str(u) if user_ids is None else f"{str(user_ids[u])!r} (index {u})"


def sample_negatives(row_users, users, items, n_items, n_negatives, *, candidates=None,
                     rng=None, seed=2019, label="items", user_ids=None):
    """``int32 [len(row_users), n_negatives]``: distinct negatives for each held-out row.

    Row ``r`` gets ``n_negatives`` distinct items drawn uniformly from ``candidates`` (default: all
    ``n_items`` items) that user ``row_users[r]`` never interacted with in ``(users, items)``.
    Vectorised: one random key per (row, candidate), seen items pushed to the end, the
    ``n_negatives`` smallest keys kept. Raises :class:`AmrliteError` naming the first user with too
    few candidates (by its raw id where ``user_ids`` maps indices to raw ids).
    """
    rng = np.random.default_rng(seed) if rng is None else rng
    row_users = np.asarray(row_users, dtype=np.int64).ravel()
    users = np.asarray(users, dtype=np.int64).ravel()
    items = np.asarray(items, dtype=np.int64).ravel()
    cand = np.arange(n_items, dtype=np.int64) if candidates is None else np.unique(
        np.asarray(candidates, dtype=np.int64))
    n_neg = int(n_negatives)
    if n_neg <= 0 or len(row_users) == 0:
        return np.zeros((len(row_users), max(n_neg, 0)), dtype=np.int32)
    n_users = int(max(row_users.max(initial=-1), users.max(initial=-1))) + 1
    indptr, indices = csr(n_users, users, items)
    pos = np.full(n_items, -1, dtype=np.int64)
    pos[cand] = np.arange(len(cand))
    inside = pos[indices] >= 0
    owner = np.repeat(np.arange(n_users), np.diff(indptr))
    n_seen = np.bincount(owner[inside], minlength=n_users)
    avail = len(cand) - n_seen[row_users]
    short = np.flatnonzero(avail < n_neg)
    if len(short):
        r = short[0]
        raise AmrliteError(
            f"user {user_label(user_ids, row_users[r])}: only {avail[r]} {label} the user never "
            f"interacted with, but {n_neg} negatives per held-out row were asked for "
            f"({len(np.unique(row_users[short]))} user(s) affected); lower --negatives (at most "
            f"{max(int(avail.min()), 0)} here; 0 = full ranking only)")
    out = np.empty((len(row_users), n_neg), dtype=np.int32)
    chunk = max(1, _KEYS_PER_CHUNK // len(cand))
    for s in range(0, len(row_users), chunk):
        ru = row_users[s:s + chunk]
        keys = rng.random((len(ru), len(cand)))
        rows, its = _segments(indptr, indices, ru)
        cols = pos[its]
        ok = cols >= 0
        keys[rows[ok], cols[ok]] = 2.0          # seen: never among the smallest n_neg
        part = np.argpartition(keys, n_neg - 1, axis=1)[:, :n_neg] if n_neg < len(cand) else \
            np.broadcast_to(np.arange(len(cand)), keys.shape).copy()
        order = np.argsort(np.take_along_axis(keys, part, axis=1), axis=1)
        out[s:s + len(ru)] = cand[np.take_along_axis(part, order, axis=1)]
    return out
