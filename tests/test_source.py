"""Train on everything, temporal splits, and every command reusing the data a model was
trained on (its recorded absolute path and load options), from any working directory."""
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from amrlite import Model, evaluate, load_dataset
from amrlite.containers import Split
from amrlite.errors import AmrliteError
from amrlite.recommender import fit_chain, model_data, pretraining_chain, trained_epochs
from amrlite.splits import temporal

from helpers import one_line_error
from helpers import run_cli as run


def ok(*args):
    r = run(*args)
    assert r.exit_code == 0, r.output
    return r


@pytest.fixture
def shop(tmp_path):
    """``shop/orders.csv`` (string ids, a quantity, ISO order times in two zones) and
    ``shop/X.npz`` (features keyed by sku, in another order than the log)."""
    rng = np.random.default_rng(3)
    d = tmp_path / "shop"
    d.mkdir()
    skus = [f"SKU-{k:04X}" for k in range(40)]
    lines = ["customer_id,sku,quantity,ordered_at"]
    for u in range(50):
        for n, k in enumerate(rng.choice(40, size=rng.integers(4, 9), replace=False)):
            zone = "+02:00" if (u + n) % 2 else "Z"
            lines.append(f"C-{u:06d},{skus[k]},{rng.integers(1, 4)},"
                         f"2024-03-{1 + n:02d}T{rng.integers(0, 24):02d}:15:00{zone}")
    (d / "orders.csv").write_text("\n".join(lines) + "\n")
    perm = rng.permutation(40)
    np.savez(d / "X.npz", ids=np.array(skus)[perm],
             features=rng.standard_normal((40, 6)).astype(np.float32))
    return d


# ---------------------------------------------------------------- --split none

def test_split_none_trains_on_every_interaction_like_the_union(shop):
    ds = load_dataset(shop / "orders.csv", features=shop / "X.npz")
    none = ds.split("none")
    assert none.valid is None and none.test is None and none.n_train == ds.n_interactions
    loo = ds.split("loo", n_negatives=5)
    union = Split("union", ds.n_users, ds.n_items,
                  np.concatenate([loo.train_users, loo.valid.users, loo.test.users]),
                  np.concatenate([loo.train_items, loo.valid.items, loo.test.items]), None, None)
    for a, b in zip(none.train_csr, union.train_csr):     # nothing held out, nothing dropped
        np.testing.assert_array_equal(a, b)
    same_order = Split("all", ds.n_users, ds.n_items, ds.users, ds.items, None, None)
    a = Model("vbpr", backend="numpy", epochs=3, eval_every=1).fit(ds, split="none")
    b = Model("vbpr", backend="numpy", epochs=3, eval_every=1).fit(
        same_order, features=ds.features)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert a.history.best_epoch is None and a.history.kept_epoch == 3 and not a.history.evaluations
    assert a.header["split"] == "none" and a.header["n_negatives"] is None
    with pytest.raises(AmrliteError, match="holds nothing out"):
        evaluate(a, ds, "none")


def test_fit_split_none_cli_says_so_and_writes_strict_json(shop, tmp_path):
    out = tmp_path / "m.json"
    r = ok("fit", "--data", shop / "orders.csv", "--split", "none", "--model", "mf", "--epochs",
           "2", "--backend", "numpy", "-q", "--metrics-out", out, "--out", tmp_path / "m.npz")
    n = load_dataset(shop / "orders.csv").n_interactions
    assert f"trained on all {n} interactions" in r.output and "no held-out rows" in r.output
    assert "NDCG" not in r.output
    rec = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(c))
    assert rec["evaluated"] is False and rec["n_train"] == n and rec["split"] == "none"
    assert "NDCG@10" not in rec and rec["epochs"] == 2
    one_line_error(run("evaluate", tmp_path / "m.npz"), "trained on every interaction")
    r = ok("evaluate", tmp_path / "m.npz", "--split", "loo", "--negatives", "5")
    assert "may overlap" in r.output and "sampled-5" in r.output


