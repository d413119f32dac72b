"""What is specific to MF-eALS on the array level (kernels/arraylevel.py, the GPU backend's path)
run with NumPy; its epochs' parity with the reference (bit for bit on NumPy) and ``Model.fit``
through it are tests/test_parity.py's.

The array-level sweep updates factor f of every user (item) at once — the reference's loop
order — and it also runs without a precomputed layout, one sweep at a time. The Numba kernel
instead lets each user cycle through its factors; that order is the same coordinate descent
(p_uf sees only Q, S^q and the user's own factors), checked here against a plain per-user
Python loop to rel. 1e-12 (float64 rounding). The objective never increases (slack 1e-12
relative per sweep).
"""
import numpy as np

from amrlite.kernels import arraylevel as al
from amrlite.kernels import reference as ref
from cases import eals_problem


def test_arraylevel_without_layout_and_separate_sweeps():
    split, indptr, indices, P, Q, conf, w = eals_problem(seed=4, dim=5)
    P2, Q2 = P.copy(), Q.copy()
    pred = ref.eals_predictions(P, Q, indptr, indices)
    pred2 = al.eals_predictions(P2, Q2, indptr, indices)
    for ref_sweep, al_sweep in [(ref.eals_update_users, al.eals_update_users),
                                (ref.eals_update_items, al.eals_update_items)] * 2:
        ref_sweep(P, Q, pred, indptr, indices, w, conf, 0.05)
        al_sweep(P2, Q2, pred2, indptr, indices, w, conf, 0.05)
        np.testing.assert_array_equal(P2, P)
        np.testing.assert_array_equal(Q2, Q)
        np.testing.assert_array_equal(pred2, pred)
    assert al.eals_objective(P2, Q2, pred2, indptr, indices, w, conf, 0.05) == \
        ref.eals_objective(P, Q, pred, indptr, indices, w, conf, 0.05)
    # the cache is what it claims to be
    np.testing.assert_allclose(pred2, ref.eals_predictions(P2, Q2, indptr, indices),
                               rtol=0, atol=1e-12)


def _per_user_sweep(P, Q, indptr, indices, w, conf, reg):
    """Eq. 12, one user at a time, each user cycling through its factors (the Numba order),
    prediction recomputed from scratch: no cache, no vectorisation."""
    S = (Q * conf[:, None]).T @ Q
    K = P.shape[1]
    for u in range(P.shape[0]):
        items = indices[indptr[u]:indptr[u + 1]]
        wu = w[indptr[u]:indptr[u + 1]]
        for f in range(K):
            q = Q[items, f]
            pred_f = Q[items] @ P[u] - P[u, f] * q
            cw = wu - conf[items]
            num = np.sum((wu - cw * pred_f) * q) - (P[u] @ S[:, f] - P[u, f] * S[f, f])
            P[u, f] = num / (np.sum(cw * q * q) + S[f, f] + reg)


def test_factor_parallel_order_equals_per_user_order():
    split, indptr, indices, P, Q, conf, w = eals_problem(seed=5, dim=6)
    P2 = P.copy()
    pred = al.eals_predictions(P, Q, indptr, indices)
    al.eals_update_users(P, Q, pred, indptr, indices, w, conf, 0.1)
    _per_user_sweep(P2, Q, indptr, indices, w, conf, 0.1)
    np.testing.assert_allclose(P, P2, rtol=1e-12, atol=1e-14)


def test_arraylevel_objective_never_increases():
    split, indptr, indices, P, Q, conf, w = eals_problem(seed=6, dim=5)
    reg = 0.05
    layout = al.eals_layout(indptr, indices, np)
    pred = al.eals_predictions(P, Q, indptr, indices, np, layout)
    last = al.eals_objective(P, Q, pred, indptr, indices, w, conf, reg)
    for _ in range(6):
        for sweep in (al.eals_update_users, al.eals_update_items):
            sweep(P, Q, pred, indptr, indices, w, conf, reg, np, layout)
            now = al.eals_objective(P, Q, pred, indptr, indices, w, conf, reg)
            assert now <= last + 1e-12 * abs(last)
            last = now
