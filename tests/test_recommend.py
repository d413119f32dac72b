"""Recommendation for many users: the top-n kernels (Numba and array-level == the NumPy
reference), Model.recommend_many (raw ids, exclusions, candidates, unknown users, chunking) and
``amrlite recommend --users`` (CSV / JSON lines / Parquet read back with standard readers)."""
import copy
import csv
import importlib.util
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from amrlite import AmrliteError
from amrlite.cli import cli
from amrlite.containers import Dataset, EvalRows, Split
from amrlite.kernels import cpu, cpu_ranking, numpy_arraylevel, reference
from amrlite.recommender import Model
from helpers import read_csv

N_USERS, N_ITEMS, N_NEW = 24, 40, 4          # items 36..39 have a feature row and no interaction


# ---------------------------------------------------------------------------- the kernels
def _problem(rng, n_users, n_items, dim, density, n_rows):
    """Integer-valued factors (every product and sum exact in float32, so any summation order
    gives the same scores, and many ties), a random sorted CSR, rows with repeats."""
    U = rng.integers(-2, 3, (n_users, dim)).astype(np.float32)
    V = rng.integers(-2, 3, (n_items, dim)).astype(np.float32)
    mask = rng.random((n_users, n_items)) < density
    indptr = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int64)
    indices = np.nonzero(mask)[1].astype(np.int32)
    return U, V, rng.integers(0, n_users, n_rows), indptr, indices


@pytest.mark.parametrize("n_users,n_items,dim,density,n_rows,n", [
    (7, 9, 2, 0.5, 20, 12),              # short lists: padding with -1 / -inf
    (5, 30, 1, 1.0, 5, 3),               # every item excluded: empty lists
    (300, 5000, 3, 0.05, 600, 10),       # several user blocks and item tiles, a remainder tile
    (40, 2 * cpu_ranking.TOP_TILE, 4, 0.2, 50, 25),
])
def test_top_items_numba_and_arraylevel_equal_the_reference(n_users, n_items, dim, density,
                                                           n_rows, n):
    rng = np.random.default_rng(n_items)
    U, V, users, indptr, indices = _problem(rng, n_users, n_items, dim, density, n_rows)
    want_items, want_scores = reference.top_items(U, V, users, n, indptr, indices)
    for backend in (cpu, numpy_arraylevel):
        items, scores = backend.top_items(U, V, users, n, indptr, indices)
        np.testing.assert_array_equal(items, want_items)
        np.testing.assert_array_equal(scores, want_scores)
    # the reference itself: best first, ties by item index, nothing excluded, padding at the end
    for r, u in enumerate(users):
        row = U[u] @ V.T
        row[indices[indptr[u]:indptr[u + 1]]] = -np.inf
        order = sorted(np.flatnonzero(row > -np.inf), key=lambda i: (-row[i], i))[:n]
        assert want_items[r, :len(order)].tolist() == order
        assert (want_items[r, len(order):] == -1).all()
        assert np.isneginf(want_scores[r, len(order):]).all()


def test_top_items_without_user_factors_ranks_by_the_item_column():
    pop = np.array([[3.0], [5.0], [5.0], [1.0]])
    empty = (np.zeros(3, np.int64), np.zeros(0, np.int32))
    for backend in (reference, cpu, numpy_arraylevel):
        items, scores = backend.top_items(None, pop, np.array([0, 1]), 3, *empty)
        assert items.tolist() == [[1, 2, 0]] * 2 and scores[0].tolist() == [5, 5, 3]


# ---------------------------------------------------------------------------- a small shop
def _shop():
    """String ids; a leave-one-out split (test and validation rows); items 36..39 only in the
    features (no interaction at all)."""
    rng = np.random.default_rng(7)
    tu, ti, vi, si = [], [], [], []
    for u in range(N_USERS):
        items = rng.choice(N_ITEMS - N_NEW, size=8, replace=False)
        si.append(items[0])
        vi.append(items[1])
        tu += [u] * 6
        ti += items[2:].tolist()
    users = np.arange(N_USERS, dtype=np.int32)
    i32 = lambda a: np.asarray(a, dtype=np.int32)  # noqa: E731
    split = Split("loo", N_USERS, N_ITEMS, i32(tu), i32(ti), EvalRows(users, i32(vi)),
                  EvalRows(users, i32(si)))
    return Dataset(
        "shop", N_USERS, N_ITEMS, users=i32(tu + users.tolist() * 2), items=i32(ti + vi + si),
        features=rng.standard_normal((N_ITEMS, 6)).astype(np.float32), source="shop.csv",
        preset_splits={"loo": split}, user_ids=np.array([f"C-{u:04d}" for u in range(N_USERS)]),
        item_ids=np.array([f"SKU-{i:03X}" for i in range(N_ITEMS)]))


@pytest.fixture(scope="module")
def shop():
    ds = _shop()
    model = Model("vbpr", backend="numpy", epochs=3, eval_every=0, dim=4).fit(ds, split="loo")
    return ds, ds.split("loo"), model


def _all(chunks):
    chunks = list(chunks)
    return {k: np.concatenate([getattr(c, k) for c in chunks])
            for k in ("users", "user_index", "source", "item_index", "items", "scores")}


