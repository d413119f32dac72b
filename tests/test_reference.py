"""The NumPy reference: adversary direction, λ = 0, sampling, Adagrad, training."""
import numpy as np
import pytest

from amrlite import Model
from amrlite.kernels import reference as ref
from amrlite.models import ModelSpec
from amrlite.train import TrainConfig, epoch_rngs
from helpers import assert_seed_decides_training, random_dataset, random_split


@pytest.fixture(scope="module")
def trained_vbpr():
    ds, split = random_dataset(n_users=40, n_items=60, per_user=10, seed=3)
    model = Model("vbpr", backend="numpy", epochs=15, lr=0.05, batch_size=64, eval_every=0,
                  seed=1).fit(ds, split="rand")
    return ds, split, model


@pytest.mark.parametrize("form", ["eq4", "hm"])
def test_adversary_raises_the_loss_more_than_random(trained_vbpr, form):
    ds, split, vbpr = trained_vbpr
    spec = ModelSpec("amr", form)
    params = vbpr.params if form == "eq4" else Model("vbpr", form="hm", backend="numpy", epochs=10,
                                                     batch_size=64, eval_every=0).fit(ds, split="rand").params
    indptr, indices = split.train_csr
    rng = np.random.default_rng(0)
    wins_clean = wins_random = 0
    gains = []
    for trial in range(20):
        u, i, j = ref.sample_epoch(split.train_users, split.train_items, indptr, indices,
                                   np.flatnonzero(split.warm_items), rng)
        u, i, j = u[:64], i[:64], j[:64]
        items, gamma = ref.content_gradient(spec, params, ds.features, u, i, j)
        eps = 0.5
        adv = (items, ref.adversarial_perturbation(gamma, eps, "grad"))
        rnd = (items, ref.adversarial_perturbation(gamma, eps, "random", rng))
        flipped = (items, -adv[1])            # Cornac's sign: lowers the loss
        clean = ref.bpr_loss(spec, params, ds.features, u, i, j)
        l_adv = ref.bpr_loss(spec, params, ds.features, u, i, j, adv)
        l_rnd = ref.bpr_loss(spec, params, ds.features, u, i, j, rnd)
        l_flip = ref.bpr_loss(spec, params, ds.features, u, i, j, flipped)
        wins_clean += l_adv > clean
        wins_random += l_adv > l_rnd
        gains.append((l_adv - clean, l_rnd - clean, l_flip - clean))
    gains = np.mean(gains, axis=0)
    assert wins_clean == 20 and wins_random >= 18
    assert gains[0] > 0 and gains[0] > 5 * abs(gains[1])
    assert gains[2] < 0, "the flipped sign must lower the loss (the bug this test guards)"


def test_sign_adversary_is_fgsm():
    gamma = np.array([[0.5, -2.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(ref.adversarial_perturbation(gamma, 0.1, "sign"),
                                  [[0.1, -0.1, 0.0], [0, 0, 0]])
    d = ref.adversarial_perturbation(gamma, 0.1, "grad")
    np.testing.assert_allclose(d[0], 0.1 * gamma[0] / np.linalg.norm(gamma[0]))
    assert np.all(d[1] == 0)


@pytest.mark.parametrize("form", ["eq4", "hm"])
def test_lambda_zero_reproduces_vbpr_bit_for_bit(form):
    ds, _ = random_dataset(seed=5)
    kw = dict(backend="numpy", form=form, epochs=3, batch_size=32, seed=7, eval_every=0)
    vbpr = Model("vbpr", **kw).fit(ds, split="rand")
    amr = Model("amr", lmd=0.0, eps=0.5, **kw).fit(ds, split="rand")
    amr_on = Model("amr", lmd=1.0, eps=0.5, **kw).fit(ds, split="rand")
    for name in vbpr.params:
        assert np.array_equal(vbpr.params[name], amr.params[name]), name
    assert not np.array_equal(vbpr.params["E"], amr_on.params["E"])


def test_same_seed_same_parameters_other_seed_differs():
    assert_seed_decides_training("numpy")


def test_sampler_draws_valid_negatives():
    split, _ = random_split(n_users=25, n_items=40, per_user=10, cold=5, seed=1)
    indptr, indices = split.train_csr
    pool = np.flatnonzero(split.warm_items)
    u, i, j = ref.sample_epoch(split.train_users, split.train_items, indptr, indices, pool,
                               np.random.default_rng(0))
    pairs = set(zip(split.train_users.tolist(), split.train_items.tolist()))
    assert sorted(zip(u.tolist(), i.tolist())) == sorted(pairs)        # each pair once
    assert not any((a, b) in pairs for a, b in zip(u.tolist(), j.tolist()))
    assert split.warm_items[j].all()                                   # never a cold item
    assert len(set(j.tolist())) > 15                                   # not degenerate


def test_adagrad_is_row_sparse_and_matches_formula():
    params = {"P": np.ones((4, 2)), "E": np.ones((2, 3))}
    accum = {"P": np.zeros((4, 2)), "E": np.full((2, 3), 1.0)}
    g_rows = np.array([[0.5, -1.0], [2.0, 0.0]])
    grads = {"P": (np.array([1, 3]), g_rows), "E": np.full((2, 3), 2.0)}
    ref.adagrad_update(params, accum, grads, lr=0.1)
    np.testing.assert_array_equal(params["P"][[0, 2]], 1.0)            # untouched rows
    np.testing.assert_array_equal(accum["P"][[0, 2]], 0.0)
    np.testing.assert_allclose(params["P"][1], 1 - 0.1 * np.sign(g_rows[0]), rtol=1e-9)
    np.testing.assert_allclose(accum["E"], 5.0)
    np.testing.assert_allclose(params["E"], 1 - 0.1 * 2 / np.sqrt(5))


def test_training_lowers_the_loss_and_learns():
    ds, split = random_dataset(n_users=60, n_items=80, per_user=12, seed=9)
    m = Model("mf", backend="numpy", epochs=30, lr=0.05, batch_size=64, eval_every=10,
              seed=0).fit(ds, split="rand")
    assert m.history.losses[-1] < 0.8 * m.history.losses[0]
    assert len(m.history.evaluations) == 3 and m.history.best_epoch in (10, 20, 30)


def test_epoch_rngs_are_independent_streams():
    a, b = epoch_rngs(0, 1)
    c, _ = epoch_rngs(0, 2)
    x, y, z = a.random(4), b.random(4), c.random(4)
    assert not np.allclose(x, y) and not np.allclose(x, z)


def test_config_rejects_bad_values():
    from amrlite.errors import AmrliteError
    with pytest.raises(AmrliteError, match="option 'lr'"):
        TrainConfig(lr=-1).validate()
    with pytest.raises(AmrliteError, match="option 'adversary'"):
        TrainConfig(adversary="pgd").validate()
