"""A shop's own catalogue, end to end, by the command line as a shop runs it.

``scripts/make_shop.py --synthetic`` writes a small shop (string customer and sku ids, ISO order
times with time zones, photos named by sku: three products without one, a PNG with alpha, a
grayscale JPEG, a truncated JPEG, two products with a photo and no orders). The installed
``amrlite`` then runs from another working directory than the data: image features from the
photo folder, VBPR and AMR on a temporal split, AMR and a He & McAuley VBPR on every order
(``--split none``, ``--epochs-from``), recommendations for every customer (CSV and JSON lines),
evaluation, feature and pixel attacks, and a new product added without retraining.

The checks: every id written is an id of the shop; a product with a photo and no orders is
scored by its photo alone, ``p_u · E c_i`` (Eq. 4) or ``h_u · E c_i + w · c_i`` (He &
McAuley), recomputed here from the saved arrays and the features file with the model's recorded
normalisation; it can be recommended; ``--exclude seen`` excludes the held-out test orders too;
and bad inputs end with one line and exit status 2.
"""
from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from helpers import one_line_error, read_csv, read_model_file, write_model_file

pytest.importorskip("PIL", reason="the shop's photos are drawn with Pillow")
pytest.importorskip("torch", reason="image features need the images extra")

ROOT = Path(__file__).resolve().parents[1]
MAKE_SHOP = ROOT / "scripts" / "make_shop.py"
AMRLITE = Path(sys.executable).parent / "amrlite"
TINY = ("--dim", "8", "--backend", "numpy", "--lr", "0.05", "-q")


def amrlite(cwd, *args, ok=True):
    """``amrlite ARGS`` as a subprocess in ``cwd``; with ``ok`` it must succeed."""
    r = subprocess.run([str(AMRLITE), *map(str, args)], cwd=cwd, capture_output=True,
                       text=True, env={"PATH": str(AMRLITE.parent), "MPLBACKEND": "Agg",
                                       "OMP_NUM_THREADS": "1", "HOME": str(cwd)})
    assert "Traceback" not in r.stderr, r.stderr
    if ok:
        assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The shop's files (``s``), a working folder elsewhere (``w``), and the models and
    outputs of the whole path, made once."""
    root = tmp_path_factory.mktemp("e2e")
    s, w = root / "shop", root / "work"
    w.mkdir()
    subprocess.run([sys.executable, str(MAKE_SHOP), str(s), "--synthetic", "--products", "24",
                    "--customers", "30"], check=True, capture_output=True)
    orders = read_csv(s / "orders.csv")
    products = [r["sku"] for r in read_csv(s / "products.csv")]
    photos = {p.stem: p for p in (s / "photos").rglob("*") if p.is_file()}
    ordered = {r["sku"] for r in orders}
    new = sorted(set(photos) - ordered)
    assert len(new) == 2                               # the make_shop.py promise

    data = ("--data", s / "orders.csv", "--features", s / "features-image.npz",
            "--normalize", "l2")
    amrlite(w, "features", "image", "--photos", s / "photos", "--items", s / "products.csv",
            "--out", s / "features-image.npz")
    amrlite(w, "fit", *data, "--model", "vbpr", "--split", "temporal", "--negatives", "10",
            "--epochs", "3", *TINY, "--out", "vbpr.npz")
    amrlite(w, "fit", "--model", "amr", "--init", "vbpr.npz", "--epochs", "2", "--backend",
            "numpy", "-q", "--out", "amr.npz")          # the data, split and K of vbpr.npz
    amrlite(w, "fit", *data, "--model", "amr", "--split", "none", "--epochs-from", "amr.npz",
            "--no-pretrain", *TINY, "--out", "amr-all.npz")
    amrlite(w, "fit", *data, "--model", "vbpr", "--form", "hm", "--split", "none", "--epochs",
            "3", *TINY, "--out", "hm-all.npz")
    return {"s": s, "w": w, "orders": orders, "products": products, "photos": photos,
            "new": new, "customers": {r["customer_id"] for r in orders}}


def recommend(shop, model, *args, fmt="csv"):
    """``recommend MODEL --users all ARGS`` written to a file and read back with the standard
    reader of its format."""
    out = shop["w"] / f"recs-{len(list(shop['w'].glob('recs-*')))}.{fmt}"
    amrlite(shop["w"], "recommend", model, "--users", "all", "--format", fmt, "--backend",
            "numpy", "-q", "--out", out, *args)
    if fmt == "csv":
        return read_csv(out)
    with open(out, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_features_by_sku(shop):
    """One row per product of products.csv, keyed by sku; zero rows exactly for the products
    without a readable photo (none, or the truncated one)."""
    with np.load(shop["s"] / "features-image.npz", allow_pickle=False) as z:
        ids, feats = z["ids"].tolist(), z["features"]
    assert sorted(ids) == sorted(shop["products"]) and feats.shape == (len(ids), 1280)
    zero = {i for i, row in zip(ids, feats) if not row.any()}
    truncated = shop["products"][5]
    assert zero == set(shop["products"][:3]) | {truncated}
    assert set(shop["photos"]) == set(shop["products"][3:])


def test_models_record_their_runs(shop):
    """fit --init without --dim keeps the K of the model it starts from; --split none holds
    nothing out; the data is recorded as an absolute path."""
    vbpr, _ = read_model_file(shop["w"] / "vbpr.npz")
    amr, _ = read_model_file(shop["w"] / "amr.npz")
    full, arrays = read_model_file(shop["w"] / "amr-all.npz")
    assert vbpr["config"]["dim"] == amr["config"]["dim"] == full["config"]["dim"] == 8
    assert amr["split"] == "temporal" and full["split"] == "none"
    assert Path(amr["dataset"]) == (shop["s"] / "orders.csv").resolve()
    n_orders = len({(r["customer_id"], r["sku"]) for r in shop["orders"]})
    assert arrays["interactions_indices"].size == n_orders


def test_recommend_all_raw_ids_round_trip(shop):
    """Every customer gets n rows (CSV) or one line (JSON lines); every id is the shop's."""
    rows = recommend(shop, "amr-all.npz", "-n", "5")
    assert list(rows[0]) == ["user", "rank", "item", "score", "source"]
    assert {r["user"] for r in rows} == shop["customers"]
    assert {r["item"] for r in rows} <= set(shop["products"])
    assert len(rows) == 5 * len(shop["customers"]) and {r["source"] for r in rows} == {"model"}
    lines = recommend(shop, "amr-all.npz", "-n", "5", fmt="jsonl")
    assert {x["user"] for x in lines} == shop["customers"]
    by_user = {}
    for r in rows:
        by_user.setdefault(r["user"], []).append(r)
    for x in lines:         # the same lists in both formats
        assert x["items"] == [r["item"] for r in by_user[x["user"]]]
        assert np.allclose(x["scores"], [float(r["score"]) for r in by_user[x["user"]]])
    assert np.isfinite([float(r["score"]) for r in rows]).all()


