"""Real-world data in (issue 10): raw ids, modalities, chosen negatives, nothing silently wrong.

Every file here is written by the test (nothing from MovieLens is copied); the shared ml100k
set is read where present.
"""
import json
import math

import numpy as np
import pytest

from amrlite import Model, evaluate, load_dataset
from amrlite.errors import AmrliteError
from amrlite.jsonio import dumps, write_json

from helpers import one_line_error, read_model_file, write_model_file
from helpers import run_cli as run


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def amazon(tmp_path):
    """An Amazon-style review log (string ids) and an .npz of item features aligned by id."""
    rng = np.random.default_rng(0)
    users = [f"A{k:03d}X" for k in range(60)]
    items = [f"B{k:04d}" for k in range(120)]
    lines = ["reviewerID,asin,overall,unixReviewTime"]
    for u in users:
        for i in rng.choice(120, rng.integers(5, 12), replace=False):
            lines.append(f"{u},{items[i]},{rng.integers(1, 6)}.0,{rng.integers(10**9, 2 * 10**9)}")
    write(tmp_path / "reviews.csv", "\n".join(lines) + "\n")
    feats = rng.standard_normal((120, 8)).astype(np.float32)
    perm = rng.permutation(120)                    # the file's order is not the data's
    np.savez(tmp_path / "feats.npz", ids=np.array(items)[perm], features=feats[perm])
    return tmp_path, dict(zip(items, feats))


# ---------------------------------------------------------------- raw ids

def test_string_ids_and_features_aligned_by_id(amazon):
    d, truth = amazon
    ds = load_dataset(d / "reviews.csv", features=d / "feats.npz")
    assert ds.user_ids.dtype.kind == "U" and ds.user_ids[0] == "A000X"
    n_log = len(np.unique(ds.items))          # the log's items come first, then the catalogue's
    assert ds.n_users == 60 and ds.n_items == len(ds.item_ids) == 120 and n_log < 120
    assert set(ds.items.tolist()) == set(range(n_log))
    for k in (0, 7, ds.n_items - 1):                 # row k = the item whose raw id is item_ids[k]
        np.testing.assert_array_equal(ds.features[k], truth[ds.item_ids[k]])
    assert any("string user ids mapped" in n for n in ds.notes)
    s = ds.split("loo", n_negatives=20)
    assert s.test.negatives.max() < ds.n_items
    srt = load_dataset(d / "reviews.csv", id_order="sorted")
    assert list(srt.item_ids) == sorted(srt.item_ids)


def test_items_file_aligns_an_npy_by_id(tmp_path):
    write(tmp_path / "s.csv", "customer,sku\nc1,x\nc1,y\nc2,y\nc2,z\n")
    write(tmp_path / "items.csv", "sku,title\nz,Zed\ny,Why\nx,Ex\n")
    np.save(tmp_path / "f.npy", np.array([[3, 3], [2, 2], [1, 1]], np.float32))
    ds = load_dataset(tmp_path / "s.csv", features=tmp_path / "f.npy", items=tmp_path / "items.csv")
    assert ds.item_ids.tolist() == ["x", "y", "z"]
    assert ds.features[:, 0].tolist() == [1, 2, 3]


def test_gapped_integer_ids_are_mapped_so_no_phantom_item_is_a_negative(tmp_path):
    rng = np.random.default_rng(3)
    movies = rng.choice(np.arange(1, 193_610), 300, replace=False)
    rows = ["userId,movieId,rating,timestamp"]
    for u in range(1, 41):
        rows += [f"{u},{m},4.0,{t}" for t, m in enumerate(rng.choice(movies, 15, replace=False))]
    write(tmp_path / "ratings.csv", "\n".join(rows) + "\n")
    ds = load_dataset(tmp_path / "ratings.csv")
    seen = np.unique(ds.items)
    assert ds.n_items == len(seen) <= 300 and ds.n_users == 40       # not 193,610 / 41
    assert ds.user_ids.dtype.kind == "i" and ds.user_ids.min() == 1
    assert any("not 0..n-1 contiguous" in n for n in ds.notes)
    neg = ds.split("loo").test.negatives
    assert np.isin(neg, seen).all()                  # every negative is an item that occurs
    assert ds.user_index("1") == ds.user_index(1) == 0


