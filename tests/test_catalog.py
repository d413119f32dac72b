"""The catalogue: items with a feature row and no interactions (new products) are items of the
data set, scored by their features alone; ``Model.add_items`` / ``amrlite add-items`` add more
to a trained content model without retraining. Every file is written by the test."""
import json

import numpy as np
import pytest

from amrlite import Model, evaluate, load_dataset
from amrlite.backends import get_backend
from amrlite.errors import AmrliteError
from amrlite.models import init_params
from amrlite.train import TrainConfig

from helpers import one_line_error
from helpers import run_cli as run

N_LOG, DIM = 20, 6
RECIPE = {"model": "efficientnet-lite0", "weights": "imagenet", "dtype": "float32",
          "versions": {"torch": "2.13.0"}, "device": "cpu", "inputs": {"photos": "photos/"}}


def _orders(d, n_users=30):
    """A shop's order log: string ids, every one of the N_LOG skus ordered."""
    rows = ["customer_id,sku,quantity"]
    rows += [f"C-{u:03d},SKU-{(u * 7 + k * 3) % N_LOG:02d},1" for u in range(n_users)
             for k in range(5)]
    (d / "orders.csv").write_text("\n".join(rows) + "\n")
    return d / "orders.csv"


@pytest.fixture
def shop(tmp_path):
    """Orders, and photo features of the ordered skus plus two products nobody ordered yet
    (``NEW-B`` listed before ``NEW-A``), with a recipe record beside the features."""
    rng = np.random.default_rng(0)
    _orders(tmp_path)
    log = [f"SKU-{k:02d}" for k in range(N_LOG)]
    ids = np.array(log[:10] + ["NEW-B"] + log[10:] + ["NEW-A"])
    feats = rng.standard_normal((len(ids), DIM)).astype(np.float32)
    np.savez(tmp_path / "features-image.npz", ids=ids, features=feats)
    (tmp_path / "features-image.json").write_text(json.dumps(RECIPE))
    return tmp_path, dict(zip(ids.tolist(), feats))


def _load(d, **kw):
    return load_dataset(d / "orders.csv", features=d / "features-image.npz", **kw)


def _fit(ds, kind="vbpr", form="eq4", backend="numpy", **hyper):
    hyper = {"epochs": 2, "dim": 8, "seed": 1, "eval_every": 0, **hyper}
    return Model(kind, form=form, backend=backend, **hyper).fit(ds, split=ds.split(
        "loo", n_negatives=5))


# ---------------------------------------------------------------- loading

def test_catalogue_items_are_loaded_after_the_log_items_with_a_note(shop):
    d, truth = shop
    ds = _load(d)
    assert ds.n_items == N_LOG + 2 and set(ds.items.tolist()) == set(range(N_LOG))
    assert ds.item_ids[N_LOG:].tolist() == ["NEW-B", "NEW-A"]     # the features file's order
    assert "2 catalogue items have no interactions: scored by their features alone" in ds.notes
    for k in (0, N_LOG, N_LOG + 1):
        np.testing.assert_array_equal(ds.features[k], truth[ds.item_ids[k]])
    srt = _load(d, id_order="sorted")
    assert srt.item_ids[:N_LOG].tolist() == sorted(ds.item_ids[:N_LOG].tolist())
    assert srt.item_ids[N_LOG:].tolist() == ["NEW-A", "NEW-B"]
    assert (ds.users == srt.users).all() and ds.n_items == srt.n_items
    # the log's indices do not depend on the catalogue: the same log without it
    np.savez(d / "log-only.npz", ids=ds.item_ids[:N_LOG], features=ds.features[:N_LOG])
    plain = load_dataset(d / "orders.csv", features=d / "log-only.npz")
    assert plain.item_ids.tolist() == ds.item_ids[:N_LOG].tolist() and not any(
        "catalogue" in n for n in plain.notes)
    assert (plain.items == ds.items).all() and (plain.users == ds.users).all()


