r"""NumPy reference backend: the readable ground truth, derivations included.

Every fast backend (:mod:`amrlite.kernels.cpu`, :mod:`amrlite.kernels.gpu`) is tested against
the functions here, never the reverse. The module provides every name of the backend protocol
(:mod:`.protocol`), so it is itself the ``numpy`` backend. Nothing here is clever: one mini-batch at a time, each
gradient written out as the formula derived in its docstring (collected in
``docs/gradients.md``).

Notation (one mini-batch of B triples ``(u_b, i_b, j_b)``: user, positive item, negative item)

    x_ui  = b_i + p_u·q_i + g_u·(E c_i) + w·c_i        score, see amrlite.models
    x_b   = x_{u i} − x_{u j}
          = (b_i − b_j) + p_u·(q_i − q_j) + g_u·E(c_i − c_j) + w·(c_i − c_j)
    ℓ_b   = −log σ(x_b) = softplus(−x_b)               BPR loss of one triple
    s_b   = dℓ_b/dx_b = −σ(−x_b)                       (always in (−1, 0))
    L_BPR = Σ_b ℓ_b
    R     = β Σ_b (‖p_u‖² + ‖h_u‖² + ‖q_i‖² + ‖q_j‖² + b_i² + b_j²) + β_E (‖E‖² + ‖w‖²)

``g_u`` is ``p_u`` in the tied (Eq. 4) form and ``h_u`` in He & McAuley's form. The loss is a
*sum* over the batch (as in the official AMR code); the regulariser is charged once per triple
for the row blocks (a user who occurs twice is regularised twice) and once per batch for E, w.

AMR adds an adversary. With Δ a perturbation of the item features and x̃_b the score difference
computed with ``c + Δ`` instead of ``c``, the objective of one batch is

    L = L_BPR + λ L̃_BPR + R,        L̃_BPR = Σ_b softplus(−x̃_b),   s̃_b = −λ σ(−x̃_b),

where Δ is held constant (it is computed from the current parameters, then frozen: the model
minimises against the worst-case perturbation, it does not differentiate through it).
"""
from __future__ import annotations

import numpy as np

from .protocol import EalsState

NAME = "numpy"


# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------

