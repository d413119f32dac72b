"""Sampled evaluation negatives: for every held-out row, items its user never interacted with.

Used by the split generators (:mod:`amrlite.splits`) and the synthetic data set
(:mod:`amrlite.synthetic`); it imports only the error type.
"""
from __future__ import annotations

import numpy as np

from amrlite.errors import AmrliteError, braced, option_error

_DRAWS_PER_CHUNK = 4_000_000   # negatives drawn per block of rows (~100 MB of work arrays)
_EMPTY = np.iinfo(np.int32).max   # an unfilled slot: sorts after every draw


def csr(n_users, users, items):
    """``(indptr, indices)``: each user's distinct items, sorted (users and items int64 arrays;
    a repeated interaction counts once)."""
    width = int(items.max(initial=-1)) + 1
    pairs = np.sort(users * width + items)              # by user, then item
    first = np.ones(len(pairs), dtype=bool)
    first[1:] = pairs[1:] != pairs[:-1]
    pairs = pairs[first]
    users, items = pairs // max(width, 1), pairs % max(width, 1)
    counts = np.bincount(users, minlength=n_users)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, items


def _segments(indptr, indices, rows_users):
    """For each row r (user ``rows_users[r]``): (row index, item) for every item the user has."""
    starts = indptr[rows_users]
    lens = indptr[rows_users + 1] - starts
    total = int(lens.sum())
    rows = np.repeat(np.arange(len(rows_users)), lens)
    offs = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens)
    return rows, indices[np.repeat(starts, lens) + offs]


def _ranks_by_rejection(rng, avail, n):
    """``int32 [len(avail), n]``: per row ``r``, ``n`` distinct ranks uniform in
    ``[0, avail[r])`` (needs ``avail >= 2n``), sorted.

    Sequential rejection sampling, batched. Every empty slot of a row takes one draw, uniform in
    ``[0, max(avail))``; a draw outside the row's ``[0, avail[r])`` or equal to one the row
    already holds is dropped (its slot stays empty), and the rounds go on until no slot is
    empty. A round never draws more values for a row than it has empty slots, so a row keeps
    exactly "the first ``n`` distinct in-range values of an iid sequence": a uniform
    ``n``-subset. Each in-range draw is new with probability at least 1/2, so a row needs about
    ``n (1 + n / 2 avail)`` in-range draws and the rounds end after about log2(n) passes (one
    row sort per pass, on the rows that still have an empty slot).
    """
    slots = rng.integers(0, int(avail.max()), size=(len(avail), n), dtype=np.int32)
    todo, sub = np.arange(len(avail)), slots          # the rows with an empty slot, and theirs
    while True:
        sub[sub >= avail[todo][:, None]] = _EMPTY      # outside this row's range
        sub.sort(axis=1, kind="quicksort" if sub is slots else "stable")  # later: nearly sorted
        repeat = np.zeros(sub.shape, dtype=bool)
        np.equal(sub[:, 1:], sub[:, :-1], out=repeat[:, 1:])
        repeat[:, 1:] &= sub[:, 1:] != _EMPTY
        sub[repeat] = _EMPTY
        if sub is not slots:
            slots[todo] = sub
        left = np.flatnonzero(repeat.any(axis=1) | (sub[:, -1] == _EMPTY))
        if not len(left):
            return slots
        todo, sub = todo[left], sub[left]
        rows, cols = np.nonzero(sub == _EMPTY)
        sub[rows, cols] = rng.integers(0, int(avail[todo].max()), size=len(rows),
                                       dtype=np.int32)       # one draw per empty slot


def _ranks_by_permutation(rng, avail, n):
    """As :func:`_ranks_by_rejection` for rows with few ranks to choose from (``avail < 2n``):
    the first ``n`` of a random permutation of ``[0, avail[r])`` (random keys, the ``n``
    smallest kept), O(avail) ≤ O(2n) per row."""
    width = int(avail.max())
    keys = rng.random((len(avail), width))
    keys[np.arange(width)[None, :] >= avail[:, None]] = 2.0     # beyond the row: never kept
    part = np.argpartition(keys, n - 1, axis=1)[:, :n] if n < width else \
        np.broadcast_to(np.arange(width), keys.shape).copy()
    return np.sort(part, axis=1).astype(np.int32)