def test_items_file_and_positional_rows_are_catalogue_too(tmp_path):
    _orders(tmp_path)
    skus = [f"SKU-{k:02d}" for k in range(N_LOG)] + ["NEW-1"]
    (tmp_path / "items.csv").write_text("sku\n" + "\n".join(skus[::-1]) + "\n")
    np.save(tmp_path / "f.npy", np.arange(len(skus) * 2, dtype=np.float32).reshape(-1, 2))
    ds = load_dataset(tmp_path / "orders.csv", features=tmp_path / "f.npy",
                      items=tmp_path / "items.csv")
    assert ds.item_ids[-1] == "NEW-1" and ds.features[-1].tolist() == [0, 1]
    assert "1 catalogue item has no interactions: scored by its features alone" in ds.notes
    # integer ids 0..n-1 stay indices, the catalogue's rows included
    (tmp_path / "int.csv").write_text("user,item\n0,0\n0,1\n1,1\n1,2\n")
    np.savez(tmp_path / "int.npz", ids=np.arange(5), features=np.eye(5, dtype=np.float32))
    ds = load_dataset(tmp_path / "int.csv", features=tmp_path / "int.npz")
    assert ds.item_ids is None and ds.n_items == 5 and ds.features[4, 4] == 1
    np.savez(tmp_path / "gap.npz", ids=np.array([2, 1, 0, 9]), features=np.eye(4, dtype=np.float32))
    ds = load_dataset(tmp_path / "int.csv", features=tmp_path / "gap.npz")
    assert ds.item_ids.tolist() == [0, 1, 2, 9] and ds.features[3, 3] == 1


def test_items_removed_by_a_filter_stay_removed(tmp_path):
    _orders(tmp_path)
    with open(tmp_path / "orders.csv", "a") as fh:
        fh.write("C-000,SKU-ONCE,1\n")               # one order: not in the 2-core
    ids = np.array([f"SKU-{k:02d}" for k in range(N_LOG)] + ["SKU-ONCE", "NEW-1"])
    np.savez(tmp_path / "f.npz", ids=ids, features=np.ones((len(ids), 2), np.float32))
    ds = load_dataset(tmp_path / "orders.csv", features=tmp_path / "f.npz", k_core=2)
    assert ds.item_ids[N_LOG:].tolist() == ["NEW-1"] and "SKU-ONCE" not in ds.item_ids


def test_native_and_official_folders_keep_feature_rows_without_interactions(tmp_path):
    nat = tmp_path / "nat"
    nat.mkdir()
    rows = [f"{u},{(u + k) % 10}" for u in range(12) for k in range(4)]
    (nat / "interactions.csv").write_text("user,item\n" + "\n".join(rows) + "\n")
    np.save(nat / "features.npy", np.ones((12, 3), np.float32))
    ds = load_dataset(nat)
    assert ds.n_items == 12 and "2 catalogue items have no interactions" in ds.notes[0]
    np.savez(nat / "features-x.npz", ids=np.arange(13)[::-1], features=np.ones((13, 2), np.float32))
    assert load_dataset(nat, features="x").n_items == 13
    np.savez(nat / "features-y.npz", ids=np.array([0, 99]), features=np.ones((2, 2), np.float32))
    with pytest.raises(AmrliteError, match="features-y.npz.* item 99, but index 10 "):
        load_dataset(nat, features="y", missing_features="zero")
    off = tmp_path / "off"
    off.mkdir()
    (off / "pos.txt").write_text("\n".join(f"{u} {(u + k) % 10}" for u in range(12)
                                           for k in range(4)) + "\n")
    np.save(off / "f_image.npy", np.ones((12, 3), np.float32))
    ds = load_dataset(off)
    assert ds.n_items == 12 and "2 catalogue items" in ds.notes[0]


# ---------------------------------------------------------------- training and scoring

@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_catalogue_items_are_never_training_negatives_in_the_warm_pool(shop, backend):
    d, _ = shop
    ds = _load(d)
    sp = ds.split("loo", n_negatives=5)
    cat = np.arange(N_LOG, N_LOG + 2)
    be = get_backend(backend)
    for pool_name, drawn in (("warm", False), ("all", True)):
        cfg = TrainConfig(negative_pool=pool_name)
        pool = np.flatnonzero(sp.id_items(pool_name)).astype(np.int32)
        js = np.concatenate([be.sample_epoch(sp.train_users, sp.train_items, *sp.train_csr,
                                             pool, np.random.default_rng([cfg.seed, 1, e]))[2]
                             for e in range(1, 40)])
        assert np.isin(cat, js).any() == drawn
    model = _fit(ds, backend=backend)
    assert not model.warm[cat].any() and model.warm[:N_LOG].all()
    start = init_params(model.spec, ds.n_users, ds.n_items, 8, DIM, seed=1)
    # no triple ever touched their ID rows: neither a gradient nor an Adagrad step
    np.testing.assert_array_equal(model.params["Q"][cat], start["Q"][cat])
    assert not model.accum["Q"][cat].any()


@pytest.mark.parametrize("kind,form", [("duif", "eq4"), ("vbpr", "eq4"), ("vbpr", "hm"),
                                       ("amr", "eq4"), ("amr", "hm")])
