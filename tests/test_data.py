"""Loaders: native folder, official AMR layout, plain CSV/TSV + .npy, errors, normalisation."""
import time
from pathlib import Path

import numpy as np
import pytest

from amrlite.data import Dataset, load_dataset, load_features, load_split, save_split
from amrlite.errors import AmrliteError
from amrlite.splits import leave_one_out


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def native(tmp_path, rows="0,0\n0,1\n1,1\n1,2\n2,0\n", feats=None, header="user,item\n"):
    folder = tmp_path / "ds"
    write(folder / "interactions.csv", header + rows)
    if feats is not False:
        np.save(folder / "features.npy",
                np.arange(12, dtype=np.float32).reshape(4, 3) if feats is None else feats)
    return folder


# ---------------------------------------------------------------- native folder

def test_native_small(tmp_path):
    folder = native(tmp_path)
    (folder / "split-x").mkdir()
    ds = load_dataset(folder)
    assert (ds.n_users, ds.n_items, ds.n_features) == (3, 4, 3)
    assert ds.users.tolist() == [0, 0, 1, 1, 2] and ds.items.tolist() == [0, 1, 1, 2, 0]
    assert ds.users.dtype == np.int32 and ds.items.dtype == np.int32
    assert isinstance(ds.features, np.memmap)
    assert ds.name == "ds" and ds.source == str(folder)
    assert list(ds.split_dirs) == ["x"]


def test_native_without_features_and_users_csv_enlarges(tmp_path):
    folder = native(tmp_path, feats=False)
    write(folder / "users.csv", "user,raw_id\n" + "".join(f"{u},{u + 1}\n" for u in range(5)))
    write(folder / "items.csv", "item,title\n0,a\n1,b\n2,c\n3,d\n4,e\n5,f\n")
    ds = load_dataset(folder)
    assert ds.features is None and ds.n_features == 0
    assert (ds.n_users, ds.n_items) == (5, 6)


def test_native_timestamp_and_blank_lines(tmp_path):
    folder = native(tmp_path, rows="0,1,99\n\n1,2,100\n", header="user,item,timestamp\n")
    ds = load_dataset(folder)
    assert ds.items.tolist() == [1, 2]


@pytest.mark.parametrize("stamps", [["99", "100", "101"],
                                    ["2024-03-01T10:00:00Z", "2024-03-01 10:00:01+00:00",
                                     "2024-03-01T12:00:02+02:00"]])
def test_native_times_are_epoch_seconds_or_iso_8601(tmp_path, stamps):
    """A native interactions.csv dates its rows by epoch seconds or ISO 8601 times, as a raw log
    does (ISO times were dropped, and the temporal split then found no time column)."""
    rows = "".join(f"0,{i},{t}\n" for i, t in zip((1, 2, 0), stamps))
    ds = load_dataset(native(tmp_path, rows=rows, header="user,item,timestamp\n"))
    assert ds.times is not None and np.all(np.diff(ds.times) == 1)
    sp = ds.split("temporal", n_negatives=1)
    assert sp.test.items.tolist() == [0] and sp.valid.items.tolist() == [2]
    bad = native(tmp_path / "bad", rows="0,1,soon\n0,2,later\n0,0,2024-03-01\n",
                 header="user,item,timestamp\n")
    assert load_dataset(bad).times is None                    # not a time: no times, as before


def test_columns_by_header_name(tmp_path):
    folder = native(tmp_path, rows="7,0,1\n8,1,2\n", header="ts,user,item\n")
    ds = load_dataset(folder)
    assert ds.users.tolist() == [0, 1] and ds.items.tolist() == [1, 2]


def test_duplicates_dropped_with_warning(tmp_path):
    folder = native(tmp_path, rows="0,1\n0,1\n1,2\n0,1\n")
    with pytest.warns(UserWarning, match=r"interactions.csv: dropped 2 duplicate"):
        ds = load_dataset(folder)
    assert ds.users.tolist() == [0, 1] and ds.items.tolist() == [1, 2]


