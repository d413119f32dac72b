"""MF-BPR on the CPU (Numba): a dedicated epoch for the model without content, bias or
adversary (the generic kernel of :mod:`.cpu_bpr` would spend most of its time grouping rows)."""
from __future__ import annotations

import numpy as np
from numba import njit

from .cpu_adagrad import adagrad_step
from .cpu_common import FAST, bpr_terms


@njit(inline="always", boundscheck=False)
def _stamp_slots(rows, start, m, batch_id, stamp, slot, distinct, n_distinct, out):
    """Batch slots of ``rows[start:start + m]``: a row not yet stamped with ``batch_id`` gets the
    next slot and is appended to ``distinct``; ``out[b]`` is row b's slot. Returns the new count
    of distinct rows (slots in first-seen order)."""
    for b in range(m):
        r = rows[start + b]
        if stamp[r] != batch_id:
            stamp[r] = batch_id
            slot[r] = n_distinct
            distinct[n_distinct] = r
            n_distinct += 1
        out[b] = slot[r]
    return n_distinct


@njit(inline="always", fastmath=FAST, boundscheck=False)
def _add_item_grads(sign, s, P, Q, u, items, start, m, slots, gQ, two_beta):
    """``gQ[slot] += sign·s_b p_u + 2β q`` for the item of each triple (sign +1 for positives,
    −1 for negatives; multiplying by ±1 is exact)."""
    K = gQ.shape[1]
    for b in range(m):
        sb = sign * s[b]
        pu = P[u[start + b]]
        q = Q[items[start + b]]
        gq = gQ[slots[b]]
        for k in range(K):
            gq[k] += sb * pu[k] + two_beta * q[k]


@njit(cache=True, fastmath=FAST, boundscheck=False, error_model="numpy")
def epoch_mf(blk, acc, t, batch, sc):
    """MF-BPR epoch over the triples ``t`` (:class:`.cpu_common.Triples`) in batches of
    ``batch``: ``blk``/``acc`` are the parameter and accumulator :class:`.cpu_common.Blocks`
    (P and Q used), ``sc`` the :class:`.cpu_common.Scalars` (``two_beta, reg, lr, aeps``
    used). Returns the summed loss.

    Same semantics as the generic kernel (gradients summed per unique row in
    the reference's order, one Adagrad step per touched row per batch) without its general
    grouping: rows get their batch slot through stamp arrays (last batch that saw the row, O(B),
    no sorting, no occurrence lists, nothing allocated per batch), then one pass for the scores,
    one per gradient block and one Adagrad pass per block.

    Serial on purpose: splitting a batch over the 2 cores (row blocks for the scores, column
    blocks of K for gradients and Adagrad, 2 ``prange`` regions per batch) measured 1.6× slower
    than this loop on the 2-core KVM guest: waking the OpenMP team twice per 512-triple batch
    (≈ 100 µs of work) costs more than the half it saves."""
    P, Q, AP, AQ = blk.P, blk.Q, acc.P, acc.Q
    u, i, j = t.u, t.i, t.j
    two_beta, reg, lr, aeps = sc.two_beta, sc.reg, sc.lr, sc.aeps
    K = P.shape[1]
    dt = P.dtype
    zero = P[0, 0] - P[0, 0]
    one = np.ones(1, dt)[0]               # 1 in the parameters' dtype (zero + 1 would be float64)
    n = u.shape[0]
    nb = (n + batch - 1) // batch
    ustamp = np.full(P.shape[0], -1, np.int64)
    istamp = np.full(Q.shape[0], -1, np.int64)
    uslot = np.empty(P.shape[0], np.int32)
    islot = np.empty(Q.shape[0], np.int32)
    su = np.empty(batch, np.int32)
    si = np.empty(batch, np.int32)
    sj = np.empty(batch, np.int32)
    urows = np.empty(batch, np.int32)
    irows = np.empty(2 * batch, np.int32)
    s = np.empty(batch, dt)
    lossv = np.empty(batch, np.float64)
    gP = np.empty((batch, K), dt)
    gQ = np.empty((2 * batch, K), dt)
    total = 0.0
    for bi in range(nb):
        start = bi * batch
        m = min(n, start + batch) - start
        nu = _stamp_slots(u, start, m, bi, ustamp, uslot, urows, 0, su)
        # positives first, then negatives (the order of np.add.at in the reference)
        ni = _stamp_slots(i, start, m, bi, istamp, islot, irows, 0, si)
        ni = _stamp_slots(j, start, m, bi, istamp, islot, irows, ni, sj)
        # scores, s_b, loss (with the regulariser, float64)
        for b in range(m):
            pu = P[u[start + b]]
            qi = Q[i[start + b]]
            qj = Q[j[start + b]]
            acc = zero
            for k in range(K):
                acc += pu[k] * (qi[k] - qj[k])
            sb, lb = bpr_terms(acc)
            s[b] = sb
            r2 = 0.0
            for k in range(K):
                r2 += float(pu[k]) * float(pu[k]) + float(qi[k]) * float(qi[k]) \
                    + float(qj[k]) * float(qj[k])
            lossv[b] = lb + reg * r2
        # gradients summed per unique row (old parameters only), then one Adagrad step per row
        for r in range(nu):
            for k in range(K):
                gP[r, k] = zero
        for r in range(ni):
            for k in range(K):
                gQ[r, k] = zero
        for b in range(m):
            sb = s[b]
            pu = P[u[start + b]]
            qi = Q[i[start + b]]
            qj = Q[j[start + b]]
            gp = gP[su[b]]
            for k in range(K):
                gp[k] += sb * (qi[k] - qj[k]) + two_beta * pu[k]
        _add_item_grads(one, s, P, Q, u, i, start, m, si, gQ, two_beta)
        _add_item_grads(-one, s, P, Q, u, j, start, m, sj, gQ, two_beta)
        for r in range(nu):
            adagrad_step(P[urows[r]], AP[urows[r]], gP[r], lr, aeps)
        for r in range(ni):
            adagrad_step(Q[irows[r]], AQ[irows[r]], gQ[r], lr, aeps)
        for b in range(m):
            total += lossv[b]
    return total