def sigmoid(x):
    """σ(x) = 1/(1+e^{−x}), computed without overflow for large |x|."""
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def softplus(x):
    """softplus(x) = log(1 + e^x), stable: max(x, 0) + log1p(e^{−|x|})."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def to_device(a):
    return a


def to_host(a):
    return np.asarray(a)


def synchronize():
    """Nothing to wait for on the host."""


# ----------------------------------------------------------------------------------------------
# forward
# ----------------------------------------------------------------------------------------------

def item_content_difference(params, features, i, j, delta=None):
    r"""``E(c_i − c_j)`` for every triple (B × K), with ``c`` replaced by ``c + Δ`` when ``delta``
    (a dict item → Δ row, given as ``(items, rows)``) is set.

    Only the *difference* of the two items' features is projected: one B×D by D×K product
    instead of two.
    """
    diff = features[i] - features[j]
    if delta is not None:
        diff = diff + _delta_rows(delta, i) - _delta_rows(delta, j)
    return diff @ params["E"].T, diff


def _delta_rows(delta, items):
    """Look up Δ rows for ``items`` in ``delta = (unique_items, rows)`` (sorted unique items)."""
    unique_items, rows = delta
    return rows[np.searchsorted(unique_items, items)]


def triple_scores(spec, params, features, u, i, j, delta=None):
    r"""The score differences ``x_b = x_{u_b i_b} − x_{u_b j_b}`` of a batch, and the pieces the
    backward pass reuses: ``d = q_i − q_j`` (B×K or None), ``f = E(c_i − c_j)`` (B×K or None),
    ``diff = c_i − c_j`` (B×D or None).

        x_b = (b_i − b_j) + p_u·d_b + g_u·f_b + w·diff_b
    """
    P = params["P"]
    x = np.zeros(len(u), dtype=P.dtype)
    d = f = diff = None
    if spec.has_item_factors:
        d = params["Q"][i] - params["Q"][j]
        x += np.einsum("bk,bk->b", P[u], d)
    if spec.has_content:
        f, diff = item_content_difference(params, features, i, j, delta)
        g = params["H"][u] if spec.separate_content_user else P[u]
        x += np.einsum("bk,bk->b", g, f)
    if spec.has_bias:
        x += params["b"][i] - params["b"][j] + diff @ params["w"]
    return x, d, f, diff


def bpr_loss(spec, params, features, u, i, j, delta=None):
    """``L_BPR = Σ_b softplus(−x_b)`` (with ``c + Δ`` when ``delta`` is given)."""
    x = triple_scores(spec, params, features, u, i, j, delta)[0]
    return float(softplus(-x).sum())


def regulariser(spec, params, u, i, j, reg, reg_e):
    """``R`` of the module docstring."""
    r = 0.0
    for name, rows in (("P", u), ("H", u), ("Q", i), ("Q", j), ("b", i), ("b", j)):
        if name in params:
            r += reg * float(np.sum(params[name][rows].astype(np.float64) ** 2))
    for name in ("E", "w"):
        if name in params:
            r += reg_e * float(np.sum(params[name].astype(np.float64) ** 2))
    return r


# ----------------------------------------------------------------------------------------------
# the adversary
# ----------------------------------------------------------------------------------------------

def content_gradient(spec, params, features, u, i, j):
    r"""Γ: the gradient of the batch's BPR loss with respect to the content features.

    Returns ``(items, Gamma)``: the sorted unique items of the batch and Γ_k (len × D).

    ``c_k`` enters ``x_b`` through ``g_u·E c_k + w·c_k`` with sign +1 when k is the positive
    ``i_b`` and −1 when it is the negative ``j_b``, so ``∂x_b/∂c_k = ±(Eᵀ g_{u_b} + w)`` and

        Γ_k = ∂L_BPR/∂c_k = Σ_{b: i_b=k} s_b (Eᵀ g_{u_b} + w) − Σ_{b: j_b=k} s_b (Eᵀ g_{u_b} + w),

    summed over *every* occurrence of item k in the batch. Here Γ is formed explicitly, per
    occurrence, in D dimensions; the fast backends use its closed form ``Γ_k = Ẽᵀ ṽ_k`` and never
    form it (``docs/closed-form-adversary.md``).
    """
    x = triple_scores(spec, params, features, u, i, j)[0]
    s = -sigmoid(-x)
    g = params["H"][u] if spec.separate_content_user else params["P"][u]
    items, inverse = np.unique(np.concatenate([i, j]), return_inverse=True)
    sign = np.concatenate([s, -s])                       # ±s_b per occurrence
    per_occurrence = np.concatenate([g, g]) @ params["E"]  # (Eᵀ g_u)ᵀ rows, 2B × D
    if spec.has_bias:
        per_occurrence = per_occurrence + params["w"]
    gamma = np.zeros((len(items), features.shape[1]), dtype=per_occurrence.dtype)
    np.add.at(gamma, inverse, sign[:, None] * per_occurrence)
    return items, gamma


def adversarial_perturbation(gamma, eps, kind="grad", rng=None, xp=np):
    r"""Δ from Γ, one row per item, each of L2 norm ε (or 0).

    * ``grad`` (the paper's, Eq. 7): ``Δ_k = ε Γ_k / ‖Γ_k‖``; a row with ``‖Γ_k‖ = 0`` gets
      ``Δ_k = 0``. To first order this is the direction of steepest *ascent* of L_BPR within
      the ε-ball: L_BPR(c + Δ) ≈ L_BPR(c) + Σ_k Γ_k·Δ_k = L_BPR(c) + ε Σ_k ‖Γ_k‖ ≥ L_BPR(c).
      (Flip the sign and the perturbation *lowers* the loss: that is the bug of some ports.)
    * ``sign`` (FGSM): ``Δ_k = ε sign(Γ_k)`` (L∞ ball of radius ε).
    * ``random``: a Gaussian direction scaled to norm ε (a control: not adversarial).

    Written over the array module ``xp`` (NumPy or CuPy; ``rng`` a generator of it), so the
    GPU backend applies this very function to its Γ rows.
    """
    if kind == "grad":
        norm = xp.sqrt(xp.einsum("kd,kd->k", gamma, gamma))[:, None]
        safe = xp.where(norm > 0, norm, 1)
        return xp.where(norm > 0, eps * gamma / safe, 0).astype(gamma.dtype)
    if kind == "sign":
        return (eps * xp.sign(gamma)).astype(gamma.dtype)
    if kind == "random":
        if rng is None:
            raise ValueError("the random adversary needs an rng")
        z = rng.standard_normal(gamma.shape).astype(gamma.dtype)
        norm = xp.sqrt(xp.einsum("kd,kd->k", z, z))[:, None]
        return (eps * z / xp.where(norm > 0, norm, 1)).astype(gamma.dtype)
    raise ValueError(f"unknown adversary {kind!r}; choose grad, sign or random")


# ----------------------------------------------------------------------------------------------
# backward
# ----------------------------------------------------------------------------------------------

def batch_gradients(spec, params, features, u, i, j, hp, rng=None):
    r"""Loss and gradients of one mini-batch, row-aggregated.

    Returns ``(loss, grads)`` with ``grads[name] = (rows, G)`` for the row blocks (P, H by
    user; Q, b by item; ``rows`` unique and sorted, G summed over every occurrence) and
    ``grads[name] = G`` for the dense blocks (E, w).

    With the weights ``s_b`` (clean) and ``s̃_b`` (adversarial, zero without the adversary) and
    ``d = q_i − q_j``, ``f = E(c_i − c_j)``, ``f̃ = E(c̃_i − c̃_j)``, the chain rule on
    ``x_b`` and ``x̃_b`` gives, per triple,

        ∂/∂p_u  = (s+s̃) d + [tied form only] (s f + s̃ f̃)       + 2β p_u
        ∂/∂h_u  = s f + s̃ f̃                                      + 2β h_u
        ∂/∂q_i  = (s+s̃) p_u                                       + 2β q_i
        ∂/∂q_j  = −(s+s̃) p_u                                      + 2β q_j
        ∂/∂b_i  = (s+s̃),   ∂/∂b_j = −(s+s̃)                        + 2β b
    and per batch
        ∂/∂E    = Σ_b g_u [s (c_i − c_j) + s̃ (c̃_i − c̃_j)]ᵀ        + 2β_E E
        ∂/∂w    = Σ_b      s (c_i − c_j) + s̃ (c̃_i − c̃_j)          + 2β_E w

    (x̃ differs from x only through the content: ``q``, ``b`` and ``d`` are the same.) The
    adversarial terms are *added last*, so that with λ = 0 (s̃ = 0) every sum equals the plain
    VBPR one to the bit.
    """
    x, d, f, diff = triple_scores(spec, params, features, u, i, j)
    s = -sigmoid(-x)
    loss = float(softplus(-x).sum())
    adversarial = spec.adversarial
    if adversarial:
        items, gamma = content_gradient(spec, params, features, u, i, j)
        delta = (items, adversarial_perturbation(gamma, hp.eps, hp.adversary, rng))
        x_adv, _, f_adv, diff_adv = triple_scores(spec, params, features, u, i, j, delta)
        s_adv = (-hp.lmd * sigmoid(-x_adv)).astype(s.dtype)
        loss += hp.lmd * float(softplus(-x_adv).sum())
        s_id = s + s_adv
    else:
        s_id = s
    loss += regulariser(spec, params, u, i, j, hp.reg, hp.reg_e)

    P = params["P"]
    two_beta = 2 * hp.reg
    per_user, per_item_pos, per_item_neg, grads = {}, {}, {}, {}

    grad_p = two_beta * P[u]
    if spec.has_item_factors:
        grad_p = s_id[:, None] * d + grad_p
        Q = params["Q"]
        per_item_pos["Q"] = s_id[:, None] * P[u] + two_beta * Q[i]
        per_item_neg["Q"] = -s_id[:, None] * P[u] + two_beta * Q[j]
    if spec.has_content:
        content_term = s[:, None] * f
        if adversarial:
            content_term = content_term + s_adv[:, None] * f_adv
        if spec.separate_content_user:
            per_user["H"] = content_term + two_beta * params["H"][u]
        else:
            grad_p = grad_p + content_term
        g = params["H"][u] if spec.separate_content_user else P[u]
        weighted_diff = s[:, None] * diff
        if adversarial:
            weighted_diff = weighted_diff + s_adv[:, None] * diff_adv
        grads["E"] = g.T @ weighted_diff + 2 * hp.reg_e * params["E"]
        if spec.has_bias:
            grads["w"] = weighted_diff.sum(axis=0) + 2 * hp.reg_e * params["w"]
    if spec.has_bias:
        per_item_pos["b"] = s_id + two_beta * params["b"][i]
        per_item_neg["b"] = -s_id + two_beta * params["b"][j]
    per_user["P"] = grad_p

    for name, g_rows in per_user.items():
        grads[name] = _aggregate(u, g_rows)
    for name in per_item_pos:
        grads[name] = _aggregate(np.concatenate([i, j]),
                                 np.concatenate([per_item_pos[name], per_item_neg[name]]))
    return loss, grads


def _aggregate(index, values):
    """Sum the rows of ``values`` that share an ``index``: ``(unique_index, summed_rows)``."""
    rows, inverse = np.unique(index, return_inverse=True)
    out = np.zeros((len(rows),) + values.shape[1:], dtype=values.dtype)
    np.add.at(out, inverse, values)
    return rows, out


# ----------------------------------------------------------------------------------------------
# Adagrad
# ----------------------------------------------------------------------------------------------

def adagrad_update(params, accum, grads, lr, eps=1e-10):
    r"""Explicit Adagrad (Duchi et al. 2011), in place:

        A ← A + G ⊙ G,      θ ← θ − lr · G / (√A + eps)

    Row-sparse for the tables: only the rows in ``grads[name][0]`` change (accumulator and
    parameter), as with PyTorch's sparse Adagrad. Dense for E and w.
    """
    for name, grad in grads.items():
        if isinstance(grad, tuple):
            rows, g = grad
            acc = accum[name][rows] + g * g
            accum[name][rows] = acc
            params[name][rows] -= lr * g / (np.sqrt(acc) + eps)
        else:
            accum[name] += grad * grad
            params[name] -= lr * grad / (np.sqrt(accum[name]) + eps)


# ----------------------------------------------------------------------------------------------
# one batch, one epoch
# ----------------------------------------------------------------------------------------------

def train_batch(spec, params, accum, features, u, i, j, hp, rng=None):
    """One Adagrad step on one mini-batch; returns the batch loss (before the step)."""
    loss, grads = batch_gradients(spec, params, features, u, i, j, hp, rng)
    adagrad_update(params, accum, grads, hp.lr)
    return loss


def train_epoch(spec, params, accum, features, triples, hp, rng=None):
    """One pass over ``triples = (u, i, j)`` in mini-batches of ``hp.batch_size``, in order.

    Returns the summed loss. ``rng`` feeds the random adversary only.
    """
    u, i, j = triples
    total = 0.0
    for start in range(0, len(u), hp.batch_size):
        sl = slice(start, start + hp.batch_size)
        total += train_batch(spec, params, accum, features, u[sl], i[sl], j[sl], hp, rng)
    return total


# ----------------------------------------------------------------------------------------------
# sampling
# ----------------------------------------------------------------------------------------------

def sample_epoch(train_users, train_items, indptr, indices, negative_pool, rng):
    r"""The triples of one epoch: every training pair once, in random order, each with one
    negative drawn uniformly from ``negative_pool`` (the warm items) and redrawn while it is one
    of the user's training positives.

    Membership is tested on the sorted per-user item lists ``indices[indptr[u]:indptr[u+1]]``
    through one global ``searchsorted`` on the key ``u·n + j`` (``n`` > every item id).
    """
    order = rng.permutation(len(train_users))
    u = train_users[order].astype(np.int32)
    i = train_items[order].astype(np.int32)
    n = np.int64(max(int(negative_pool.max()) if len(negative_pool) else 0,
                     int(indices.max()) if len(indices) else 0) + 1)
    user_of = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    keys = user_of * n + indices                         # sorted: users ascending, items sorted
    j = negative_pool[rng.integers(0, len(negative_pool), size=len(u))].astype(np.int32)
    todo = np.arange(len(u))
    for _ in range(10_000):
        if not len(todo):
            break
        k = u[todo].astype(np.int64) * n + j[todo]
        pos = np.searchsorted(keys, k)
        hit = (pos < len(keys)) & (keys[np.minimum(pos, len(keys) - 1)] == k)
        todo = todo[hit]
        j[todo] = negative_pool[rng.integers(0, len(negative_pool), size=len(todo))]
    else:
        raise ValueError("could not draw negatives: some user has interacted with (almost) every "
                         "warm item")
    return u, i, j


# ----------------------------------------------------------------------------------------------
# evaluation: ranks
# ----------------------------------------------------------------------------------------------
#
# rank = the number of candidates scored at least as high as the held-out positive (ties count
# against it), so HR@N = 1[rank < N] and NDCG@N = 1[rank < N] / log2(rank + 2). Scores are
# factorised, score(u, i) = U[u]·V[i] (amrlite.models.factors); U is None for POP.

#: evaluation rows scored at once (bounds the memory of the score block)
RANK_CHUNK = 1024
#: at most this many scores in one full-ranking block (1 GiB in float32): fewer rows than
#: RANK_CHUNK per block once the catalogue has more than 262,144 items. Not much smaller: every
#: block's product packs all of V again, which costs as much as scoring ~100 rows
SCORE_BUDGET = 1 << 28


def score_rows(n_items, rows=RANK_CHUNK, budget=None):
    """Rows of one full-ranking score block: ``rows``, or fewer so that the block holds at most
    ``budget`` (default :data:`SCORE_BUDGET`) scores (memory bounded at any catalogue size; at
    least one row)."""
    budget = SCORE_BUDGET if budget is None else budget
    return max(1, min(int(rows), budget // max(int(n_items), 1)))


def _user_rows(U, users, dtype):
    """User factor rows, or a column of ones for user-independent scores (POP)."""
    if U is None:
        return np.ones((len(users), 1), dtype=dtype)
    return U[users]


def sampled_ranks(U, V, users, items, negatives):
    """Rank of ``items[r]`` among ``negatives[r]`` for each row r (host int64)."""
    chunk = RANK_CHUNK
    users, items, negatives = (np.asarray(a) for a in (users, items, negatives))
    out = np.zeros(len(users), dtype=np.int64)
    for start in range(0, len(users), chunk):
        sl = slice(start, start + chunk)
        Ur = _user_rows(U, users[sl], V.dtype)
        pos = np.einsum("rf,rf->r", Ur, V[items[sl]])
        neg = np.einsum("rf,rnf->rn", Ur, V[negatives[sl]])
        out[sl] = (neg >= pos[:, None]).sum(axis=1)
    return out


def full_ranks(U, V, users, items, indptr, indices):
    """Rank of ``items[r]`` among every item outside user ``users[r]``'s training row
    ``indices[indptr[u]:indptr[u+1]]``: training items are set to −∞ before counting, and the
    positive itself is not counted (host int64). Rows are scored in blocks of
    :func:`score_rows` rows."""
    chunk = score_rows(V.shape[0])
    users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
    out = np.zeros(len(users), dtype=np.int64)
    for start in range(0, len(users), chunk):
        ub, ib = users[start:start + chunk], items[start:start + chunk]
        scores = _user_rows(U, ub, V.dtype) @ V.T                      # rows × n_items
        mask_rows(scores, ub, indptr, indices)
        pos = scores[np.arange(len(ub)), ib]
        out[start:start + len(ub)] = (scores >= pos[:, None]).sum(axis=1) - 1
        del scores                                 # one block alive at a time, not two
    return out


def mask_rows(scores, users, indptr, indices):
    """Set ``scores[r, i] = −∞`` for every item i of user ``users[r]``'s CSR row."""
    lengths = indptr[users + 1] - indptr[users]
    row_of = np.repeat(np.arange(len(users)), lengths)
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    scores[row_of, indices[np.repeat(indptr[users], lengths) + within]] = -np.inf


def top_items(U, V, users, n, indptr, indices):
    r"""The ``n`` best items of each user ``users[r]``: ``(items int64 [rows, n], scores
    [rows, n])``, best first, by ``x_ui = U[u]·V[i]`` over every item outside the user's CSR
    row ``indices[indptr[u]:indptr[u+1]]`` (the excluded items, sorted).

    Order: score descending, ties by the lower item index (a stable sort of −x). Only scores
    ``> −∞`` are recommended (an excluded item, a NaN score never is): a row with fewer such
    items than ``n`` is padded with item −1 and score −∞."""
    users = np.asarray(users, dtype=np.int64)
    dtype = V.dtype if U is None else np.result_type(U.dtype, V.dtype)
    items = np.full((len(users), n), -1, dtype=np.int64)
    best = np.full((len(users), n), -np.inf, dtype=dtype)
    m = min(n, V.shape[0])
    chunk = score_rows(V.shape[0])
    for start in range(0, len(users), chunk):
        ub = users[start:start + chunk]
        scores = _user_rows(U, ub, V.dtype) @ V.T
        mask_rows(scores, ub, indptr, indices)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :m]
        top = np.take_along_axis(scores, order, axis=1)
        keep = top > -np.inf
        items[start:start + len(ub), :m] = np.where(keep, order, -1)
        best[start:start + len(ub), :m] = np.where(keep, top, -np.inf)
    return items, best


