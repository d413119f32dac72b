"""Ranking on the CPU (Numba): the rank of each test item, counted in parallel over rows
(ties count against the positive, as :mod:`amrlite.metrics`), and every user's top-n items
(recommendation), selected while the score block is in cache."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu_common import i32, one_blas_thread
from .cpu_sampling import contains
from .reference import score_rows


@njit(cache=True, parallel=True)
def _sampled_ranks(U, V, users, items, negatives):
    n, m = negatives.shape
    F = V.shape[1]
    out = np.zeros(n, np.int64)
    for r in prange(n):
        ur = U[users[r]]
        pos = U[0, 0] - U[0, 0]
        vi = V[items[r]]
        for f in range(F):
            pos += ur[f] * vi[f]
        c = 0
        for q in range(m):
            vq = V[negatives[r, q]]
            sc = U[0, 0] - U[0, 0]
            for f in range(F):
                sc += ur[f] * vq[f]
            if sc >= pos:
                c += 1
        out[r] = c
    return out


def sampled_ranks(U, V, users, items, negatives):
    """Rank of ``items[r]`` among ``negatives[r]`` (ties against the positive), as
    :func:`.reference.sampled_ranks`. ``U`` None (POP) scores by ``V`` alone."""
    users, items = i32(users), i32(items)
    if U is None:
        U = np.ones((int(users.max(initial=0)) + 1, 1), dtype=np.float64)
    dt = np.result_type(U.dtype, V.dtype)
    return _sampled_ranks(np.ascontiguousarray(U, dtype=dt), np.ascontiguousarray(V, dtype=dt),
                          users, items, i32(negatives))


@njit(cache=True, parallel=True)
def _count_full(scores, items, users, indptr, indices):
    n, n_items = scores.shape
    out = np.zeros(n, np.int64)
    for r in prange(n):
        row = scores[r]
        lo = indptr[users[r]]
        hi = indptr[users[r] + 1]
        pos = row[items[r]]
        if contains(indices, lo, hi, items[r]):
            pos = -np.inf
        c = 0
        for q in range(n_items):
            if row[q] >= pos:
                c += 1
        # amrlite.metrics sets training items to −∞: they are not counted unless pos = −∞
        if pos != -np.inf:
            for t in range(lo, hi):
                if row[indices[t]] >= pos:
                    c -= 1
        out[r] = c - 1
    return out


def full_ranks(U, V, users, items, indptr, indices, chunk=None):
    """Rank of ``items[r]`` among every item outside user ``users[r]``'s training row, as
    :func:`.reference.full_ranks`: the scores are one BLAS product per chunk of
    :func:`.reference.score_rows` rows (the same as there), the counting a parallel kernel that
    skips training items."""
    users, items = i32(users), i32(items)
    if U is None:
        U = np.ones((int(users.max(initial=0)) + 1, 1), dtype=np.float64)
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = i32(indices)
    chunk = score_rows(V.shape[0]) if chunk is None else chunk
    out = []
    for start in range(0, len(users), chunk):
        ub, ib = users[start:start + chunk], items[start:start + chunk]
        scores = np.ascontiguousarray(U[ub] @ V.T)
        out.append(_count_full(scores, ib, ub, indptr, indices))
        del scores                                 # one block alive at a time, not two
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


# ---------------------------------------------------------------------------- top-n items
#: users per score block: every product is the same (TOP_ROWS × F) @ (F × TOP_TILE) BLAS call
#: on one thread (the last block padded with zero rows), so a user's scores come from a call of
#: the same shape however the users are chunked (equal as long as the BLAS computes each row of
#: a product of a given shape the same way, wherever the row sits: the tests check it here)
TOP_ROWS = 256
#: items per score block: TOP_ROWS × TOP_TILE scores (2 MB in float32) stay in the core's cache
#: between the product that writes them and the selection that reads them
TOP_TILE = 2048
#: items per pre-filter step: one vectorised "any score above the row's n-th best?" test
TOP_LANES = 128


@njit(cache=True, nogil=True, inline="always")
def _insert(score, item, best, best_items):
    """Insert ``(score, item)`` into the row's sorted top list (best first; an equal score
    already there keeps its place: it has the lower item index); returns the new n-th best."""
    j = best.shape[0] - 1
    while j > 0 and best[j - 1] < score:
        best[j] = best[j - 1]
        best_items[j] = best_items[j - 1]
        j -= 1
    best[j] = score
    best_items[j] = item
    return best[best.shape[0] - 1]


@njit(cache=True, nogil=True)
def merge_top(scores, n_rows, offset, best, best_items, cursor, stop, indices):
    """Merge one score block (items ``offset …``) into the rows' top lists: first the rows'
    excluded items of the block are set to −∞ (``cursor[r]`` walks the sorted CSR row up to
    ``stop[r]``), then each row is scanned in ascending item order, ``TOP_LANES`` at a time, and
    only a group holding a score above the row's n-th best is looked at item by item."""
    width = scores.shape[1]
    end = offset + width
    groups = width // TOP_LANES
    for r in range(n_rows):
        row = scores[r]
        c = cursor[r]
        while c < stop[r] and indices[c] < end:
            row[indices[c] - offset] = -np.inf
            c += 1
        cursor[r] = c
        b_r, i_r = best[r], best_items[r]
        bar = b_r[b_r.shape[0] - 1]
        for g in range(groups):
            base = g * TOP_LANES
            hit = False
            for q in range(TOP_LANES):
                hit |= row[base + q] > bar
            if hit:
                for q in range(base, base + TOP_LANES):
                    if row[q] > bar:
                        bar = _insert(row[q], q + offset, b_r, i_r)
        for q in range(groups * TOP_LANES, width):
            if row[q] > bar:
                bar = _insert(row[q], q + offset, b_r, i_r)


