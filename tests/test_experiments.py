"""The experiment pipeline: end to end on a tiny synthetic set, resume, sweeps, plots, CLI errors.

Where a test is about the pipeline's plumbing, ``amrlite.attack`` / ``amrlite.significance``
are replaced by small stand-ins with their signatures (monkeypatched into the pipeline, which
imports them at module level), so it runs without their cost.
"""
import json
import types

import numpy as np
import pytest
from click.testing import CliRunner

from amrlite import experiments as ex
from amrlite.cli import cli
from amrlite.recommender import Model, evaluate
from amrlite.synthetic import make_synthetic
from helpers import one_line_error

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def tiny():
    return make_synthetic(n_users=80, n_items=120, n_features=12, n_latent=4, seed=3,
                          min_per_user=5, max_per_user=10, n_negatives=20)


def _ranks(model, ds, split, on="test"):
    from amrlite.recommender import evaluate_with_ranks
    return np.asarray(evaluate_with_ranks(model, ds, split, on=on)["ranks"])


def _fake_attack_module():
    calls = {"attack": 0, "rank_change": 0}

    def attack(model, dataset, split, eps_list, *, kind="adversarial", objective="test",
               steps=1, repeats=5, seed=0, on="test"):
        calls["attack"] += 1
        clean = {k: v for k, v in evaluate(model, dataset, split, on=on).items()
                 if isinstance(v, float)}
        out = {}
        for e in eps_list:
            f = 1 / (1 + float(e) * (2 if kind == "adversarial" else 0.5))
            m = {k: v * f for k, v in clean.items()}
            m["drop"] = {k: 1 - f for k in clean}
            out[str(e)] = m
        return {"clean": clean, "eps": out, "kind": kind, "objective": objective}

    def rank_change(model, dataset, split, eps, kind="adversarial", objective="test"):
        calls["rank_change"] += 1
        r = _ranks(model, dataset, split)
        delta = -np.random.default_rng(0).poisson(1 + 5 * eps, size=len(r))
        return {"per_row": delta, "summary": {"mean": float(delta.mean())}}

    mod = types.ModuleType("amrlite.attack")
    mod.attack, mod.rank_change, mod.calls = attack, rank_change, calls
    return mod


def _fake_significance_module():
    from scipy import stats

    def compare(model_a, model_b, dataset, split, on="test"):
        from amrlite.metrics import per_row_gains
        out = {}
        ga = per_row_gains(_ranks(model_a, dataset, split, on))
        gb = per_row_gains(_ranks(model_b, dataset, split, on))
        for k, name in enumerate(("HR@10", "NDCG@10")):
            a, b = ga[k], gb[k]
            d = a - b
            t_p = float(stats.ttest_rel(a, b).pvalue) if d.any() else 1.0
            w_p = float(stats.wilcoxon(d[d != 0]).pvalue) if (d != 0).sum() > 0 else 1.0
            out[name] = {"mean_a": a.mean(), "mean_b": b.mean(), "diff": a.mean() - b.mean(),
                         "t": 0.0, "p_t": t_p, "w": 0.0, "p_wilcoxon": w_p}
        out.update({"a": model_a.spec.label, "b": model_b.spec.label, "n_rows": len(a)})
        return out

    mod = types.ModuleType("amrlite.significance")
    mod.compare = compare
    return mod


TINY = {"eval_every": 1, "dim": 8,
        "stages": {"mf": {"epochs": 2}, "duif": {"epochs": 2}, "vbpr": {"epochs": 3},
                   "vbpr_cont": {"epochs": 2}, "amr": {"epochs": 2, "eps": 0.5}},
        "attack": {"eps": [0.5, 1.0], "repeats": 1, "objectives": ["test"]},
        "sweep": {"eps": [0.1, 1.0], "lmd": [1.0], "processes": 1}}


def _pixel_std(path):
    import matplotlib.image as mpimg
    img = mpimg.imread(str(path))
    return float(np.std(img[..., :3]))