def test_contiguous_integer_ids_stay_indices(tmp_path):
    write(tmp_path / "a.csv", "user_id,item_id\n1,0\n0,2\n0,1\n")
    ds = load_dataset(tmp_path / "a.csv")
    assert ds.user_ids is None and ds.item_ids is None
    assert ds.users.tolist() == [1, 0, 0] and ds.items.tolist() == [0, 2, 1]


def test_columns_given_by_name_or_number(tmp_path):
    write(tmp_path / "t.tsv", "when\twho\twhat\n1\tu1\ti1\n2\tu2\ti1\n")
    ds = load_dataset(tmp_path / "t.tsv", user_col="who", item_col="what")
    assert ds.user_ids.tolist() == ["u1", "u2"] and ds.item_ids.tolist() == ["i1"]
    ds = load_dataset(tmp_path / "t.tsv", user_col="2", item_col="3")
    assert ds.n_users == 2
    with pytest.raises(AmrliteError, match=r"t.tsv:1: field 'user-col': no column 'nobody'"):
        load_dataset(tmp_path / "t.tsv", user_col="nobody")


def test_min_rating_and_k_core_counts_by_hand(tmp_path):
    # ratings: u1 rates a..d, u2 a,b,e, u3 a, u4 e  (5 = kept by --min-rating 4 unless noted)
    write(tmp_path / "r.csv", "user,item,rating\n"
          "u1,a,5\nu1,b,5\nu1,c,5\nu1,d,2\n"        # u1,d dropped by the rating
          "u2,a,4\nu2,b,4\nu2,e,5\n"
          "u3,a,5\nu3,c,1\n"                       # u3,c dropped by the rating
          "u4,e,5\n")
    ds = load_dataset(tmp_path / "r.csv", min_rating=4)
    f = ds.filters
    assert (f["rows"], f["after_min_rating"], ds.n_interactions) == (10, 8, 8)
    # 2-core of the 8: items a(3) b(2) c(1) e(2); users u1(3) u2(3) u3(1) u4(1)
    # round 1 drops c, u3, u4 -> u1{a,b} u2{a,b,e}; e now has 1 -> round 2 drops e -> stable
    ds = load_dataset(tmp_path / "r.csv", min_rating=4, k_core=2)
    f = ds.filters
    assert (f["after_k_core"], f["k_core_rounds"], ds.n_users, ds.n_items) == (4, 2, 2, 2)
    assert sorted(ds.item_ids.tolist()) == ["a", "b"]
    assert any("in the 2-core" in n for n in ds.notes)
    with pytest.raises(AmrliteError, match="no interactions left after --min-rating 6"):
        load_dataset(tmp_path / "r.csv", min_rating=6)
    write(tmp_path / "nor.csv", "user,item\nu1,a\n")
    with pytest.raises(AmrliteError, match="min_rating needs a rating column"):
        load_dataset(tmp_path / "nor.csv", min_rating=4)
    write(tmp_path / "bad.csv", "user,item,rating\nu1,a,5\nu2,a,x\n")
    with pytest.raises(AmrliteError, match=r"bad.csv:3: field 'rating': not a number: 'x'"):
        load_dataset(tmp_path / "bad.csv", min_rating=4)