def test_epochs_from_a_validated_chain(shop, tmp_path):
    ds = load_dataset(shop / "orders.csv", features=shop / "X.npz")
    chain = fit_chain(pretraining_chain("amr"), ds, ds.split("loo", n_negatives=5),
                      backend="numpy", hyper={"epochs": 4, "eval_every": 1})
    amr = chain[-1]
    stages = amr.header["stages"]
    assert [s["kind"] for s in stages] == ["mf", "vbpr", "amr"]
    assert [s["kept_epoch"] for s in stages] == [m.history.best_epoch for m in chain]
    assert trained_epochs(amr, "mf") == chain[0].history.best_epoch
    amr.save(tmp_path / "amr.npz")
    r = ok("fit", "--data", shop / "orders.csv", "--features", shop / "X.npz", "--split", "none",
           "--epochs-from", tmp_path / "amr.npz", "--backend", "numpy", "-q",
           "--out", tmp_path / "prod.npz")
    for m in chain:
        assert f"training {m.spec.label} on split 'none' (backend numpy; epochs " \
               f"{m.history.best_epoch}," in r.output
    prod = Model.load(tmp_path / "prod.npz")
    assert [s["epochs_run"] for s in prod.header["stages"]] == [s["kept_epoch"] for s in stages]
    one_line_error(run("fit", "--epochs", "3", "--epochs-from", tmp_path / "amr.npz"),
                   "--epochs and --epochs-from")
    mf = Model("mf", backend="numpy", epochs=1).fit(ds, split=ds.split("loo", n_negatives=5))
    mf.save(tmp_path / "mf.npz")
    r = run("fit", "--model", "amr", "--epochs-from", tmp_path / "mf.npz")
    one_line_error(r, "--epochs-from:", "records no vbpr run")
    assert "training MF-BPR" not in r.output     # refused before the first stage trained


# ---------------------------------------------------------------- --split temporal

def epoch(text):
    return datetime.fromisoformat(text).astimezone(timezone.utc).timestamp()


TEMPORAL = """user,item,quantity,ordered_at
C1,a,1,2024-03-01T10:00:00+02:00
C1,b,2,2024-03-01T08:30:00Z
C1,c,1,1709280000
C1,d,1,2024-03-01T09:00:00+00:00
C2,z,1,2024-03-01
C2,x,1,2024-03-02T12:00:00+01:00
C2,y,1,2024-03-02T11:00:00Z
C2,z,3,2024-03-05T00:00:00Z
C3,e,1,2024-03-01T00:00:00Z
C4,e,1,2024-03-01T00:00:00Z
C4,f,1,2024-03-02T00:00:00Z
"""


def test_temporal_split_honours_zones_epochs_ties_and_repeats(tmp_path):
    (tmp_path / "o.csv").write_text(TEMPORAL)
    with pytest.warns(UserWarning, match="dropped 1 duplicate"):
        ds = load_dataset(tmp_path / "o.csv")
    assert "o.csv: ignored columns: quantity" in ds.notes
    t = dict(zip(zip(ds.user_ids[ds.users], ds.item_ids[ds.items]), ds.times))
    assert t[("C1", "a")] == t[("C1", "c")] == epoch("2024-03-01T08:00:00+00:00")  # zone honoured
    assert t[("C2", "x")] == t[("C2", "y")]                                         # a tie
    assert t[("C2", "z")] == epoch("2024-03-01T00:00:00+00:00")   # a repeat keeps its earliest
    sp = ds.split("temporal", n_negatives=2)
    name = lambda rows: {(ds.user_ids[u], ds.item_ids[i])  # noqa: E731
                         for u, i in zip(rows.users, rows.items)}
    # C1 by time: a (08:00Z) = c (08:00Z, later in the file), b (08:30Z), d (09:00Z)
    # C2: z (03-01), x = y (11:00Z; y later in the file)
    assert name(sp.test) == {("C1", "d"), ("C2", "y")}
    assert name(sp.valid) == {("C1", "b"), ("C2", "x")}
    assert sp.n_train == ds.n_interactions - 4 and sp.seed == 2019
    assert sp.notes == ["split 'temporal': 2 user(s) with fewer than 3 interactions keep them "
                        "all in training (no test or validation row)"]
    assert sp.test.negatives.shape == (2, 2)
    seen = set(zip(ds.users.tolist(), ds.items.tolist()))
    assert not any((u, j) in seen for u, row in zip(sp.test.users, sp.test.negatives)
                   for j in row)