def test_ml100k_native(shared_data):
    t = time.perf_counter()
    ds = load_dataset(shared_data / "ml100k")
    assert time.perf_counter() - t < 1.0
    assert (ds.n_users, ds.n_items, ds.n_features, len(ds.users)) == (943, 1682, 384, 100_000)
    assert isinstance(ds.features, np.memmap) and ds.features.dtype == np.float32
    assert sorted(ds.split_dirs) == ["cold", "loo", "sparse3"]
    assert len(ds.fingerprint()) == 16 and ds.fingerprint() == load_dataset(
        shared_data / "ml100k").fingerprint()

    loo = ds.split("loo")
    assert (loo.n_train, len(loo.valid), len(loo.test)) == (98_114, 943, 943)
    assert loo.test.negatives.shape == (943, 99) and loo.test.negatives.dtype == np.int32
    assert loo.train_users[:2].tolist() == [0, 0] and loo.train_items[:2].tolist() == [252, 174]
    assert loo.test.items[:2].tolist() == [236, 110]
    assert ds.split("loo") is loo   # cached
    cold = ds.split("cold")
    assert (cold.n_train, len(cold.valid), len(cold.test)) == (57_839, 942, 943)
    assert not cold.warm_items[cold.test.items].any()
    sparse = ds.split("sparse3")
    assert sparse.n_train == 2829 and np.bincount(sparse.train_users).max() == 3
    np.testing.assert_array_equal(sparse.test.negatives, loo.test.negatives)
    with pytest.raises(AmrliteError, match=r"no split 'nope'; available: .*cold.*loo.*sparse3"):
        ds.split("nope")


def test_fingerprint_changes_with_data(tmp_path):
    a = load_dataset(native(tmp_path))
    b = load_dataset(native(tmp_path / "b", rows="0,0\n0,1\n1,1\n1,3\n2,0\n"))
    assert a.fingerprint() != b.fingerprint()


# ---------------------------------------------------------------- official AMR layout

def test_official_small(tmp_path):
    folder = tmp_path / "amr"
    write(folder / "pos.txt", "0 1\n0 2\n1 0\n0 1\n2 0\n")
    write(folder / "neg.txt", "3 0 4\n1 2 4\n2 3 5\n")
    np.save(folder / "f_resnet.npy", np.ones((6, 2), dtype=np.float64) * 4)
    with pytest.warns(UserWarning, match=r"pos.txt: dropped 1 duplicate"):
        ds = load_dataset(folder, normalize="maxabs")
    assert (ds.n_users, ds.n_items, ds.n_features) == (3, 6, 2)
    assert ds.features.dtype == np.float64 and ds.features.max() == 1.0
    off = ds.split("official")
    assert off.valid is None and off.n_train == 4
    assert ds.default_split == "official" and ds.split() is off   # neg.txt: the default split
    assert off.test.users.tolist() == [0, 1, 2] and off.test.items.tolist() == [3, 1, 2]
    assert off.test.negatives.tolist() == [[0, 4], [2, 4], [3, 5]]


def test_official_feature_choice(tmp_path):
    folder = tmp_path / "amr"
    write(folder / "pos.txt", "0 1\n1 0\n")
    np.save(folder / "f_a.npy", np.ones((2, 2), dtype=np.float32))
    np.save(folder / "f_b.npy", np.ones((2, 5), dtype=np.float32))
    with pytest.raises(AmrliteError, match=r"several feature files \(f_a.npy, f_b.npy\)"):
        load_dataset(folder)
    assert load_dataset(folder, features="b").n_features == 5
    assert "official" not in load_dataset(folder, features="a").preset_splits


def test_pinterest_official(shared_data):
    with pytest.warns(UserWarning) as rec:
        ds = load_dataset(shared_data / "pinterest-amr")
    said = " | ".join(str(w.message) for w in rec)
    assert "pos.txt: dropped 87 duplicate" in said and "6531 unique" in said
    # 1,180 item indices occur in no file (the published folder lacks its neg.txt): said, kept
    assert "1180 item indices below the largest (4997) occur in no file" in said
    assert (len(ds.users), ds.n_users, ds.n_items, ds.features) == (6531, 3226, 4998, None)
    assert len(np.unique(ds.users.astype(np.int64) * ds.n_items + ds.items)) == 6531


# ---------------------------------------------------------------- plain file

