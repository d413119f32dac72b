r"""Numba CPU backend: the reference's functions, fused, parallel and with a closed-form adversary.

Mirrors :mod:`.reference` name for name (``NAME``, ``xp``, ``to_device``/``to_host``,
``sample_epoch``, ``train_epoch``, ``train_batch``, ``batch_gradients``, ``content_gradient``,
``adversarial_perturbation``, ``adagrad_update``) plus the evaluation kernels ``sampled_ranks``
and ``full_ranks``. The pure-NumPy helpers (sigmoid, regulariser, the perturbation rule...) are
imported from the reference, only the kernels are written twice.

What is fused
-------------
One call of :func:`train_epoch` is **one** jitted loop over the epoch's mini-batches (no Python
per batch). Per batch of B triples it

1. groups the batch's users and items into unique rows (first-occurrence order, an occurrence
   list per row: positives first, then negatives, in batch order, as ``np.add.at`` sums them);
2. gathers ``diff = c_i − c_j`` (B×D, parallel) and forms ``f = diff Eᵀ`` (BLAS);
3. computes ``x_b``, ``s_b = −σ(−x_b)`` and the loss (parallel over triples);
4. for AMR, the adversary in closed form (below), ``x̃_b``, ``s̃_b``;
5. sums each unique row's gradient over its occurrences (parallel over rows, reading the old
   parameters only), forms the dense ``∂/∂E = (g ⊙ (s+s̃))ᵀ diff + M E + m wᵀ + 2β_E E`` (BLAS);
6. applies one Adagrad step per touched row (parallel over rows) and to E, w.

Every model (mf, duif, vbpr, amr) in both forms (eq4 and hm: ``H``, ``b``, ``w``) runs through
the same kernel; the blocks a model lacks are 1-row dummies switched off by flags.

The adversary in closed form
----------------------------
With Δ held constant, the gradient of L_BPR w.r.t. the features of item k is (reference,
:func:`content_gradient`) ``Γ_k = Eᵀ v_k + a_k w`` with ``v_k = Σ_b ±s_b g_{u_b}`` (K) and
``a_k = Σ_b ±s_b`` summed over every occurrence of k in the batch (+ as positive, − as
negative; ``w = 0`` in the Eq. 4 form). With ``G = E Eᵀ`` (K×K), ``e = E w`` (K), ``ω = w·w``::

    ‖Γ_k‖² = v_kᵀ G v_k + 2 a_k v_k·e + a_k² ω
    Δ_k    = γ_k (Eᵀ v_k + a_k w),        γ_k = ε/‖Γ_k‖  (0 when ‖Γ_k‖² = 0)
    E Δ_k  = γ_k (G v_k + a_k e)          (K)
    w·Δ_k  = γ_k (v_k·e + a_k ω)

so the perturbed score is ``x̃_b = x_b + g_u·(EΔ_i − EΔ_j) + w·(Δ_i − Δ_j)`` without touching
D-dimensional features. The adversarial part of the E gradient,
``Σ_b s̃_b g_u (Δ_i − Δ_j)ᵀ = Σ_k m_k Δ_kᵀ`` with ``m_k = Σ_b ±s̃_b g_{u_b}``, is

    Σ_k γ_k m_k (Eᵀ v_k + a_k w)ᵀ = M E + μ wᵀ,    M = Σ_k γ_k m_k v_kᵀ (K×K),  μ = Σ_k γ_k a_k m_k,

and that of w, ``Σ_k ã_k Δ_k`` with ``ã_k = Σ_b ±s̃_b``, is ``Eᵀ(Σ_k γ_k ã_k v_k) + (Σ_k γ_k ã_k
a_k) w``. An AMR step thus costs a VBPR step plus ``G`` and ``M E`` (2·2K²D flops) and O(B K²),
instead of a second O(BKD) pass over the features. See ``docs/closed-form-adversary.md``.
The ``sign`` and ``random`` adversaries have no such form: they fall back, batch by batch, to
the reference's explicit path (:func:`.reference.train_batch`).

Determinism of the sampler
--------------------------
:func:`sample_epoch` draws the permutation with ``rng`` (NumPy), then one 63-bit seed per chunk
of ``SAMPLE_CHUNK`` triples from the same ``rng``; chunks run in ``prange``, each with its own
SplitMix64 stream. The triples therefore depend on the seed only, never on the thread count or
the scheduling. (They are not the reference's triples: parity tests feed both backends the same
triples.)
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
from numba import njit, prange

from . import reference as ref
from .reference import (adversarial_perturbation, regulariser, sigmoid, softplus,  # noqa: F401
                        to_device, to_host)

NAME = "numba"
xp = np

#: triples per independently seeded sampling chunk (fixed: the triples must not depend on it
#: changing with the machine)
SAMPLE_CHUNK = 8192

_EMPTY_I32 = np.zeros(0, dtype=np.int32)


# ----------------------------------------------------------------------------------------------
# scalar helpers
# ----------------------------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _neg_sigmoid_neg(x):
    """−σ(−x), stable (evaluated in float64, stored by the caller in the parameters' dtype)."""
    y = float(x)
    if y >= 0:
        ex = math.exp(-y)
        return -(ex / (1.0 + ex))
    return -(1.0 / (1.0 + math.exp(y)))


@njit(cache=True, inline="always")
def _softplus_neg(x):
    """softplus(−x) = max(−x, 0) + log1p(e^{−|x|}), in float64 (it only feeds the loss)."""
    y = -float(x)
    return max(y, 0.0) + math.log1p(math.exp(-abs(y)))


# ----------------------------------------------------------------------------------------------
# grouping a batch's rows
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


# ----------------------------------------------------------------------------------------------
# the fused mini-batch: loss and row-aggregated gradients
# ----------------------------------------------------------------------------------------------

_FAST = {"reassoc", "contract", "nsz"}


@njit(inline="always", fastmath=_FAST, boundscheck=False)
def _signed_user_sum(occ, o0, o1, B, w, u, Gu, out, zero):
    """``out += Σ ±w_b g_{u_b}`` over one item's occurrences ``occ[o0:o1]`` in the batch's
    2B-long list (``t < B``: triple t's positive, sign +; ``t ≥ B``: triple t−B's negative,
    sign −); returns ``Σ ±w_b``. This is ``v_k``/``a_k`` of the closed-form adversary with
    ``w = s``, and ``m_k``/``ã_k`` with ``w = s̃``."""
    total = zero
    for o in range(o0, o1):
        t = occ[o]
        if t < B:
            sb = w[t]
            ub = u[t]
        else:
            sb = -w[t - B]
            ub = u[t - B]
        total += sb
        gu = Gu[ub]
        for k in range(out.shape[0]):
            out[k] += sb * gu[k]
    return total

#: fixed number of row blocks the batch's two B×D×K products (and the K×K×D ones of AMR) are
#: split into, one ``prange`` work unit each, with BLAS pinned to one thread for the epoch
#: (:func:`_one_blas_thread`). Fixed, so results never depend on the thread count.
N_BLOCKS = 2


@njit(cache=True, parallel=True, fastmath=_FAST, boundscheck=False)
def _gather_project(F, E, i, j, diff, f):
    """``diff = F[i] − F[j]`` and ``f = diff Eᵀ``, each block of rows gathered and multiplied by
    the thread that owns it (single-threaded BLAS per block: both cores, no oversubscription)."""
    B = i.shape[0]
    D = F.shape[1]
    Et = E.T
    for c in prange(N_BLOCKS):
        b0 = c * B // N_BLOCKS
        b1 = (c + 1) * B // N_BLOCKS
        for b in range(b0, b1):
            fi = F[i[b]]
            fj = F[j[b]]
            db = diff[b]
            for t in range(D):
                db[t] = fi[t] - fj[t]
        f[b0:b1] = np.dot(diff[b0:b1], Et)


@njit(cache=True, parallel=True, fastmath=_FAST, boundscheck=False)
def _content_grad_blocks(Gu, u, s_id, diff, gEp):
    """``gEp[c] = W_cᵀ diff_c`` with ``W = g_u ⊙ (s + s̃)`` on row block ``c`` (summed by the
    caller: ``∂E = Σ_c gEp[c] + ...``)."""
    B = u.shape[0]
    K = Gu.shape[1]
    for c in prange(N_BLOCKS):
        b0 = c * B // N_BLOCKS
        b1 = (c + 1) * B // N_BLOCKS
        W = np.empty((b1 - b0, K), Gu.dtype)
        for b in range(b0, b1):
            gu = Gu[u[b]]
            sb = s_id[b]
            for k in range(K):
                W[b - b0, k] = gu[k] * sb
        gEp[c] = np.dot(W.T, diff[b0:b1])


@njit(cache=True, parallel=True, boundscheck=False)
def _rows_dot(A, Bm, out):
    """``out = A Bm`` by blocks of rows of ``A``, one per ``prange`` unit."""
    n = A.shape[0]
    for c in prange(N_BLOCKS):
        r0 = c * n // N_BLOCKS
        r1 = (c + 1) * n // N_BLOCKS
        out[r0:r1] = np.dot(A[r0:r1], Bm)


@njit(cache=True, parallel=True, fastmath=_FAST, boundscheck=False)
def _assemble_grad_e(gEp, ME, mu, w, E, two_re, adv, has_b, gE):
    """``∂E = Σ_c gEp[c] + [adv] (M E + μ wᵀ) + 2β_E E``, parallel over the rows of E."""
    K, D = gE.shape
    for k in prange(K):
        for t in range(D):
            acc = gEp[0, k, t]
            for c in range(1, gEp.shape[0]):
                acc += gEp[c, k, t]
            if adv:
                acc += ME[k, t]
                if has_b:
                    acc += mu[k] * w[t]
            gE[k, t] = acc + two_re * E[k, t]


@njit(cache=True, parallel=True, fastmath=_FAST, boundscheck=False, error_model="numpy")
def _adversary(Gu, u, s, x, f, lossv, urows, uptr, uocc, iptr, iocc, Gm, ev, om, eps, lmd,
               has_b, s_adv, f_adv, Mpart, mu_p, wv_p, wa_p):
    """The closed-form adversary of one batch by ``N_BLOCKS`` fixed blocks (of unique users,
    unique items or triples, one ``prange`` unit each; BLAS single-threaded per block).

    ``G v_k = Σ_b ±s_b (G g_{u_b})`` and ``M = Σ_k γ_k m_k v_kᵀ = Zᵀ U`` with ``U`` the batch's
    unique user rows and ``Z_u = Σ_{b: u_b = u} s_b (γm)_{i_b} − s_b (γm)_{j_b}``: both K×K
    products run over the nu unique users instead of the ni (≈ 2×) unique items. Fills
    ``s_adv``, ``f_adv``, ``lossv`` (perturbed softplus), the per-block partial sums
    ``Mpart[c]`` of M and (He & McAuley form) ``mu_p[c]``, ``wv_p[c]``, ``wa_p[c]``; the caller
    adds the blocks in order, so nothing depends on the thread count."""
    B = u.shape[0]
    K = Gu.shape[1]
    dt = Gu.dtype
    zero = eps - eps
    nu = urows.shape[0]
    ni = iptr.shape[0] - 1
    U = np.empty((nu, K), dt)                 # unique user rows g_u
    UG = np.empty((nu, K), dt)                # G g_u (G symmetric)
    uslot = np.empty(B, np.int32)
    for c in prange(N_BLOCKS):
        r0 = c * nu // N_BLOCKS
        r1 = (c + 1) * nu // N_BLOCKS
        for r in range(r0, r1):
            gr = Gu[urows[r]]
            for k in range(K):
                U[r, k] = gr[k]
            for o in range(uptr[r], uptr[r + 1]):
                uslot[uocc[o]] = r
        UG[r0:r1] = np.dot(U[r0:r1], Gm)
    # np.empty, zeroed by the block that owns the rows: an np.zeros here is a parfor of its
    # own (one more parallel region per array and batch)
    V = np.empty((ni, K), dt)                 # v_k
    a = np.empty(ni, dt)                      # a_k
    gam = np.empty(ni, dt)                    # γ_k
    EDel = np.empty((ni, K), dt)              # E Δ_k
    wDel = np.empty(ni, dt)                   # w·Δ_k
    pslot = np.empty(B, np.int32)
    nslot = np.empty(B, np.int32)
    for c in prange(N_BLOCKS):
        k0 = c * ni // N_BLOCKS
        k1 = (c + 1) * ni // N_BLOCKS
        GV = np.zeros(K, dt)
        for kk in range(k0, k1):
            vk = V[kk]
            for k in range(K):
                GV[k] = zero
                vk[k] = zero
            ak = zero
            for o in range(iptr[kk], iptr[kk + 1]):
                t = iocc[o]
                if t < B:
                    sb = s[t]
                    ub = t
                    pslot[t] = kk
                else:
                    sb = -s[t - B]
                    ub = t - B
                    nslot[t - B] = kk
                ak += sb
                gu = Gu[u[ub]]
                ug = UG[uslot[ub]]
                for k in range(K):
                    vk[k] += sb * gu[k]
                    GV[k] += sb * ug[k]
            a[kk] = ak
            n2 = zero
            ve = zero
            for k in range(K):
                n2 += vk[k] * GV[k]
                ve += vk[k] * ev[k]
            n2 += 2 * ak * ve + ak * ak * om
            g = eps / math.sqrt(n2) if n2 > 0 else zero
            gam[kk] = g
            ed = EDel[kk]
            for k in range(K):
                ed[k] = g * (GV[k] + ak * ev[k])
            wDel[kk] = g * (ve + ak * om)
    for c in prange(N_BLOCKS):
        b0 = c * B // N_BLOCKS
        b1 = (c + 1) * B // N_BLOCKS
        for b in range(b0, b1):
            ps = pslot[b]
            ns = nslot[b]
            gu = Gu[u[b]]
            acc = zero
            for k in range(K):
                dk = EDel[ps, k] - EDel[ns, k]
                f_adv[b, k] = f[b, k] + dk
                acc += gu[k] * dk
            xa = x[b] + acc + (wDel[ps] - wDel[ns])
            s_adv[b] = lmd * _neg_sigmoid_neg(xa)
            lossv[b] = _softplus_neg(xa)
    Mw = np.empty((ni, K), dt)                # rows γ_k m_k
    for c in prange(N_BLOCKS):
        k0 = c * ni // N_BLOCKS
        k1 = (c + 1) * ni // N_BLOCKS
        wa = zero
        for kk in range(k0, k1):
            mk = Mw[kk]
            for k in range(K):
                mk[k] = zero
            at = _signed_user_sum(iocc, iptr[kk], iptr[kk + 1], B, s_adv, u, Gu, mk, zero)
            g = gam[kk]
            for k in range(K):
                mk[k] *= g
            ga = g * at
            if has_b:                         # μ, wv, wa: the He & McAuley form only
                ak = a[kk]
                vk = V[kk]
                for k in range(K):
                    mu_p[c, k] += ak * mk[k]
                    wv_p[c, k] += ga * vk[k]
                wa += ga * ak
        wa_p[c] = wa
    for c in prange(N_BLOCKS):
        r0 = c * nu // N_BLOCKS
        r1 = (c + 1) * nu // N_BLOCKS
        Z = np.empty((r1 - r0, K), dt)
        for r in range(r0, r1):
            zr = Z[r - r0]
            for k in range(K):
                zr[k] = zero
            for o in range(uptr[r], uptr[r + 1]):
                b = uocc[o]
                sb = s[b]
                mi = Mw[pslot[b]]
                mj = Mw[nslot[b]]
                for k in range(K):
                    zr[k] += sb * (mi[k] - mj[k])
        Mpart[c] = np.dot(Z.T, U[r0:r1])


@njit(cache=True, fastmath=_FAST, error_model="numpy")
def _batch(P, Q, H, E, bb, w, F, u, i, j, has_q, has_c, sep, has_b, adv, lmd, eps,
           two_beta, two_re, reg, reg_e, umark, imark, ws_diff, ws_f, ws_gEp, ws_gE):
    """Loss and gradients of one batch (see the module docstring). Scalars ``lmd, eps,
    two_beta = 2β, two_re = 2β_E`` are in the parameters' dtype; ``reg, reg_e`` float64 (loss
    only)."""
    B = u.shape[0]
    K = P.shape[1]
    dt = P.dtype
    zero = P[0, 0] - P[0, 0]
    idx2 = np.empty(2 * B, np.int32)
    for b in range(B):
        idx2[b] = i[b]
        idx2[B + b] = j[b]
    urows, uptr, uocc = _group(u, umark)
    irows, iptr, iocc = _group(idx2, imark)
    nu = urows.shape[0]
    ni = irows.shape[0]
    Gu = H if sep else P                      # the content user vectors g_u

    # ---- content: diff = c_i − c_j, f = diff Eᵀ ----------------------------------------------
    if has_c:
        D = F.shape[1]
        diff = ws_diff[:B]                    # workspaces: allocated once per epoch (fresh
        f = ws_f[:B]                          # 4 MB pages per batch cost ~1 ms of faults)
        _gather_project(F, E, i, j, diff, f)
    else:
        D = 0
        diff = np.empty((1, 1), dt)
        f = np.empty((1, K), dt)

    # ---- scores, s_b, loss ----------------------------------------------------------------------
    x = np.empty(B, dt)
    s = np.empty(B, dt)
    lossv = np.empty(B, np.float64)
    for b in prange(B):
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
            xb += acc
        if has_b:
            db = diff[b]
            acc = zero
            for t in range(D):
                acc += db[t] * w[t]
            xb += bb[i[b]] - bb[j[b]] + acc
        x[b] = xb
        s[b] = _neg_sigmoid_neg(xb)
        lossv[b] = _softplus_neg(xb)
    loss = lossv.sum()

    # ---- the adversary, closed form ------------------------------------------------------------
    s_adv = np.zeros(B, dt)
    f_adv = np.empty((1, K), dt)
    Mmat = np.zeros((K, K), dt)
    mu = np.zeros(K, dt)
    wv = np.zeros(K, dt)
    wa = zero
    if adv:
        Gm = np.empty((K, K), dt)             # G = E Eᵀ
        _rows_dot(E, E.T, Gm)
        if has_b:
            ev = np.dot(E, w)                 # e = E w
            om = zero
            for t in range(D):
                om += w[t] * w[t]
        else:
            ev = np.zeros(K, dt)
            om = zero
        f_adv = np.empty((B, K), dt)
        Mpart = np.empty((N_BLOCKS, K, K), dt)
        mu_p = np.zeros((N_BLOCKS, K), dt)
        wv_p = np.zeros((N_BLOCKS, K), dt)
        wa_p = np.zeros(N_BLOCKS, dt)
        _adversary(Gu, u, s, x, f, lossv, urows, uptr, uocc, iptr, iocc, Gm, ev, om, eps, lmd,
                   has_b, s_adv, f_adv, Mpart, mu_p, wv_p, wa_p)
        loss += float(lmd) * lossv.sum()
        Mmat = Mpart[0].copy()
        for c in range(1, N_BLOCKS):
            Mmat += Mpart[c]
        if has_b:
            for c in range(N_BLOCKS):
                for k in range(K):
                    mu[k] += mu_p[c, k]
                    wv[k] += wv_p[c, k]
                wa += wa_p[c]

    s_id = s + s_adv

    # ---- row gradients, summed over occurrences (old parameters only) --------------------------
    # per occurrence, as the reference: ∂p = ((s+s̃) d + 2β p) + [tied] (s f + s̃ f̃)
    gP = np.zeros((nu, K), dt)
    gH = np.zeros((nu if sep else 0, K), dt)
    ct = np.zeros(K, dt)
    for r in range(nu):
        gp = gP[r]
        for o in range(uptr[r], uptr[r + 1]):
            b = uocc[o]
            pu = P[u[b]]
            sid = s_id[b]
            if has_c:
                fb = f[b]
                sb = s[b]
                if adv:
                    fa = f_adv[b]
                    sa = s_adv[b]
                    for k in range(K):
                        ct[k] = sb * fb[k] + sa * fa[k]
                else:
                    for k in range(K):
                        ct[k] = sb * fb[k]
                if sep:
                    gh = gH[r]
                    hu = H[u[b]]
                    for k in range(K):
                        gh[k] += ct[k] + two_beta * hu[k]
            if has_q:
                qi = Q[i[b]]
                qj = Q[j[b]]
                if has_c and not sep:
                    for k in range(K):
                        gp[k] += (sid * (qi[k] - qj[k]) + two_beta * pu[k]) + ct[k]
                else:
                    for k in range(K):
                        gp[k] += sid * (qi[k] - qj[k]) + two_beta * pu[k]
            else:
                if has_c and not sep:
                    for k in range(K):
                        gp[k] += two_beta * pu[k] + ct[k]
                else:
                    for k in range(K):
                        gp[k] += two_beta * pu[k]
    gQ = np.zeros((ni if has_q else 0, K), dt)
    gb = np.zeros(ni if has_b else 0, dt)
    if has_q or has_b:
        for r in range(ni):
            for o in range(iptr[r], iptr[r + 1]):
                t = iocc[o]
                if t < B:
                    b = t
                    sg = s_id[b]
                    it = i[b]
                else:
                    b = t - B
                    sg = -s_id[b]
                    it = j[b]
                if has_q:
                    gq = gQ[r]
                    pu = P[u[b]]
                    qt = Q[it]
                    for k in range(K):
                        gq[k] += sg * pu[k] + two_beta * qt[k]
                if has_b:
                    gb[r] += sg + two_beta * bb[it]

    # ---- dense gradients: E, w --------------------------------------------------------------
    if has_c:
        gEp = ws_gEp
        _content_grad_blocks(Gu, u, s_id, diff, gEp)
        ME = np.empty((K, D) if adv else (1, 1), dt)
        if adv:
            _rows_dot(Mmat, E, ME)
        gE = ws_gE
        _assemble_grad_e(gEp, ME, mu, w, E, two_re, adv, has_b, gE)
        if has_b:
            gw = np.dot(s_id, diff)
            if adv:
                ew = np.dot(wv, E)
                for t in range(D):
                    gw[t] += ew[t] + wa * w[t]
            for t in range(D):
                gw[t] += two_re * w[t]
        else:
            gw = np.zeros(0, dt)
    else:
        gE = np.zeros((0, 0), dt)
        gw = np.zeros(0, dt)

    # ---- regulariser (float64, loss only) -----------------------------------------------------
    r = 0.0
    for b in range(B):
        pu = P[u[b]]
        for k in range(K):
            r += float(pu[k]) * float(pu[k])
        if sep:
            hu = H[u[b]]
            for k in range(K):
                r += float(hu[k]) * float(hu[k])
        if has_q:
            qi = Q[i[b]]
            qj = Q[j[b]]
            for k in range(K):
                r += float(qi[k]) * float(qi[k]) + float(qj[k]) * float(qj[k])
        if has_b:
            r += float(bb[i[b]]) ** 2 + float(bb[j[b]]) ** 2
    loss += reg * r
    if has_c and reg_e != 0.0:
        re = 0.0
        for k in range(K):
            ek = E[k]
            for t in range(D):
                re += float(ek[t]) * float(ek[t])
        if has_b:
            for t in range(D):
                re += float(w[t]) * float(w[t])
        loss += reg_e * re
    return loss, urows, gP, gH, irows, gQ, gb, gE, gw


# ----------------------------------------------------------------------------------------------
# Adagrad
# ----------------------------------------------------------------------------------------------

@njit(inline="always", fastmath=_FAST, boundscheck=False, error_model="numpy")
def _adagrad_step(pr, ar, gr, lr, eps):
    """Adagrad on one row, in place: ``A += g²; θ −= lr g/(√A + eps)`` (inlined; vectorises
    with ``error_model="numpy"``, which drops the per-division zero check)."""
    for k in range(pr.shape[0]):
        gk = gr[k]
        a = ar[k] + gk * gk
        ar[k] = a
        pr[k] -= lr * gk / (np.sqrt(a) + eps)


@njit(cache=True, fastmath=_FAST, boundscheck=False, error_model="numpy")
def _adagrad_rows(param, acc, rows, g, lr, eps):
    """Row-sparse Adagrad on a 2-D table: ``A[r] += g²; θ[r] −= lr g/(√A[r] + eps)``."""
    for n in prange(rows.shape[0]):
        r = rows[n]
        _adagrad_step(param[r], acc[r], g[n], lr, eps)


@njit(cache=True, fastmath=_FAST, boundscheck=False, error_model="numpy")
def _adagrad_vec_rows(param, acc, rows, g, lr, eps):
    """Row-sparse Adagrad on a 1-D table (item biases)."""
    for n in range(rows.shape[0]):
        r = rows[n]
        gk = g[n]
        a = acc[r] + gk * gk
        acc[r] = a
        param[r] -= lr * gk / (np.sqrt(a) + eps)


@njit(cache=True, parallel=True, fastmath=_FAST, boundscheck=False, error_model="numpy")
def _adagrad_dense(param, acc, g, lr, eps):
    """Dense Adagrad on a 2-D block (E)."""
    for k in prange(param.shape[0]):
        _adagrad_step(param[k], acc[k], g[k], lr, eps)


@njit(cache=True)
def _workspaces(E, F, B):
    """The content kernels' B×D, B×K, N_BLOCKS×K×D and K×D buffers (empty when B = 0)."""
    K = E.shape[0]
    D = F.shape[1] if B > 0 else 0
    return (np.empty((B, D), E.dtype), np.empty((B, K), E.dtype),
            np.empty((N_BLOCKS, K if B > 0 else 0, D), E.dtype),
            np.empty((K if B > 0 else 0, D), E.dtype))


@njit(cache=True)
def _epoch(P, Q, H, E, bb, w, AP, AQ, AH, AE, Ab, Aw, F, u, i, j, n_items, batch, has_q, has_c,
           sep, has_b, adv, lmd, eps, two_beta, two_re, reg, reg_e, lr, aeps):
    """One epoch in one jitted loop: batches in order, one Adagrad step per batch."""
    umark = np.full(P.shape[0], -1, np.int32)
    imark = np.full(n_items, -1, np.int32)
    ws_diff, ws_f, ws_gEp, ws_gE = _workspaces(E, F, batch if has_c else 0)
    total = 0.0
    n = u.shape[0]
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        loss, urows, gP, gH, irows, gQ, gb, gE, gw = _batch(
            P, Q, H, E, bb, w, F, u[start:stop], i[start:stop], j[start:stop], has_q, has_c,
            sep, has_b, adv, lmd, eps, two_beta, two_re, reg, reg_e, umark, imark, ws_diff, ws_f,
            ws_gEp, ws_gE)
        total += loss
        _adagrad_rows(P, AP, urows, gP, lr, aeps)
        if sep:
            _adagrad_rows(H, AH, urows, gH, lr, aeps)
        if has_q:
            _adagrad_rows(Q, AQ, irows, gQ, lr, aeps)
        if has_b:
            _adagrad_vec_rows(bb, Ab, irows, gb, lr, aeps)
            _adagrad_dense(w.reshape(1, -1), Aw.reshape(1, -1), gw.reshape(1, -1), lr, aeps)
        if has_c:
            _adagrad_dense(E, AE, gE, lr, aeps)
    return total


# ----------------------------------------------------------------------------------------------
# MF-BPR: a dedicated epoch (no content, no bias, no adversary)
# ----------------------------------------------------------------------------------------------

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


@njit(inline="always", fastmath=_FAST, boundscheck=False)
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


@njit(cache=True, fastmath=_FAST, boundscheck=False, error_model="numpy")
def _epoch_mf(P, Q, AP, AQ, u, i, j, batch, two_beta, reg, lr, aeps):
    """MF-BPR epoch, same semantics as the generic kernel (gradients summed per unique row in
    the reference's order, one Adagrad step per touched row per batch) without its general
    grouping: rows get their batch slot through stamp arrays (last batch that saw the row, O(B),
    no sorting, no occurrence lists, nothing allocated per batch), then one pass for the scores,
    one per gradient block and one Adagrad pass per block.

    Serial on purpose: splitting a batch over the 2 cores (row blocks for the scores, column
    blocks of K for gradients and Adagrad, 2 ``prange`` regions per batch) measured 1.6× slower
    than this loop on the 2-core KVM guest: waking the OpenMP team twice per 512-triple batch
    (≈ 100 µs of work) costs more than the half it saves."""
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
            s[b] = _neg_sigmoid_neg(acc)
            r2 = 0.0
            for k in range(K):
                r2 += float(pu[k]) * float(pu[k]) + float(qi[k]) * float(qi[k]) \
                    + float(qj[k]) * float(qj[k])
            lossv[b] = _softplus_neg(acc) + reg * r2
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
            _adagrad_step(P[urows[r]], AP[urows[r]], gP[r], lr, aeps)
        for r in range(ni):
            _adagrad_step(Q[irows[r]], AQ[irows[r]], gQ[r], lr, aeps)
        for b in range(m):
            total += lossv[b]
    return total


# ----------------------------------------------------------------------------------------------
# Python-side plumbing
# ----------------------------------------------------------------------------------------------

def _blocks(spec, params, features):
    """The 7 arrays the kernels take (absent blocks as 1-row dummies of the right dtype)."""
    P = params["P"]
    dt = P.dtype
    K = P.shape[1]
    dummy2 = np.zeros((1, K), dt)
    Q = params.get("Q", dummy2)
    H = params.get("H", dummy2)
    E = params.get("E", np.zeros((K, 1), dt))
    bb = params.get("b", np.zeros(1, dt))
    w = params.get("w", np.zeros(1, dt))
    if spec.has_content:
        F = np.ascontiguousarray(features, dtype=dt)
    else:
        F = np.zeros((1, 1), dt)
    n_items = Q.shape[0] if "Q" in params else (F.shape[0] if spec.has_content else 1)
    return P, Q, H, E, bb, w, F, n_items


def _flags(spec):
    return (spec.has_item_factors, spec.has_content, spec.separate_content_user, spec.has_bias,
            spec.adversarial)


def _scalars(hp, dt, adversarial):
    lmd = dt.type(hp.lmd if adversarial else 0.0)
    return (lmd, dt.type(hp.eps), dt.type(2 * hp.reg), dt.type(2 * hp.reg_e), float(hp.reg),
            float(hp.reg_e))


def _fused(spec, hp):
    """Whether the fused kernel applies (the sign/random adversaries use the reference)."""
    return not (spec.adversarial and hp.adversary != "grad")


_BLAS = None


def _one_blas_thread():
    """A context pinning BLAS (OpenBLAS of scipy, which numba's ``np.dot`` calls through
    ``scipy.linalg.cython_blas``, and numpy's) to one thread, restored on exit: the content
    kernels split their products over the cores themselves (``prange`` over ``N_BLOCKS``), and
    OpenBLAS's spinning workers on top of numba's threads oversubscribe the cores. A no-op
    without threadpoolctl."""
    global _BLAS
    if _BLAS is None:
        try:
            import scipy.linalg.cython_blas  # noqa: F401  (loaded, so the controller sees it)
            from threadpoolctl import ThreadpoolController
            _BLAS = ThreadpoolController()
        except Exception:            # pragma: no cover - threadpoolctl is a dependency
            _BLAS = False
    if _BLAS is False:
        return contextlib.nullcontext()
    return _BLAS.limit(limits=1, user_api="blas")


def _plain_mf(spec):
    return (spec.has_item_factors and not spec.has_content and not spec.separate_content_user
            and not spec.has_bias and not spec.adversarial)


def _i32(a):
    return np.ascontiguousarray(a, dtype=np.int32)


def batch_gradients(spec, params, features, u, i, j, hp, rng=None):
    """Same contract as :func:`.reference.batch_gradients` (``(loss, grads)``, rows sorted)."""
    if not _fused(spec, hp):
        return ref.batch_gradients(spec, params, features, u, i, j, hp, rng)
    P, Q, H, E, bb, w, F, n_items = _blocks(spec, params, features)
    u, i, j = _i32(u), _i32(i), _i32(j)
    umark = np.full(P.shape[0], -1, np.int32)
    imark = np.full(max(n_items, int(max(i.max(initial=0), j.max(initial=0))) + 1), -1, np.int32)
    with _one_blas_thread():
        loss, urows, gP, gH, irows, gQ, gb, gE, gw = _batch(
            P, Q, H, E, bb, w, F, u, i, j, *_flags(spec),
            *_scalars(hp, P.dtype, spec.adversarial), umark, imark, *_workspaces(E, F, len(u)))
    uo, io = np.argsort(urows), np.argsort(irows)
    grads = {"P": (urows[uo], gP[uo])}
    if spec.separate_content_user:
        grads["H"] = (urows[uo], gH[uo])
    if spec.has_item_factors:
        grads["Q"] = (irows[io], gQ[io])
    if spec.has_content:
        grads["E"] = gE
    if spec.has_bias:
        grads["b"] = (irows[io], gb[io])
        grads["w"] = gw
    return float(loss), grads


def adagrad_update(params, accum, grads, lr, eps=1e-10):
    """Same contract as :func:`.reference.adagrad_update` (in place, row-sparse for tables)."""
    for name, grad in grads.items():
        p, a = params[name], accum[name]
        lr_, eps_ = p.dtype.type(lr), p.dtype.type(eps)
        if isinstance(grad, tuple):
            rows, g = grad
            rows = _i32(rows)
            g = np.ascontiguousarray(g, dtype=p.dtype)
            if p.ndim == 2:
                _adagrad_rows(p, a, rows, g, lr_, eps_)
            else:
                _adagrad_vec_rows(p, a, rows, g, lr_, eps_)
        else:
            g = np.ascontiguousarray(grad, dtype=p.dtype)
            _adagrad_dense(p.reshape(1, -1) if p.ndim == 1 else p,
                           a.reshape(1, -1) if a.ndim == 1 else a,
                           g.reshape(1, -1) if g.ndim == 1 else g, lr_, eps_)


def train_batch(spec, params, accum, features, u, i, j, hp, rng=None):
    """One Adagrad step on one mini-batch; returns the batch loss (before the step)."""
    loss, grads = batch_gradients(spec, params, features, u, i, j, hp, rng)
    adagrad_update(params, accum, grads, hp.lr)
    return loss


def train_epoch(spec, params, accum, features, triples, hp, rng=None):
    """One pass over ``triples`` in mini-batches of ``hp.batch_size``, in order, in one jitted
    loop. Returns the summed loss. ``rng`` feeds the random adversary only (reference path)."""
    if not _fused(spec, hp):
        return ref.train_epoch(spec, params, accum, features, triples, hp, rng)
    P, Q, H, E, bb, w, F, n_items = _blocks(spec, params, features)
    dt = P.dtype

    def acc(name, like):
        return accum[name] if name in accum else np.zeros_like(like)

    u, i, j = (_i32(a) for a in triples)
    if _plain_mf(spec):
        return float(_epoch_mf(P, Q, acc("P", P), acc("Q", Q), u, i, j, int(hp.batch_size),
                               dt.type(2 * hp.reg), float(hp.reg), dt.type(hp.lr),
                               dt.type(1e-10)))
    with _one_blas_thread():
        return float(_epoch(P, Q, H, E, bb, w, acc("P", P), acc("Q", Q), acc("H", H),
                            acc("E", E), acc("b", bb), acc("w", w), F, u, i, j, n_items,
                            int(hp.batch_size), *_flags(spec),
                            *_scalars(hp, dt, spec.adversarial), dt.type(hp.lr),
                            dt.type(1e-10)))


# ----------------------------------------------------------------------------------------------
# the adversary, explicitly (for the gradient checker) and in closed form (for tests)
# ----------------------------------------------------------------------------------------------

@njit(cache=True, fastmath=_FAST)
def _item_weights(s, u, i, j, Gu, imark):
    """``(items, V, a)``: per unique item (first-occurrence order) ``v_k = Σ ±s_b g_{u_b}`` and
    ``a_k = Σ ±s_b``."""
    B = u.shape[0]
    K = Gu.shape[1]
    idx2 = np.empty(2 * B, np.int32)
    for b in range(B):
        idx2[b] = i[b]
        idx2[B + b] = j[b]
    rows, ptr, occ = _group(idx2, imark)
    n = rows.shape[0]
    V = np.zeros((n, K), Gu.dtype)
    a = np.zeros(n, Gu.dtype)
    zero = Gu.dtype.type(0)
    for kk in prange(n):
        a[kk] = _signed_user_sum(occ, ptr[kk], ptr[kk + 1], B, s, u, Gu, V[kk], zero)
    return rows, V, a


def _v_and_a(spec, params, features, u, i, j):
    u, i, j = _i32(u), _i32(i), _i32(j)
    x = ref.triple_scores(spec, params, features, u, i, j)[0]
    s = (-sigmoid(-x)).astype(params["P"].dtype)
    Gu = params["H"] if spec.separate_content_user else params["P"]
    imark = np.full(int(max(i.max(), j.max())) + 1, -1, np.int32)
    items, V, a = _item_weights(s, u, i, j, np.ascontiguousarray(Gu), imark)
    o = np.argsort(items)
    return items[o], V[o], a[o]


def content_gradient(spec, params, features, u, i, j):
    """``(items, Γ)`` as :func:`.reference.content_gradient`, formed as ``Γ = V E + a wᵀ``."""
    items, V, a = _v_and_a(spec, params, features, u, i, j)
    gamma = V @ params["E"]
    if spec.has_bias:
        gamma = gamma + a[:, None] * params["w"][None, :]
    return items, gamma


def adversarial_closed_form(spec, params, features, u, i, j, eps):
    r"""The closed-form adversary of one batch (module docstring), for tests and docs.

    Returns ``(items, norm, EDelta, wDelta)``: sorted unique items, ``‖Γ_k‖`` from
    ``v_kᵀ G v_k + 2 a_k v_k·e + a_k² ω``, ``E Δ_k`` and ``w·Δ_k`` (zeros in the Eq. 4 form),
    never forming a D-dimensional Γ or Δ.
    """
    items, V, a = _v_and_a(spec, params, features, u, i, j)
    E = params["E"]
    G = E @ E.T
    e = E @ params["w"] if spec.has_bias else np.zeros(E.shape[0], E.dtype)
    om = float(params["w"] @ params["w"]) if spec.has_bias else 0.0
    GV = V @ G
    ve = V @ e
    n2 = np.einsum("nk,nk->n", V, GV) + 2 * a * ve + a * a * om
    norm = np.sqrt(np.maximum(n2, 0))
    gam = np.where(n2 > 0, eps / np.where(n2 > 0, norm, 1), 0)
    return items, norm, gam[:, None] * (GV + a[:, None] * e), gam * (ve + a * om)


# ----------------------------------------------------------------------------------------------
# sampling
# ----------------------------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _splitmix(state):
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def _contains(indices, lo, hi, x):
    """Binary search for ``x`` in the sorted ``indices[lo:hi]``."""
    while lo < hi:
        mid = (lo + hi) >> 1
        v = indices[mid]
        if v < x:
            lo = mid + 1
        elif v > x:
            hi = mid
        else:
            return True
    return False


@njit(cache=True, parallel=True)
def _draw_negatives(u, seeds, chunk, indptr, indices, pool, out):
    n = u.shape[0]
    npool = np.uint64(pool.shape[0])
    failed = np.zeros(seeds.shape[0], np.bool_)
    for c in prange(seeds.shape[0]):
        state = np.uint64(seeds[c])
        for t in range(c * chunk, min(n, (c + 1) * chunk)):
            lo = indptr[u[t]]
            hi = indptr[u[t] + 1]
            tries = 0
            while True:
                state, z = _splitmix(state)
                k = pool[np.int64(((z >> np.uint64(32)) * npool) >> np.uint64(32))]
                if not _contains(indices, lo, hi, k):
                    out[t] = k
                    break
                tries += 1
                if tries > 100_000:
                    failed[c] = True
                    out[t] = k
                    break
    return failed.any()


def sample_epoch(train_users, train_items, indptr, indices, negative_pool, rng):
    r"""The triples of one epoch (contract of :func:`.reference.sample_epoch`): every training
    pair once in a random order (``rng.permutation``), one negative per pair drawn uniformly from
    ``negative_pool`` and redrawn while it is in the user's sorted training row (binary search).

    Deterministic for a seed, whatever the thread count: chunks of ``SAMPLE_CHUNK`` triples each
    get a seed from ``rng`` and their own SplitMix64 stream.
    """
    order = rng.permutation(len(train_users))
    u = np.ascontiguousarray(np.asarray(train_users)[order], dtype=np.int32)
    i = np.ascontiguousarray(np.asarray(train_items)[order], dtype=np.int32)
    n_chunks = -(-len(u) // SAMPLE_CHUNK)
    seeds = rng.integers(0, 2**63 - 1, size=n_chunks, dtype=np.int64)
    j = np.empty(len(u), dtype=np.int32)
    pool = _i32(negative_pool)
    if len(u) and not len(pool):
        raise ValueError("could not draw negatives: the negative pool is empty")
    if _draw_negatives(u, seeds, SAMPLE_CHUNK, np.ascontiguousarray(indptr, dtype=np.int64),
                       _i32(indices), pool, j):
        raise ValueError("could not draw negatives: some user has interacted with (almost) every "
                         "warm item")
    return u, i, j


# ----------------------------------------------------------------------------------------------
# evaluation: rank counting, parallel over rows
# ----------------------------------------------------------------------------------------------

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
    :func:`amrlite.metrics.sampled_ranks`. ``U`` None (POP) scores by ``V`` alone."""
    users, items = _i32(users), _i32(items)
    if U is None:
        U = np.ones((int(users.max(initial=0)) + 1, 1), dtype=np.float64)
    dt = np.result_type(U.dtype, V.dtype)
    return _sampled_ranks(np.ascontiguousarray(U, dtype=dt), np.ascontiguousarray(V, dtype=dt),
                          users, items, _i32(negatives))


@njit(cache=True, parallel=True)
def _count_full(scores, items, users, indptr, indices):
    n, n_items = scores.shape
    out = np.zeros(n, np.int64)
    for r in prange(n):
        row = scores[r]
        lo = indptr[users[r]]
        hi = indptr[users[r] + 1]
        pos = row[items[r]]
        if _contains(indices, lo, hi, items[r]):
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


def full_ranks(U, V, users, items, indptr, indices, chunk=1024):
    """Rank of ``items[r]`` among every item outside user ``users[r]``'s training row, as
    :func:`amrlite.metrics.full_ranks`: the scores are one BLAS product per chunk (the same as
    there), the counting a parallel kernel that skips training items."""
    users, items = _i32(users), _i32(items)
    if U is None:
        U = np.ones((int(users.max(initial=0)) + 1, 1), dtype=np.float64)
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = _i32(indices)
    out = []
    for start in range(0, len(users), chunk):
        ub, ib = users[start:start + chunk], items[start:start + chunk]
        scores = np.ascontiguousarray(U[ub] @ V.T)
        out.append(_count_full(scores, ib, ub, indptr, indices))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