def test_filters_in_the_model_header(tmp_path, amazon):
    d, _ = amazon
    r = run("fit", "--data", d / "reviews.csv", "--features", d / "feats.npz", "--model", "mf",
            "--epochs", "1", "--backend", "numpy", "--min-rating", "3", "--k-core", "2",
            "--negatives", "10", "-q", "--out", d / "m.npz")
    assert r.exit_code == 0, r.output
    h = Model.load(d / "m.npz").header
    assert h["filters"]["min_rating"] == 3 and h["filters"]["k_core"] == 2
    assert h["n_negatives"] == 10 and h["load_options"]["k_core"] == 2
    assert "in the 2-core" in r.output


def test_missing_features(tmp_path):
    write(tmp_path / "s.csv", "user,item\nu1,a\nu1,b\nu2,c\n")
    np.savez(tmp_path / "f.npz", ids=np.array(["a", "b"]), features=np.ones((2, 3), np.float32))
    with pytest.raises(AmrliteError, match=r"f.npz: field 'f': no feature row for item 'c' "
                                           r"\(1 of 3 items"):
        load_dataset(tmp_path / "s.csv", features=tmp_path / "f.npz")
    ds = load_dataset(tmp_path / "s.csv", features=tmp_path / "f.npz", missing_features="zero")
    assert ds.feature_info[0]["missing"] == 1 and ds.features[2].tolist() == [0, 0, 0]
    np.save(tmp_path / "g.npy", np.ones((3, 2), np.float32))
    with pytest.raises(AmrliteError, match=r"s.csv:2: field 'item': item id 'a' is not an integer "
                                           r"row number of g.npy"):
        load_dataset(tmp_path / "s.csv", features=tmp_path / "g.npy")


def test_recommend_takes_and_prints_raw_ids_and_evaluate_checks_them(amazon):
    d, _ = amazon
    m = d / "vbpr.npz"
    r = run("fit", "--data", d / "reviews.csv", "--features", d / "feats.npz", "--model", "vbpr",
            "--epochs", "2", "--backend", "numpy", "--negatives", "30", "-q", "--out", m)
    assert r.exit_code == 0, r.output
    r = run("recommend", m, "--user", "A005X", "-n", "3")
    assert r.exit_code == 0 and len(r.output.splitlines()) == 3
    assert all(line.split()[2].startswith("B") for line in r.output.splitlines())
    model = Model.load(m)
    items, _ = model.recommend("A005X", 3)
    assert items.dtype.kind == "U"
    one_line_error(run("recommend", m, "--user", "5"), "--user 5: no such user")
    r = run("recommend", m, "--user", "A005X", "-n", "0")
    assert r.exit_code == 2 and "0 is not in the range x>=1" in r.output
    r = run("evaluate", m)                           # same file, options from the model
    assert r.exit_code == 0, r.output
    assert "sampled-30" in r.output
    other = load_dataset(d / "reviews.csv", features=d / "feats.npz", id_order="sorted")
    with pytest.raises(AmrliteError, match="another data set|user ids differ"):
        evaluate(model, other, other.split("loo", n_negatives=30))


def test_native_model_saved_before_id_maps_loads_and_scores_identically(tmp_path):
    """A model .npz of the old format (no id maps, no new header keys) still loads the same."""
    ds = load_dataset()
    model = Model("vbpr", backend="numpy", epochs=1, eval_every=0).fit(ds)
    model.save(tmp_path / "new.npz")
    header, arrays = read_model_file(tmp_path / "new.npz")
    for k in ("features", "filters", "load_options", "raw_ids", "n_negatives"):
        header.pop(k)
    write_model_file(tmp_path / "old.npz", header, arrays)
    old = Model.load(tmp_path / "old.npz")
    assert old.user_ids is None and old.item_ids is None
    np.testing.assert_array_equal(old.score([0, 1], [2, 3]), model.score([0, 1], [2, 3]))
    assert evaluate(old, ds) == evaluate(model, ds)
    items, _ = old.recommend(0, 5)
    assert items.dtype.kind == "i"


# ---------------------------------------------------------------- ids beyond the index type