@pytest.mark.parametrize("text,sep", [
    ("user\titem\n0\t1\n1\t2\n", None),
    ("0,1\n1,2\n", None),
    ("a;b;c\n0;1;9\n1;2;9\n", None),
    ("0 1\n1 2\n", None),
    ("u|i\n0|1\n1|2\n", "|"),
])
def test_plain_file(tmp_path, text, sep):
    f = write(tmp_path / "data.txt", text)
    np.save(tmp_path / "f.npy", np.ones((3, 2), dtype=np.float32))
    ds = load_dataset(f, features=tmp_path / "f.npy", sep=sep)
    assert ds.users.tolist() == [0, 1] and ds.items.tolist() == [1, 2]
    assert (ds.n_users, ds.n_items, ds.name) == (2, 3, "data")


# ---------------------------------------------------------------- normalisation

def test_normalisation(tmp_path):
    x = np.array([[3, 4], [0, 0], [-8, 0]], dtype=np.float32)
    np.save(tmp_path / "f.npy", x)
    f = tmp_path / "f.npy"
    assert isinstance(load_features(f), np.memmap)
    np.testing.assert_allclose(load_features(f, normalize="maxabs"), x / 8)
    l2 = load_features(f, normalize="l2")
    np.testing.assert_allclose(l2, [[0.6, 0.8], [0, 0], [-1, 0]], rtol=1e-6)
    assert l2.dtype == np.float32 and not isinstance(l2, np.memmap)
    np.save(tmp_path / "g.npy", x.astype(np.float64))
    assert load_features(tmp_path / "g.npy", normalize="l2").dtype == np.float64
    with pytest.raises(AmrliteError, match="option 'normalize'"):
        load_features(f, normalize="zscore")
    syn = load_dataset(normalize="maxabs")
    assert np.abs(syn.features).max() == pytest.approx(1.0)


# ---------------------------------------------------------------- bad input

BAD_INTERACTIONS = [
    # rows after header,              expected message pieces (line, field, problem)
    ("0,1\n1,x\n",                    ["interactions.csv:3: field 'item'", "not an integer: 'x'"]),
    ("0,1\n1.5,2\n",                  ["interactions.csv:3: field 'user'", "not an integer: '1.5'"]),
    ("0,1\n1,2,3\n",                  ["interactions.csv:3:", "expected 2 columns (user,item), found 3"]),
    ("0,1\n1\n",                      ["interactions.csv:3:", "expected 2 columns", "found 1"]),
    ("0,1\n\n-1,2\n",                 ["interactions.csv:4: field 'user'", "negative id -1"]),
    ("0,1\n1,-2\n",                   ["interactions.csv:3: field 'item'", "negative id -2"]),
    ("0,1\n1,3\n2,9\n",               ["interactions.csv:4: field 'item'",
                                       "item 9 but features.npy has 4 rows"]),
    ("",                              ["interactions.csv:1:", "no data rows"]),
]


@pytest.mark.parametrize("rows,pieces", BAD_INTERACTIONS)
def test_bad_interactions(tmp_path, rows, pieces):
    folder = native(tmp_path, rows=rows)
    with pytest.raises(AmrliteError) as err:
        load_dataset(folder)
    msg = str(err.value)
    assert "\n" not in msg and str(folder / "interactions.csv") in msg
    for p in pieces:
        assert p in msg


def test_bad_paths(tmp_path):
    with pytest.raises(AmrliteError, match=r"nowhere: no such file or folder"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AmrliteError, match=r"empty: folder has neither interactions.csv"):
        load_dataset(tmp_path / "empty")
    write(tmp_path / "blank.csv", "\n\n")
    with pytest.raises(AmrliteError, match=r"blank.csv: file is empty"):
        load_dataset(tmp_path / "blank.csv")
    with pytest.raises(AmrliteError, match=r"missing.npy: features file not found"):
        load_dataset(native(tmp_path, feats=False), features=tmp_path / "missing.npy")


@pytest.mark.parametrize("arr,pieces", [
    (np.ones(4, dtype=np.float32), ["features must be 2-D", "(4,)"]),
    (np.ones((4, 2), dtype=np.int64), ["must be float32 or float64", "int64"]),
    (np.array([[0, 0], [1, 1], [np.nan, 1], [np.inf, 0]], np.float32),
     ["row 2 (item 2)", "non-finite", "nan"]),
    (np.array([[0, 0], [1, 1], [1, 1], [1, -np.inf]], np.float64), ["row 3 (item 3)", "-inf"]),
])
def test_bad_features(tmp_path, arr, pieces):
    folder = native(tmp_path, feats=arr)
    with pytest.raises(AmrliteError) as err:
        load_dataset(folder)
    msg = str(err.value)
    assert msg.startswith(str(folder / "features.npy") + ": ")
    for p in pieces:
        assert p in msg