def test_catalogue_item_is_scored_by_its_features_alone(shop, kind, form):
    d, truth = shop
    ds = _load(d, normalize="l2")
    model = _fit(ds, kind, form)
    p = {k: v.astype(np.float64) for k, v in model.params.items()}
    c = ds.features[N_LOG:].astype(np.float64)                    # NEW-B, NEW-A
    users = np.arange(ds.n_users)
    g = p["H"] if form == "hm" else p["P"]
    want = g @ (p["E"] @ c.T)                                      # p_u · E c_i (h_u in hm)
    if form == "hm":
        want = want + c @ p["w"]                                   # + the visual bias w · c_i
    got = model.score(users[:, None], np.arange(N_LOG, N_LOG + 2)[None, :])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1, rtol=1e-6)   # l2 was applied


def test_a_catalogue_item_is_recommended_top1(tmp_path):
    """Two new products with opposite, huge features: for every customer one of them scores far
    above every ordered sku (p_u · E c is ± the same large number), so it must be top-1."""
    _orders(tmp_path)
    rng = np.random.default_rng(3)
    ids = np.array([f"SKU-{k:02d}" for k in range(N_LOG)] + ["NEW-UP", "NEW-DOWN"])
    feats = rng.standard_normal((len(ids), DIM)).astype(np.float32)
    feats[-2] = 1e4 * rng.standard_normal(DIM)
    feats[-1] = -feats[-2]
    np.savez(tmp_path / "f.npz", ids=ids, features=feats)
    ds = load_dataset(tmp_path / "orders.csv", features=tmp_path / "f.npz")
    model = _fit(ds, "vbpr")
    for user in ("C-000", "C-017"):
        items, scores = model.recommend(user, N_LOG + 2, exclude_seen=False)
        assert items[0] in ("NEW-UP", "NEW-DOWN") and items[-1] in ("NEW-UP", "NEW-DOWN")
        assert scores[0] > 10 * abs(scores[1])


def test_catalogue_items_are_cold_in_evaluation_where_a_split_holds_them(tmp_path):
    nat = tmp_path / "nat"
    (nat / "split-shop").mkdir(parents=True)
    rows = [(u, (u + k) % 10) for u in range(12) for k in range(4)]
    (nat / "interactions.csv").write_text("user,item\n" + "".join(f"{u},{i}\n" for u, i in rows))
    np.save(nat / "features.npy", np.random.default_rng(0).random((12, 3)).astype(np.float32))
    (nat / "split-shop" / "train.csv").write_text("user,item\n" + "".join(
        f"{u},{i}\n" for u, i in rows))
    test = [(u, 10 + u % 2) for u in range(12)] + [(0, 5)]    # catalogue items 10, 11 held out
    (nat / "split-shop" / "test.csv").write_text("user,item\n" + "".join(
        f"{u},{i}\n" for u, i in test))
    ds = load_dataset(nat)
    model = Model("vbpr", epochs=1, dim=4, eval_every=0, backend="numpy").fit(ds, split="shop")
    res = evaluate(model, ds, "shop")
    assert res["n"] == {"all": 13, "warm": 1, "cold": 12} and res["protocol"] == "full"
    # a generated split ranks positives against catalogue items too (scored by content)
    sp = _load(_shop_dir(tmp_path)).split("loo", n_negatives=N_LOG - 6)
    assert np.isin(np.arange(N_LOG, N_LOG + 2), sp.test.negatives).any()


def _shop_dir(tmp_path):
    d = tmp_path / "shop"
    d.mkdir()
    _orders(d)
    ids = np.array([f"SKU-{k:02d}" for k in range(N_LOG)] + ["NEW-A", "NEW-B"])
    np.savez(d / "features-image.npz", ids=ids,
             features=np.random.default_rng(0).random((len(ids), 3)).astype(np.float32))
    return d


def test_data_without_catalogue_items_keeps_its_fingerprint(tmp_path):
    """The fingerprint a model saved by an earlier amrlite recorded for this data (computed
    with the code before the catalogue existed) still matches."""
    rows = ["customer_id,sku"] + [f"C-{u:03d},SKU-{(u * 7 + k * 3) % 20:02d}" for u in range(30)
                                  for k in range(5)]
    (tmp_path / "orders.csv").write_text("\n".join(rows) + "\n")
    ids = np.array([f"SKU-{k:02d}" for k in range(20)])
    np.savez(tmp_path / "feats.npz", ids=ids[::-1],
             features=np.arange(20 * 4, dtype=np.float32).reshape(20, 4))
    ds = load_dataset(tmp_path / "orders.csv", features=tmp_path / "feats.npz")
    assert ds.fingerprint() == "c561690cf124ab44"