def test_temporal_split_function_breaks_ties_by_position():
    users = np.array([0, 0, 0, 0])
    items = np.array([0, 1, 2, 3])
    sp = temporal(1, 6, users, items, [5.0, 5.0, 5.0, 1.0], n_negatives=0)
    assert sp.test.items.tolist() == [2] and sp.valid.items.tolist() == [1]
    assert sp.test.negatives is None


@pytest.mark.filterwarnings("ignore:.*duplicate")
def test_bad_or_missing_time_values(tmp_path):
    (tmp_path / "o.csv").write_text(TEMPORAL.replace("2024-03-01T08:30:00Z", "yesterday"))
    ds = load_dataset(tmp_path / "o.csv")                  # loo needs no times
    assert ds.times is None
    assert any("o.csv:3: field 'ordered_at': not a time: 'yesterday'" in n for n in ds.notes)
    with pytest.raises(AmrliteError, match=r"^[^\n]*o.csv:3: field 'ordered_at': not a time: "
                                           r"'yesterday' \(epoch seconds or ISO 8601"):
        ds.split("temporal")
    one_line_error(run("fit", "--data", tmp_path / "o.csv", "--split", "temporal"),
                   "o.csv:3: field 'ordered_at': not a time: 'yesterday'")
    one_line_error(run("fit", "--data", tmp_path / "o.csv", "--time-col", "ordered_at"),
                   "o.csv:3: field 'ordered_at': not a time")
    (tmp_path / "n.csv").write_text("user,item,rating\nu,a,1\nu,b,2\nu,c,3\n")
    ds = load_dataset(tmp_path / "n.csv")
    assert "n.csv: ignored columns: rating" in ds.notes
    assert "n.csv: ignored columns: rating" not in load_dataset(tmp_path / "n.csv",
                                                                min_rating=1).notes
    with pytest.raises(AmrliteError, match="has no time column"):
        ds.split("temporal")


@pytest.mark.parametrize("column", ["ordered_at", "created_at", "date", "datetime"])
def test_time_columns_recognised_by_name(tmp_path, column):
    (tmp_path / "o.csv").write_text(f"customer,sku,{column}\nu,a,2024-01-02\nu,b,2024-01-01\n")
    ds = load_dataset(tmp_path / "o.csv")
    assert ds.times.tolist() == [epoch("2024-01-02T00:00:00+00:00"),
                                 epoch("2024-01-01T00:00:00+00:00")]
    assert not any("ignored" in n for n in ds.notes)


def test_native_folder_times(shared_data):
    ds = load_dataset(shared_data / "ml100k")
    assert ds.times is not None and ds.times.shape == (ds.n_interactions,)
    sp = ds.split("temporal", n_negatives=5)
    last = {}
    for u, t in zip(ds.users, ds.times):
        last[u] = max(last.get(u, -np.inf), t)
    assert all(ds.times[np.flatnonzero((ds.users == u) & (ds.items == i))[0]] == last[u]
               for u, i in zip(sp.test.users[:50], sp.test.items[:50]))


# ---------------------------------------------------------------- the model's data

@pytest.fixture
def trained(shop, monkeypatch):
    """A VBPR model trained from the shop folder with relative paths, string ids and options."""
    monkeypatch.chdir(shop)
    ok("fit", "--data", "orders.csv", "--features", "X.npz", "--normalize", "l2", "--model",
       "vbpr", "--split", "temporal", "--negatives", "7", "--epochs", "2", "--backend", "numpy",
       "-q", "--out", "vbpr.npz", "--metrics-out", "fit.json")
    elsewhere = shop.parent / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return shop / "vbpr.npz"


def test_the_model_records_absolute_paths_and_every_option(trained, shop):
    h = Model.load(trained).header
    assert h["dataset"] == str((shop / "orders.csv").resolve())
    assert h["load_options"] == {"features": str((shop / "X.npz").resolve()), "normalize": "l2"}
    assert (h["split"], h["n_negatives"], h["split_seed"]) == ("temporal", 7, 2019)


def test_every_command_reuses_the_data_from_another_folder(trained, shop):
    fit_ndcg = json.loads((shop / "fit.json").read_text())["NDCG@10"]
    r = ok("evaluate", trained, "--metrics-out", "e.json")
    assert "sampled-7" in r.output and "split 'temporal'" in r.output
    assert json.loads(open("e.json").read())["NDCG@10"] == pytest.approx(fit_ndcg)
    ok("compare", trained, trained)
    ok("attack", trained, "--eps", "0.5", "--objective", "train")
    ok("recommend", trained, "--user", "C-000001", "-n", "3")
    r = ok("evaluate", trained, "--negatives", "3")                  # explicit override
    assert "sampled-3" in r.output
    ds, sp = model_data(Model.load(trained), n_negatives=3)
    assert sp.test.negatives.shape[1] == 3 and ds.feature_info[0]["normalize"] == "l2"


