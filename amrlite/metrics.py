r"""Ranking metrics: HR@N and NDCG@N from the rank of each held-out item.

For one evaluation row (user u, held-out positive i, candidates C) the *rank* of i is the number
of candidates scored at least as high as i:

    rank = #{c ∈ C : x_uc ≥ x_ui}                   (ties count against the positive)

so rank 0 is the top. Then, with one relevant item per row,

    HR@N   = 1[rank < N]
    NDCG@N = 1[rank < N] / log2(rank + 2)

averaged over rows. *Sampled* evaluation ranks i among the row's sampled negatives (the paper
uses 999, the shared splits 99); *full ranking* ranks it among every item not in the user's
training set. The ranks come from a backend's ``sampled_ranks``/``full_ranks`` (the NumPy
definitions are in :mod:`amrlite.kernels.reference`); this module turns them into metrics.
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