@pytest.mark.parametrize("rows,field,value", [
    ("0,0\n1000000000000,1\n", "user", "1000000000000"),
    ("0,0\n4294967301,1\n", "user", "4294967301"),
    ("0,0\n1,100000000000\n", "item", "100000000000"),
    ("0,0\n1,123456789012345678901234567890\n", "item", "123456789012345678901234567890"),
])
def test_native_ids_beyond_int32_are_one_line_errors(tmp_path, rows, field, value):
    write(tmp_path / "ds" / "interactions.csv", "user,item\n" + rows)
    r = run("fit", "--data", tmp_path / "ds", "--model", "mf", "-q")
    one_line_error(r, "interactions.csv:3:", f"field '{field}'", f"id {value} is beyond the index")


def test_native_phantom_ids_are_errors(tmp_path):
    write(tmp_path / "ds" / "interactions.csv", "user,item\n0,0\n1,5\n")
    with pytest.raises(AmrliteError, match=r"interactions.csv:3: field 'item': item 5, but index 1 "
                                           r"\(and 3 more below 5\) has no interaction"):
        load_dataset(tmp_path / "ds")
    write(tmp_path / "ds" / "items.csv", "item\n0\n1\n2\n3\n4\n5\n")     # now they are real items
    assert load_dataset(tmp_path / "ds").n_items == 6
    write(tmp_path / "ds" / "interactions.csv", "user,item\n0,0\n7,1\n")
    with pytest.raises(AmrliteError, match=r"field 'user': user 7, but index 1"):
        load_dataset(tmp_path / "ds")


def test_raw_file_with_huge_ids_is_mapped(tmp_path):
    write(tmp_path / "big.csv", "user,item\n1000000000000,4294967301\n1000000000000,7\n"
          "5,7\n5,100000000000\n5,8\n1000000000000,8\n")
    ds = load_dataset(tmp_path / "big.csv")
    assert (ds.n_users, ds.n_items) == (2, 4)
    assert ds.user_ids.tolist() == [10**12, 5]


# ---------------------------------------------------------------- small and degenerate data

def test_tiny_movielens_file_is_a_one_line_error(tmp_path):
    write(tmp_path / "tiny.csv", "userId,movieId,rating,timestamp\n1,10,4.0,1\n1,20,3.0,2\n")
    one_line_error(run("fit", "--data", tmp_path / "tiny.csv", "--model", "mf", "-q"),
                   "no test rows", "fewer than 3 interactions")


def test_user_who_saw_every_training_item_is_an_error_not_a_traceback():
    from amrlite import EvalRows, Split
    one = np.array([0], np.int32)
    sp = Split("s", 2, 3, train_users=np.array([0, 0, 1], np.int32),
               train_items=np.array([0, 1, 0], np.int32), valid=None,
               test=EvalRows(one, np.array([2], np.int32)))
    with pytest.raises(AmrliteError, match=r"user 0 has interacted with all 2 training items, "
                                           r"so BPR has no negative to draw"):
        Model("mf", backend="numpy", epochs=1).fit(sp)


def _few_items(tmp_path, n_items=40, n_users=30, per_user=6):
    rng = np.random.default_rng(5)
    rows = [f"user{u},item{i}" for u in range(n_users)
            for i in rng.choice(n_items, per_user, replace=False)]
    return write(tmp_path / "few.csv", "user,item\n" + "\n".join(rows) + "\n")


def test_fewer_than_100_items_with_chosen_negatives(tmp_path):
    f = _few_items(tmp_path)
    r = run("fit", "--data", f, "--model", "mf", "-q")
    err = one_line_error(r, "only", "lower --negatives (at most")
    assert "user 'user" in err                       # the raw id
    r = run("fit", "--data", f, "--model", "mf", "-q", "--negatives", "20", "--epochs", "1",
            "--backend", "numpy")
    assert r.exit_code == 0 and "sampled-20" in r.output