@njit(cache=True, parallel=True)
def _top_items(U, V, users, indptr, indices, best, best_items):
    n_rows = users.shape[0]
    n_items, F = V.shape
    n_blocks = (n_rows + TOP_ROWS - 1) // TOP_ROWS
    for blk in prange(n_blocks):
        r0 = blk * TOP_ROWS
        r1 = min(r0 + TOP_ROWS, n_rows)
        Ub = np.zeros((TOP_ROWS, F), V.dtype)
        cursor = np.empty(r1 - r0, np.int64)
        stop = np.empty(r1 - r0, np.int64)
        for r in range(r0, r1):
            Ub[r - r0] = U[users[r]]
            cursor[r - r0] = indptr[users[r]]
            stop[r - r0] = indptr[users[r] + 1]
        buf = np.empty((TOP_ROWS, TOP_TILE), V.dtype)
        for s in range(0, n_items, TOP_TILE):
            e = min(s + TOP_TILE, n_items)
            if e - s == TOP_TILE:
                np.dot(Ub, V[s:e].T, buf)
                tile = buf
            else:
                tile = np.dot(Ub, V[s:e].T)
            merge_top(tile, r1 - r0, s, best[r0:r1], best_items[r0:r1], cursor, stop,
                         indices)


def top_items(U, V, users, n, indptr, indices):
    """The ``n`` best items of each user outside its CSR row, as :func:`.reference.top_items`
    (same order, ties by the lower item index, −1/−∞ padding). Fused and parallel: each thread
    takes ``TOP_ROWS`` users, multiplies them with ``TOP_TILE`` items at a time (BLAS, one
    thread each) and merges the block into the users' top lists while it is in cache — never a
    users × items array, O(threads · TOP_ROWS · TOP_TILE) extra memory."""
    users = np.ascontiguousarray(users, dtype=np.int64)
    if U is None:
        U = np.ones((int(users.max(initial=0)) + 1, 1), dtype=V.dtype)
    dt = np.result_type(U.dtype, V.dtype)
    best = np.full((len(users), n), -np.inf, dtype=dt)
    best_items = np.full((len(users), n), -1, dtype=np.int64)
    if len(users) and n and V.shape[0]:
        with one_blas_thread():
            _top_items(np.ascontiguousarray(U, dtype=dt), np.ascontiguousarray(V, dtype=dt),
                       users, np.ascontiguousarray(indptr, dtype=np.int64), i32(indices),
                       best, best_items)
    return best_items, best