def test_raw_ids_round_trip_and_seen_excludes_test_and_validation_rows(shop):
    ds, sp, model = shop
    seen = _all(model.recommend_many(n=N_ITEMS))
    everything = _all(model.recommend_many(n=N_ITEMS, exclude="none"))
    assert seen["users"].tolist() == ds.user_ids.tolist()
    assert set(seen["items"][seen["item_index"] >= 0].tolist()) <= set(ds.item_ids.tolist())
    np.testing.assert_array_equal(seen["items"][seen["item_index"] >= 0],
                                  ds.item_ids[seen["item_index"][seen["item_index"] >= 0]])
    for u in range(N_USERS):
        held_out = {sp.test.items[u], sp.valid.items[u]}
        assert held_out <= set(everything["item_index"][u].tolist())     # they compete ...
        assert not held_out & set(seen["item_index"][u].tolist())        # ... and are excluded
        trained = set(sp.train_items[sp.train_users == u].tolist())
        assert not trained & set(seen["item_index"][u].tolist())
        assert (seen["item_index"][u] >= 0).sum() == N_ITEMS - 8
    assert (seen["source"] == "model").all()


def test_new_candidates_are_the_interactionless_items_scored_by_content(shop):
    ds, _, model = shop
    got = _all(model.recommend_many(["C-0003", "C-0010"], n=10, candidates="new"))
    assert model.catalogue_items("new").tolist() == list(range(N_ITEMS - N_NEW, N_ITEMS))
    assert (got["item_index"][:, :N_NEW] >= N_ITEMS - N_NEW).all()
    assert (got["item_index"][:, N_NEW:] == -1).all()
    E, P = model.params["E"], model.params["P"]
    for r, u in enumerate(got["user_index"]):
        content = ds.features[got["item_index"][r, :N_NEW]] @ E.T           # E c_i, no q_i
        np.testing.assert_allclose(got["scores"][r, :N_NEW], content @ P[u], rtol=1e-5)


def test_chunked_equals_unchunked_equals_per_user_recommend(shop):
    """Chunking decides only which users share a score block. The scoring factors are made
    small integers (exact in float32), so every score is exact whatever order the BLAS sums in:
    the equalities below hold by construction, and test the chunking, ties and exclusions."""
    model = copy.deepcopy(shop[2])
    model._U, model._V = (np.round(a * 64).astype(np.float32) for a in (model._U, model._V))
    assert np.abs(model._U).max() * np.abs(model._V).max() * model._U.shape[1] < 2 ** 24
    whole = _all(model.recommend_many(n=7))
    for size in (1, 5, 24):
        part = _all(model.recommend_many(n=7, chunk_size=size))
        for key in whole:
            np.testing.assert_array_equal(part[key], whole[key])
    for u, user in enumerate(whole["users"]):
        items, scores = model.recommend(user, 7)
        assert items.tolist() == whole["items"][u].tolist()
        np.testing.assert_array_equal(scores, whole["scores"][u])
    ref = _all(model.recommend_many(n=7, backend="numpy"))
    np.testing.assert_array_equal(ref["item_index"], whole["item_index"])


def test_unknown_users_get_the_popular_items_or_an_error(shop):
    _, sp, model = shop
    got = _all(model.recommend_many(["C-0001", "nobody", "C-0002"], n=5))
    assert got["source"].tolist() == ["model", "popular", "model"]
    assert got["users"].tolist() == ["C-0001", "nobody", "C-0002"]
    counts = np.bincount(sp.train_items, minlength=N_ITEMS)
    want = sorted(range(N_ITEMS), key=lambda i: (-counts[i], i))[:5]
    assert got["item_index"][1].tolist() == want and got["scores"][1].tolist() == \
        counts[want].tolist()
    with pytest.raises(AmrliteError, match="users nobody: no such user"):
        model.recommend_many(["C-0001", "nobody"], unknown="error")
    with pytest.raises(AmrliteError, match="n 0"):
        model.recommend_many(n=0)
    with pytest.raises(AmrliteError, match="candidates: item SKU-XYZ"):
        model.recommend_many(candidates=["SKU-001", "SKU-XYZ"])
    listed = _all(model.recommend_many(["C-0001"], n=5, candidates=["SKU-003", "SKU-001"]))
    assert set(listed["items"][0][listed["item_index"][0] >= 0].tolist()) <= {"SKU-003",
                                                                                "SKU-001"}


def test_saved_model_keeps_every_interaction_and_old_files_fall_back(shop, tmp_path):
    _, _, model = shop
    model.save(tmp_path / "m.npz")
    loaded = Model.load(tmp_path / "m.npz")
    for a, b in zip(loaded._interactions, model._interactions):
        np.testing.assert_array_equal(a, b)
    with np.load(tmp_path / "m.npz") as z:
        arrays = {k: z[k] for k in z.files if not k.startswith("interactions_")}
    np.savez(tmp_path / "old.npz", **arrays)
    old = Model.load(tmp_path / "old.npz")
    with pytest.warns(UserWarning, match="only its training interactions"):
        items, _ = old.recommend("C-0000", N_ITEMS)
    assert len(items) == N_ITEMS - 6                    # only the 6 training rows excluded