def test_negatives_999_on_a_generated_split(tmp_path):
    rng = np.random.default_rng(2)
    rows = [f"{u},{i}" for u in range(100) for i in rng.choice(1500, 25, replace=False)]
    f = write(tmp_path / "wide.csv", "user,item\n" + "\n".join(rows) + "\n")
    ds = load_dataset(f)
    s = ds.split("loo", n_negatives=999)
    assert ds.n_items > 1000 and s.test.negatives.shape == (100, 999)
    assert all(len(set(r)) == 999 for r in s.test.negatives.tolist())
    r = run("fit", "--data", f, "--model", "mf", "--epochs", "1", "--backend", "numpy", "-q",
            "--negatives", "999", "--out", tmp_path / "m.npz")
    assert r.exit_code == 0 and "sampled-999" in r.output
    assert Model.load(tmp_path / "m.npz").header["n_negatives"] == 999
    assert "sampled-999" in run("evaluate", tmp_path / "m.npz").output   # taken from the model


def test_sparse_option_is_the_sparse_split(tmp_path):
    f = _few_items(tmp_path, n_items=300, per_user=12)
    ds = load_dataset(f)
    r = run("fit", "--data", f, "--model", "mf", "--epochs", "1", "--backend", "numpy", "-q",
            "--sparse", "3", "--negatives", "50")
    assert r.exit_code == 0 and "split 'sparse3'" in r.output
    assert np.bincount(ds.split("sparse3", n_negatives=50).train_users).max() == 3
    one_line_error(run("fit", "--data", f, "--sparse", "3", "--split", "cold", "-q"),
                   "give one of them")


# ---------------------------------------------------------------- official layout

def _official(tmp_path, neg):
    d = tmp_path / "amr"
    write(d / "pos.txt", "0 1\n0 2\n1 0\n1 3\n2 4\n2 1\n")
    write(d / "neg.txt", neg)
    return d


def test_official_neg_txt_is_the_default_split(tmp_path):
    d = _official(tmp_path, "3 4 5\n1 4 5\n0 3 5\n")
    ds = load_dataset(d)
    assert ds.default_split == "official" and ds.split().name == "official"
    r = run("fit", "--data", d, "--model", "mf", "--epochs", "1", "--backend", "numpy", "-q",
            "--negatives", "0", "--eval-every", "0")
    assert r.exit_code == 0 and "split 'official'" in r.output


@pytest.mark.parametrize("neg,pieces", [
    ("3 4 5\n1 4 5\n", ["neg.txt: 2 rows, but pos.txt has 3 users"]),
    ("3 4 3\n1 4 5\n0 3 5\n", ["neg.txt:1:", "negative item 3 is the row's own positive"]),
    ("3 4 5\n5 4 0\n0 3 5\n", ["neg.txt:2:", "negative item 0 is a training positive of user 1"]),
    ("3 4 5\n5 4 4\n0 3 5\n", ["neg.txt:2:", "item 4 occurs twice"]),
])
def test_bad_official_neg_txt(tmp_path, neg, pieces):
    r = run("fit", "--data", _official(tmp_path, neg), "--model", "mf", "-q")
    one_line_error(r, *pieces)


# ---------------------------------------------------------------- modalities

@pytest.fixture
def modal(tmp_path):
    d = tmp_path / "mm"
    rng = np.random.default_rng(0)
    rows = [f"{u},{i}" for u in range(40) for i in rng.choice(60, 8, replace=False)]
    write(d / "interactions.csv", "user,item\n" + "\n".join(rows) + "\n")
    np.save(d / "features.npy", rng.standard_normal((60, 4)).astype(np.float32))
    img = rng.random((60, 6)).astype(np.float32) * 10
    img[[3, 7]] = 0                                   # two items without an image
    np.save(d / "features-image.npy", img)
    return d