def test_exclude_seen_excludes_test_orders(shop):
    """The temporal test order (each customer's last by time) is never recommended to its
    customer; with --exclude none it may be."""
    header, arrays = read_model_file(shop["w"] / "vbpr.npz")
    assert header["split"] == "temporal"
    last = {}                             # make_shop.py gives a customer's orders distinct times
    for r in shop["orders"]:
        t = datetime.fromisoformat(r["ordered_at"])              # aware: compared in UTC
        if r["customer_id"] not in last or t > last[r["customer_id"]][0]:
            last[r["customer_id"]] = (t, r["sku"])
    n = len(shop["products"])
    rows = recommend(shop, "vbpr.npz", "-n", str(n))
    got = {(r["user"], r["item"]) for r in rows}
    assert not got & {(u, sku) for u, (_, sku) in last.items()}
    bought = {(r["customer_id"], r["sku"]) for r in shop["orders"]}
    assert not got & bought
    everything = {(r["user"], r["item"]) for r in recommend(shop, "vbpr.npz", "-n", str(n),
                                                             "--exclude", "none")}
    assert {(u, sku) for u, (_, sku) in last.items()} <= everything


def content_scores(shop, model_path):
    """Scores of the photo-only products for every customer, recomputed from the model's arrays
    and the features file under the recorded normalisation: ``{(user, item): score}``."""
    header, a = read_model_file(shop["w"] / model_path)
    (feat,) = header["features"]
    assert feat["normalize"] == "l2"
    with np.load(shop["s"] / "features-image.npz", allow_pickle=False) as z:
        rows = dict(zip(z["ids"].tolist(), z["features"].astype(np.float64)))
    P, E = a["param_P"].astype(np.float64), a["param_E"].astype(np.float64)
    out = {}
    for sku in shop["new"]:
        c = rows[sku] / np.linalg.norm(rows[sku])             # l2, as recorded
        k = a["item_ids"].tolist().index(sku)
        assert not a["warm"][k]
        if header["form"] == "hm":
            g = a["param_H"].astype(np.float64) @ (E @ c) + a["param_w"].astype(np.float64) @ c
        else:
            g = P @ (E @ c)
        assert np.abs(a["param_Q"][k]).sum() > 0 and np.abs(P @ a["param_Q"][k]).max() > 1e-4 \
            * np.abs(g).max()        # a score that added the untrained q_i would differ
        out.update({(u, sku): float(x) for u, x in zip(a["user_ids"].tolist(), g)})
    return out