# ---------------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def saved(shop, tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "shop.npz"
    shop[2].save(path)
    return path


def _run(*args):
    res = CliRunner().invoke(cli, ["recommend", *map(str, args)])
    assert "Traceback" not in res.output, res.output
    return res


def test_cli_writes_csv_jsonl_and_parquet_that_standard_readers_parse(shop, saved, tmp_path):
    ds, _, model = shop
    res = _run(saved, "--users", "all", "-n", "3", "--out", tmp_path / "r.csv")
    assert res.exit_code == 0, res.output
    rows = read_csv(tmp_path / "r.csv")
    assert list(rows[0]) == ["user", "rank", "item", "score", "source"]
    assert len(rows) == 3 * N_USERS and rows[0]["user"] == "C-0000"
    items, scores = model.recommend("C-0000", 3)
    assert [r["item"] for r in rows[:3]] == items.tolist()
    assert [np.float32(r["score"]) for r in rows[:3]] == scores.astype(np.float32).tolist()
    (tmp_path / "users.txt").write_text("C-0002\nnobody\n")
    (tmp_path / "titles.csv").write_text("sku,title\n" + "".join(
        f"{i},Product {i}\n" for i in ds.item_ids))
    res = _run(saved, "--users", tmp_path / "users.txt", "-n", "2", "--format", "jsonl",
               "--titles", tmp_path / "titles.csv")
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert [x["user"] for x in lines] == ["C-0002", "nobody"]
    assert [x["source"] for x in lines] == ["model", "popular"]
    assert lines[0]["titles"] == [f"Product {i}" for i in lines[0]["items"]]
    pq = pytest.importorskip("pyarrow.parquet")
    (tmp_path / "users.csv").write_text("customer_id,segment\nC-0004,a\nC-0005,b\n")
    res = _run(saved, "--users", tmp_path / "users.csv", "--format", "parquet",
               "--candidates", "new", "--out", tmp_path / "r.parquet")
    assert res.exit_code == 0, res.output
    table = pq.read_table(tmp_path / "r.parquet").to_pylist()
    assert len(table) == 2 * N_NEW and {r["user"] for r in table} == {"C-0004", "C-0005"}
    assert {r["item"] for r in table} == set(ds.item_ids[-N_NEW:].tolist())
    assert list(table[0]) == ["user", "rank", "item", "score", "source"]


def test_cli_errors_are_one_line_and_the_single_user_table_stays(saved, tmp_path):
    res = _run(saved, "--users", "C-0001,nobody", "--unknown", "error")
    assert res.exit_code == 2
    errors = [x for x in res.output.splitlines() if x.startswith("amrlite: error:")]
    assert errors == [x for x in res.output.splitlines() if x.strip()][-1:]
    assert "--users nobody: no such user" in errors[0]
    res = _run(saved, "--users", tmp_path / "typo.csv")        # a missing file is no user id
    assert res.exit_code == 2 and "typo.csv: no such file" in res.output
    res = _run(saved, "--users", "all", "--format", "parquet")
    assert res.exit_code == 2 and "--out" in res.output
    res = _run(saved, "--user", "C-0001", "-n", "4")
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 4
    res = _run(saved, "--user", "C-0001", "--users", "all")
    assert res.exit_code == 2
    res = _run(saved, "--user", "nobody")                 # --user: unknown is an error ...
    assert res.exit_code == 2 and "--user nobody: no such user" in res.output
    res = _run(saved, "--user", "nobody", "--unknown", "popular", "-n", "3")   # ... unless asked
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 3
    (tmp_path / "r.csv").write_text("keep me")
    res = _run(saved, "--users", "all", "--candidates", tmp_path / "none.txt",
               "--out", tmp_path / "r.csv")
    assert res.exit_code == 2 and "none.txt" in res.output
    assert (tmp_path / "r.csv").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]     # no temporary file left


def test_include_seen_is_exclude_none(saved):
    a = _run(saved, "--users", "C-0001", "--include-seen", "-n", "40")
    b = _run(saved, "--users", "C-0001", "--exclude", "none", "-n", "40")
    assert a.exit_code == 0 and a.stdout == b.stdout
    assert len(list(csv.reader(io.StringIO(a.stdout)))) == 1 + N_ITEMS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _run(saved, "--users", "C-0001").exit_code == 0


def test_bench_script_runs_at_a_tiny_size(tmp_path):
    """bench/recommend.py end to end on a tiny problem (catches typos; no timing checked)."""
    path = Path(__file__).resolve().parents[1] / "bench" / "recommend.py"
    spec = importlib.util.spec_from_file_location("bench_recommend", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    res = bench.main(["--users", "300", "--items", "3000", "--interactions", "900",
                      "--repeats", "1", "--seconds", "0.05", "--out", str(tmp_path / "r.json")])
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["runs"][0]["users"] == 300 and saved["runs"][0]["items_out"] == 3000
    assert saved["floor_seconds"] > 0 and saved["ratio_to_floor"] == res["ratio_to_floor"]