def test_modalities_pick_and_concatenate(modal):
    assert load_dataset(modal).n_features == 4
    img = load_dataset(modal, features="image", normalize="l2")
    assert img.n_features == 6 and img.feature_info[0]["zero_rows"] == 2
    np.testing.assert_allclose(np.linalg.norm(img.features[[0, 1]], axis=1), 1, rtol=1e-6)
    both = load_dataset(modal, features="image,text", normalize="image=l2,text=none")
    assert both.n_features == 10 and [m["name"] for m in both.feature_info] == ["image", "text"]
    np.testing.assert_allclose(both.features[:, :6], img.features, rtol=1e-6)
    np.testing.assert_allclose(both.features[:, 6:], np.load(modal / "features.npy"))
    with pytest.raises(AmrliteError, match=r"field 'features': no feature modality 'audio'.*"
                                           r"available: default \(features.npy\), image"):
        load_dataset(modal, features="audio")
    with pytest.raises(AmrliteError, match="option 'normalize': no modality 'audio'"):
        load_dataset(modal, features="image", normalize="audio=l2")
    path = load_dataset(modal, features=str(modal / "features-image.npy"))   # a path still works
    assert path.n_features == 6


def test_model_trained_on_image_refuses_text(modal, tmp_path):
    m = tmp_path / "img.npz"
    r = run("fit", "--data", modal, "--features", "image", "--normalize", "l2", "--model", "vbpr",
            "--epochs", "1", "--backend", "numpy", "--negatives", "20", "-q", "--out", m)
    assert r.exit_code == 0, r.output
    assert "2 all-zero rows = items without image content" in r.output
    h = Model.load(m).header
    assert [(f["name"], f["dim"]) for f in h["features"]] == [("image", 6)]
    assert run("evaluate", m).exit_code == 0          # the model's modalities by default
    one_line_error(run("evaluate", m, "--features", "text"),
                   "--features: the model was trained with image (l2), the data set has text")
    one_line_error(run("evaluate", m, "--normalize", "none"),
                   "--normalize: the model was trained with image (l2), the data set has image")


# ---------------------------------------------------------------- strict JSON

def test_jsonio_never_writes_nan(tmp_path):
    obj = {"a": float("nan"), "b": [float("inf"), -math.inf, 1.5], "c": np.float32(2),
           "d": np.arange(2)}
    assert dumps(obj) == '{"a": null, "b": [null, null, 1.5], "c": 2.0, "d": [0, 1]}'
    write_json(tmp_path / "x.json", obj)
    json.loads((tmp_path / "x.json").read_text(), parse_constant=_reject)


def _reject(name):
    raise ValueError(f"non-standard JSON constant {name}")


def test_metrics_out_of_an_empty_part_is_strict_json(tmp_path, modal):
    out = tmp_path / "m.json"
    r = run("fit", "--data", modal, "--split", "cold", "--model", "vbpr", "--epochs", "1",
            "--backend", "numpy", "--negatives", "5", "-q", "--metrics-out", out)
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text(), parse_constant=_reject)
    assert res["n"]["warm"] == 0 and res["warm"]["HR@10"] is None


# ---------------------------------------------------------------- the shared ml100k set

@pytest.mark.slow
@pytest.mark.parametrize("features", ["image", "image,text"])
def test_ml100k_image_features_train_vbpr_and_amr(shared_data, features, tmp_path):
    d = shared_data / "ml100k"
    if not (d / "features-image.npy").is_file():
        pytest.skip("ml100k has no features-image.npy")
    r = run("fit", "--data", d, "--features", features, "--normalize", "l2", "--split", "sparse3",
            "--epochs", "1", "--eval-every", "0", "--backend", "numpy", "-q",
            "--out", tmp_path / "amr.npz")
    assert r.exit_code == 0, r.output
    assert "training VBPR" in r.output and "training AMR" in r.output
    dims = {"image": 1280, "image,text": 1664}[features]
    assert f"{dims}-d features" in r.output and "15 all-zero rows" in r.output
    h = Model.load(tmp_path / "amr.npz").header
    assert ",".join(f["name"] for f in h["features"]) == features


