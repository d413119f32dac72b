"""MF-eALS: Numba kernel vs NumPy reference, monotone objective, closed form vs brute force,
and it beats POP."""
import numpy as np
import pytest

import amrlite
from amrlite import Model
from amrlite.kernels import reference as ref
from amrlite.synthetic import make_synthetic
from helpers import random_split

cpu_eals = pytest.importorskip("amrlite.kernels.cpu_eals")


def _problem(seed=0, dim=4):
    split, _ = random_split(n_users=25, n_items=40, per_user=7, seed=seed, cold=3)
    indptr, indices = split.train_csr
    indices = indices.astype(np.int64)
    rng = np.random.default_rng(seed)
    P = rng.standard_normal((split.n_users, dim)) * 0.3
    Q = rng.standard_normal((split.n_items, dim)) * 0.3
    conf = ref.eals_confidence(np.bincount(split.train_items, minlength=split.n_items), 30.0, 0.5)
    w = 1.0 + rng.random(len(indices))          # per-pair weights exercise the general form
    return split, indptr, indices, P, Q, conf, w


def _brute_objective(P, Q, indptr, indices, w, conf, reg):
    X = P @ Q.T
    W = np.tile(conf, (P.shape[0], 1))
    R = np.zeros_like(X)
    for u in range(P.shape[0]):
        items = indices[indptr[u]:indptr[u + 1]]
        W[u, items] = w[indptr[u]:indptr[u + 1]]
        R[u, items] = 1.0
    return float(np.sum(W * (R - X) ** 2) + reg * (np.sum(P ** 2) + np.sum(Q ** 2)))


def test_objective_formula_and_no_sweep_increases_it():
    split, indptr, indices, P, Q, conf, w = _problem(seed=1)
    reg = 0.05
    pred = ref.eals_predictions(P, Q, indptr, indices)
    last = ref.eals_objective(P, Q, pred, indptr, indices, w, conf, reg)
    assert last == pytest.approx(_brute_objective(P, Q, indptr, indices, w, conf, reg), rel=1e-12)
    for _ in range(5):
        for sweep in (ref.eals_update_users, ref.eals_update_items):
            sweep(P, Q, pred, indptr, indices, w, conf, reg)
            now = ref.eals_objective(P, Q, pred, indptr, indices, w, conf, reg)
            assert now <= last + 1e-9 * abs(last)
            last = now
    assert last == pytest.approx(_brute_objective(P, Q, indptr, indices, w, conf, reg), rel=1e-10)


def test_coordinate_update_is_the_exact_minimiser():
    split, indptr, indices, P, Q, conf, w = _problem(seed=2, dim=3)
    reg = 0.1
    pred = ref.eals_predictions(P, Q, indptr, indices)
    ref.eals_update_users(P, Q, pred, indptr, indices, w, conf, reg)
    # after a user sweep, every p_uf of the last factor is a stationary point: nudging it up or
    # down cannot lower the objective
    base = _brute_objective(P, Q, indptr, indices, w, conf, reg)
    for u, f in [(0, 2), (5, 2), (11, 2)]:
        for h in (1e-3, -1e-3):
            P2 = P.copy()
            P2[u, f] += h
            assert _brute_objective(P2, Q, indptr, indices, w, conf, reg) >= base


def test_eals_beats_pop_on_synthetic_and_both_backends_agree():
    """Through Model.fit (the one training loop): the objective never rises, the Numba and NumPy
    backends agree, MF-eALS beats POP, and the declared eALS knobs (reg, c0, alpha) reach the
    fit (a wrong confidence changes the parameters)."""
    # the dense synthetic set of earlier versions (600 users with 15-40 items each): the
    # embedded default is sparse now, where MF-eALS is close to POP
    ds = make_synthetic(n_users=600, min_per_user=15, max_per_user=40, noise=0.1)
    pop = amrlite.evaluate(Model("pop").fit(ds), ds)
    runs = {}
    for backend in ("numpy", "numba"):
        m = Model("eals", backend=backend, epochs=4, dim=16, eval_every=0, dtype="float64",
                  reg=1.0)
        m.fit(ds)
        runs[backend] = m
        losses = m.history.losses
        assert all(b <= a + 1e-9 * a for a, b in zip(losses, losses[1:]))
    np.testing.assert_allclose(runs["numba"].params["P"], runs["numpy"].params["P"],
                               rtol=1e-9, atol=1e-11)
    res = amrlite.evaluate(runs["numpy"], ds)
    assert res["HR@10"] > pop["HR@10"] + 0.05 and res["NDCG@10"] > pop["NDCG@10"]
    assert runs["numpy"].config.reg == 1.0
    other = Model("eals", backend="numpy", epochs=4, dim=16, eval_every=0, dtype="float64",
                  reg=1.0, c0=64.0).fit(ds)
    assert not np.allclose(other.params["P"], runs["numpy"].params["P"])


def test_eals_reg_defaults_to_the_library_kind_default():
    from amrlite.models import KIND_DEFAULTS
    assert Model("eals").config.reg == KIND_DEFAULTS["eals"]["reg"] == 10.0
    assert Model("mf").config.reg == amrlite.TrainConfig().reg