# ----------------------------------------------------------------------------------------------
# MF-eALS: element-wise ALS with popularity-weighted missing data (He, Zhang, Kan, Chua, SIGIR 2016)
# ----------------------------------------------------------------------------------------------
#
# Objective (r_ui = 1 for the observed pairs R, every other pair is missing and weighted c_i):
#
#     L = Σ_{(u,i)∈R} w_ui (1 − x̂_ui)²  +  Σ_u Σ_{i∉R_u} c_i x̂_ui²  +  λ (‖P‖² + ‖Q‖²),
#     x̂_ui = p_u·q_i,      c_i = c0 · f_i^α / Σ_j f_j^α     (f_i: training popularity of i).
#
# The missing-data term runs over almost every (u, i); it is rewritten through all items minus
# the observed ones, Σ_{i∉R_u} c_i x̂² = Σ_i c_i x̂² − Σ_{i∈R_u} c_i x̂², and
#
#     Σ_i c_i x̂_ui² = p_uᵀ S^q p_u,      S^q = Σ_i c_i q_i q_iᵀ   (K×K, once per user sweep),
#
# so L = Σ_R [w (1 − x̂)² − c_i x̂²] + Σ_u p_uᵀ S^q p_u + λ(‖P‖² + ‖Q‖²) costs O(|R|K + (M+N)K²).
#
# Coordinate update of p_uf (all else fixed). Write x̂^f_ui = x̂_ui − p_uf q_if (the prediction
# without factor f). L is a convex quadratic in p_uf; setting ∂L/∂p_uf = 0,
#
#     −Σ_{i∈R_u} w_ui (1 − x̂^f_ui − p_uf q_if) q_if − Σ_{i∈R_u} c_i (x̂^f_ui + p_uf q_if) q_if
#        + Σ_{k≠f} p_uk s^q_kf + p_uf s^q_ff + λ p_uf = 0
#
#     ⇒  p_uf = [Σ_{i∈R_u} (w_ui − (w_ui − c_i) x̂^f_ui) q_if − Σ_{k≠f} p_uk s^q_kf]
#               / [Σ_{i∈R_u} (w_ui − c_i) q_if² + s^q_ff + λ]                       (Eq. 12)
#
# The denominator equals Σ_{R_u} w q² + Σ_{i∉R_u} c_i q_if² + λ > 0, so it is an exact
# minimiser: no sweep can increase L. Symmetrically, with S^p = Σ_u p_u p_uᵀ (the missing weight
# c_i now multiplies the whole user sum):
#
#     q_if = [Σ_{u∈R_i} (w_ui − (w_ui − c_i) x̂^f_ui) p_uf − c_i Σ_{k≠f} q_ik s^p_kf]
#            / [Σ_{u∈R_i} (w_ui − c_i) p_uf² + c_i s^p_ff + λ]                       (Eq. 13)
#
# Prediction cache: x̂ is kept only for the observed pairs (one entry per training pair, in the
# user-major CSR order). Updating factor f of user u: x̂^f = x̂ − p_uf(old) q_if, then
# x̂ ← x̂^f + p_uf(new) q_if for i ∈ R_u; likewise for items. S^q is fixed during the user
# sweep (Q does not change) and S^p during the item sweep. One epoch = users, then items:
# O(|R|K + (M+N)K²).
#
# Users are independent given Q (and items given P), so all users' factor f can be updated at
# once: the reference below loops over f and vectorises over users (segment sums by
# ``np.bincount``), which is the same arithmetic as the per-user loops of the Numba kernel.

