r"""Ranking metrics: HR@N and NDCG@N from the rank of each held-out item.

For one evaluation row (user u, held-out positive i, candidates C) the *rank* of i is the number
of candidates scored at least as high as i:

    rank = #{c ∈ C : x_uc ≥ x_ui}                   (ties count against the positive)

so rank 0 is the top. Then, with one relevant item per row,

    HR@N   = 1[rank < N]
    NDCG@N = 1[rank < N] / log2(rank + 2)

averaged over rows. *Sampled* evaluation ranks i among the row's sampled negatives (the paper
uses 999, the shared splits 99); *full ranking* ranks it among every item not in the user's
training set. Everything here works on NumPy or CuPy arrays (``xp``).
"""
from __future__ import annotations

import numpy as np

CUTOFFS = (5, 10, 20)
METRIC_NAMES = tuple(f"{m}@{n}" for m in ("HR", "NDCG") for n in CUTOFFS)


def metrics_from_ranks(ranks, cutoffs=CUTOFFS):
    """``{"HR@5": ..., "NDCG@5": ..., ...}`` averaged over ``ranks`` (host NumPy ints)."""
    ranks = np.asarray(ranks)
    out = {}
    for n in cutoffs:
        hit = ranks < n
        out[f"HR@{n}"] = float(hit.mean()) if len(ranks) else float("nan")
    for n in cutoffs:
        hit = ranks < n
        gain = np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
        out[f"NDCG@{n}"] = float(gain.mean()) if len(ranks) else float("nan")
    return out


def per_row_gains(ranks, n=10):
    """Per-row HR@n and NDCG@n arrays (for paired significance tests)."""
    ranks = np.asarray(ranks)
    hit = ranks < n
    return hit.astype(float), np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)


def _user_rows(U, users, xp):
    """User factor rows, or a column of ones for user-independent models (POP)."""
    if U is None:
        return xp.ones((len(users), 1), dtype=xp.float64)
    return U[users]


def sampled_ranks(U, V, users, items, negatives, *, xp=np, chunk=4096):
    """Rank of ``items[r]`` among ``negatives[r]`` for each row r (ties against the positive)."""
    users, items, negatives = (xp.asarray(a) for a in (users, items, negatives))
    ranks = []
    for start in range(0, len(users), chunk):
        sl = slice(start, start + chunk)
        Ur = _user_rows(U, users[sl], xp)
        pos = xp.einsum("rf,rf->r", Ur, V[items[sl]])
        neg = xp.einsum("rf,rnf->rn", Ur, V[negatives[sl]])
        ranks.append((neg >= pos[:, None]).sum(axis=1))
    return _host(xp.concatenate(ranks) if ranks else xp.zeros(0, dtype=np.int64), xp)


def full_ranks(U, V, users, items, indptr, indices, *, xp=np, chunk=1024):
    """Rank of ``items[r]`` among all items not in user ``users[r]``'s training set.

    ``indptr``/``indices`` is the training CSR (host arrays). Training items are excluded by
    setting their scores to −∞ before counting; the positive itself is not counted.
    """
    users_h, items_h = np.asarray(_host(users, xp)), np.asarray(_host(items, xp))
    ranks = []
    for start in range(0, len(users_h), chunk):
        ub, ib = users_h[start:start + chunk], items_h[start:start + chunk]
        Ur = _user_rows(U, xp.asarray(ub), xp)
        scores = Ur @ V.T                                     # rows × n_items
        starts, stops = indptr[ub], indptr[ub + 1]
        lengths = stops - starts
        row_of = np.repeat(np.arange(len(ub)), lengths)
        cols = indices[np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)])
                       if len(ub) else np.zeros(0, dtype=np.int64)]
        scores[xp.asarray(row_of), xp.asarray(cols)] = -xp.inf
        pos = scores[xp.arange(len(ub)), xp.asarray(ib)]
        rank = (scores >= pos[:, None]).sum(axis=1) - 1
        ranks.append(rank)
    return _host(xp.concatenate(ranks) if ranks else xp.zeros(0, dtype=np.int64), xp)


def _host(a, xp):
    return a.get() if hasattr(a, "get") and xp is not np else np.asarray(a)