def test_bad_official(tmp_path):
    folder = tmp_path / "amr"
    write(folder / "pos.txt", "0 1\n1 0\n")
    write(folder / "neg.txt", "1 2 3\n0 x 2\n")
    with pytest.raises(AmrliteError, match=r"neg.txt:2: field 'negative 1': not an integer: 'x'"):
        load_dataset(folder)
    write(folder / "neg.txt", "1 2 3\n0 2\n")
    with pytest.raises(AmrliteError, match=r"neg.txt:2: expected 3 columns, found 2"):
        load_dataset(folder)
    write(folder / "neg.txt", "1 2 3\n0 2 9\n")
    np.save(folder / "f_x.npy", np.ones((4, 2), np.float32))
    with pytest.raises(AmrliteError, match=r"neg.txt:2: field 'negative 2': item 9 but f_x.npy has 4"):
        load_dataset(folder)


def split_folder(tmp_path, **files):
    ds = load_dataset(native(tmp_path))
    d = Path(ds.source) / "split-s"
    defaults = {"train.csv": "user,item\n0,0\n1,1\n", "test.csv": "user,item\n0,1\n1,2\n2,0\n"}
    defaults.update(files)
    for name, content in defaults.items():
        if isinstance(content, str):
            write(d / name, content)
        elif content is not None:
            np.save(d / name, content)
    return load_dataset(Path(ds.source))


@pytest.mark.parametrize("files,pieces", [
    ({"test.csv": "user,item\n0,1\n3,2\n"}, ["split-s/test.csv:3: field 'user'", "unknown user 3",
                                             "3 users"]),
    ({"train.csv": "user,item\n0,0\n1,4\n"}, ["split-s/train.csv:3: field 'item'", "unknown item 4"]),
    ({"valid.csv": "user,item\n0,a\n"}, ["split-s/valid.csv:2: field 'item'", "not an integer"]),
    ({"test_negatives.npy": np.zeros((2, 2), np.int32)},
     ["test_negatives.npy: 2 rows but test.csv has 3 rows"]),
    ({"test_negatives.npy": np.zeros((3, 2), np.float32)},
     ["test_negatives.npy: negatives must be an integer array, got float32"]),
    ({"test_negatives.npy": np.array([[1, 2], [3, 0], [0, 5]], np.int64)},
     ["test_negatives.npy: row 2: item 5 is not an item"]),
    ({"test.csv": None}, ["split-s/test.csv: file not found"]),
    # integrity: a negative that is the row's positive, a training positive, or repeated
    ({"test_negatives.npy": np.array([[2, 3], [3, 2], [1, 3]], np.int32)},
     ["test_negatives.npy: row 1: negative item 2 is the row's own positive"]),
    ({"test_negatives.npy": np.array([[2, 0], [3, 0], [1, 3]], np.int32)},
     ["test_negatives.npy: row 0: negative item 0 is a training positive of user 0"]),
    ({"test_negatives.npy": np.array([[2, 3], [3, 3], [1, 3]], np.int32)},
     ["test_negatives.npy: row 1: item 3 occurs twice among the negatives"]),
    ({"valid.csv": "user,item\n0,2\n", "valid_negatives.npy": np.array([[2, 3]], np.int32)},
     ["valid_negatives.npy: row 0: negative item 2 is the row's own positive"]),
])
def test_bad_split_folder(tmp_path, files, pieces):
    ds = split_folder(tmp_path, **files)
    with pytest.raises(AmrliteError) as err:
        ds.split("s")
    for p in pieces:
        assert p in str(err.value)


def test_split_folder_ok(tmp_path):
    neg = np.array([[2, 3], [3, 0], [1, 2]], np.int64)
    ds = split_folder(tmp_path, **{"test_negatives.npy": neg})
    s = ds.split("s")
    assert s.valid is None and s.train_items.tolist() == [0, 1]
    assert s.test.negatives.dtype == np.int32 and s.test.negatives.tolist() == neg.tolist()


