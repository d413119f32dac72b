r"""The batch arithmetic of amrlite written once over an array module ``xp`` (NumPy or CuPy).

:mod:`.gpu` runs these functions with ``xp = cupy`` for everything but the training epoch of the
closed-form models (that is :mod:`.fused`: the same batch as a few ``RawKernel``\ s, since each
array operation here costs CuPy 13–90 µs of host time); the CPU test suite runs them with
``xp = numpy`` against :mod:`.reference`. :func:`prepare_epoch` (the segment bookkeeping) serves
both.
Nothing here imports CuPy at module level. Everything in the per-batch path is *sync-free*:
no ``unique``, ``nonzero``, boolean compaction or ``.item()`` — every array has a size known
from the batch size alone, so CuPy can queue a whole epoch without waiting for the device.

Notation as in :mod:`.reference`. Two devices make a batch sync-free and cheap:

**Segments instead of ``unique``.** The rows a batch touches are summed per distinct row. Instead
of ``unique`` (data-dependent size: a device→host sync on CuPy) each occurrence carries ``inv``,
the index of its row among the batch's distinct rows in sorted order (``0 ≤ inv < #occurrences``).
Sums go to a buffer of one row per *occurrence* (rows past the number of distinct rows stay 0)
and are read back per occurrence, ``G[inv]``; Adagrad then writes every occurrence of a row with
the *same* value (duplicate-index writes that agree are well defined on NumPy and CuPy). The
``inv`` of every batch of an epoch come from one sort of ``(batch, row)`` keys per epoch
(:func:`prepare_epoch`), not one per batch.

**Augmented content block.** With He & McAuley's visual bias, ``w·c`` is one more row of ``E``:
``Ẽ = [E; wᵀ]`` ((K+1)×D) and ``g̃_u = [g_u, 1]``, so the E and w gradients are the two parts of
one ``∂/∂Ẽ``. (Eq. 4 form: ``Ẽ = E``, ``g̃ = g``.)

**The closed-form adversary** (``adversary="grad"``): ``Γ_k = Ẽᵀ ṽ_k``, ``‖Γ_k‖² = ṽ_kᵀ G̃ ṽ_k``,
``Ẽ Δ_k = α_k G̃ ṽ_k`` and the adversarial Ẽ-gradient ``M Ẽ`` — derived once, in this notation, in
``docs/closed-form-adversary.md``. No D-dimensional Γ or Δ is formed. The ``sign`` and ``random``
adversaries need Δ itself, so they form ``Γ = Ṽ Ẽ`` (2B×D) explicitly (:func:`batch_step`,
``closed_form``).
"""
from __future__ import annotations

import numpy as np

from . import reference
from .protocol import EalsState

#: the dtype of the per-epoch loss accumulator
LOSS_DTYPE = np.float64


# ----------------------------------------------------------------------------------------------
# the NumPy/CuPy shim
# ----------------------------------------------------------------------------------------------

def scatter_add(xp, out, index, values):
    """``out[index] += values`` with repeated indices accumulating: ``xp.add.at`` (NumPy; CuPy
    ≥ 13, which deprecates ``cupyx.scatter_add`` in 14), else ``cupyx.scatter_add``. On NumPy the
    sum runs in the order of ``values``; on CuPy it is an atomic scatter-add."""
    add_at = getattr(xp.add, "at", None)
    if add_at is not None:
        add_at(out, index, values)
    else:
        import cupyx
        cupyx.scatter_add(out, index, values)


def to_host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


def sigmoid(x, xp):
    """σ(x) with the reference's two branches (bit-identical on NumPy): ``e = exp(−|x|)``,
    ``1/(1+e)`` for x ≥ 0, ``e/(1+e)`` below."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def softplus(x, xp):
    """``log(1 + e^x) = max(x, 0) + log1p(e^{−|x|})``, as in the reference."""
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


# ----------------------------------------------------------------------------------------------
# the counter-based sampler (bit-identical twin of the device kernel in gpu.py)
# ----------------------------------------------------------------------------------------------

_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
#: the maximum number of redraws of one negative before giving up (as the reference)
MAX_TRIES = 10_000


def mix64(z, xp):
    """SplitMix64's finaliser (a bijection on uint64; wrapping arithmetic)."""
    z = z.astype(xp.uint64, copy=True)
    z ^= z >> xp.uint64(30)
    z *= xp.uint64(_M1)
    z ^= z >> xp.uint64(27)
    z *= xp.uint64(_M2)
    z ^= z >> xp.uint64(31)
    return z