@pytest.mark.parametrize("model", ["amr-all.npz", "hm-all.npz"])
def test_photo_only_products_scored_by_photo(shop, model):
    """A product with a photo and no orders: scored p_u·E c_i (Eq. 4) or h_u·E c_i + w·c_i
    (He & McAuley); --candidates new returns exactly these; with n = catalogue size they are
    ranked among the others, in some customer's top 10."""
    expected = content_scores(shop, model)
    rows = recommend(shop, model, "--candidates", "new", "-n", "5")
    assert {r["item"] for r in rows} == set(shop["new"])
    assert len(rows) == len(expected)
    for r in rows:
        assert float(r["score"]) == pytest.approx(expected[r["user"], r["item"]], rel=1e-5,
                                                  abs=1e-7)
    full = recommend(shop, model, "-n", str(len(shop["products"])))
    for r in full:
        if r["item"] in shop["new"]:
            assert float(r["score"]) == pytest.approx(expected[r["user"], r["item"]], rel=1e-5,
                                                      abs=1e-7)
    assert min(int(r["rank"]) for r in full if r["item"] in shop["new"]) <= 10


def test_evaluate_and_attacks_from_another_folder(shop, tmp_path):
    """evaluate/attack/attack-images read the model's data through its absolute path from any
    folder; the pixel attack finds the photos through the features' recipe."""
    model = shop["w"] / "amr.npz"
    amrlite(tmp_path, "evaluate", model, "--backend", "numpy", "--metrics-out", "m.json")
    m = json.loads((tmp_path / "m.json").read_text())
    assert 0 < m["NDCG@10"] <= m["HR@10"] <= 1 and m["n"]["all"] == len(shop["customers"])
    r = amrlite(tmp_path, "attack", model, "--eps", "0.5", "--repeats", "1")
    assert "0.5" in r.stdout
    r = amrlite(tmp_path, "attack-images", model, "--eps", "0.0078", "--rows", "2",
                "--metrics-out", "px.json")
    px = json.loads((tmp_path / "px.json").read_text())
    assert px["rows"] == 2 and set(px.get("no_image", [])) <= set(shop["products"])
    assert "photos" in r.stderr and str(shop["s"] / "photos") in r.stderr


def test_add_items_new_product(shop, tmp_path):
    """A new product's photo through the same recipe, added to the trained model: scored
    p_u·E c_i, recommended by --candidates new; adding it twice is refused."""
    (tmp_path / "new").mkdir()
    src = shop["photos"][shop["new"][0]]
    (tmp_path / "new" / ("SKU-NEW001" + src.suffix)).write_bytes(src.read_bytes())
    amrlite(tmp_path, "features", "image", "--photos", "new", "--out", "new.npz")
    model = shop["w"] / "amr-all.npz"
    amrlite(tmp_path, "add-items", model, "--features", "new.npz", "--out", "added.npz")
    rows = recommend(shop, tmp_path / "added.npz", "--candidates", "new", "-n", "3")
    assert {r["item"] for r in rows} == set(shop["new"]) | {"SKU-NEW001"}
    same = {(r["user"], r["item"]): float(r["score"]) for r in rows}
    # The same photo, the same features: the same score, up to float32 rounding of features
    # extracted in another batch and of two dot products. A score can be small by cancellation,
    # so the tolerance is relative to the listing's score scale (a wrong normalisation or recipe
    # is off by orders of magnitude more).
    scale = max(abs(v) for v in same.values())
    for u in shop["customers"]:
        assert same[u, "SKU-NEW001"] == pytest.approx(same[u, shop["new"][0]], abs=1e-4 * scale)
    one_line_error(amrlite(tmp_path, "add-items", tmp_path / "added.npz", "--features",
                           "new.npz", "--out", "again.npz", ok=False), "SKU-NEW001")