# ---------------------------------------------------------------- adding items

@pytest.mark.parametrize("kind,form,normalize", [("duif", "eq4", "l2"), ("vbpr", "eq4", "maxabs"),
                                                 ("vbpr", "hm", "maxabs"), ("amr", "hm", "l2"),
                                                 ("amr", "eq4", "none")])
def test_added_items_score_as_catalogue_items_with_the_same_features(shop, tmp_path, kind,
                                                                     form, normalize):
    d, truth = shop
    ds = _load(d, normalize=normalize)
    model = _fit(ds, kind, form)
    users = np.arange(ds.n_users)[:, None]
    before = model.score(users, np.arange(ds.n_items)[None, :])
    raw = np.stack([truth["NEW-A"], truth["NEW-B"], 3 * truth["NEW-A"]])
    model.add_items(["ADD-A", "ADD-B", "ADD-3A"], raw)
    assert model.header["n_items"] == ds.n_items + 3 and model.item_ids[-1] == "ADD-3A"
    new = np.arange(ds.n_items, ds.n_items + 3)[None, :]
    got = model.score(users, new)
    twin = model.score(users, np.array([[N_LOG + 1, N_LOG, N_LOG + 1]]))   # NEW-A, NEW-B, NEW-A
    np.testing.assert_allclose(got[:, :2], twin[:, :2], rtol=1e-6, atol=1e-7)
    # the recorded normalisation: 3 c scores 3 times c under maxabs/none (the training scale,
    # not one recomputed from the new rows), the same as c under l2
    np.testing.assert_allclose(got[:, 2], (1 if normalize == "l2" else 3) * twin[:, 2],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.score(users, np.arange(ds.n_items)[None, :]), before)
    path = model.save(tmp_path / "extended.npz")
    back = Model.load(path)
    np.testing.assert_array_equal(back.score(users, new), got)
    assert back.item_ids.tolist() == model.item_ids.tolist()
    assert not back.warm[-3:].any() and not back.params.get("Q", np.zeros(1))[-3:].any()


def test_a_model_with_added_items_evaluates_and_attacks_as_trained(shop, tmp_path):
    """Evaluation, attacks and the paired test read the model as trained (the added items have
    no interactions in the data): the same results as before the items were added (they
    failed: "the model knows … items; the data has …"), from Python and from the command
    line on the saved model."""
    from amrlite import evaluate
    from amrlite.attack import attack
    from amrlite.jsonio import dumps
    from amrlite.significance import compare
    d, truth = shop
    ds = _load(d, normalize="l2")
    sp = ds.split("loo", n_negatives=5)
    model = _fit(ds)
    clean, hit = dumps(evaluate(model, ds, sp)), dumps(attack(model, ds, sp, [0.1]))
    model.add_items(["ADD-A"], truth["NEW-A"][None, :])
    assert dumps(evaluate(model, ds, sp)) == clean          # as JSON: NaN (no cold row) == NaN
    assert dumps(attack(model, ds, sp, [0.1])) == hit
    assert compare(model, model, ds, sp)["NDCG@10"]["diff"] == 0
    part = model.trained_part()
    assert part.header["n_items"] == ds.n_items and "added_items" not in part.header
    assert model.header["n_items"] == ds.n_items + 1             # the model itself unchanged
    model.save(tmp_path / "added.npz")
    r = run("evaluate", tmp_path / "added.npz", "--split", "loo", "--negatives", "5")
    assert r.exit_code == 0, r.output


def test_add_items_refuses_in_one_line(shop):
    d, truth = shop
    ds = _load(d)
    model = _fit(ds, "vbpr")
    row = truth["NEW-A"][None, :]
    cases = [
        (dict(ids=["SKU-03"], features=row), "id 'SKU-03' is already an item of the model"),
        (dict(ids=["NEW-A"], features=row), "id 'NEW-A' is already an item of the model"),
        (dict(ids=["X", "X"], features=np.vstack([row, row])), "'X' occurs twice"),
        (dict(ids=["X"], features=row[:, :4]), "4 feature columns, but the model's features "
                                               "have 6"),
        (dict(ids=["X", "Y"], features=row), "1 rows of 6 features for 2 ids"),
        (dict(ids=["X"], features=row, recipe={**RECIPE, "model": "resnet50"}),
         "model 'resnet50' here, 'efficientnet-lite0' in the model"),
        (dict(ids=["X"], features=np.full((1, DIM), np.nan, np.float32)), "non-finite"),
    ]
    n = model.header["n_items"]
    for kw, piece in cases:
        with pytest.raises(AmrliteError) as exc:
            model.add_items(**kw)
        assert piece in str(exc.value) and "\n" not in str(exc.value)
    assert model.header["n_items"] == n and len(model.warm) == n     # nothing half-added
    model.add_items(["X"], row, recipe=dict(RECIPE, device="cuda", versions={}))   # uncompared
    for kind in ("mf", "pop"):
        with pytest.raises(AmrliteError, match=r"^a (MF-BPR|POP) model has no content term"):
            _fit(ds, kind).add_items(["Z"], row)