# ---------------------------------------------------------------- save_split / synthetic

def test_save_split_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    u = np.repeat(np.arange(20), 8)
    i = np.concatenate([rng.choice(50, 8, replace=False) for _ in range(20)])
    s = leave_one_out(20, 50, u, i, seed=3, n_negatives=10)
    out = save_split(s, tmp_path / "out" / "split-mine")
    assert (out / "train.csv").read_text().startswith("user,item\n")
    back = load_split(out, 20, 50)
    assert back.name == "mine"
    for a, b in [(s.train_users, back.train_users), (s.train_items, back.train_items),
                 (s.test.items, back.test.items), (s.valid.negatives, back.valid.negatives),
                 (s.test.negatives, back.test.negatives)]:
        np.testing.assert_array_equal(a, b)
    with pytest.raises(AmrliteError, match="already holds a split"):
        save_split(s, out)
    s2 = leave_one_out(20, 50, u, i, seed=3, n_negatives=0)
    s2.valid = None
    save_split(s2, out, overwrite=True)
    assert not (out / "valid.csv").exists() and not (out / "test_negatives.npy").exists()
    assert load_split(out, 20, 50).test.negatives is None


def test_synthetic_default():
    t = time.perf_counter()
    ds = load_dataset()
    assert time.perf_counter() - t < 1.0
    assert isinstance(ds, Dataset) and ds.synthetic and ds.name == "synthetic"
    assert ds.source == "synthetic" and ds.features.dtype == np.float32
    assert (ds.n_users, ds.n_items, ds.n_features) == (1000, 1000, 64)
    np.testing.assert_allclose(np.linalg.norm(ds.features, axis=1), 1.0, rtol=1e-5)
    per_user = np.bincount(ds.users, minlength=1000)
    assert per_user.min() >= 5 and per_user.max() <= 8        # the sparse regime (issue 10)
    s = ds.split("loo")
    assert s is ds.preset_splits["loo"] and len(s.test) == len(s.valid) == 1000
    cold = ds.meta["cold_items"]
    assert len(cold) == 200 and not np.isin(s.train_items, cold).any()
    share = np.isin(s.test.items, cold).mean()
    assert 0.12 < share < 0.28
    assert s.test.negatives.shape == (1000, 99)
    seen = set(zip(ds.users.tolist(), ds.items.tolist()))
    assert not any((u, n) in seen for u, row in zip(s.test.users.tolist(), s.test.negatives.tolist())
                   for n in row)
    assert ds.split("cold").name == "cold"
    again = load_dataset()
    np.testing.assert_array_equal(again.items, ds.items)
    np.testing.assert_array_equal(again.split("loo").test.negatives, s.test.negatives)


def _hr10(score, rows, mask):
    cand = np.concatenate([rows.items[:, None], rows.negatives], axis=1)[mask]
    sc = score(rows.users[mask], cand)
    return float(((sc[:, 1:] >= sc[:, :1]).sum(axis=1) < 10).mean())   # ties count against


def test_synthetic_content_matters():
    ds = load_dataset()
    s = ds.split("loo")
    on_cold = np.isin(s.test.items, ds.meta["cold_items"])
    p, z = ds.meta["user_latent"], ds.meta["item_latent"]
    truth = _hr10(lambda u, c: np.einsum("rk,rck->rc", p[u], z[c]), s.test, on_cold)
    indptr, idx = s.train_csr
    f = ds.features
    prof = np.add.reduceat(f[idx], indptr[:-1], axis=0) / np.diff(indptr)[:, None]
    content = _hr10(lambda u, c: np.einsum("rk,rck->rc", prof[u], f[c]), s.test, on_cold)
    counts = np.bincount(s.train_items, minlength=ds.n_items).astype(float)
    pop = _hr10(lambda u, c: counts[c], s.test, on_cold)   # a pure-ID score: cold items look unseen
    assert truth > 0.5 and content > 0.4     # random ranking gives 0.1
    assert pop < 0.1 < content
    # a cold positive is ranked among cold items only, a warm one among all items
    assert np.isin(s.test.negatives[on_cold], ds.meta["cold_items"]).all()
    assert not np.isin(s.test.negatives[~on_cold], ds.meta["cold_items"]).all(axis=1).any()