def test_experiment_end_to_end_and_resume(tiny, tmp_path, monkeypatch):
    fake = _fake_attack_module()
    monkeypatch.setattr(ex.pipeline, "attack", fake)
    monkeypatch.setattr(ex.pipeline, "significance", _fake_significance_module())
    out = tmp_path / "exp"
    s1 = ex.run_experiment(tiny, "loo", out, quick=True, backend="numpy", overrides=TINY,
                           progress=False)
    assert {"pop", "mf", "duif", "vbpr", "vbpr_cont", "amr"} <= set(s1["results"])
    assert s1["trained"] and not s1["reused"]
    report = (out / "report.md").read_text()
    for needle in ("Table 2", "Table 3", "AMR vs continued VBPR", "t-test p", "Fig. 3",
                   "Fig. 5", "Fig. 6", "Fig. 7", '"select"', "amrlite 0.1.0"):
        assert needle in report, needle
    pngs = sorted(out.glob("*.png"))
    assert {p.name for p in pngs} >= {"fig3_training_curves.png", "fig5_rank_change.png",
                                      "fig6_sweep_eps.png", "fig7_sweep_lmd.png",
                                      "attack_drop.png"}
    for p in pngs:
        assert p.stat().st_size > 5000, p
        assert _pixel_std(p) > 0.01, p
    # the curve of AMR has one test point per epoch; the model kept is the final epoch's
    amr = json.loads((out / "stages" / "amr.json").read_text())
    assert amr["curve"]["epoch"] == [1, 2] and len(amr["curve"]["test"]) == 2
    assert amr["curve"]["test"][-1]["NDCG@10"] == pytest.approx(amr["test"]["NDCG@10"])
    for name in ("pop", "mf", "vbpr", "amr"):
        assert (out / "models" / f"{name}.npz").is_file()
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "models").glob("*.npz")}
    n_attack = fake.calls["attack"]

    # second run: nothing is retrained or re-attacked, results identical
    s2 = ex.run_experiment(tiny, "loo", out, quick=True, backend="numpy", overrides=TINY,
                           progress=False)
    assert s2["trained"] == [] and set(s2["reused"]) == set(s1["trained"])
    assert fake.calls["attack"] == n_attack
    assert {p.name: p.stat().st_mtime_ns for p in (out / "models").glob("*.npz")} == mtimes
    assert s2["results"]["amr"]["test"] == s1["results"]["amr"]["test"]
    assert s2["timings"]["models"] < s1["timings"]["models"]

    # a changed AMR setting retrains AMR only (its checkpoint, VBPR, is reused)
    over = ex.deep_merge(TINY, {"stages": {"amr": {"eps": 0.2}}})
    s3 = ex.run_experiment(tiny, "loo", out, quick=True, backend="numpy", overrides=over,
                           progress=False, plots=False)
    assert s3["trained"] == ["amr"]


def test_pipeline_surfaces_an_import_error_of_its_own_modules(tiny, tmp_path, monkeypatch):
    """amrlite's own stage modules are not optional: an ImportError raised inside one fails
    the run, naming it, instead of being recorded as a skipped stage."""
    fake = _fake_significance_module()

    def broken(*_, **__):
        raise ImportError("cannot import name 'stats' (a broken install)")
    fake.compare = broken
    monkeypatch.setattr(ex.pipeline, "attack", _fake_attack_module())
    monkeypatch.setattr(ex.pipeline, "significance", fake)
    over = ex.deep_merge(TINY, {"sweep": {"eps": [], "lmd": []}})
    with pytest.raises(Exception, match="a broken install") as info:
        ex.run_experiment(tiny, "loo", tmp_path, quick=True, backend="numpy", overrides=over,
                          progress=False, plots=False)
    assert "ImportError" in str(info.value)
    assert not (tmp_path / "stages" / "significance.json").exists()