def counter_hash(seed, stream, counter, xp):
    r"""A counter-based random word: ``mix64(mix64(seed ⊕ stream·φ) + (counter+1)·φ)``
    (φ = 2⁶⁴/golden ratio), i.e. draw number ``counter`` of SplitMix64 stream
    ``(seed, stream)``. Stateless, so every triple draws its own numbers in any order, on any
    device, and the NumPy twin reproduces the CUDA kernel bit for bit."""
    with np.errstate(over="ignore"):
        key = mix64(xp.asarray(np.uint64(seed) ^ (np.uint64(stream) * np.uint64(_GOLDEN)),
                               dtype=xp.uint64), xp)
        c = xp.asarray(counter).astype(xp.uint64) + xp.uint64(1)
        return mix64(key + c * xp.uint64(_GOLDEN), xp)


def draw_seed(rng):
    """The one 63-bit seed an epoch's sampling derives from the training loop's NumPy rng."""
    return int(rng.integers(0, 2 ** 63))


def permutation(n, seed, xp):
    """A uniformly random permutation of ``range(n)``: sort by hashed keys whose low bits are the
    index itself (so keys are distinct and any sort, stable or not, gives the same order)."""
    bits = max(1, int(n - 1).bit_length())
    t = xp.arange(n, dtype=xp.uint64)
    h = counter_hash(seed, 0, t, xp)
    keys = ((h >> xp.uint64(bits)) << xp.uint64(bits)) | t
    return xp.argsort(keys)


def pool_pick(h, n_pool, xp):
    """Index into a pool of ``n_pool`` from a 64-bit word: ``((h >> 32) · n_pool) >> 32``."""
    return ((h >> xp.uint64(32)) * xp.uint64(n_pool)) >> xp.uint64(32)


def sample_epoch(train_users, train_items, indptr, indices, negative_pool, seed, xp, *,
                 max_tries=MAX_TRIES):
    r"""The triples of one epoch, drawn from ``seed`` alone (same seed → same triples, on NumPy
    and on the device): the training pairs in the order of :func:`permutation`, and for the
    triple at position r the negative ``pool[pool_pick(counter_hash(seed, 1 + t, r))]`` for
    the first try t = 0, 1, … that is not one of the user's training items (binary search in the
    user's sorted CSR row). Arrays are on ``xp``; returns int32 ``(u, i, j)``.
    """
    train_users, train_items, indptr, indices, pool = (
        xp.asarray(a) for a in (train_users, train_items, indptr, indices, negative_pool))
    order = permutation(len(train_users), seed, xp)
    u = train_users[order].astype(xp.int32)
    i = train_items[order].astype(xp.int32)
    n = int(max(int(pool.max()) if len(pool) else 0,
                int(indices.max()) if len(indices) else 0)) + 1
    user_of = xp.repeat(xp.arange(len(indptr) - 1, dtype=xp.int64),
                        to_host(xp.diff(indptr)).astype(np.int64).tolist()
                        if xp is not np else np.diff(indptr))
    keys = user_of * n + indices.astype(xp.int64)
    rows = xp.arange(len(u), dtype=xp.int64)
    j = xp.empty(len(u), dtype=xp.int32)
    todo = rows
    for t in range(max_tries):
        if not len(todo):
            break
        cand = pool[pool_pick(counter_hash(seed, 1 + t, todo, xp), len(pool), xp).astype(xp.int64)]
        k = u[todo].astype(xp.int64) * n + cand
        pos = xp.searchsorted(keys, k)
        hit = (pos < len(keys)) & (keys[xp.minimum(pos, max(len(keys) - 1, 0))] == k) \
            if len(keys) else xp.zeros(len(k), dtype=bool)
        j[todo] = cand.astype(xp.int32)
        todo = todo[hit]
    else:
        if len(todo):
            raise ValueError("could not draw negatives: some user has interacted with (almost) "
                             "every warm item")
    return u, i, j


# ----------------------------------------------------------------------------------------------
# per-epoch segment bookkeeping
# ----------------------------------------------------------------------------------------------

def batch_bounds(n, batch_size):
    return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


