r"""The fused BPR kernels of the content models (duif, vbpr, amr; MF too, through
:func:`batch_gradients`) and the closed-form adversary, on the CPU with Numba.

One call of :func:`train_epoch` is **one** jitted loop over the epoch's mini-batches (no Python
per batch). Per batch of B triples, :func:`_batch` runs these seams in order:

1. :func:`_group_batch` — the batch's unique users and items (first-occurrence order) with an
   occurrence list per row (positives first, then negatives, in batch order, as the
   reference's ``np.add.at`` sums them);
2. :func:`_gather_project` — ``diff = c_i − c_j`` (B×D) and ``f̃ = diff Ẽᵀ`` (B×K′, BLAS);
3. :func:`_scores` — ``x_b``, ``s_b = −σ(−x_b)``, the loss terms and the content term
   ``ct_b = s_b f_b`` of the user gradients;
4. AMR only: :func:`_adversary` — ``s̃_b``, ``f̃_b + Ẽ(Δ_i − Δ_j)`` and ``M̃`` in closed form,
   then :func:`_add_adversarial_weights` — ``s + s̃`` and ``ct += s̃ f̃_adv``;
5. :func:`_user_gradients`, :func:`_item_gradients` — each unique row's gradient summed over
   its occurrences (old parameters only);
6. :func:`_dense_gradient` — ``∂Ẽ = (g̃ ⊙ (s+s̃))ᵀ diff + 2β_E Ẽ`` (BLAS), then, AMR only,
   :func:`_add_adversarial_dense` — ``∂Ẽ += M̃ Ẽ``;
7. :func:`_regulariser` (float64, loss only);

and :func:`_epoch` applies one Adagrad step per touched row and to Ẽ.

**Ẽ = [E; wᵀ].** He & McAuley's visual bias ``w·c`` is one more row of the content block:
``Ẽ`` is (K+1)×D with ``g̃_u = [g_u, 1]`` (Eq. 4 form: ``Ẽ = E``, ``g̃ = g``, K′ = K), so the
E and w gradients are the two parts of one ``∂/∂Ẽ`` and the adversary never special-cases w.
The kernels keep Ẽ (and its accumulator) for a whole epoch; :func:`train_epoch` builds it
from ``params["E"]``, ``params["w"]`` and copies it back (one (K+1)×D copy per epoch).

**The adversary** (``adversary="grad"``) never forms a D-dimensional Γ or Δ: with
``ṽ_k = Σ ±s_b g̃_{u_b}``, ``G̃ = Ẽ Ẽᵀ`` and ``α_k = ε/‖Γ_k‖``, ``‖Γ_k‖² = ṽ_kᵀ G̃ ṽ_k``,
``Ẽ Δ_k = α_k G̃ ṽ_k`` and the adversarial Ẽ-gradient is ``M̃ Ẽ``. The derivation is in
``docs/closed-form-adversary.md``. The ``sign`` and ``random`` adversaries have no such form:
they run the reference's explicit path (``reference.train_epoch``/``batch_gradients``).

**λ = 0 is VBPR bit for bit.** Every VBPR quantity (scores, ``s``, ``ct``, row gradients, the
Ẽ product, the loss) is computed by the same compiled functions for VBPR and AMR: none of them
reads the ``adv`` flag. The adversary enters only through separate, non-fastmath statements
that add its terms last: ``s + s̃``, ``ct + s̃ f̃_adv``, ``∂Ẽ + M̃Ẽ``, ``L + λL̃``. With λ = 0,
``s̃ = 0`` so ``M̃ = 0`` and each of these adds an exact zero (``x + 0 = x``), whatever BLAS
kernel or vector width the machine picks for the shared products.

Determinism: the batch's products are split into ``N_BLOCKS`` fixed row blocks (one ``prange``
work unit each, BLAS pinned to one thread for the epoch), so results never depend on the
thread count.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from . import reference as ref
from .cpu_adagrad import adagrad_dense, adagrad_rows, adagrad_vec_rows
from .cpu_common import (FAST, Blocks, Triples, bpr_terms, flags_of, i32, one_blas_thread,
                         scalars_of)
from .cpu_mf import epoch_mf

#: fixed number of row blocks the batch's B×D×K′ products (and the K′×K′×D ones of AMR) are
#: split into, one ``prange`` work unit each (fixed: results never depend on the thread count)
N_BLOCKS = 2


class Workspace(NamedTuple):
    """Per-epoch scratch of :func:`_batch`: ``diff`` (B×D), ``f`` (B×K′), ``gEp``
    (N_BLOCKS×K′×D), ``gE`` (K′×D), ``ME`` (K′×D, AMR), ``ct`` (B×K), and the row marks
    ``umark``/``imark`` (−1 everywhere, restored after each batch). Allocated once per epoch:
    fresh pages per batch cost ~1 ms of page faults."""
    diff: Any
    f: Any
    gEp: Any
    gE: Any
    ME: Any
    ct: Any
    umark: Any
    imark: Any


class Grads(NamedTuple):
    """One batch's gradients: unique users ``urows`` with ``P``, ``H`` rows; unique items
    ``irows`` with ``Q``, ``b`` rows (first-occurrence order); the dense ``Et`` (= ∂Ẽ)."""
    urows: Any
    P: Any
    H: Any
    irows: Any
    Q: Any
    b: Any
    Et: Any


# ----------------------------------------------------------------------------------------------
# 1. grouping a batch's rows
# ----------------------------------------------------------------------------------------------

@njit(cache=True)
def _group(idx, mark):
    """Unique values of ``idx`` in first-occurrence order with their occurrence lists.

    Returns ``(rows, ptr, occ)``: occurrences of ``rows[k]`` are ``occ[ptr[k]:ptr[k+1]]``
    (positions in ``idx``, ascending). ``mark`` (−1 everywhere, one entry per possible row) is
    used as scratch and restored.
    """
    n = idx.shape[0]
    slot = np.empty(n, np.int32)
    rows = np.empty(n, np.int32)
    m = 0
    for t in range(n):
        r = idx[t]
        s = mark[r]
        if s < 0:
            s = m
            mark[r] = m
            rows[m] = r
            m += 1
        slot[t] = s
    ptr = np.zeros(m + 1, np.int32)
    for t in range(n):
        ptr[slot[t] + 1] += 1
    for k in range(m):
        ptr[k + 1] += ptr[k]
    fill = ptr[:m].copy()
    occ = np.empty(n, np.int32)
    for t in range(n):
        s = slot[t]
        occ[fill[s]] = t
        fill[s] += 1
    for k in range(m):
        mark[rows[k]] = -1
    return rows[:m].copy(), ptr, occ


@njit(inline="always")
def _signed(o, B, w):
    """``(±w_b, b)`` for occurrence ``o`` of the batch's 2B-long item list ``[i; j]``: triple
    b = o's positive (sign +) when ``o < B``, triple b = o − B's negative (sign −) otherwise."""
    if o < B:
        return w[o], o
    return -w[o - B], o - B


@njit(cache=True)
def _group_batch(t, umark, imark):
    """``(urows, uptr, uocc, irows, iptr, iocc)``: the users of ``t`` grouped, and its items
    grouped over the 2B-long list ``[i; j]`` (occurrence ``o < B``: triple o's positive,
    ``o ≥ B``: triple o−B's negative)."""
    B = t.u.shape[0]
    idx2 = np.empty(2 * B, np.int32)
    for b in range(B):
        idx2[b] = t.i[b]
        idx2[B + b] = t.j[b]
    urows, uptr, uocc = _group(t.u, umark)
    irows, iptr, iocc = _group(idx2, imark)
    return urows, uptr, uocc, irows, iptr, iocc


# ----------------------------------------------------------------------------------------------
# 2-3. content projection, scores
# ----------------------------------------------------------------------------------------------

@njit(cache=True, parallel=True, fastmath=FAST, boundscheck=False)
def _gather_project(F, Et, i, j, diff, f):
    """``diff = F[i] − F[j]`` and ``f̃ = diff Ẽᵀ``, each block of rows gathered and multiplied by
    the thread that owns it (single-threaded BLAS per block: both cores, no oversubscription)."""
    B = i.shape[0]
    D = F.shape[1]
    EtT = Et.T
    for c in prange(N_BLOCKS):
        b0 = c * B // N_BLOCKS
        b1 = (c + 1) * B // N_BLOCKS
        for b in range(b0, b1):
            fi = F[i[b]]
            fj = F[j[b]]
            db = diff[b]
            for t in range(D):
                db[t] = fi[t] - fj[t]
        f[b0:b1] = np.dot(diff[b0:b1], EtT)


@njit(cache=True, fastmath=FAST, boundscheck=False, error_model="numpy")
def _scores(P, Q, Gu, bb, f, u, i, j, has_q, has_c, has_b, x, s, lossv, ct):
    """Per triple (serial: ~20 µs of work, less than waking the thread team costs): ``x_b = p_u·(q_i − q_j) + g̃_u·f̃_b + (b_i − b_j)``,
    ``s_b = −σ(−x_b)``, ``lossv_b = softplus(−x_b)`` and, with content, the user gradients'
    content term ``ct_b = s_b f_b`` (the first K entries of f̃_b)."""
    B = u.shape[0]
    K = P.shape[1]
    Kp = f.shape[1]
    zero = P[0, 0] - P[0, 0]
    for b in range(B):
        pu = P[u[b]]
        xb = zero
        if has_q:
            qi = Q[i[b]]
            qj = Q[j[b]]
            acc = zero
            for k in range(K):
                acc += pu[k] * (qi[k] - qj[k])
            xb += acc
        if has_c:
            gu = Gu[u[b]]
            fb = f[b]
            acc = zero
            for k in range(K):
                acc += gu[k] * fb[k]
            if Kp > K:                        # g̃_u = [g_u, 1]: the visual bias w·diff
                acc += fb[K]
            xb += acc
        if has_b:
            xb += bb[i[b]] - bb[j[b]]
        x[b] = xb
        sb, lb = bpr_terms(xb)
        s[b] = sb
        lossv[b] = lb
        if has_c:
            fb = f[b]
            cb = ct[b]
            for k in range(K):
                cb[k] = s[b] * fb[k]


# ----------------------------------------------------------------------------------------------
# 4. the closed-form adversary (docs/closed-form-adversary.md)
# ----------------------------------------------------------------------------------------------

@njit(inline="always", fastmath=FAST)
def _block_sum(parts, a, k):
    """``Σ_c parts[c, a, k]`` over the ``N_BLOCKS`` per-block partial products, in block order."""
    acc = parts[0, a, k]
    for c in range(1, parts.shape[0]):
        acc += parts[c, a, k]
    return acc


@njit(cache=True, parallel=True, boundscheck=False)
def _rows_dot(A, Bm, out):
    """``out = A Bm`` by blocks of rows of ``A``, one per ``prange`` unit."""
    n = A.shape[0]
    for c in prange(N_BLOCKS):
        r0 = c * n // N_BLOCKS
        r1 = (c + 1) * n // N_BLOCKS
        out[r0:r1] = np.dot(A[r0:r1], Bm)


@njit(cache=True, parallel=True, fastmath=FAST, boundscheck=False, error_model="numpy")
def _adversary(Gu, Gt, u, s, x, f, urows, uptr, uocc, iptr, iocc, eps, lmd, s_adv, f_adv,
               lossv_adv, Mt):
    """The closed-form adversary of one batch, on Ẽ: fills ``s_adv`` (``s̃_b = λ·(−σ(−x̃_b))``),
    ``f_adv`` (``f̃_b + Ẽ(Δ_i − Δ_j)``), ``lossv_adv`` (``softplus(−x̃_b)``) and ``Mt`` (M̃,
    K′×K′, the adversarial Ẽ-gradient being ``M̃ Ẽ``). ``Gt = G̃ = Ẽ Ẽᵀ``.

    By ``N_BLOCKS`` fixed blocks (of unique users, unique items or triples, one ``prange`` unit
    each): the unique user rows ``Ũ`` (``g̃_u = [g_u, 1]`` when K′ > K) and ``Ũ G̃``; per item
    ``ṽ_k``, ``G̃ ṽ_k = Σ ±s_b (G̃ g̃_{u_b})``, ``α_k`` and ``Ẽ Δ_k = α_k G̃ ṽ_k``; per triple
    ``x̃_b``; per item ``α_k m̃_k``; and ``M̃ = Σ_k α_k m̃_k ṽ_kᵀ = Z̃ᵀ Ũ`` regrouped by user
    (``Z̃_r = Σ_{b of user r} s_b (α_i m̃_i − α_j m̃_j)``): a product with the n_u ≤ B unique
    users instead of the ≤ 2B unique items.
    """
    B = u.shape[0]
    K = Gu.shape[1]
    Kp = Gt.shape[0]
    dt = Gt.dtype
    zero = Gt[0, 0] - Gt[0, 0]
    one = zero + 1
    nu = urows.shape[0]
    ni = iptr.shape[0] - 1
    U = np.empty((nu, Kp), dt)                # unique user rows g̃_u
    UG = np.empty((nu, Kp), dt)               # G̃ g̃_u (G̃ symmetric)
    uslot = np.empty(B, np.int32)
    for c in prange(N_BLOCKS):
        r0 = c * nu // N_BLOCKS
        r1 = (c + 1) * nu // N_BLOCKS
        for r in range(r0, r1):
            gr = Gu[urows[r]]
            for k in range(K):
                U[r, k] = gr[k]
            for k in range(K, Kp):
                U[r, k] = one
            for o in range(uptr[r], uptr[r + 1]):
                uslot[uocc[o]] = r
        UG[r0:r1] = np.dot(U[r0:r1], Gt)
    EDel = np.empty((ni, Kp), dt)             # Ẽ Δ_k
    alpha = np.empty(ni, dt)                  # α_k
    pslot = np.empty(B, np.int32)
    nslot = np.empty(B, np.int32)
    for c in prange(N_BLOCKS):
        k0 = c * ni // N_BLOCKS
        k1 = (c + 1) * ni // N_BLOCKS
        vk = np.empty(Kp, dt)
        GV = np.empty(Kp, dt)
        for kk in range(k0, k1):
            for k in range(Kp):
                GV[k] = zero
                vk[k] = zero
            for o in range(iptr[kk], iptr[kk + 1]):
                sb, ub = _signed(iocc[o], B, s)
                if iocc[o] < B:
                    pslot[ub] = kk
                else:
                    nslot[ub] = kk
                gu = U[uslot[ub]]
                ug = UG[uslot[ub]]
                for k in range(Kp):
                    vk[k] += sb * gu[k]
                    GV[k] += sb * ug[k]
            n2 = zero
            for k in range(Kp):
                n2 += vk[k] * GV[k]
            g = eps / math.sqrt(n2) if n2 > 0 else zero
            alpha[kk] = g
            ed = EDel[kk]
            for k in range(Kp):
                ed[k] = g * GV[k]
    for c in prange(N_BLOCKS):
        b0 = c * B // N_BLOCKS
        b1 = (c + 1) * B // N_BLOCKS
        for b in range(b0, b1):
            ps = pslot[b]
            ns = nslot[b]
            gu = U[uslot[b]]
            acc = zero
            for k in range(Kp):
                dk = EDel[ps, k] - EDel[ns, k]
                f_adv[b, k] = f[b, k] + dk
                acc += gu[k] * dk
            xa = x[b] + acc
            sa, la = bpr_terms(xa)
            s_adv[b] = lmd * sa
            lossv_adv[b] = la
    Mw = np.empty((ni, Kp), dt)               # rows α_k m̃_k
    for c in prange(N_BLOCKS):
        k0 = c * ni // N_BLOCKS
        k1 = (c + 1) * ni // N_BLOCKS
        for kk in range(k0, k1):
            mk = Mw[kk]
            for k in range(Kp):
                mk[k] = zero
            for o in range(iptr[kk], iptr[kk + 1]):
                sb, ub = _signed(iocc[o], B, s_adv)
                gu = U[uslot[ub]]
                for k in range(Kp):
                    mk[k] += sb * gu[k]
            g = alpha[kk]
            for k in range(Kp):
                mk[k] *= g
    Mpart = np.empty((N_BLOCKS, Kp, Kp), dt)
    for c in prange(N_BLOCKS):
        r0 = c * nu // N_BLOCKS
        r1 = (c + 1) * nu // N_BLOCKS
        Z = np.empty((r1 - r0, Kp), dt)
        for r in range(r0, r1):
            zr = Z[r - r0]
            for k in range(Kp):
                zr[k] = zero
            for o in range(uptr[r], uptr[r + 1]):
                b = uocc[o]
                sb = s[b]
                mi = Mw[pslot[b]]
                mj = Mw[nslot[b]]
                for k in range(Kp):
                    zr[k] += sb * (mi[k] - mj[k])
        Mpart[c] = np.dot(Z.T, U[r0:r1])
    for a in range(Kp):
        for k in range(Kp):
            Mt[a, k] = _block_sum(Mpart, a, k)


@njit(cache=True, boundscheck=False)
def _add_adversarial_weights(s, s_adv, f_adv, has_c, s_id, ct):
    """``s_id = s + s̃`` and ``ct_b += s̃_b f̃_adv,b`` (first K entries): the adversary's share of
    the weights, added last, in statements of their own and without fastmath, so that with
    s̃ = 0 they add an exact zero to what the VBPR path computed."""
    B = s.shape[0]
    K = ct.shape[1]
    for b in range(B):
        s_id[b] = s[b] + s_adv[b]
    if has_c:
        for b in range(B):
            sa = s_adv[b]
            fa = f_adv[b]
            cb = ct[b]
            for k in range(K):
                cb[k] = cb[k] + sa * fa[k]


# ----------------------------------------------------------------------------------------------
# 5. row gradients, summed over occurrences (old parameters only)
# ----------------------------------------------------------------------------------------------
# Not fastmath (their k-loops vectorise without it): with fastmath, the code numba *loaded from
# its on-disk cache* for these loops inside _batch differed from the code it had just compiled
# (1 ulp in ∂P), so a run's numbers depended on whether the cache was warm
# (tests/test_cpu_backend.py::test_results_do_not_depend_on_the_numba_cache).

@njit(cache=True, boundscheck=False)
def _user_gradients(blk, t, uptr, uocc, nu, s_id, ct, has_q, has_c, sep, two_beta):
    """``(gP, gH)`` per unique user, summed over its occurrences as the reference does:
    ``∂p = (s_id d + 2β p) + [tied form] ct``, ``∂h = ct + 2β h`` (``d = q_i − q_j``,
    ``ct = s f + s̃ f̃``)."""
    P, Q, H = blk.P, blk.Q, blk.H
    u, i, j = t.u, t.i, t.j
    K = P.shape[1]
    dt = P.dtype
    gP = np.zeros((nu, K), dt)
    gH = np.zeros((nu if sep else 0, K), dt)
    for r in range(nu):
        gp = gP[r]
        for o in range(uptr[r], uptr[r + 1]):
            b = uocc[o]
            pu = P[u[b]]
            sid = s_id[b]
            if has_c and sep:
                cb = ct[b]
                gh = gH[r]
                hu = H[u[b]]
                for k in range(K):
                    gh[k] += cb[k] + two_beta * hu[k]
            if has_q:
                qi = Q[i[b]]
                qj = Q[j[b]]
                if has_c and not sep:
                    cb = ct[b]
                    for k in range(K):
                        gp[k] += (sid * (qi[k] - qj[k]) + two_beta * pu[k]) + cb[k]
                else:
                    for k in range(K):
                        gp[k] += sid * (qi[k] - qj[k]) + two_beta * pu[k]
            else:
                if has_c and not sep:
                    cb = ct[b]
                    for k in range(K):
                        gp[k] += two_beta * pu[k] + cb[k]
                else:
                    for k in range(K):
                        gp[k] += two_beta * pu[k]
    return gP, gH


@njit(cache=True, boundscheck=False)
def _item_gradients(blk, t, iptr, iocc, ni, s_id, has_q, has_b, two_beta):
    """``(gQ, gb)`` per unique item: ``±s_id p_u + 2β q`` and ``±s_id + 2β b`` summed over its
    occurrences (positives first, then negatives)."""
    P, Q, bb = blk.P, blk.Q, blk.b
    u, i, j = t.u, t.i, t.j
    B = u.shape[0]
    K = P.shape[1]
    dt = P.dtype
    gQ = np.zeros((ni if has_q else 0, K), dt)
    gb = np.zeros(ni if has_b else 0, dt)
    if has_q or has_b:
        for r in range(ni):
            for o in range(iptr[r], iptr[r + 1]):
                sg, b = _signed(iocc[o], B, s_id)
                it = i[b] if iocc[o] < B else j[b]
                if has_q:
                    gq = gQ[r]
                    pu = P[u[b]]
                    qt = Q[it]
                    for k in range(K):
                        gq[k] += sg * pu[k] + two_beta * qt[k]
                if has_b:
                    gb[r] += sg + two_beta * bb[it]
    return gQ, gb


# ----------------------------------------------------------------------------------------------
# 6. the dense gradient of Ẽ
# ----------------------------------------------------------------------------------------------

@njit(cache=True, parallel=True, fastmath=FAST, boundscheck=False)
def _dense_gradient(Gu, u, s_id, diff, Et, two_re, gEp, gE):
    """``gE = Σ_c W̃_cᵀ diff_c + 2β_E Ẽ`` with ``W̃ = [g_u ⊙ s_id, s_id]`` (the last column only
    in the (K+1)-row form: it is ∂w), by ``N_BLOCKS`` row blocks of the batch."""
    B = u.shape[0]
    K = Gu.shape[1]
    Kp, D = gE.shape
    for c in prange(N_BLOCKS):
        b0 = c * B // N_BLOCKS
        b1 = (c + 1) * B // N_BLOCKS
        W = np.empty((b1 - b0, Kp), Gu.dtype)
        for b in range(b0, b1):
            gu = Gu[u[b]]
            sb = s_id[b]
            for k in range(K):
                W[b - b0, k] = gu[k] * sb
            for k in range(K, Kp):
                W[b - b0, k] = sb
        gEp[c] = np.dot(W.T, diff[b0:b1])
    for k in prange(Kp):
        for t in range(D):
            gE[k, t] = _block_sum(gEp, k, t) + two_re * Et[k, t]


@njit(cache=True, parallel=True, boundscheck=False)
def _add_adversarial_dense(Mt, Et, ME, gE):
    """``gE += M̃ Ẽ``: the adversarial Ẽ-gradient, added last, without fastmath (an exact zero
    when M̃ = 0). By ``N_BLOCKS`` blocks of rows, each block's product then its elementwise
    sum in one ``prange`` unit (the sum is order-free: the same bits for any thread count)."""
    Kp, D = gE.shape
    for c in prange(N_BLOCKS):
        r0 = c * Kp // N_BLOCKS
        r1 = (c + 1) * Kp // N_BLOCKS
        ME[r0:r1] = np.dot(Mt[r0:r1], Et)
        for k in range(r0, r1):
            for t in range(D):
                gE[k, t] = gE[k, t] + ME[k, t]


# ----------------------------------------------------------------------------------------------
# 7. the regulariser (float64, loss only)
# ----------------------------------------------------------------------------------------------

@njit(cache=True, fastmath=FAST, boundscheck=False)
def _regulariser(blk, t, flags, reg, reg_e):
    """``R`` of the reference: β Σ_b (‖p_u‖² + ‖h_u‖² + ‖q_i‖² + ‖q_j‖² + b_i² + b_j²) + β_E ‖Ẽ‖²
    (‖Ẽ‖² = ‖E‖² + ‖w‖²), in float64. Loss only; fastmath lets the sums vectorise (serial, they
    cost ~20% of an ml100k VBPR epoch); AMR and VBPR call this same function on the same rows."""
    P, Q, H, Et, bb = blk.P, blk.Q, blk.H, blk.Et, blk.b
    u, i, j = t.u, t.i, t.j
    K = P.shape[1]
    r = 0.0
    for b in range(u.shape[0]):
        pu = P[u[b]]
        for k in range(K):
            r += float(pu[k]) * float(pu[k])
        if flags.sep:
            hu = H[u[b]]
            for k in range(K):
                r += float(hu[k]) * float(hu[k])
        if flags.has_q:
            qi = Q[i[b]]
            qj = Q[j[b]]
            for k in range(K):
                r += float(qi[k]) * float(qi[k]) + float(qj[k]) * float(qj[k])
        if flags.has_b:
            r += float(bb[i[b]]) ** 2 + float(bb[j[b]]) ** 2
    out = reg * r
    if flags.has_c and reg_e != 0.0:
        re = 0.0
        for k in range(Et.shape[0]):
            ek = Et[k]
            for d in range(Et.shape[1]):
                re += float(ek[d]) * float(ek[d])
        out += reg_e * re
    return out


# ----------------------------------------------------------------------------------------------
# the batch and the epoch
# ----------------------------------------------------------------------------------------------

@njit(cache=True, boundscheck=False)
def _batch(blk, F, t, flags, sc, ws):
    """``(loss, Grads)`` of one batch (seams 1–7 of the module docstring). Not fastmath: the
    adversary's terms are added here and in the non-fastmath helpers only."""
    P, Et = blk.P, blk.Et
    B = t.u.shape[0]
    Kp = Et.shape[0]
    dt = P.dtype
    urows, uptr, uocc, irows, iptr, iocc = _group_batch(t, ws.umark, ws.imark)
    nu = urows.shape[0]
    ni = irows.shape[0]
    Gu = blk.H if flags.sep else P            # the content user vectors g_u

    if flags.has_c:
        diff = ws.diff[:B]
        f = ws.f[:B]
        ct = ws.ct[:B]
        _gather_project(F, Et, t.i, t.j, diff, f)
    else:
        diff = ws.diff[:0]
        f = ws.f[:0]
        ct = ws.ct[:0]
    x = np.empty(B, dt)
    s = np.empty(B, dt)
    lossv = np.empty(B, np.float64)
    _scores(P, blk.Q, Gu, blk.b, f, t.u, t.i, t.j, flags.has_q, flags.has_c, flags.has_b, x, s,
            lossv, ct)
    loss = lossv.sum()

    s_id = s
    Mt = np.zeros((Kp, Kp), dt)
    if flags.adv:
        Gt = np.empty((Kp, Kp), dt)           # G̃ = Ẽ Ẽᵀ
        _rows_dot(Et, Et.T, Gt)
        s_adv = np.empty(B, dt)
        f_adv = np.empty((B, Kp), dt)
        lossv_adv = np.empty(B, np.float64)
        _adversary(Gu, Gt, t.u, s, x, f, urows, uptr, uocc, iptr, iocc, sc.eps, sc.lmd, s_adv,
                   f_adv, lossv_adv, Mt)
        s_id = np.empty(B, dt)
        _add_adversarial_weights(s, s_adv, f_adv, flags.has_c, s_id, ct)
        loss = loss + float(sc.lmd) * lossv_adv.sum()

    gP, gH = _user_gradients(blk, t, uptr, uocc, nu, s_id, ct, flags.has_q, flags.has_c,
                             flags.sep, sc.two_beta)
    gQ, gb = _item_gradients(blk, t, iptr, iocc, ni, s_id, flags.has_q, flags.has_b,
                             sc.two_beta)
    if flags.has_c:
        gE = ws.gE
        _dense_gradient(Gu, t.u, s_id, diff, Et, sc.two_re, ws.gEp, gE)
        if flags.adv:
            _add_adversarial_dense(Mt, Et, ws.ME, gE)
    else:
        gE = ws.gE[:0]
    loss = loss + _regulariser(blk, t, flags, sc.reg, sc.reg_e)
    return loss, Grads(urows, gP, gH, irows, gQ, gb, gE)


@njit(cache=True)
def _apply(blk, acc, g, flags, lr, aeps):
    """One Adagrad step with a batch's :class:`Grads`."""
    adagrad_rows(blk.P, acc.P, g.urows, g.P, lr, aeps)
    if flags.sep:
        adagrad_rows(blk.H, acc.H, g.urows, g.H, lr, aeps)
    if flags.has_q:
        adagrad_rows(blk.Q, acc.Q, g.irows, g.Q, lr, aeps)
    if flags.has_b:
        adagrad_vec_rows(blk.b, acc.b, g.irows, g.b, lr, aeps)
    if flags.has_c:
        adagrad_dense(blk.Et, acc.Et, g.Et, lr, aeps)


@njit(cache=True)
def _epoch(blk, acc, F, t, batch, flags, sc, ws):
    """One epoch in one jitted loop: batches in order, one Adagrad step per batch."""
    total = 0.0
    n = t.u.shape[0]
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        tb = Triples(t.u[start:stop], t.i[start:stop], t.j[start:stop])
        loss, g = _batch(blk, F, tb, flags, sc, ws)
        total += loss
        _apply(blk, acc, g, flags, sc.lr, sc.aeps)
    return total


# ----------------------------------------------------------------------------------------------
# Python-side plumbing
# ----------------------------------------------------------------------------------------------

def _content_block(E, w, has_b):
    """Ẽ = [E; wᵀ] ((K+1)×D, a new array) in He & McAuley's form, E itself otherwise."""
    return np.ascontiguousarray(np.vstack([E, w[None, :]]) if has_b else E)


def _pack(spec, params, features, arrays):
    """``(Blocks, F, n_items)`` from a dict of parameter-shaped arrays (``params`` or ``accum``;
    absent blocks as 1-row dummies of the right dtype)."""
    P = params["P"]
    dt = P.dtype
    K = P.shape[1]
    dummy2 = np.zeros((1, K), dt)
    get = arrays.get
    Q = get("Q", dummy2)
    H = get("H", dummy2)
    if spec.has_content:
        Et = _content_block(get("E"), get("w"), spec.has_bias)
        F = np.ascontiguousarray(features, dtype=dt)
    else:
        Et = np.zeros((K, 1), dt)
        F = np.zeros((1, 1), dt)
    blk = Blocks(get("P", P), Q, H, Et, get("b", np.zeros(1, dt)))
    n_items = Q.shape[0] if "Q" in params else (F.shape[0] if spec.has_content else 1)
    return blk, F, n_items


def _workspace(blk, F, B, n_users, n_items, has_c):
    """The :class:`Workspace` of batches of up to ``B`` triples."""
    dt = blk.P.dtype
    K = blk.P.shape[1]
    Kp = blk.Et.shape[0]
    D = F.shape[1] if has_c and B > 0 else 0
    Kc = Kp if D else 0
    return Workspace(np.empty((B, D), dt), np.empty((B, Kp), dt), np.empty((N_BLOCKS, Kc, D), dt),
                     np.empty((Kc, D), dt), np.empty((Kc, D), dt), np.empty((B, K), dt),
                     np.full(n_users, -1, np.int32), np.full(n_items, -1, np.int32))


def _write_back(spec, arrays, Et):
    """Copy a (K+1)-row Ẽ (parameters or accumulator) back into ``E`` and ``w``."""
    if spec.has_content and spec.has_bias:
        K = arrays["E"].shape[0]
        arrays["E"][...] = Et[:K]
        arrays["w"][...] = Et[K]


def _fused(spec, hp):
    """Whether the fused kernel applies (the sign/random adversaries use the reference)."""
    return not (spec.adversarial and hp.adversary != "grad")


def _plain_mf(spec):
    return (spec.has_item_factors and not spec.has_content and not spec.separate_content_user
            and not spec.has_bias and not spec.adversarial)


def _triples(u, i, j):
    return Triples(i32(u), i32(i), i32(j))


def train_epoch(spec, params, accum, features, triples, hp, rng=None):
    """One Adagrad pass over ``triples`` in mini-batches of ``hp.batch_size``, in order, in one
    jitted loop (:func:`.cpu_mf.epoch_mf` for plain MF-BPR). Returns the summed loss. ``rng``
    feeds the random adversary only (reference path)."""
    if not _fused(spec, hp):
        return ref.train_epoch(spec, params, accum, features, triples, hp, rng)
    accum = {name: accum[name] if name in accum else np.zeros_like(p)
             for name, p in params.items()}
    blk, F, n_items = _pack(spec, params, features, params)
    acc = _pack(spec, params, features, accum)[0]
    t = _triples(*triples)
    sc = scalars_of(hp, blk.P.dtype, spec.adversarial)
    batch = int(hp.batch_size)
    if _plain_mf(spec):
        return float(epoch_mf(blk, acc, t, batch, sc))
    flags = flags_of(spec)
    ws = _workspace(blk, F, batch, blk.P.shape[0], n_items, flags.has_c)
    with one_blas_thread():
        loss = float(_epoch(blk, acc, F, t, batch, flags, sc, ws))
    _write_back(spec, params, blk.Et)
    _write_back(spec, accum, acc.Et)
    return loss


def batch_gradients(spec, params, features, u, i, j, hp, rng=None):
    """``(loss, grads)`` of one mini-batch as :func:`.reference.batch_gradients` (rows sorted;
    dense E and w)."""
    if not _fused(spec, hp):
        return ref.batch_gradients(spec, params, features, u, i, j, hp, rng)
    blk, F, n_items = _pack(spec, params, features, params)
    t = _triples(u, i, j)
    n_items = max(n_items, int(max(t.i.max(initial=0), t.j.max(initial=0))) + 1)
    flags = flags_of(spec)
    ws = _workspace(blk, F, len(t.u), blk.P.shape[0], n_items, flags.has_c)
    with one_blas_thread():
        loss, g = _batch(blk, F, t, flags, scalars_of(hp, blk.P.dtype, spec.adversarial), ws)
    K = blk.P.shape[1]
    uo, io = np.argsort(g.urows), np.argsort(g.irows)
    grads = {"P": (g.urows[uo], g.P[uo])}
    if spec.separate_content_user:
        grads["H"] = (g.urows[uo], g.H[uo])
    if spec.has_item_factors:
        grads["Q"] = (g.irows[io], g.Q[io])
    if spec.has_content:
        grads["E"] = g.Et[:K].copy()
    if spec.has_bias:
        grads["b"] = (g.irows[io], g.b[io])
        grads["w"] = g.Et[K].copy()
    return float(loss), grads


# ----------------------------------------------------------------------------------------------
# the adversary in numbers: Γ and the closed form, for the checker and the tests
# ----------------------------------------------------------------------------------------------

def _item_weights(spec, params, features, u, i, j):
    """``(items, Ṽ, Ẽ)``: the sorted unique items of the batch, ``ṽ_k = Σ ±s_b g̃_{u_b}`` per
    item (rows of Ṽ) and the content block Ẽ."""
    blk, F, _ = _pack(spec, params, features, params)
    t = _triples(u, i, j)
    B = len(t.u)
    K = blk.P.shape[1]
    Kp = blk.Et.shape[0]
    diff = np.empty((B, F.shape[1]), blk.P.dtype)
    f = np.empty((B, Kp), blk.P.dtype)
    x = np.empty(B, blk.P.dtype)
    s = np.empty(B, blk.P.dtype)
    with one_blas_thread():
        _gather_project(F, blk.Et, t.i, t.j, diff, f)
    _scores(blk.P, blk.Q, blk.H if spec.separate_content_user else blk.P, blk.b, f, t.u, t.i,
            t.j, spec.has_item_factors, True, spec.has_bias, x, s, np.empty(B), np.empty((B, K),
                                                                                       x.dtype))
    Gu = params["H"] if spec.separate_content_user else params["P"]
    g = np.ones((B, Kp), Gu.dtype)
    g[:, :K] = Gu[t.u]
    items, inverse = np.unique(np.concatenate([t.i, t.j]), return_inverse=True)
    V = np.zeros((len(items), Kp), Gu.dtype)
    np.add.at(V, inverse, np.concatenate([s, -s])[:, None] * np.concatenate([g, g]))
    return items, V, blk.Et


def content_gradient(spec, params, features, u, i, j):
    """``(items, Γ)`` as :func:`.reference.content_gradient`, formed as ``Γ = Ṽ Ẽ`` (rows
    ``Γ_k = Ẽᵀ ṽ_k``; docs/closed-form-adversary.md)."""
    items, V, Et = _item_weights(spec, params, features, u, i, j)
    return items, V @ Et


def adversarial_closed_form(spec, params, features, u, i, j, eps):
    r"""The closed-form adversary of one batch, for tests and docs (docs/closed-form-adversary.md).

    Returns ``(items, norm, EDelta, wDelta)``: the sorted unique items, ``‖Γ_k‖`` from
    ``ṽ_kᵀ G̃ ṽ_k``, and ``Ẽ Δ_k = α_k G̃ ṽ_k`` split into ``E Δ_k`` (K) and ``w·Δ_k`` (zeros in
    the Eq. 4 form), never forming a D-dimensional Γ or Δ.
    """
    items, V, Et = _item_weights(spec, params, features, u, i, j)
    K = params["P"].shape[1]
    GV = V @ (Et @ Et.T)
    n2 = np.einsum("nk,nk->n", V, GV)
    norm = np.sqrt(np.maximum(n2, 0))
    alpha = np.where(n2 > 0, eps / np.where(n2 > 0, norm, 1), 0)
    EDelta = alpha[:, None] * GV
    w_delta = EDelta[:, K] if spec.has_bias else np.zeros(len(items), EDelta.dtype)
    return items, norm, EDelta[:, :K], w_delta