def test_official_phantom_ids_are_errors(tmp_path):
    """The official layout keeps allowing a few gaps (Pinterest has them), with a warning; an id
    that makes most indices phantoms is an error, not an allocation."""
    d = tmp_path / "amr"
    write(d / "pos.txt", "0 1\n0 2\n2 0\n1 3\n1 5\n")
    with pytest.warns(UserWarning, match=r"pos.txt: 1 item indices below the largest \(5\)"):
        assert load_dataset(d).n_items == 6
    write(d / "pos.txt", "0 1\n0 2\n1 0\n2000000000 1\n")
    with pytest.raises(AmrliteError, match=r"pos.txt:4: field 'user': user 2000000000, but index "
                                           r"2 \(and 1999999997 more"):
        load_dataset(d)
    write(d / "pos.txt", "0 1\n1 9\n")
    with pytest.raises(AmrliteError, match=r"pos.txt:2: field 'item': item 9, but index 0"):
        load_dataset(d)
    np.save(d / "f_img.npy", np.ones((10, 2), np.float32))       # feature rows make them real
    assert load_dataset(d).n_items == 10


def test_parquet_interactions(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"reviewerID": ["A1", "A1", "A2", "A2"],
                             "asin": ["x", "y", "y", "z"], "overall": [5.0, 3.0, 4.0, 5.0]}),
                   tmp_path / "r.parquet")
    ds = load_dataset(tmp_path / "r.parquet", min_rating=4)
    assert ds.user_ids.tolist() == ["A1", "A2"] and ds.item_ids.tolist() == ["x", "y", "z"]
    assert ds.n_interactions == 3
    pq.write_table(pa.table({"a": [1], "b": [2]}), tmp_path / "q.parquet")
    with pytest.raises(AmrliteError, match=r"q.parquet: field 'user': no user column among a, b"):
        load_dataset(tmp_path / "q.parquet")