def eals_confidence(popularity, c0=512.0, alpha=0.4):
    """``c_i = c0 · f_i^α / Σ_j f_j^α`` (0 for items never seen in training)."""
    f = np.asarray(popularity, dtype=np.float64)
    fa = np.where(f > 0, np.power(np.maximum(f, 1e-300), alpha), 0.0)
    total = fa.sum()
    return c0 * fa / total if total > 0 else fa


def eals_predictions(P, Q, indptr, indices):
    """``x̂_ui = p_u·q_i`` for every training pair, in CSR order."""
    user_of = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    return np.einsum("nk,nk->n", P[user_of], Q[indices])


def eals_update_users(P, Q, pred, indptr, indices, w, conf, reg):
    """One sweep of Eq. 12 over every user and factor, in place on ``P`` and ``pred``."""
    n_users, K = P.shape
    user_of = np.repeat(np.arange(n_users), np.diff(indptr))
    S = (Q * conf[:, None]).T @ Q                        # S^q = Σ_i c_i q_i q_iᵀ
    cw = w - conf[indices]                               # w_ui − c_i per pair
    for f in range(K):
        q = Q[indices, f]
        pred_f = pred - P[user_of, f] * q                # x̂^f
        num = np.bincount(user_of, (w - cw * pred_f) * q, minlength=n_users)
        num -= P @ S[:, f] - P[:, f] * S[f, f]           # Σ_{k≠f} p_uk s_kf
        den = np.bincount(user_of, cw * q * q, minlength=n_users) + S[f, f] + reg
        P[:, f] = num / den
        pred[:] = pred_f + P[user_of, f] * q


