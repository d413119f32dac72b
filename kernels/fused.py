r"""The GPU backend's training epoch as a handful of fused launches per batch.

Measured on the lent H200 (bench/README.md): CuPy spends 6 µs of host time to launch a
``RawKernel``, 24 µs to call cuBLAS, but 13–90 µs on each array-level operation (an
elementwise op, a fancy-index gather, ``einsum``), and an AMR batch written with array-level
operations is ~60 of them: 4.5 ms per batch, so the host, not the GPU, set the epoch's time.
This module writes the batch as at most 8 kernels and 3 cuBLAS products (AMR; VBPR 5 + 2,
MF 3), every one of them over buffers allocated once per epoch:

======  ==========================================================================================
step    what (notation of :mod:`.arraylevel`; m triples in the batch, e = K′ for AMR, else 0)
======  ==========================================================================================
1       ``gather_x``: ``X = [C_i − C_j ; Ẽ]`` ((m + e) × D): Ẽ rides along as e extra rows, so
2       one cuBLAS product ``Y = X Ẽᵀ`` gives both ``F = (C_i − C_j) Ẽᵀ`` (m × K′) and, for AMR,
        ``G̃ = Ẽ Ẽᵀ`` (its last K′ rows)
3       ``bpr_forward`` (a warp per triple): x, s = −σ(−x), the triple's loss; without an
        adversary also the row gradients and the row ``A_b = s_b z̃_b`` (else ``±s_b z̃_b``)
4       AMR: ``segment_sum`` ṽ = per-item sums of ``±s z̃``;  ``small_gemm`` ``W = Ṽ G̃``;
        ``amr_adversary`` (a warp per triple): α, ``Ẽ(Δ_i − Δ_j) = α_i W_i − α_j W_j``, ``r_b``,
        x̃, s̃, the adversarial loss, the row gradients with ``s + s̃`` and ``A_b = (s + s̃) z̃_b``;
        cuBLAS ``Mᵀ = Rᵀ(s̃ Z̃)`` written as the last K′ rows of A
5       one cuBLAS product ``∂/∂Ẽ = Aᵀ X = (s_id Z̃)ᵀ(C_i − C_j) + M Ẽ`` (the closed form's
        adversarial Ẽ-gradient rides along in the same product as VBPR's)
6       ``dense_adagrad`` on Ẽ (with ``2β_E Ẽ``), ``row_adagrad`` per row table
======  ==========================================================================================

The formulas are :func:`.arraylevel.batch_step`'s (closed-form adversary); the CPU suite runs
this driver with the kernels compiled as C++ and emulated thread by thread, against the
reference (tests/test_cuda_src.py). The ``sign`` and ``random`` adversaries need Δ itself and
run on the array-level path instead.

The per-triple kernels run ``lanes`` threads per triple (a warp; lanes over k, sums by
shuffles: thread-per-triple kernels made every warp touch 32 rows at once and ran 0.15 ms per
MF batch on the H200, mostly waiting on uncoalesced loads).

``launch(name, dtype, n_threads, *args)`` runs kernel ``name`` of :mod:`.cuda_src` (the
``dtype`` module) over ``n_threads``; ``gemm(transa, transb, a, b, out)`` writes
``op(a) op(b)`` into ``out``. Scalars are passed as ``np.int32`` (C ``int``), ``np.int64``
(``long long``) and ``np.float64`` (``double``).
"""
from __future__ import annotations

import numpy as np

from . import arraylevel as al

HAS_Q, HAS_CONTENT, HAS_H, HAS_BIAS, ADVERSARIAL = 1, 2, 4, 8, 16
ADAGRAD_EPS = 1e-10
#: threads per triple in ``bpr_forward``/``amr_adversary`` (``LANES`` in the CUDA source)
LANES = 32


def flags(spec):
    r"""The kernels' bit set for a model (``#define``\ s at the top of ``cuda_src.TRAIN``)."""
    return ((HAS_Q if spec.has_item_factors else 0) | (HAS_CONTENT if spec.has_content else 0)
            | (HAS_H if spec.separate_content_user else 0) | (HAS_BIAS if spec.has_bias else 0)
            | (ADVERSARIAL if spec.adversarial else 0))


def supports(spec, hp):
    """Whether this path trains ``spec`` under ``hp`` (the closed-form adversary or none)."""
    return spec.trains_by_bpr and (not spec.adversarial or hp.adversary == "grad")