def _raw_case(tmp_path, case):
    """Files for one bad raw-data case: returns load_dataset keyword arguments."""
    f = tmp_path / "s.csv"
    ok = "user,item\nu1,a\nu1,b\nu2,b\n"
    npz = tmp_path / "f.npz"
    if case == "one column":
        write(f, "user\nu1\n")
    elif case == "same column":
        write(f, ok)
        return dict(path=f, user_col="user", item_col="user")
    elif case == "column number":
        write(f, ok)
        return dict(path=f, user_col="7")
    elif case == "field count":
        write(f, "user,item\nu1,a\nu2\n")
    elif case == "empty id":
        write(f, "user,item\nu1,a\n,b\n")
    elif case == "negative positional id":
        write(f, "user,item\n0,1\n1,-1\n")
        np.save(tmp_path / "g.npy", np.ones((3, 2), np.float32))
        return dict(path=f, features=tmp_path / "g.npy")
    elif case == "positional id beyond rows":
        write(f, "user,item\n0,1\n1,9\n")
        np.save(tmp_path / "g.npy", np.ones((3, 2), np.float32))
        return dict(path=f, features=tmp_path / "g.npy")
    elif case == "npz without ids":
        write(f, ok)
        np.savez(npz, features=np.ones((2, 2), np.float32))
    elif case == "npz ids not 1-D":
        write(f, ok)
        np.savez(npz, ids=np.ones((2, 2), np.float32), features=np.ones((2, 2), np.float32))
    elif case == "npz ids vs rows":
        write(f, ok)
        np.savez(npz, ids=np.array(["a"]), features=np.ones((2, 2), np.float32))
    elif case == "npz duplicate ids":
        write(f, ok)
        np.savez(npz, ids=np.array(["a", "a"]), features=np.ones((2, 2), np.float32))
    elif case == "items file rows":
        write(f, ok)
        write(tmp_path / "items.csv", "item\na\n")
        np.save(tmp_path / "g.npy", np.ones((2, 2), np.float32))
        return dict(path=f, features=tmp_path / "g.npy", items=tmp_path / "items.csv")
    elif case == "items without features":
        write(f, ok)
        write(tmp_path / "items.csv", "item\na\nb\n")
        return dict(path=f, items=tmp_path / "items.csv")
    elif case == "mixed alignment":
        write(f, "user,item\n0,0\n1,1\n")
        np.savez(npz, ids=np.array([0, 1]), features=np.ones((2, 2), np.float32))
        np.save(tmp_path / "g.npy", np.ones((2, 2), np.float32))
        return dict(path=f, features=f"{npz},{tmp_path / 'g.npy'}")
    elif case == "modality name without folder":
        write(f, ok)
        return dict(path=f, features="image")
    elif case == "modality twice":
        write(f, ok)
        np.savez(npz, ids=np.array(["a", "b"]), features=np.ones((2, 2), np.float32))
        return dict(path=f, features=f"{npz},{npz}")
    elif case == "rows differ":
        write(f, "user,item\n0,0\n1,1\n")
        np.save(tmp_path / "g.npy", np.ones((2, 2), np.float32))
        np.save(tmp_path / "h.npy", np.ones((3, 2), np.float32))
        return dict(path=f, features=f"{tmp_path / 'g.npy'},{tmp_path / 'h.npy'}")
    elif case == "raw option on a folder":
        write(tmp_path / "ds" / "interactions.csv", "user,item\n0,0\n")
        return dict(path=tmp_path / "ds", k_core=2)
    elif case == "bad id order":
        write(f, ok)
        return dict(path=f, id_order="random")
    if case.startswith("npz"):
        return dict(path=f, features=npz)
    return dict(path=f)


@pytest.mark.parametrize("case,pieces", [
    ("one column", ["s.csv:1:", "expected at least 2 columns"]),
    ("same column", ["user and item are the same column"]),
    ("column number", ["field 'user-col': column 7 does not exist (2 columns)"]),
    ("field count", ["s.csv:3:", "expected 2 columns (user,item), found 1"]),
    ("empty id", ["s.csv:3: field 'user': empty id"]),
    ("negative positional id", ["s.csv:3: field 'item': negative id -1"]),
    ("positional id beyond rows", ["s.csv:3: field 'item': item 9 but g.npy has 3 rows"]),
    ("npz without ids", ["f.npz: an .npz features file needs arrays 'ids' and 'features'"]),
    ("npz ids not 1-D", ["f.npz: field 'ids': 'ids' must be a 1-D integer or string array"]),
    ("npz ids vs rows", ["f.npz: field 'ids': 1 ids but 2 feature rows"]),
    ("npz duplicate ids", ["f.npz: field 'ids': id 'a' occurs twice (rows 0 and 1)"]),
    ("items file rows", ["g.npy: 2 feature rows but the items file lists 1 item ids"]),
    ("items without features", ["option 'items'", "needs features"]),
    ("mixed alignment", ["g.npy: positional", "give items with"]),
    ("modality name without folder", ["'image' is a modality name, which needs a dataset folder"]),
    ("modality twice", ["modality 'f' is given twice"]),
    ("rows differ", ["h.npy: 3 rows but g.npy has 2"]),
    ("raw option on a folder", ["option 'k_core': applies to an interactions file with raw ids"]),
    ("bad id order", ["option 'id_order': must be first or sorted"]),
])
def test_bad_raw_data_is_one_line(tmp_path, case, pieces):
    kw = _raw_case(tmp_path, case)
    with pytest.raises(AmrliteError) as err:
        load_dataset(kw.pop("path"), **kw)
    msg = str(err.value)
    assert "\n" not in msg
    for p in pieces:
        assert p in msg, msg