def occurrence_layout(u, i, j, batch_size, xp):
    """Item occurrences of an epoch, batch by batch: ``[i of batch 0, j of batch 0, i of batch 1,
    …]`` (2n). Triple t of a batch starting at s with m triples puts i_t at ``2s + (t−s)`` and j_t
    at ``2s + m + (t−s)``."""
    n = len(u)
    t = xp.arange(n, dtype=xp.int64)
    start = (t // batch_size) * batch_size
    m = xp.minimum(start + batch_size, n) - start
    occ = xp.empty(2 * n, dtype=xp.int32)
    occ[2 * start + (t - start)] = i
    occ[2 * start + m + (t - start)] = j
    return occ


def segments(rows, block_size, xp):
    r"""For occurrences ``rows`` laid out in consecutive blocks of ``block_size`` (the last may be
    shorter), ``inv``: each occurrence's index among the distinct rows of its block, in sorted
    order. Also, for fused kernels, ``order`` (occurrence positions sorted by (block, row)),
    ``heads`` (global sorted position of each segment's first member, then a sentinel at the end)
    and per block ``seg_offset`` (global id of its first segment) and ``n_seg``.

    One stable sort for the whole epoch: keys ``block·(max row + 1) + row``.
    """
    n = len(rows)
    if n == 0:
        z = xp.zeros(0, dtype=xp.int32)
        return {"inv": z, "order": z, "heads": xp.zeros(1, dtype=xp.int32),
                "seg_offset": z, "n_seg": z}
    pos = xp.arange(n, dtype=xp.int64)
    block = pos // block_size
    width = int(rows.max()) + 1
    keys = block * width + rows.astype(xp.int64)
    order = xp.argsort(keys, kind="stable") if xp is np else xp.argsort(keys)   # CuPy: stable
    sk = keys[order]
    new = xp.empty(n, dtype=bool)
    new[0] = True
    new[1:] = sk[1:] != sk[:-1]
    new[pos % block_size == 0] = True            # (the block changes there: sorted by block)
    gid = xp.cumsum(new) - 1                     # global segment id of each sorted position
    first_of_block = gid[(pos // block_size) * block_size]
    inv = xp.empty(n, dtype=xp.int64)
    inv[order] = gid - first_of_block
    heads = xp.concatenate([xp.flatnonzero(new), xp.asarray([n])]).astype(xp.int32)
    starts = xp.arange(0, n, block_size)
    seg_offset = gid[starts]
    n_seg = xp.diff(xp.concatenate([seg_offset, gid[-1:] + 1]))
    return {"inv": inv.astype(xp.int32), "order": order.astype(xp.int32), "heads": heads,
            "seg_offset": seg_offset.astype(xp.int32), "n_seg": n_seg.astype(xp.int32)}


def prepare_epoch(u, i, j, batch_size, xp):
    """Everything an epoch's batches need beyond the triples, computed once: the item occurrence
    layout and the user and item segments (:func:`segments`)."""
    occ = occurrence_layout(u, i, j, batch_size, xp)
    return {"occ": occ, "users": segments(u, batch_size, xp),
            "items": segments(occ, 2 * batch_size, xp)}


# ----------------------------------------------------------------------------------------------
# working parameters: Ẽ = [E; wᵀ]
# ----------------------------------------------------------------------------------------------

def augment(spec, blocks, xp):
    """The working dict of one epoch: the row tables as they are (same arrays, updated in place)
    and ``Et`` = Ẽ (a new array; write it back with :func:`write_back`)."""
    work = {k: v for k, v in blocks.items() if k not in ("E", "w")}
    if spec.has_content:
        work["Et"] = (xp.concatenate([blocks["E"], blocks["w"][None, :]])
                      if spec.has_bias else blocks["E"].copy())
    return work


def write_back(spec, work, blocks):
    if spec.has_content:
        K = blocks["E"].shape[0]
        blocks["E"][...] = work["Et"][:K]
        if spec.has_bias:
            blocks["w"][...] = work["Et"][K]


# ----------------------------------------------------------------------------------------------
# one batch
# ----------------------------------------------------------------------------------------------

def perturb(gamma, eps, kind, xp, rng=None):
    """Δ from Γ (rows): :func:`.reference.adversarial_perturbation` on ``xp``. ``rng`` for
    ``random`` is a generator of ``xp`` (``numpy.random.Generator`` or CuPy's)."""
    return reference.adversarial_perturbation(gamma, eps, kind, rng, xp=xp)


def _per_occurrence_sum(xp, inv, values):
    """``S[inv]`` with ``S[q] = Σ_{o: inv[o]=q} values[o]`` (the segment sum, read back per
    occurrence); buffer of one row per occurrence."""
    seg = xp.zeros(values.shape, dtype=values.dtype)
    scatter_add(xp, seg, inv, values)
    return seg[inv], seg


def batch_step(spec, work, features, u, i, j, inv_u, inv_o, hp, xp, *, rng=None,
               closed_form=True, delta=None):
    r"""Loss (device scalar, working dtype) and gradients of one batch, sync-free.

    ``work`` holds P, Q, H, b and ``Et`` (Ẽ); ``inv_u`` (B) and ``inv_o`` (2B: positives then
    negatives) are the batch's segment indices (:func:`segments`). Returns ``(loss, grads)``,
    ``grads = {"rows": {name: (index per occurrence, summed gradient per occurrence)},
    "Et": ∂/∂Ẽ}``. ``delta = (items, rows)`` injects a given Δ (sorted unique items) instead of
    the adversary's; ``closed_form=False`` forms Γ and Δ explicitly for ``grad`` too.

    The formulas are :func:`.reference.batch_gradients`'s, with Ẽ, g̃ and the closed form of the
    module docstring; with λ = 0 every adversarial term is an exact zero and the result equals
    VBPR's bit for bit.

    (:mod:`.fused` runs the same batch as a few CUDA kernels.)
    """
    B = len(u)

    def summed(inv, values):
        return _per_occurrence_sum(xp, inv, values)[0]

    P = work["P"]
    dtype = P.dtype
    Pu = P[u]
    x = xp.zeros(B, dtype=dtype)
    if spec.has_item_factors:
        Qi, Qj = work["Q"][i], work["Q"][j]
        d = Qi - Qj
        x += xp.einsum("bk,bk->b", Pu, d)
    if spec.has_content:
        Et = work["Et"]
        K = P.shape[1]
        Hu = work["H"][u] if spec.separate_content_user else None
        g = Hu if spec.separate_content_user else Pu
        Z = xp.concatenate([g, xp.ones((B, 1), dtype=dtype)], axis=1) if spec.has_bias else g
        diff = features[i] - features[j]
        F = diff @ Et.T                                               # B × K′
        x += xp.einsum("bk,bk->b", Z, F)
        if spec.has_bias:
            x += work["b"][i] - work["b"][j]
    s = -sigmoid(-x, xp)
    loss = softplus(-x, xp).sum()

    adversarial = spec.adversarial
    if adversarial:
        inv_i, inv_j = inv_o[:B], inv_o[B:]
        signed = xp.concatenate([s, -s])[:, None] * xp.concatenate([Z, Z])
        V = _per_occurrence_sum(xp, inv_o, signed)[1]                  # ṽ per segment, 2B × K′
        if delta is None and closed_form and hp.adversary == "grad":
            Gt = Et @ Et.T                                            # G̃ = Ẽ Ẽᵀ
            W = V @ Gt                                                # G̃ ṽ
            n2 = xp.maximum(xp.einsum("qk,qk->q", V, W), 0)           # ‖Γ‖²
            alpha = xp.where(n2 > 0, hp.eps / xp.sqrt(xp.where(n2 > 0, n2, 1)), 0).astype(dtype)
            dF = alpha[inv_i, None] * W[inv_i] - alpha[inv_j, None] * W[inv_j]   # Ẽ(Δ_i − Δ_j)
            r = alpha[inv_i, None] * V[inv_i] - alpha[inv_j, None] * V[inv_j]
            delta_diff = None
        else:
            if delta is None:
                Delta = perturb(V @ Et, hp.eps, hp.adversary, xp, rng)    # per segment
                delta_diff = Delta[inv_i] - Delta[inv_j]
            else:
                items, rows = (xp.asarray(a) for a in delta)
                delta_diff = rows[xp.searchsorted(items, i)] - rows[xp.searchsorted(items, j)]
            delta_diff = delta_diff.astype(dtype)
            dF = delta_diff @ Et.T
        x_adv = x + xp.einsum("bk,bk->b", Z, dF)
        s_adv = (-hp.lmd * sigmoid(-x_adv, xp)).astype(dtype)
        loss = loss + hp.lmd * softplus(-x_adv, xp).sum()
        s_id = s + s_adv
    else:
        s_id = s

    # regulariser (once per triple for the rows, once per batch for Ẽ)
    reg_rows = xp.einsum("bk,bk->", Pu, Pu)
    if spec.separate_content_user:
        reg_rows = reg_rows + xp.einsum("bk,bk->", Hu, Hu)
    if spec.has_item_factors:
        reg_rows = reg_rows + xp.einsum("bk,bk->", Qi, Qi) + xp.einsum("bk,bk->", Qj, Qj)
    if spec.has_bias:
        bi, bj = work["b"][i], work["b"][j]
        reg_rows = reg_rows + (bi * bi).sum() + (bj * bj).sum()
    loss = loss + hp.reg * reg_rows
    if spec.has_content and hp.reg_e:
        loss = loss + hp.reg_e * xp.einsum("kd,kd->", Et, Et)

    two_beta = 2 * hp.reg
    rows = {}
    grad_p = two_beta * Pu
    if spec.has_item_factors:
        grad_p = s_id[:, None] * d + grad_p
        g_q = xp.concatenate([s_id[:, None] * Pu + two_beta * Qi,
                              -s_id[:, None] * Pu + two_beta * Qj])
    if spec.has_content:
        Fk = F[:, :K]
        content_term = s[:, None] * Fk
        if adversarial:
            content_term = content_term + s_adv[:, None] * (Fk + dF[:, :K])
        if spec.separate_content_user:
            rows["H"] = (u, summed(inv_u, content_term + two_beta * Hu))
        else:
            grad_p = grad_p + content_term
        g_et = (s_id[:, None] * Z).T @ diff                           # K′ × D
        if adversarial:
            if delta_diff is None:
                g_et = g_et + ((s_adv[:, None] * Z).T @ r) @ Et       # M Ẽ
            else:
                g_et = g_et + (s_adv[:, None] * Z).T @ delta_diff
        g_et = g_et + 2 * hp.reg_e * Et
    rows["P"] = (u, summed(inv_u, grad_p))
    occ = xp.concatenate([i, j])
    if spec.has_item_factors:
        rows["Q"] = (occ, summed(inv_o, g_q))
    if spec.has_bias:
        g_b = xp.concatenate([s_id + two_beta * work["b"][i], -s_id + two_beta * work["b"][j]])
        rows["b"] = (occ, summed(inv_o, g_b))
    grads = {"rows": rows}
    if spec.has_content:
        grads["Et"] = g_et
    return loss, grads


def adagrad(work, accum, grads, lr, xp, eps=1e-10):
    """Adagrad on the working dict: row tables through their per-occurrence sums (every
    occurrence of a row writes the same value), Ẽ dense."""
    for name, (index, g) in grads["rows"].items():
        acc = accum[name][index] + g * g
        accum[name][index] = acc
        table = work[name]
        table[index] = table[index] - lr * g / (xp.sqrt(acc) + eps)
    if "Et" in grads:
        g = grads["Et"]
        accum["Et"] += g * g
        work["Et"] -= lr * g / (xp.sqrt(accum["Et"]) + eps)


def make_rng(rng, xp):
    """A generator on ``xp`` for the random adversary, seeded from the loop's NumPy rng."""
    if rng is None or xp is np:
        return rng
    return xp.random.default_rng(draw_seed(rng))


def train_epoch(spec, params, accum, features, triples, hp, rng, xp, *, prep=None,
                closed_form=True, host_total=True):
    """One epoch (batches in order, as the reference); returns the summed loss (host float; the
    loss stays on the device until the end of the epoch; ``host_total=False`` returns it as a
    device scalar, so that a benchmark can time the host's issuing apart from the device)."""
    u, i, j = (xp.asarray(a) for a in triples)
    if prep is None:
        prep = prepare_epoch(u, i, j, hp.batch_size, xp)
    work, acc = augment(spec, params, xp), augment(spec, accum, xp)
    arng = make_rng(rng, xp)
    total = xp.zeros((), dtype=LOSS_DTYPE)
    inv_u, inv_o = prep["users"]["inv"], prep["items"]["inv"]
    for start, stop in batch_bounds(len(u), hp.batch_size):
        loss, grads = batch_step(spec, work, features, u[start:stop], i[start:stop],
                                 j[start:stop], inv_u[start:stop],
                                 inv_o[2 * start:2 * stop], hp, xp, rng=arng,
                                 closed_form=closed_form)
        total += loss.astype(LOSS_DTYPE)
        adagrad(work, acc, grads, hp.lr, xp)
    write_back(spec, work, params)
    write_back(spec, acc, accum)
    return float(total) if host_total else total


# ----------------------------------------------------------------------------------------------
# the reference's protocol, on xp
# ----------------------------------------------------------------------------------------------

def _single_batch(u, i, j, xp):
    B = len(u)
    seg_u = segments(xp.asarray(u), max(B, 1), xp)
    seg_o = segments(xp.concatenate([xp.asarray(i), xp.asarray(j)]), max(2 * B, 1), xp)
    return seg_u["inv"], seg_o["inv"]


def _unique_rows(index, g, xp):
    """Per-occurrence sums → the reference's ``(sorted unique rows, summed rows)``."""
    rows, first = xp.unique(index, return_index=True)
    return rows, g[first]


def batch_gradients(spec, params, features, u, i, j, hp, rng=None, xp=np, *, closed_form=True,
                    delta=None):
    """:func:`.reference.batch_gradients` on ``xp``: ``(loss, grads)`` in the reference's format
    (row blocks as sorted unique rows with summed gradients; E, w dense)."""
    u, i, j = (xp.asarray(a) for a in (u, i, j))
    inv_u, inv_o = _single_batch(u, i, j, xp)
    work = augment(spec, params, xp)
    loss, g = batch_step(spec, work, features, u, i, j, inv_u, inv_o, hp, xp,
                         rng=make_rng(rng, xp), closed_form=closed_form, delta=delta)
    grads = {name: _unique_rows(index, rows, xp) for name, (index, rows) in g["rows"].items()}
    if spec.has_content:
        K = params["P"].shape[1]
        grads["E"] = g["Et"][:K]
        if spec.has_bias:
            grads["w"] = g["Et"][K]
    return float(loss), grads


def content_gradient(spec, params, features, u, i, j, xp=np):
    """:func:`.reference.content_gradient` on ``xp``: ``(sorted unique items, Γ)``, Γ = Ṽ Ẽ."""
    u, i, j = (xp.asarray(a) for a in (u, i, j))
    B = len(u)
    work = augment(spec, params, xp)
    P = work["P"]
    x = xp.zeros(B, dtype=P.dtype)
    if spec.has_item_factors:
        x += xp.einsum("bk,bk->b", P[u], work["Q"][i] - work["Q"][j])
    g = work["H"][u] if spec.separate_content_user else P[u]
    Z = xp.concatenate([g, xp.ones((B, 1), dtype=g.dtype)], axis=1) if spec.has_bias else g
    F = (features[i] - features[j]) @ work["Et"].T
    x += xp.einsum("bk,bk->b", Z, F)
    if spec.has_bias:
        x += work["b"][i] - work["b"][j]
    s = -sigmoid(-x, xp)
    occ = xp.concatenate([i, j])
    items, inv = xp.unique(occ, return_inverse=True)
    V = xp.zeros((len(items), Z.shape[1]), dtype=Z.dtype)
    scatter_add(xp, V, inv.reshape(-1), xp.concatenate([s, -s])[:, None] * xp.concatenate([Z, Z]))
    return items, V @ work["Et"]


def adversarial_perturbation(gamma, eps, kind="grad", rng=None, xp=np):
    return perturb(gamma, eps, kind, xp, make_rng(rng, xp))


def adagrad_update(params, accum, grads, lr, xp=np, eps=1e-10):
    """:func:`.reference.adagrad_update` (reference-format grads: unique rows) on ``xp``."""
    for name, grad in grads.items():
        if isinstance(grad, tuple):
            rows, g = grad
            acc = accum[name][rows] + g * g
            accum[name][rows] = acc
            params[name][rows] = params[name][rows] - lr * g / (xp.sqrt(acc) + eps)
        else:
            accum[name] += grad * grad
            params[name] -= lr * grad / (xp.sqrt(accum[name]) + eps)


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------

def training_mask(users, indptr, indices):
    """Host-side, once per evaluation: ``(row_of, cols, offsets)`` — for evaluation row r the
    training items of ``users[r]``, flattened, with ``offsets[r]`` where row r's start."""
    users = np.asarray(users, dtype=np.int64)
    starts, stops = indptr[users], indptr[users + 1]
    lengths = (stops - starts).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    row_of = np.repeat(np.arange(len(users), dtype=np.int64), lengths)
    within = np.arange(offsets[-1], dtype=np.int64) - offsets[:-1].repeat(lengths)
    cols = np.asarray(indices)[starts.repeat(lengths) + within] if len(row_of) else \
        np.zeros(0, dtype=np.int64)
    return row_of, cols.astype(np.int64), offsets


def count_at_least(scores, pos, xp):
    """Per row of ``scores``, how many entries are ≥ ``pos[row]``."""
    return (scores >= pos[:, None]).sum(axis=1)


def full_ranks(U, V, users, items, indptr, indices, xp=np, chunk=2048, count=count_at_least):
    """:func:`.reference.full_ranks` with the training mask built once on the host and
    moved to ``xp`` once (no per-chunk host work): rank of ``items[r]`` among all items outside
    the user's training set, ties against the positive, ``chunk`` rows at a time (fewer past
    :data:`.reference.SCORE_BUDGET` scores per block). Returns host int64 ranks.
    ``count(scores, pos, xp)`` counts per row (the GPU backend passes a one-launch kernel)."""
    users_h = np.asarray(to_host(users), dtype=np.int64)
    items_h = np.asarray(to_host(items), dtype=np.int64)
    row_of, cols, offsets = training_mask(users_h, indptr, indices)
    row_of_d, cols_d = xp.asarray(row_of), xp.asarray(cols)
    users_d, items_d = xp.asarray(users_h), xp.asarray(items_h)
    chunk = reference.score_rows(V.shape[0], chunk)
    ranks = []
    for start in range(0, len(users_h), chunk):
        stop = min(start + chunk, len(users_h))
        Ur = U[users_d[start:stop]] if U is not None else xp.ones((stop - start, 1), V.dtype)
        scores = Ur @ V.T
        a, b = int(offsets[start]), int(offsets[stop])
        scores[row_of_d[a:b] - start, cols_d[a:b]] = -xp.inf
        pos = scores[xp.arange(stop - start), items_d[start:stop]]
        ranks.append(count(scores, pos, xp).astype(xp.int64) - 1)
        del scores                                 # one block alive at a time, not two
    out = xp.concatenate(ranks) if ranks else xp.zeros(0, dtype=xp.int64)
    return np.asarray(to_host(out), dtype=np.int64)


def top_items(U, V, users, n, indptr, indices, xp=np, chunk=1024):
    """:func:`.reference.top_items` on ``xp`` (host arrays out): per chunk of users (fewer past
    :data:`.reference.SCORE_BUDGET` scores per block) one score product, the excluded items set
    to −∞, a stable sort of −x per row. ``+ 0`` first turns −0.0 into +0.0, so a sort that
    orders by bits (a radix sort) still sees them as a tie."""
    users_h = np.asarray(to_host(users), dtype=np.int64)
    row_of, cols, offsets = training_mask(users_h, indptr, indices)
    row_of_d, cols_d, users_d = xp.asarray(row_of), xp.asarray(cols), xp.asarray(users_h)
    dtype = V.dtype if U is None else xp.result_type(U.dtype, V.dtype)
    items = np.full((len(users_h), n), -1, dtype=np.int64)
    best = np.full((len(users_h), n), -np.inf, dtype=dtype)
    m = min(n, V.shape[0])
    chunk = reference.score_rows(V.shape[0], chunk)
    for start in range(0, len(users_h), chunk):
        stop = min(start + chunk, len(users_h))
        Ur = U[users_d[start:stop]] if U is not None else xp.ones((stop - start, 1), V.dtype)
        scores = Ur @ V.T + 0
        a, b = int(offsets[start]), int(offsets[stop])
        scores[row_of_d[a:b] - start, cols_d[a:b]] = -xp.inf
        order = xp.argsort(-scores, axis=1, kind="stable")[:, :m]
        top = xp.take_along_axis(scores, order, axis=1)
        keep = top > -xp.inf
        items[start:stop, :m] = to_host(xp.where(keep, order, -1))
        best[start:stop, :m] = to_host(xp.where(keep, top, -xp.inf))
    return items, best


def sampled_ranks(U, V, users, items, negatives, xp=np, chunk=4096):
    """:func:`.reference.sampled_ranks` on ``xp`` (host int64 ranks)."""
    users, items, negatives = (xp.asarray(a) for a in (users, items, negatives))
    ranks = []
    for start in range(0, len(users), chunk):
        sl = slice(start, start + chunk)
        Ur = U[users[sl]] if U is not None else xp.ones((len(users[sl]), 1), V.dtype)
        pos = xp.einsum("rf,rf->r", Ur, V[items[sl]])
        neg = xp.einsum("rf,rnf->rn", Ur, V[negatives[sl]])
        ranks.append((neg >= pos[:, None]).sum(axis=1).astype(xp.int64))
    out = xp.concatenate(ranks) if ranks else xp.zeros(0, dtype=xp.int64)
    return np.asarray(to_host(out), dtype=np.int64)


# ----------------------------------------------------------------------------------------------
# MF-eALS (He, Zhang, Kan, Chua, SIGIR 2016): the element-wise ALS epoch over ``xp``
# ----------------------------------------------------------------------------------------------
#
# The math, and the loop order, are :mod:`.reference`'s (``eals_*``; Eq. 12/13 derived in the
# comment above them): for each factor f in turn, p_uf for ALL users at once, then q_if for all
# items. That is the same element-wise coordinate descent as the Numba kernel's "each user
# cycles through its factors": p_uf depends only on Q, S^q (fixed during the user sweep), the
# user's own other factors (already updated for g < f, old for g > f — in both orders) and the
# prediction cache of the user's own pairs; no other user enters. Items likewise with P, S^p.
#
# Segment sums over a user's (item's) training pairs are ``xp.bincount(row_id, weights)`` with
# the pair → user ids precomputed once (:func:`eals_layout`); on NumPy this sums in pair order
# exactly as the reference does (bit-identical results), on CuPy it is an atomic scatter-add
# (the order of the float additions may vary from run to run, at the rounding level). No
# per-user Python loop: a sweep is K rounds of ~12 whole-array operations, and nothing waits for
# the device except the objective (one host read per epoch).

def eals_layout(indptr, indices, xp=np):
    """Pair → user ids (``user_of``, CSR order) on ``xp``, built on the host once per run."""
    indptr = np.asarray(to_host(indptr), dtype=np.int64)
    user_of = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    return {"user_of": xp.asarray(user_of), "n_users": len(indptr) - 1}


def _eals_layout(layout, indptr, indices, xp):
    return layout if layout is not None else eals_layout(indptr, indices, xp)


def eals_predictions(P, Q, indptr, indices, xp=np, layout=None):
    """``x̂_ui = p_u·q_i`` for every training pair, in CSR order."""
    user_of = _eals_layout(layout, indptr, indices, xp)["user_of"]
    return xp.einsum("nk,nk->n", P[user_of], Q[indices])


def eals_update_users(P, Q, pred, indptr, indices, w, conf, reg, xp=np, layout=None):
    """Eq. 12 for every user, factor by factor (all users of factor f at once), in place on
    ``P`` and ``pred``."""
    lay = _eals_layout(layout, indptr, indices, xp)
    user_of, n_users = lay["user_of"], lay["n_users"]
    K = P.shape[1]
    S = (Q * conf[:, None]).T @ Q                        # S^q = Σ_i c_i q_i q_iᵀ
    cw = w - conf[indices]                               # w_ui − c_i per pair
    for f in range(K):
        q = Q[indices, f]
        pred_f = pred - P[user_of, f] * q                # x̂^f
        num = xp.bincount(user_of, weights=(w - cw * pred_f) * q, minlength=n_users)
        num -= P @ S[:, f] - P[:, f] * S[f, f]           # Σ_{k≠f} p_uk s_kf
        den = xp.bincount(user_of, weights=cw * q * q, minlength=n_users) + S[f, f] + reg
        P[:, f] = num / den
        pred[:] = pred_f + P[user_of, f] * q


def eals_update_items(P, Q, pred, indptr, indices, w, conf, reg, xp=np, layout=None):
    """Eq. 13 for every item, factor by factor (all items of factor f at once), in place on
    ``Q`` and ``pred`` (which stays in the user-major CSR order)."""
    user_of = _eals_layout(layout, indptr, indices, xp)["user_of"]
    n_items, K = Q.shape
    S = P.T @ P                                          # S^p = Σ_u p_u p_uᵀ
    cw = w - conf[indices]
    for f in range(K):
        p = P[user_of, f]
        pred_f = pred - p * Q[indices, f]
        num = xp.bincount(indices, weights=(w - cw * pred_f) * p, minlength=n_items)
        num -= conf * (Q @ S[:, f] - Q[:, f] * S[f, f])
        den = xp.bincount(indices, weights=cw * p * p, minlength=n_items) + conf * S[f, f] + reg
        Q[:, f] = num / den
        pred[:] = pred_f + p * Q[indices, f]


def eals_objective(P, Q, pred, indptr, indices, w, conf, reg, xp=np):
    """The eALS objective ``L`` from the prediction cache and S^q (a host float: one read)."""
    S = (Q * conf[:, None]).T @ Q
    parts = xp.stack([xp.sum(w * (1.0 - pred) ** 2 - conf[indices] * pred ** 2),
                      xp.sum((P @ S) * P), xp.sum(P * P) + xp.sum(Q * Q)])
    observed, missing, norms = (float(x) for x in to_host(parts))
    return observed + missing + reg * norms


def eals_prepare(P, Q, indptr, indices, w, conf, xp=np):
    """:func:`.reference.eals_prepare` on ``xp``: the run's arrays on the device, the pair →
    user ids as its layout, and the prediction cache."""
    lay = eals_layout(indptr, indices, xp)
    P, Q = (xp.array(to_host(m), dtype=xp.float64) for m in (P, Q))
    indptr, indices, w, conf = (xp.asarray(to_host(v), dtype=dt) for v, dt in (
        (indptr, xp.int64), (indices, xp.int64), (w, xp.float64), (conf, xp.float64)))
    return EalsState(P, Q, eals_predictions(P, Q, indptr, indices, xp, lay), indptr, indices, w,
                     conf, lay)


def eals_epoch(state, reg, xp=np):
    """Users, then items, in place on ``state``; returns the objective (one host read)."""
    P, Q, pred, indptr, indices, w, conf, lay = state
    eals_update_users(P, Q, pred, indptr, indices, w, conf, reg, xp, lay)
    eals_update_items(P, Q, pred, indptr, indices, w, conf, reg, xp, lay)
    return eals_objective(P, Q, pred, indptr, indices, w, conf, reg, xp)
