"""MF-eALS on the array level (kernels/arraylevel.py, the GPU backend's path) run with NumPy,
against the NumPy reference.

The array-level sweep updates factor f of every user (item) at once — the reference's loop
order — so on NumPy it equals the reference bit for bit (``assert_array_equal``; it also sums
each segment in the same pair order through ``bincount``). The Numba kernel instead lets each
user cycle through its factors; that order is the same coordinate descent (p_uf sees only Q,
S^q and the user's own factors), checked here against a plain per-user Python loop to rel. 1e-12
(float64 rounding). The objective never increases (slack 1e-12 relative per sweep).
"""
import numpy as np
import pytest

import amrlite
from amrlite import Model
from amrlite.eals import _kernels
from amrlite.kernels import arraylevel as al
from amrlite.kernels import reference as ref
from helpers import random_split

BACKEND = al.make_backend(np, "numpy-arraylevel")


def _problem(seed=0, dim=4, n_users=25, n_items=40, per_user=7):
    split, _ = random_split(n_users=n_users, n_items=n_items, per_user=per_user, seed=seed,
                            cold=3)
    return _arrays(split, seed, dim, c0=30.0, alpha=0.5, random_w=True)


def _arrays(split, seed, dim, c0=512.0, alpha=0.4, random_w=False):
    indptr, indices = split.train_csr
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    rng = np.random.default_rng(seed)
    P = rng.standard_normal((split.n_users, dim)) * 0.3
    Q = rng.standard_normal((split.n_items, dim)) * 0.3
    conf = ref.eals_confidence(np.bincount(split.train_items, minlength=split.n_items), c0, alpha)
    w = 1.0 + rng.random(len(indices)) if random_w else np.ones(len(indices))
    return split, indptr, indices, P, Q, conf, w


def _run_both(split, indptr, indices, P, Q, conf, w, reg, epochs):
    P2, Q2 = P.copy(), Q.copy()
    pred = ref.eals_predictions(P, Q, indptr, indices)
    layout = al.eals_layout(indptr, indices, np)
    pred2 = al.eals_predictions(P2, Q2, indptr, indices, np, layout)
    np.testing.assert_array_equal(pred2, pred)
    for _ in range(epochs):
        l1 = ref.eals_epoch(P, Q, pred, indptr, indices, w, conf, reg)
        l2 = al.eals_epoch(P2, Q2, pred2, indptr, indices, w, conf, reg, np, layout)
        np.testing.assert_array_equal(P2, P)
        np.testing.assert_array_equal(Q2, Q)
        np.testing.assert_array_equal(pred2, pred)
        assert l2 == l1
    # the cache is what it claims to be
    np.testing.assert_allclose(pred2, ref.eals_predictions(P2, Q2, indptr, indices),
                               rtol=0, atol=1e-12)
    return P2, Q2


@pytest.mark.parametrize("seed,dim", [(0, 4), (1, 7), (2, 1)])
def test_arraylevel_epoch_equals_reference_small(seed, dim):
    _run_both(*_problem(seed, dim), reg=0.1, epochs=4)


def test_arraylevel_epoch_equals_reference_on_synthetic():
    ds = amrlite.load_dataset()
    split = ds.split("loo")
    _run_both(*_arrays(split, 3, 16), reg=1.0, epochs=3)


def test_arraylevel_without_layout_and_separate_sweeps():
    split, indptr, indices, P, Q, conf, w = _problem(seed=4, dim=5)
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
    split, indptr, indices, P, Q, conf, w = _problem(seed=5, dim=6)
    P2 = P.copy()
    pred = al.eals_predictions(P, Q, indptr, indices)
    al.eals_update_users(P, Q, pred, indptr, indices, w, conf, 0.1)
    _per_user_sweep(P2, Q, indptr, indices, w, conf, 0.1)
    np.testing.assert_allclose(P, P2, rtol=1e-12, atol=1e-14)


def test_arraylevel_objective_never_increases():
    split, indptr, indices, P, Q, conf, w = _problem(seed=6, dim=5)
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


def test_kernels_pick():
    assert _kernels(BACKEND)[0] is BACKEND
    fake_numpy = type("Backend", (), {"NAME": "numpy", "xp": np})
    assert _kernels(fake_numpy)[0] is ref
    assert _kernels(ref) == (ref, None)             # the numpy backend module itself


def test_train_eals_through_arraylevel_backend_matches_reference(monkeypatch):
    ds = amrlite.load_dataset()
    runs = {}
    for name, backend in [("numpy", ref),
                          ("numpy-arraylevel", BACKEND)]:
        monkeypatch.setattr("amrlite.recommender.get_backend", lambda _, b=backend: b)
        m = Model("eals", backend="numpy", epochs=3, dim=8, eval_every=1, dtype="float64")
        m.eals_options = {"reg": 1.0}
        m.fit(ds)
        runs[name] = m
    a, b = runs["numpy"], runs["numpy-arraylevel"]
    assert b.backend_used == "numpy-arraylevel"
    assert b.history.losses == a.history.losses
    assert all(y <= x for x, y in zip(a.history.losses, a.history.losses[1:]))
    for k in ("P", "Q"):
        assert isinstance(b.params[k], np.ndarray)
        np.testing.assert_array_equal(b.params[k], a.params[k])
