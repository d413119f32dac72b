"""Where BPR draws its negatives (``TrainConfig.negative_pool``): only warm items (the default, the
item-cold-start protocol) or the whole catalogue; what that does to training, scoring, saving,
the train-objective attack and the CLI."""
import json

import numpy as np
import pytest

import amrlite
from amrlite import AmrliteError, Model
from amrlite.attack import Attacker, perturbation
from amrlite.cli import cli
from amrlite.evaluation import evaluate_params
from helpers import random_dataset


@pytest.fixture(scope="module")
def data():
    ds, split = random_dataset(n_users=30, n_items=80, per_user=2, n_features=6, seed=3,
                               n_neg=8)
    cold = ~split.warm_items
    assert cold.sum() >= 5          # items no user trained on: the case that differs
    return ds, split


def _fit(data, negatives, kind="vbpr", backend="numpy", **kw):
    ds, split = data
    return Model(kind, backend=backend, epochs=8, dim=4, batch_size=16, eval_every=0, seed=5,
                 negative_pool=negatives, **kw).fit(ds, split="rand")


def test_unknown_pool_is_a_one_line_error():
    with pytest.raises(AmrliteError, match="option 'negative_pool': 'cold' is not one of warm, all"):
        Model("mf", negative_pool="cold")


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_the_pool_decides_which_items_are_trained_and_scored_by_id(data, backend):
    ds, split = data
    cold = ~split.warm_items
    init = amrlite.models.init_params(Model("vbpr").spec, split.n_users, split.n_items, 4,
                                      ds.features.shape[1], seed=5, std=0.01,
                                      dtype=np.dtype("float32"))["Q"]
    warm = _fit(data, "warm", backend=backend)
    every = _fit(data, "all", backend=backend)
    # warm: cold items are never drawn, their ID rows never move, scoring ignores them
    np.testing.assert_array_equal(warm.params["Q"][cold], init[cold])
    np.testing.assert_array_equal(warm.warm, split.warm_items)
    # all: cold items are drawn as negatives (480 draws over 80 items: almost all of them)
    assert (np.abs(every.params["Q"][cold] - init[cold]).max(axis=1) > 0).mean() > 0.9
    assert every.warm.all()
    # and the model's own mask is what evaluation scores with
    res = amrlite.evaluate(every, ds, split)
    direct = evaluate_params(every.spec, every.params, ds.features, split, split.test,
                             id_items=np.ones(split.n_items, bool))["all"]
    assert res["NDCG@10"] == direct["NDCG@10"]
    with_mask = evaluate_params(every.spec, every.params, ds.features, split, split.test,
                                id_items=split.warm_items)["all"]
    assert with_mask["NDCG@10"] != direct["NDCG@10"]


def test_the_pool_survives_save_and_load(data, tmp_path):
    ds, split = data
    m = _fit(data, "all")
    m.save(tmp_path / "m.npz")
    back = Model.load(tmp_path / "m.npz")
    assert back.config.negative_pool == "all" and back.warm.all()
    assert amrlite.evaluate(back, ds, split) == amrlite.evaluate(m, ds, split)


def test_train_objective_attack_moves_exactly_the_pool(data):
    """Every training positive is warm, so warm items move under both pools; items without a
    training interaction move only when they can be drawn as negatives (one per pair)."""
    ds, split = data
    warm = split.warm_items
    for negatives, moved_cold in (("warm", False), ("all", True)):
        m = _fit(data, negatives)
        att = Attacker(m, split, split.test, ds.features, "train", 0, False)
        delta, _ = perturbation(att, 0.1, "adversarial")
        moved = np.linalg.norm(delta, axis=1) > 0
        assert moved[warm].all(), negatives
        assert moved[~warm].any() == moved_cold, negatives


def test_cli_fit_passes_the_pool_on(tmp_path):
    from click.testing import CliRunner
    out = tmp_path / "m.npz"
    res = CliRunner().invoke(cli, ["fit", "--model", "mf", "--epochs", "2", "--backend", "numpy",
                                   "--negative-pool", "all", "--out", str(out), "-q",
                                   "--metrics-out", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    assert Model.load(out).config.negative_pool == "all"
    json.loads((tmp_path / "m.json").read_text())