def _unseen_candidates(ranks, seen_rows, seen_cols, n_cand):
    """Candidate position of each rank: rank k of row r is row r's k-th candidate (in candidate
    order) that its user never interacted with.

    ``ranks`` are sorted within a row; ``seen_cols`` are the candidate positions the user of row
    ``seen_rows`` interacted with, sorted by row, then position. With the row's seen positions
    p_0 < p_1 < …, p_t − t free positions lie before p_t, so the k-th free position is
    ``k + #{t : p_t − t ≤ k}``: seen item t shifts every rank ``≥ p_t − t`` by one. One
    ``searchsorted`` per seen item (rows kept apart by an offset of ``n_cand + 1`` each) finds
    the first rank it shifts, and a cumulative sum along the row adds the shifts up —
    O(rows × n + seen log(rows × n)).
    """
    n_rows, n = ranks.shape
    width = n_cand + 1
    starts = np.searchsorted(seen_rows, np.arange(n_rows + 1))
    t = np.arange(len(seen_cols)) - np.repeat(starts[:-1], np.diff(starts))
    keys = (ranks + np.arange(n_rows)[:, None] * width).ravel()
    first = np.searchsorted(keys, seen_rows * width + (seen_cols - t))
    inside = first < (seen_rows + 1) * n                      # shifts a rank of its own row
    shifted = np.cumsum(np.bincount(first[inside], minlength=n_rows * n))
    before_row = np.concatenate(([0], shifted[n - 1::n][:-1]))
    return ranks + (shifted.reshape(n_rows, n) - before_row[:, None])


def user_label(user_ids, u):
    """How a message names user index ``u``: its raw id where the data has an id map."""
    return str(u) if user_ids is None else f"{str(user_ids[u])!r} (index {u})"


def sample_negatives(row_users, users, items, n_items, n_negatives, *, candidates=None,
                     rng=None, seed=2019, label="items", user_ids=None):
    """``int32 [len(row_users), n_negatives]``: distinct negatives for each held-out row.

    Row ``r`` gets ``n_negatives`` distinct items drawn uniformly from ``candidates`` (default: all
    ``n_items`` items) that user ``row_users[r]`` never interacted with in ``(users, items)``,
    sorted by item. With ``A_r`` such items, row r draws ``n`` distinct *ranks* in ``[0, A_r)``
    (rejection sampling where ``A_r ≥ 2n``, a random permutation of the ``A_r`` ranks otherwise)
    and maps rank k to the k-th unseen candidate through the user's sorted interactions
    (:func:`_unseen_candidates`): O(rows × n_negatives + interactions), whatever the catalogue
    size. The draws come from ``rng`` (or ``default_rng(seed)``) in blocks of rows of a fixed
    size, in NumPy alone: the same inputs and seed give the same negatives on any machine and
    thread count. Raises :class:`AmrliteError` naming the first user with too few candidates (by
    its raw id where ``user_ids`` maps indices to raw ids).
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
        raise option_error((), braced(
            f"user {user_label(user_ids, row_users[r])}: only {avail[r]} {label} the user never "
            f"interacted with, but {n_neg} negatives per held-out row were asked for "
            f"({len(np.unique(row_users[short]))} user(s) affected); ") + "lower {n_negatives} "
            f"(at most {max(int(avail.min()), 0)} here; 0 = full ranking only)",
            names=("n_negatives",))
    out = np.empty((len(row_users), n_neg), dtype=np.int32)
    chunk = max(1, _DRAWS_PER_CHUNK // n_neg)
    for s in range(0, len(row_users), chunk):
        a = avail[s:s + chunk]
        dense = a < 2 * n_neg
        if not dense.any():
            ranks = _ranks_by_rejection(rng, a, n_neg)
        else:
            ranks = np.empty((len(a), n_neg), dtype=np.int32)
            ranks[dense] = _ranks_by_permutation(rng, a[dense], n_neg)
            if not dense.all():
                ranks[~dense] = _ranks_by_rejection(rng, a[~dense], n_neg)
        rows, its = _segments(indptr, indices, row_users[s:s + chunk])
        cols = pos[its]                              # the user's items as candidate positions
        inside = cols >= 0
        picked = _unseen_candidates(ranks, rows[inside], cols[inside], len(cand))
        out[s:s + len(a)] = picked if candidates is None else cand[picked]
    return out
