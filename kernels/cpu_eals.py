r"""MF-eALS on the CPU with Numba: the coordinate updates of :mod:`.reference` (``eals_*``; the
derivation, Eq. 12/13 of He et al. 2016, is in the comment above them), one user (item) per
parallel iteration.

Users are independent given Q, so ``prange`` over users is race-free: user u writes only
``P[u]`` and the prediction-cache entries of its own CSR range. The item sweep reads the same
user-major cache through a CSC index (``item_pos[k]`` = position in the CSR arrays of the k-th
pair in item-major order), and item i writes only ``Q[i]`` and its own pairs' entries.

The arithmetic follows the reference term for term (x̂^f = x̂ − p·q, then x̂ = x̂^f + p_new·q;
segment sums in the same pair order), so the two agree to rounding in float64.

The protocol pair: :func:`eals_prepare` (contiguous float64 arrays, the prediction cache and the
CSC index, once per run) and :func:`eals_epoch` (users, then items, in place; the objective).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .protocol import EalsState


def eals_csc(indptr, indices, n_items):
    """``(item_indptr, item_users, item_pos)``: the training pairs in item-major order, users
    ascending within an item, with each pair's position in the CSR arrays."""
    user_of = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    order = np.lexsort((user_of, indices)).astype(np.int64)
    counts = np.bincount(indices, minlength=n_items)
    item_indptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(counts, out=item_indptr[1:])
    return item_indptr, user_of[order], order


@njit(parallel=True, cache=True)
def eals_predictions(P, Q, indptr, indices):
    """``x̂_ui = p_u·q_i`` for every training pair, in CSR order."""
    n_users, K = P.shape
    pred = np.empty(len(indices))
    for u in prange(n_users):
        for k in range(indptr[u], indptr[u + 1]):
            i = indices[k]
            s = 0.0
            for f in range(K):
                s += P[u, f] * Q[i, f]
            pred[k] = s
    return pred


@njit(parallel=True, cache=True)
def _update_users(P, Q, pred, indptr, indices, w, conf, S, reg):
    n_users, K = P.shape
    for u in prange(n_users):
        start, stop = indptr[u], indptr[u + 1]
        for f in range(K):
            old = P[u, f]
            num = 0.0
            den = 0.0
            for k in range(start, stop):
                i = indices[k]
                q = Q[i, f]
                pf = pred[k] - old * q
                cw = w[k] - conf[i]
                num += (w[k] - cw * pf) * q
                den += cw * q * q
            other = 0.0
            for g in range(K):
                if g != f:
                    other += P[u, g] * S[g, f]
            new = (num - other) / (den + S[f, f] + reg)
            for k in range(start, stop):
                q = Q[indices[k], f]
                pred[k] = (pred[k] - old * q) + new * q
            P[u, f] = new


@njit(parallel=True, cache=True)
def _update_items(P, Q, pred, item_indptr, item_users, item_pos, w, conf, S, reg):
    n_items, K = Q.shape
    for i in prange(n_items):
        start, stop = item_indptr[i], item_indptr[i + 1]
        c = conf[i]
        for f in range(K):
            old = Q[i, f]
            num = 0.0
            den = 0.0
            for k in range(start, stop):
                p = P[item_users[k], f]
                pos = item_pos[k]
                pf = pred[pos] - p * old
                cw = w[pos] - c
                num += (w[pos] - cw * pf) * p
                den += cw * p * p
            other = 0.0
            for g in range(K):
                if g != f:
                    other += Q[i, g] * S[g, f]
            new = (num - c * other) / (den + c * S[f, f] + reg)
            for k in range(start, stop):
                p = P[item_users[k], f]
                pos = item_pos[k]
                pred[pos] = (pred[pos] - p * old) + p * new
            Q[i, f] = new


def eals_objective(P, Q, pred, indices, w, conf, reg):
    """The eALS objective from the prediction cache and ``S^q = Σ_i c_i q_i q_iᵀ`` (the
    reference's ``eals_objective``)."""
    S = (Q * conf[:, None]).T @ Q
    observed = float(np.sum(w * (1.0 - pred) ** 2 - conf[indices] * pred ** 2))
    return observed + float(np.sum((P @ S) * P)) + reg * float(np.sum(P * P) + np.sum(Q * Q))


def eals_prepare(P, Q, indptr, indices, w, conf):
    """One MF-eALS problem as an :class:`.protocol.EalsState`: float64 copies of ``P``, ``Q``
    (the epochs update these, never the caller's arrays, as on every backend), the prediction
    cache, the CSR arrays, the weights, and ``layout`` = the CSC index of :func:`eals_csc`."""
    P = np.array(P, dtype=np.float64, order="C")
    Q = np.array(Q, dtype=np.float64, order="C")
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    w = np.ascontiguousarray(w, dtype=np.float64)
    conf = np.ascontiguousarray(conf, dtype=np.float64)
    pred = eals_predictions(P, Q, indptr, indices)
    return EalsState(P, Q, pred, indptr, indices, w, conf, eals_csc(indptr, indices, Q.shape[0]))


def eals_epoch(state, reg):
    """One epoch in place: Eq. 12 for every user, then Eq. 13 for every item (``S^q``, ``S^p``
    fixed per sweep). Returns the objective after the epoch."""
    P, Q, pred = state.P, state.Q, state.pred
    reg = float(reg)
    _update_users(P, Q, pred, state.indptr, state.indices, state.w, state.conf,
                  (Q * state.conf[:, None]).T @ Q, reg)
    item_indptr, item_users, item_pos = state.layout
    _update_items(P, Q, pred, item_indptr, item_users, item_pos, state.w, state.conf, P.T @ P,
                  reg)
    return eals_objective(P, Q, pred, state.indices, state.w, state.conf, reg)