def test_fit_init_without_data_trains_on_the_init_models_data(trained, shop):
    r = ok("fit", "--model", "amr", "--init", trained, "--epochs", "1", "--backend", "numpy",
           "-q", "--out", "amr.npz")
    assert f"data: {(shop / 'orders.csv').resolve()}" in r.output
    assert "training AMR on split 'temporal'" in r.output
    a, v = Model.load("amr.npz").header, Model.load(trained).header
    assert (a["fingerprint"], a["features"], a["n_negatives"]) == \
        (v["fingerprint"], v["features"], v["n_negatives"])
    assert [s["kind"] for s in a["stages"]] == ["vbpr", "amr"]


def test_data_replaces_only_the_path_and_a_mismatch_names_the_option(trained, shop):
    copy = shop.parent / "copy.csv"
    copy.write_text((shop / "orders.csv").read_text())
    ok("compare", trained, trained, "--data", copy)                 # same data, features reused
    rng = np.random.default_rng(0)
    np.savez(shop / "Y.npz", ids=np.load(shop / "X.npz")["ids"],
             features=rng.standard_normal((40, 3)).astype(np.float32))
    one_line_error(run("compare", trained, trained, "--data", copy, "--features", shop / "Y.npz"),
                   "--features: the model was trained with X (l2), the data set has Y (l2)")
    one_line_error(run("evaluate", trained, "--normalize", "none"),
                   "--normalize: the model was trained with X (l2), the data set has X")
    one_line_error(run("attack", trained, "--id-order", "sorted"),
                   "--id-order: the model was trained with 'first'; with 'sorted' the data set "
                   "differs")
    other = shop.parent / "other.csv"
    other.write_text("\n".join((shop / "orders.csv").read_text().splitlines()[:-1]) + "\n")
    one_line_error(run("evaluate", trained, "--data", other),
                   f"--data: the model was trained on {(shop / 'orders.csv').resolve()}; "
                   f"{other} holds other data")
    with pytest.raises(AmrliteError) as exc:
        model_data(Model.load(trained), features=str(shop / "Y.npz"))
    assert exc.value.param == "features" and str(exc.value).startswith("option 'features': ")


def test_a_moved_data_set_and_an_old_relative_path(trained, shop, monkeypatch):
    model = Model.load(trained)
    (shop / "orders.csv").rename(shop / "moved.csv")
    one_line_error(run("evaluate", trained), "--data: the model was trained on",
                   "which is not there any more")
    ok("evaluate", trained, "--data", shop / "moved.csv")
    model.header["dataset"] = "moved.csv"                         # an older model's record
    model.header["load_options"] = {"features": "X.npz", "normalize": "l2"}
    model.save(shop / "old.npz")
    monkeypatch.chdir(shop)
    ok("evaluate", "old.npz")


@pytest.mark.parametrize("command", ["evaluate", "compare", "attack", "attack-images"])
def test_help_says_the_default_is_the_models_data(command):
    r = ok(command, "--help")
    text = " ".join(r.output.split())
    assert "Default: the data set the model was trained on" in text
    assert "synthetic" not in text


def test_epochs_from_a_model_of_an_older_amrlite(tmp_path):
    old = Model.load(Path(__file__).parent / "data" / "saved-mf-eq4.npz")   # no stages
    assert old.config.eval_every == 0 and trained_epochs(old) == old.config.epochs
    old.config.eval_every = 1                                     # validated: epoch unknown
    with pytest.raises(AmrliteError, match="does not record which epoch") as exc:
        trained_epochs(old)
    assert exc.value.param == "epochs_from"


def test_the_data_of_a_model_with_added_items(trained):
    model = Model.load(trained)
    n = model.header["n_items"]
    model.add_items(["SKU-NEW"], np.ones((1, 6), np.float32))
    ds, sp = model_data(model)                       # its first n items are the data set's
    assert ds.n_items == n and model.header["n_items"] == n + 1
    assert sp.name == "temporal"