def test_add_items_command_end_to_end(shop, tmp_path):
    d, truth = shop
    out = tmp_path / "run"
    out.mkdir()
    m = out / "vbpr.npz"
    r = run("fit", "--data", d / "orders.csv", "--features", d / "features-image.npz",
            "--normalize", "maxabs", "--model", "vbpr", "--form", "hm", "--epochs", "2",
            "--negatives", "5", "--backend", "numpy", "-q", "--out", m)
    assert r.exit_code == 0, r.output
    assert "data: 2 catalogue items have no interactions: scored by their features alone" \
        in r.output
    assert Model.load(m).header["features"][0]["recipe"]["model"] == "efficientnet-lite0"
    new = tmp_path / "new" / "features-image.npz"
    new.parent.mkdir()
    np.savez(new, ids=np.array(["ADD-1", "ADD-2"]),
             features=np.stack([truth["NEW-A"], truth["NEW-B"]]))
    (new.parent / "features-image.json").write_text(json.dumps({**RECIPE, "device": "cuda"}))
    r = run("add-items", m, "--features", new, "--out", out / "more.npz")
    assert r.exit_code == 0, r.output
    assert "added 2 item(s)" in r.output and f"({N_LOG + 2} → {N_LOG + 4} items)" in r.output
    a, b = Model.load(m), Model.load(out / "more.npz")
    users = np.arange(a.header["n_users"])[:, None]
    np.testing.assert_allclose(b.score(users, [[N_LOG + 2, N_LOG + 3]]),
                               a.score(users, [[N_LOG + 1, N_LOG]]), rtol=1e-6, atol=1e-7)
    items, _ = b.recommend("C-004", N_LOG + 4)
    assert {"ADD-1", "ADD-2"} <= set(items.tolist())
    # bad input: one line, exit code 2, nothing written
    one_line_error(run("add-items", out / "more.npz", "--features", new, "--out", out / "x.npz"),
                   str(new), "id 'ADD-1' is already an item of the model")
    (new.parent / "features-image.json").write_text(json.dumps({**RECIPE, "weights": "none"}))
    one_line_error(run("add-items", m, "--features", new, "--out", out / "x.npz"),
                   "weights 'none' here, 'imagenet' in the model")
    np.savez(new, ids=np.array(["ADD-1"]), features=np.ones((1, 3), np.float32))
    one_line_error(run("add-items", m, "--features", new, "--out", out / "x.npz"),
                   "3 feature columns")
    one_line_error(run("add-items", m, "--features", tmp_path / "nope.npz", "--out",
                       out / "x.npz"), "nope.npz")
    r = run("fit", "--data", d / "orders.csv", "--model", "mf", "--epochs", "1",
            "--negatives", "5", "--backend", "numpy", "-q", "--out", out / "mf.npz")
    assert r.exit_code == 0, r.output
    one_line_error(run("add-items", out / "mf.npz", "--features", new, "--out", out / "x.npz"),
                   "MF-BPR model has no content term")
    assert not (out / "x.npz").exists()


def test_added_ids_extend_the_model_ids(tmp_path):
    nat = tmp_path / "nat"
    nat.mkdir()
    rows = [f"{u},{(u + k) % 10}" for u in range(12) for k in range(4)]
    (nat / "interactions.csv").write_text("user,item\n" + "\n".join(rows) + "\n")
    np.save(nat / "features.npy", np.random.default_rng(0).random((10, 3)).astype(np.float32))
    ds = load_dataset(nat)
    model = Model("duif", epochs=1, dim=4, backend="numpy").fit(ds, split=ds.split(n_negatives=3))
    row = np.ones((1, 3), np.float32)
    model.add_items([10], row)                      # index ids: the next index keeps them so
    assert model.item_ids is None and model.header["n_items"] == 11
    model.add_items(["SKU-9"], row)
    assert model.item_ids.tolist() == [str(k) for k in range(11)] + ["SKU-9"]
    assert model.recommend(0, 12, exclude_seen=False)[0].tolist().count("SKU-9") == 1
    with pytest.raises(AmrliteError, match="id '3' is already an item"):
        model.add_items([3], row)