def eals_update_items(P, Q, pred, indptr, indices, w, conf, reg):
    """One sweep of Eq. 13 over every item and factor, in place on ``Q`` and ``pred``."""
    n_items, K = Q.shape
    user_of = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    S = P.T @ P                                          # S^p = Σ_u p_u p_uᵀ
    cw = w - conf[indices]
    for f in range(K):
        p = P[user_of, f]
        pred_f = pred - p * Q[indices, f]
        num = np.bincount(indices, (w - cw * pred_f) * p, minlength=n_items)
        num -= conf * (Q @ S[:, f] - Q[:, f] * S[f, f])
        den = np.bincount(indices, cw * p * p, minlength=n_items) + conf * S[f, f] + reg
        Q[:, f] = num / den
        pred[:] = pred_f + p * Q[indices, f]


def eals_objective(P, Q, pred, indptr, indices, w, conf, reg):
    """``L`` of the section comment, from the prediction cache and S^q."""
    S = (Q * conf[:, None]).T @ Q
    observed = float(np.sum(w * (1.0 - pred) ** 2 - conf[indices] * pred ** 2))
    return observed + float(np.sum((P @ S) * P)) + reg * float(np.sum(P * P) + np.sum(Q * Q))


def eals_prepare(P, Q, indptr, indices, w, conf):
    """The :class:`.protocol.EalsState` of one run: float64 copies of ``P``, ``Q`` and the
    prediction cache of the training pairs (no layout: the sweeps build their segment ids)."""
    P, Q = np.array(P, dtype=np.float64), np.array(Q, dtype=np.float64)
    indptr = np.asarray(indptr, dtype=np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    return EalsState(P, Q, eals_predictions(P, Q, indptr, indices), indptr, indices,
                     np.asarray(w, dtype=np.float64), np.asarray(conf, dtype=np.float64), None)


def eals_epoch(state, reg):
    """Users, then items, in place on ``state``; returns the objective after the epoch."""
    P, Q, pred, indptr, indices, w, conf, _ = state
    eals_update_users(P, Q, pred, indptr, indices, w, conf, reg)
    eals_update_items(P, Q, pred, indptr, indices, w, conf, reg)
    return eals_objective(P, Q, pred, indptr, indices, w, conf, reg)