def train_epoch(spec, params, accum, features, triples, hp, xp, launch, gemm, *,
                lanes=LANES, host_total=True):
    """One epoch over ``triples`` in batches of ``hp.batch_size``, in order, as
    :func:`.reference.train_epoch` (same math, another summation order); returns the summed
    loss (a host float: one device→host read; ``host_total=False``: the device scalar)."""
    if not supports(spec, hp):
        raise ValueError(f"the fused epoch trains BPR models with the 'grad' adversary, not "
                         f"{spec.kind} with {hp.adversary!r}")
    u, i, j = (xp.asarray(a).astype(xp.int32, copy=False) for a in triples)
    n = len(u)
    work, acc = al.augment(spec, params, xp), al.augment(spec, accum, xp)
    P = work["P"]
    dtype, K = P.dtype, P.shape[1]
    Kp = K + 1 if spec.has_bias else K
    content, adversarial = spec.has_content, spec.adversarial
    if content and features.dtype != dtype:
        raise ValueError(f"features are {features.dtype} but the parameters {dtype}: the kernels "
                         "read both as one type (cast the features once, before training)")
    D = features.shape[1] if content else 0
    B = min(hp.batch_size, n)
    e = Kp if adversarial else 0
    none = xp.zeros(1, dtype=dtype)

    def buf(*shape, when=True):
        return xp.zeros(shape, dtype=dtype) if when else none

    X, Y, A = (buf(B + e, width, when=content) for width in (D, Kp, Kp))
    G = buf(Kp, D, when=content)
    xs = buf(2 * B)                                   # x, then s (AMR)
    signed_z, V, W = (buf(2 * B, Kp, when=adversarial) for _ in range(3))
    R, A2 = (buf(B, Kp, when=adversarial) for _ in range(2))
    gP = buf(B, K)
    gH = buf(B, K, when=spec.separate_content_user)
    gQ = buf(2 * B, K, when=spec.has_item_factors)
    gb = buf(2 * B, when=spec.has_bias)
    losses = xp.zeros(n, dtype=al.LOSS_DTYPE)
    reg_e_loss = xp.zeros((), dtype=al.LOSS_DTYPE)
    Q, H, b, Et = (work.get(name, none) for name in ("Q", "H", "b", "Et"))
    C = features if content else none

    prep = al.prepare_epoch(u, i, j, hp.batch_size, xp) if n else None
    users, items = (prep["users"], prep["items"]) if n else (None, None)
    i32, i64, f64 = np.int32, np.int64, np.float64
    f, reg, lr = i32(flags(spec)), f64(hp.reg), f64(hp.lr)
    dims = (i32(K), i32(Kp))
    grads = (gP, gH, gQ, gb, A)

    def row_update(table, accum_table, grad, index, seg, block, occ_start, slots, width):
        launch("row_adagrad", dtype, slots * width, table, accum_table, grad, index,
               seg["order"], seg["heads"], seg["seg_offset"], seg["n_seg"], i32(block),
               i64(occ_start), i64(slots), i32(width), lr, f64(ADAGRAD_EPS))

    for block, start in enumerate(range(0, n, hp.batch_size)):
        m = min(hp.batch_size, n - start)
        s0, mm = i64(start), i32(m)
        if content:
            if hp.reg_e:
                reg_e_loss += hp.reg_e * xp.vdot(Et, Et).astype(al.LOSS_DTYPE)
            launch("gather_x", dtype, (m + e) * D, X, C, i, j, s0, mm, Et, i32(e), i64(D))
            gemm("N", "T", X[:m + e], Et, Y[:m + e])            # [F; G̃] = X Ẽᵀ
        launch("bpr_forward", dtype, m * lanes, f, u, i, j, s0, mm, *dims, P, Q, H, b, Y, reg,
               losses, xs, signed_z, *grads)
        if adversarial:
            launch("segment_sum", dtype, 2 * m * Kp, V, signed_z, items["order"],
                   items["heads"], items["seg_offset"], items["n_seg"], i32(block),
                   i64(2 * start), i64(2 * m), i32(Kp))                 # ṽ
            launch("small_gemm", dtype, 2 * m * Kp, V, i64(Kp), i64(1), Y[m:], i64(Kp), i64(1),
                   W, i64(Kp), i64(2 * m), i64(Kp), i32(Kp))            # W = Ṽ G̃
            launch("amr_adversary", dtype, m * lanes, f, u, i, j, s0, mm, *dims, P, Q, H, b, Y,
                   reg, V, W, items["inv"], i64(2 * start), f64(hp.eps), f64(hp.lmd), losses,
                   xs, R, A2, *grads)
            gemm("T", "N", R[:m], A2[:m], A[m:m + e])          # Mᵀ = Rᵀ (s̃ Z̃)
        if content:
            gemm("T", "N", A[:m + e], X[:m + e], G)             # ∂/∂Ẽ = Aᵀ X
            launch("dense_adagrad", dtype, Kp * D, Et, acc["Et"], G, i64(Kp * D), lr,
                   f64(ADAGRAD_EPS), f64(hp.reg_e))
        row_update(P, acc["P"], gP, u, users, block, start, m, K)
        if spec.separate_content_user:
            row_update(H, acc["H"], gH, u, users, block, start, m, K)
        if spec.has_item_factors:
            row_update(Q, acc["Q"], gQ, prep["occ"], items, block, 2 * start, 2 * m, K)
        if spec.has_bias:
            row_update(b, acc["b"], gb, prep["occ"], items, block, 2 * start, 2 * m, 1)
    al.write_back(spec, work, params)
    al.write_back(spec, acc, accum)
    total = losses.sum() + reg_e_loss
    return float(total) if host_total else total
