"""Test-time attacks: Γ in closed form, ε = 0, adversarial vs random, PGD vs one step, the
certified bound, models without content."""
import json

import numpy as np
import pytest

import amrlite
from amrlite import AmrliteError, Model
from amrlite.attack import (Attacker, attack, certified_ranks, parse_eps_list, perturbation,
                            rank_change)
from amrlite.kernels import reference as ref
from amrlite.metrics import METRIC_NAMES
from helpers import random_dataset


@pytest.fixture(scope="module")
def synth():
    ds = amrlite.load_dataset()
    vbpr = Model("vbpr", backend="numpy", epochs=5, dim=16, batch_size=256, eval_every=0,
                 seed=1).fit(ds)
    return ds, vbpr


@pytest.fixture(scope="module")
def synth_mf(synth):
    ds, _ = synth
    return Model("mf", backend="numpy", epochs=2, dim=8, batch_size=256, eval_every=0).fit(ds)


@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "chunked"])
@pytest.mark.parametrize("objective,full", [("test", False), ("test", True), ("train", False)],
                         ids=["test-sampled", "test-full", "train"])
@pytest.mark.parametrize("form", ["eq4", "hm"])
def test_gamma_closed_form_matches_reference_and_finite_differences(form, objective, full,
                                                                    chunked, monkeypatch):
    """Γ and the loss of every objective equal the explicit per-pair reference and central
    finite differences, whether the pairs are summed as one chunk or in many (7 pairs per
    chunk; 2 rows × all items per block of the full-ranking objective)."""
    if chunked:
        monkeypatch.setattr(amrlite.attack, "PAIR_CHUNK", 7)
        monkeypatch.setattr(amrlite.attack, "OBJECTIVE_SCORES", 30)
    ds, split = random_dataset(n_users=8, n_items=12, per_user=4, n_features=5, seed=4, n_neg=5)
    model = Model("vbpr", form=form, backend="numpy", epochs=2, dim=3, batch_size=8,
                  eval_every=0, dtype="float64", init_std=0.3).fit(ds, split="rand")
    rng = np.random.default_rng(0)
    for name in ("b", "w"):            # biases start at 0: make them matter
        if name in model.params:
            model.params[name] = rng.standard_normal(model.params[name].shape)
    cold = ~split.warm_items        # scored by content alone, as in the evaluation
    assert cold.any()
    model.params["Q"][cold] = 0
    if "b" in model.params:
        model.params["b"][cold] = 0
    att = Attacker(model, split, split.test, ds.features, objective, 0, full)
    assert att.dense_objective == (objective == "test" and full)
    loss, gamma = att.loss_and_gamma(None)
    items, g_ref = ref.content_gradient(model.spec, model.params, ds.features.astype(np.float64),
                                        *att.pairs())
    expected = np.zeros_like(gamma)
    expected[items] = g_ref
    np.testing.assert_allclose(gamma, expected, rtol=1e-10, atol=1e-12)
    assert loss == pytest.approx(ref.bpr_loss(model.spec, model.params,
                                              ds.features.astype(np.float64), *att.pairs()))
    h = 1e-6
    for k, d in [(int(items[0]), 0), (int(items[-1]), 4), (int(items[len(items) // 2]), 2)]:
        bump = np.zeros_like(gamma)
        bump[k, d] = h
        numeric = (att.loss_and_gamma(bump, False)[0] - att.loss_and_gamma(-bump, False)[0]) / (2 * h)
        assert numeric == pytest.approx(gamma[k, d], rel=1e-5, abs=1e-8)


def test_eps_zero_gives_the_clean_metrics_exactly(synth):
    ds, vbpr = synth
    clean = amrlite.evaluate(vbpr, ds)
    for kind in ("adversarial", "random", "sign", "certified"):
        res = attack(vbpr, ds, "loo", [0.0], kind=kind, repeats=2)
        for k in METRIC_NAMES:
            assert res["clean"][k] == clean[k]
            assert res["eps"]["0.0"][k] == clean[k], (kind, k)
            assert res["eps"]["0.0"]["drop"][k] == 0.0
    json.dumps(res)


def test_adversarial_beats_random_and_train_objective_leaves_cold_items(synth):
    ds, vbpr = synth
    eps = [0.05, 0.2]
    adv = attack(vbpr, ds, "loo", eps, kind="adversarial")
    rnd = attack(vbpr, ds, "loo", eps, kind="random", repeats=3)
    for e in ("0.05", "0.2"):
        assert adv["eps"][e]["drop"]["NDCG@10"] > 0.1
        assert adv["eps"][e]["NDCG@10"] < rnd["eps"][e]["NDCG@10"]
        assert adv["eps"][e]["HR@10"] <= rnd["eps"][e]["HR@10"]
        assert abs(rnd["eps"][e]["drop"]["NDCG@10"]) < adv["eps"][e]["drop"]["NDCG@10"] / 3
    sp = ds.split("loo")
    att = Attacker(vbpr, sp, sp.test, ds.features, "train", 0, False)
    delta, _ = perturbation(att, 0.1, "adversarial")
    moved = np.linalg.norm(delta, axis=1) > 0
    assert not moved[~sp.warm_items].any() and moved[sp.warm_items].mean() > 0.9


def test_iterative_is_at_least_as_damaging_as_one_step(synth):
    ds, vbpr = synth
    # test objective: PGD keeps its most damaging iterate by NDCG@10 (one step included)
    one = attack(vbpr, ds, "loo", [0.1, 0.3], steps=1)
    pgd = attack(vbpr, ds, "loo", [0.1, 0.3], steps=4)
    for e in ("0.1", "0.3"):
        assert pgd["eps"][e]["NDCG@10"] <= one["eps"][e]["NDCG@10"]
    # train objective: by the attacked loss, which is what it maximises
    one = attack(vbpr, ds, "loo", [0.1, 0.3], steps=1, objective="train")
    pgd = attack(vbpr, ds, "loo", [0.1, 0.3], steps=4, objective="train")
    for e in ("0.1", "0.3"):
        assert pgd["eps"][e]["attacked_loss"] >= one["eps"][e]["attacked_loss"]


def test_no_attack_goes_below_the_certified_bound(synth):
    ds, vbpr = synth
    eps = [0.05, 0.3]
    cert = attack(vbpr, ds, "loo", eps, kind="certified")
    sp = ds.split("loo")
    att = Attacker(vbpr, sp, sp.test, ds.features, "test", 0, False)
    worst, flip = certified_ranks(att, eps)
    for e in eps:
        key = repr(e)
        assert cert["eps"][key]["HR@10"] == pytest.approx(np.mean(flip > e))
        for kind, steps in (("adversarial", 1), ("adversarial", 3), ("random", 1)):
            res = attack(vbpr, ds, "loo", [e], kind=kind, steps=steps, repeats=1)
            assert res["eps"][key]["NDCG@10"] >= cert["eps"][key]["NDCG@10"]
            after = rank_change(vbpr, ds, "loo", e, kind=kind, steps=steps)["after"]
            assert np.all(after <= worst[e]), (kind, steps, e)
    assert 0 <= cert["flip_eps"]["median"] and cert["flip_eps"]["n"] == len(sp.test)


def test_rank_change_summary(synth):
    ds, vbpr = synth
    rc = rank_change(vbpr, ds, "loo", 0.2)
    np.testing.assert_array_equal(rc["per_row"], rc["before"] - rc["after"])
    s = rc["summary"]
    assert s["share_worse"] > 0.5 and s["mean"] < 0
    assert s["share_worse"] + s["share_better"] + s["share_same"] == pytest.approx(1.0)
    json.dumps(s)


def test_models_without_content_are_unaffected(synth, synth_mf):
    ds, _ = synth
    res = attack(synth_mf, ds, "loo", [0.1, 1.0], kind="adversarial")
    assert res["affected"] is False and "note" in res
    for e in ("0.1", "1.0"):
        assert all(res["eps"][e][k] == res["clean"][k] for k in METRIC_NAMES)
        assert all(v == 0.0 for v in res["eps"][e]["drop"].values())
    assert np.all(rank_change(synth_mf, ds, "loo", 0.5)["per_row"] == 0)
    with pytest.raises(AmrliteError, match="no content"):
        attack(synth_mf, ds, "loo", [0.1], kind="certified")


def test_bad_arguments_are_user_errors(synth):
    ds, vbpr = synth
    assert parse_eps_list("0.01, 0.1,1") == [0.01, 0.1, 1.0]
    for bad in ("", "0.1,,0.2", "a", "-0.1", "nan", "inf"):
        with pytest.raises(AmrliteError, match="^eps"):
            parse_eps_list(bad)
    with pytest.raises(AmrliteError, match="unknown attack kind"):
        attack(vbpr, ds, "loo", [0.1], kind="pgd")
    with pytest.raises(AmrliteError, match="objective"):
        attack(vbpr, ds, "loo", [0.1], objective="valid")
    with pytest.raises(AmrliteError, match="steps"):
        attack(vbpr, ds, "loo", [0.1], steps=0)