def test_sweep_picks_best_by_validation_and_resumes(tiny, tmp_path):
    sp = tiny.split("loo")
    vbpr = Model("vbpr", backend="numpy", dim=8, epochs=2).fit(tiny, split=sp)
    base = {"dim": 8, "epochs": 2, "lr": 0.05, "eval_every": 0}
    res = ex.sweep(tiny, "loo", init=vbpr, eps_list=[0.0, 0.5, 5.0], lmd_list=[0.5, 2],
                   base_config=base, out_dir=tmp_path, processes=1, progress=False,
                   backend="numpy")
    assert len(res["runs"]) == 6 and res["skipped"] == []
    best = max(res["runs"], key=lambda r: r["valid"]["NDCG@10"])
    assert res["best"]["name"] == best["name"] and res["selected_by"] == "valid NDCG@10"
    assert len(list(tmp_path.glob("amr-eps*-lmd*.json"))) == 6
    # validation metrics in the JSON are those of the model (recomputed here for one run)
    run = json.loads((tmp_path / "amr-eps0.5-lmd2.json").read_text())
    assert run["config"]["eps"] == 0.5 and run["config"]["lmd"] == 2.0
    again = ex.sweep(tiny, "loo", init=vbpr, eps_list=[0.0, 0.5, 5.0, 1.0], lmd_list=[0.5, 2],
                     base_config=base, out_dir=tmp_path, processes=1, progress=False,
                     backend="numpy")
    assert len(again["skipped"]) == 6 and len(again["runs"]) == 8


def test_sweep_in_spawned_processes(tiny, tmp_path):
    sp = tiny.split("loo")
    vbpr = Model("vbpr", backend="numpy", dim=8, epochs=1).fit(tiny, split=sp)
    serial = ex.sweep(tiny, "loo", init=vbpr, eps_list=[0.1, 1.0], lmd_list=[1.0],
                      base_config={"dim": 8, "epochs": 1, "eval_every": 0},
                      out_dir=tmp_path / "a", processes=1, progress=False, backend="numpy")
    par = ex.sweep(tiny, "loo", init=vbpr, eps_list=[0.1, 1.0], lmd_list=[1.0],
                   base_config={"dim": 8, "epochs": 1, "eval_every": 0},
                   out_dir=tmp_path / "b", processes=2, progress=False, backend="numpy")
    assert len({r["pid"] for r in par["runs"]}) >= 1
    assert all(r["pid"] != __import__("os").getpid() for r in par["runs"])
    for a, b in zip(serial["runs"], par["runs"]):       # same seeds: same numbers
        assert a["test"] == b["test"]


def test_parse_helpers():
    assert ex.parse_float_list("0.01, 0.1,1", "--eps") == [0.01, 0.1, 1.0]
    assert ex.parse_set(["stages.amr.eps=0.5", "select=valid"]) == {
        "stages": {"amr": {"eps": 0.5}}, "select": "valid"}
    with pytest.raises(Exception, match="comma-separated"):
        ex.parse_float_list("0.1,x", "--eps")
    with pytest.raises(Exception, match=">= 0"):
        ex.parse_float_list("-1", "--lmd")
    with pytest.raises(Exception, match="select"):
        ex.make_config(overrides={"select": "best"})


@pytest.mark.parametrize("args, needle", [
    (["sweep", "--init", "{tmp}/missing.npz"], "no such model file"),
    (["sweep", "--init", "{model}", "--eps", "0.1,abc"], "--eps"),
    (["sweep", "--init", "{model}", "--lmd", ""], "--lmd"),
    (["sweep", "--init", "{model}", "--processes", "0"], "--processes"),
    (["sweep", "--init", "{notmodel}"], "not an amrlite model"),
    (["experiment", "--set", "nokey", "--out", "{tmp}/x"], "KEY=VALUE"),
    (["experiment", "--set", "select=best", "--out", "{tmp}/x"], "select"),
    (["experiment", "--config", "{notmodel}", "--out", "{tmp}/x"], "not valid JSON"),
])
def test_cli_errors(args, needle, tmp_path, tiny):
    model = tmp_path / "m.npz"
    Model("mf", backend="numpy", dim=4, epochs=1).fit(tiny, split="loo").save(model)
    bad = tmp_path / "bad.npz"
    bad.write_text("{not json")
    args = [a.format(tmp=tmp_path, model=model, notmodel=bad) for a in args]
    result = CliRunner().invoke(cli, args)
    assert needle in one_line_error(result, only=True)


