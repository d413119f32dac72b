"""Evaluation on the CPU (Numba): the rank of each test item, counted in parallel over rows
(ties count against the positive, as :mod:`amrlite.metrics`)."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu_common import i32
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
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