# ---------------------------------------------------------------------------- bad input
def test_logs_in_other_encodings_train_cleanly(shop, tmp_path):
    """A UTF-16 log without a final newline and a gzip log train like the UTF-8 one."""
    text = (shop["s"] / "orders.csv").read_text(encoding="utf-8").rstrip("\n")
    (tmp_path / "orders16.csv").write_bytes(text.encode("utf-16"))
    with gzip.open(tmp_path / "orders.csv.gz", "wt", encoding="utf-8") as fh:
        fh.write(text + "\n")
    for log in ("orders16.csv", "orders.csv.gz"):
        amrlite(tmp_path, "fit", "--data", log, "--model", "mf", "--split", "none", "--epochs",
                "1", *TINY, "--out", log + ".npz")
        header, a = read_model_file(tmp_path / (log + ".npz"))
        assert set(a["user_ids"].tolist()) == shop["customers"]
        assert set(a["item_ids"].tolist()) <= set(shop["products"])


def test_bad_inputs_end_with_one_line(shop, tmp_path):
    """One line naming the file or option, exit status 2, no traceback; nothing overwritten."""
    w = shop["w"]
    # a model file of an unknown, newer format
    header, arrays = read_model_file(w / "amr.npz")
    header["format_version"] = 99
    write_model_file(tmp_path / "newer.npz", header, arrays)
    one_line_error(amrlite(tmp_path, "evaluate", "newer.npz", ok=False), "newer.npz", "99")
    # a damaged model header; a read-only target is refused and left as it was
    write_model_file(tmp_path / "damaged.npz", b'{"format": "amrlite-model", "kind"', arrays)
    one_line_error(amrlite(tmp_path, "recommend", "damaged.npz", "--users", "all", ok=False),
                   "damaged.npz", "header")
    (tmp_path / "ro.npz").write_bytes((w / "amr.npz").read_bytes())
    (tmp_path / "ro.npz").chmod(0o444)
    one_line_error(amrlite(tmp_path, "fit", "--data", shop["s"] / "orders.csv", "--model", "mf",
                           "--split", "none", "--epochs", "1", *TINY, "--out", "ro.npz",
                           ok=False), "ro.npz", "read-only")
    assert (tmp_path / "ro.npz").read_bytes() == (w / "amr.npz").read_bytes()
    # a column named twice
    lines = (shop["s"] / "orders.csv").read_text(encoding="utf-8").splitlines()
    (tmp_path / "dup.csv").write_text("customer_id,sku,sku,ordered_at\n" + "\n".join(
        lines[1:]) + "\n", encoding="utf-8")
    one_line_error(amrlite(tmp_path, "fit", "--data", "dup.csv", "--model", "mf", *TINY,
                           ok=False), "dup.csv", "sku")
    # pixel radius outside (0, 1]
    one_line_error(amrlite(tmp_path, "attack-images", w / "amr.npz", "--eps", "2", ok=False),
                   "--eps")
    # an unknown customer: the most popular products, marked; with --unknown error, refused
    r = amrlite(tmp_path, "recommend", w / "amr-all.npz", "--users", "C-NOBODY", "-n", "3",
                "--backend", "numpy", "-q")
    rows = list(csv.DictReader(r.stdout.splitlines()))
    assert [x["source"] for x in rows] == ["popular"] * 3
    assert [x["user"] for x in rows] == ["C-NOBODY"] * 3
    one_line_error(amrlite(tmp_path, "recommend", w / "amr-all.npz", "--users", "C-NOBODY",
                           "--unknown", "error", ok=False), "C-NOBODY")
    # other features than the model was trained with
    one_line_error(amrlite(tmp_path, "evaluate", w / "amr.npz", "--normalize", "none",
                           ok=False), "--normalize", "image (l2)", "image (none)")
    one_line_error(amrlite(tmp_path, "evaluate", w / "amr.npz", "--features", "image",
                           ok=False), "--features")