def test_cli_sweep_runs_on_a_folder(tiny, tmp_path):
    from amrlite.data import save_split
    folder = tmp_path / "data"
    folder.mkdir()
    np.savetxt(folder / "interactions.csv", np.column_stack([tiny.users, tiny.items]), fmt="%d",
               delimiter=",", header="user,item", comments="")
    np.save(folder / "features.npy", tiny.features)
    save_split(tiny.split("loo"), folder / "split-loo")
    init = tmp_path / "vbpr.npz"
    Model("vbpr", backend="numpy", dim=8, epochs=1).fit(tiny, split="loo").save(init)
    result = CliRunner().invoke(cli, ["sweep", "--data", str(folder), "--init", str(init),
                                      "--eps", "0.1,1", "--lmd", "0.5,1", "--epochs", "1",
                                      "--processes", "1", "--backend", "numpy", "-q",
                                      "--out", str(tmp_path / "sw")])
    assert result.exit_code == 0, result.output
    assert "best by valid NDCG@10" in result.output
    assert len(list((tmp_path / "sw").glob("amr-*.json"))) == 4
    # the table: one line per setting; Figs. 6 and 7 with one line per value of the other axis
    assert sum(line.split()[:2] in (["0.1", "0.5"], ["0.1", "1"], ["1", "0.5"], ["1", "1"])
               for line in result.output.splitlines()) == 4
    for name in ("fig6_sweep_eps.png", "fig7_sweep_lmd.png"):
        png = tmp_path / "sw" / name
        assert png.is_file() and png.stat().st_size > 5000, name
        assert _pixel_std(png) > 0.01, name
    # one λ only: no Fig. 7
    result = CliRunner().invoke(cli, ["sweep", "--data", str(folder), "--init", str(init),
                                      "--eps", "0.1,1", "--lmd", "1", "--epochs", "1",
                                      "--processes", "1", "--backend", "numpy", "-q",
                                      "--out", str(tmp_path / "sw2")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "sw2" / "fig6_sweep_eps.png").is_file()
    assert not (tmp_path / "sw2" / "fig7_sweep_lmd.png").exists()


GRID = ex.deep_merge(TINY, {"sweep": {"grid": True, "grid_eps": [0.1, 1.0],
                                      "grid_lmd": [0.5, 1.0], "eps": [0.1, 1.0],
                                      "lmd": [1.0], "attack_eps": 0.1}})


def test_sweep_grid_pvalues_cost_and_robustness(tiny, tmp_path, monkeypatch):
    """Real amrlite.significance / amrlite.attack: every setting of the grid is compared with
    continued VBPR; the report's numbers are those of compare() and attack() on the saved
    models; a rerun neither retrains nor re-tests."""
    from amrlite import attack as attack_mod
    from amrlite import significance
    calls = {"compare": 0}
    real_compare = significance.compare

    def counting_compare(*a, **k):
        calls["compare"] += 1
        return real_compare(*a, **k)

    monkeypatch.setattr(significance, "compare", counting_compare)
    out = tmp_path / "exp"
    s = ex.run_experiment(tiny, "loo", out, quick=True, backend="numpy", overrides=GRID,
                          progress=False)
    grid = s["sweeps"]["grid"]
    assert len(grid["runs"]) == 4
    assert {(r["eps"], r["lmd"]) for r in grid["runs"]} == {(0.1, 0.5), (0.1, 1.0), (1.0, 0.5),
                                                             (1.0, 1.0)}
    # the ε sweep (λ = 1) is a subset of the grid: reused, not retrained
    assert set(s["sweeps"]["eps"]["skipped"]) == {"amr-eps0.1-lmd1", "amr-eps1-lmd1"}
    # AMR's λ sweep at ε = 0.5 (Table 2's AMR): a setting outside the grid, trained and tested
    assert s["sweeps"]["lmd"]["runs"][0]["vs_cont"]["HR@10"]["p_t"] is not None
    n_settings = len({r["name"] for sw in s["sweeps"].values() for r in sw["runs"]})
    # Table 2: AMR vs every other model; then one per sweep setting
    assert calls["compare"] == len(s["results"]) - 1 + n_settings
    base = s["sweep_baseline"]
    assert base["test"] == s["results"]["vbpr_cont"]["test"]
    cont = Model.load(out / "models" / "vbpr_cont.npz")
    sp = tiny.split("loo")
    r = next(r for r in grid["runs"] if r["name"] == "amr-eps1-lmd0.5")
    m = Model.load(r["model"])
    ref = real_compare(m, cont, tiny, sp, on="test")
    for metric in ("HR@10", "NDCG@10"):
        assert r["vs_cont"][metric]["p_t"] == pytest.approx(ref[metric]["p_t"])
        assert r["vs_cont"][metric]["p_wilcoxon"] == pytest.approx(ref[metric]["p_wilcoxon"])
    att = attack_mod.attack(m, tiny, sp, [0.1], kind="adversarial", objective="test",
                            repeats=1, seed=0, on="test")
    x = next(iter(att["eps"].values()))
    assert r["robust"]["eps"] == 0.1
    assert r["robust"]["drop"] == pytest.approx(x["drop"]["NDCG@10"])
    assert base["robust"]["drop"] is not None
    # the report: grid matrix and the table with p-values, cost and robustness
    report = (out / "report.md").read_text()
    for needle in ("Full ε × λ grid", "Δ test HR@10 vs continued VBPR (rows ε",
                   "Δ HR@10 vs continued VBPR", "p (t-test)", "p (Wilcoxon)",
                   "NDCG@10 cost vs continued VBPR", "robust drop", "| VBPR (continued) | – |",
                   "sweep_grid_heatmap.png"):
        assert needle in report, needle
    line = next(x for x in report.splitlines() if x.startswith("| 1 | 0.5 |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    delta = r["test"]["HR@10"] - base["test"]["HR@10"]
    assert cells[4].rstrip("*") == f"{delta:+.4f}"
    assert cells[5] == f"{ref['HR@10']['p_t']:.2g}" and cells[6] == f"{ref['HR@10']['p_wilcoxon']:.2g}"
    cost = 100 * (r["test"]["NDCG@10"] - base["test"]["NDCG@10"]) / base["test"]["NDCG@10"]
    assert cells[8] == f"{cost:+.1f}%"
    assert cells[9] == f"{100 * x['drop']['NDCG@10']:.1f}%"
    for name in ("sweep_grid_heatmap.png", "fig6_sweep_eps.png", "fig7_sweep_lmd.png"):
        png = out / name
        assert png.stat().st_size > 5000 and _pixel_std(png) > 0.01, name
    # rerun: nothing retrained, nothing re-tested, same report
    n = calls["compare"]
    s2 = ex.run_experiment(tiny, "loo", out, quick=True, backend="numpy", overrides=GRID,
                           progress=False)
    assert calls["compare"] == n and s2["trained"] == []
    assert all(len(sw["skipped"]) == len(sw["runs"]) for sw in s2["sweeps"].values())
    def section(text):
        return text.split("## Sweeps over")[1].split("## Timings")[0]
    assert section((out / "report.md").read_text()) == section(report)
    # a setting whose saved model disappeared is retrained (its p-values need the model)
    (out / "sweep" / "amr-eps1-lmd0.5.npz").unlink()
    res = ex.sweep(tiny, "loo", init=out / "models" / "vbpr.npz", eps_list=[1.0],
                   lmd_list=[0.5], base_config=r["config"], out_dir=out / "sweep",
                   processes=1, progress=False, backend="numpy", save_models=True)
    assert res["skipped"] == [] and (out / "sweep" / "amr-eps1-lmd0.5.npz").is_file()


def test_grid_is_an_option():
    assert ex.make_config()["sweep"]["grid"] is False
    assert ex.make_config(quick=True)["sweep"]["grid"] is False
    cfg = ex.make_config(overrides=ex.parse_set(["sweep.grid=true"]))
    assert cfg["sweep"]["grid"] is True
    assert cfg["sweep"]["grid_eps"] == [0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]
    assert cfg["sweep"]["grid_lmd"] == [0.1, 0.3, 1.0, 3.0, 10.0]


def test_eals_stage_takes_the_library_default_reg():
    """The eALS stage passes neither the shared BPR reg nor a value of its own: the library's
    eALS default applies (as for ``amrlite fit --model eals``) unless stages.eals.reg is set."""
    from types import SimpleNamespace
    from amrlite.models import KIND_DEFAULTS
    from amrlite.experiments.pipeline import _stage_config
    ctx = SimpleNamespace(cfg=ex.make_config())
    assert _stage_config(ctx, "eals", "eals")["reg"] == KIND_DEFAULTS["eals"]["reg"]
    assert _stage_config(ctx, "mf", "mf")["reg"] == ex.DEFAULTS["reg"]
    ctx = SimpleNamespace(cfg=ex.make_config(overrides=ex.parse_set(["stages.eals.reg=0.5"])))
    assert _stage_config(ctx, "eals", "eals")["reg"] == 0.5


def test_json_is_strict(tmp_path):
    """No NaN/Infinity in what is written (NumPy scalars and arrays included): null instead;
    a NaN written by an older writer reads as None."""
    path = ex.write_json(tmp_path / "x.json", {
        "a": float("nan"), "b": np.float64("inf"), "c": np.array([1.0, np.nan]),
        "d": [np.float32(-np.inf), 2], "e": np.int64(3)})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    assert ex.read_json(path) == {"a": None, "b": None, "c": [1.0, None], "d": [None, 2],
                                  "e": 3}
    (tmp_path / "old.json").write_text('{"p": NaN, "q": [Infinity, 1]}')
    assert ex.read_json(tmp_path / "old.json") == {"p": None, "q": [None, 1]}


# ---------------------------------------------------------------------------- content keys
def _folder(tiny, path, *, split_dir=False):
    """``tiny`` as a data folder (interactions, features; ``split_dir``: a stored loo split)."""
    from amrlite.data import save_split
    path.mkdir()
    np.savetxt(path / "interactions.csv", np.column_stack([tiny.users, tiny.items]), fmt="%d",
               delimiter=",", header="user,item", comments="")
    np.save(path / "features.npy", tiny.features * 3.0)
    if split_dir:
        save_split(tiny.split("loo"), path / "split-loo")
    return path


SWEEP_ARGS = dict(eps_list=[0.1, 1.0], lmd_list=[1.0], processes=1, progress=False,
                  backend="numpy", base_config={"dim": 8, "epochs": 1, "eval_every": 0})


def test_sweep_reuses_only_results_of_the_same_content(tiny, tmp_path):
    """Unchanged: every setting reused. Checkpoint retrained in place (same path), features
    normalised otherwise, other negatives: every setting retrained, never reported as reused,
    and the stored results are the new ones."""
    from amrlite.experiments.store import load_data
    folder = _folder(tiny, tmp_path / "data")
    init = tmp_path / "vbpr.npz"
    ds = load_data(folder)
    Model("vbpr", backend="numpy", dim=8, epochs=1, seed=0).fit(ds, split="loo").save(init)
    out = tmp_path / "sw"
    logs = []

    def run(data, split="loo"):
        logs.clear()
        return ex.sweep(data, split, init=init, out_dir=out, log=logs.append,
                        **dict(SWEEP_ARGS, progress=True))
    first = run(ds)
    assert first["skipped"] == []
    again = run(ds)
    assert sorted(again["skipped"]) == ["amr-eps0.1-lmd1", "amr-eps1-lmd1"]
    assert [r["test"] for r in again["runs"]] == [r["test"] for r in first["runs"]]
    # the checkpoint retrained in place: same path, other content
    Model("vbpr", backend="numpy", dim=8, epochs=2, seed=1).fit(ds, split="loo").save(init)
    retrained = run(ds)
    assert retrained["skipped"] == [], "a retrained checkpoint's results were reused"
    assert any("init changed" in m for m in logs), logs
    stored = json.loads((out / "amr-eps0.1-lmd1.json").read_text())
    assert stored["key"] == retrained["runs"][0]["key"] != first["runs"][0]["key"]
    assert run(ds)["skipped"] != []                    # and now those are reused
    # other normalisation of the same features
    l2 = load_data(folder, normalize="l2")
    renorm = run(l2)
    assert renorm["skipped"] == [], "results of other features were reused"
    assert any("(data.features, data.modalities changed)" in m for m in logs), logs
    # other negatives (the same split name)
    neg = l2.split("loo", n_negatives=7)
    assert run(l2, neg)["skipped"] == [], "results of other negatives were reused"
    assert any("(data.split_content changed)" in m for m in logs), logs
    assert len(run(l2, neg)["skipped"]) == 2


def test_cli_sweep_builds_the_split_with_its_negatives(tmp_path):
    """``sweep --negatives 10`` trains and evaluates on the split with 10 negatives (it built
    it with 99 before, which a catalogue of fewer than 100 items cannot give); another count
    retrains, the same count reuses."""
    small = make_synthetic(n_users=40, n_items=50, n_features=6, n_latent=3, seed=4,
                           min_per_user=4, max_per_user=8, n_negatives=5)
    folder = _folder(small, tmp_path / "data")
    init = tmp_path / "vbpr.npz"
    from amrlite.experiments.store import load_data
    ds = load_data(folder)
    Model("vbpr", backend="numpy", dim=4, epochs=1).fit(
        ds, split=ds.split("loo", n_negatives=10)).save(init)
    out = tmp_path / "sw"

    def run(n):
        return CliRunner().invoke(cli, [
            "sweep", "--data", str(folder), "--init", str(init), "--eps", "0.1,1",
            "--epochs", "1", "--processes", "1", "--backend", "numpy", "-q", "--no-plots",
            "--negatives", str(n), "--out", str(out)])
    result = run(10)
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["config"]["n_negatives"] == 10
    sp = ds.split("loo", n_negatives=10)
    from amrlite.experiments.store import split_digest
    for r in saved["runs"]:
        assert r["key_parts"]["data"]["split_content"] == split_digest(sp)
    assert "0 setting(s) reused" in result.output
    result = run(20)
    assert result.exit_code == 0 and "0 setting(s) reused" in result.output, result.output
    result = run(20)
    assert result.exit_code == 0 and "2 setting(s) reused" in result.output, result.output


def test_pipeline_retrains_on_other_content(tiny, tmp_path, monkeypatch):
    """The pipeline's stages: a model file replaced in place is not taken for the stored one
    (the stage retrains; its dependants follow the content: retraining gives the same model
    here, so they are reused); other feature normalisation retrains every stage; unchanged
    reuses everything."""
    from amrlite.experiments.store import load_data
    monkeypatch.setattr(ex.pipeline, "attack", _fake_attack_module())
    monkeypatch.setattr(ex.pipeline, "significance", _fake_significance_module())
    folder = _folder(tiny, tmp_path / "data", split_dir=True)
    over = ex.deep_merge(TINY, {"sweep": {"eps": [], "lmd": []}})
    out = tmp_path / "exp"

    def run(normalize="none"):
        return ex.run_experiment(folder, "loo", out, quick=True, backend="numpy", plots=False,
                                 overrides=over, progress=False, normalize=normalize)
    first = run()
    assert set(first["trained"]) == {"pop", "eals", "mf", "duif", "vbpr", "vbpr_cont", "amr"}
    assert run()["trained"] == []
    # VBPR's checkpoint retrained in place (another seed), the stored JSON untouched
    Model("vbpr", backend="numpy", dim=8, epochs=3, seed=9).fit(
        load_data(folder), split="loo").save(out / "models" / "vbpr.npz")
    again = run()
    assert again["trained"] == ["vbpr"], again["trained"]
    assert again["results"]["vbpr"]["test"] == first["results"]["vbpr"]["test"]  # same seed
    assert (again["results"]["vbpr"]["model_sha256"]
            == first["results"]["vbpr"]["model_sha256"])
    renorm = run("l2")
    assert set(renorm["trained"]) == set(first["trained"]), renorm["trained"]
    assert run("l2")["trained"] == []
