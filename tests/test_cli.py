"""The command line and the Python API end to end, on the embedded synthetic data."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

import amrlite
from amrlite import Model, evaluate, load_dataset
from amrlite.cli import cli
from amrlite.metrics import METRIC_NAMES


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.fixture(scope="module")
def saved_vbpr(tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "vbpr.npz"
    data = load_dataset()
    model = Model("vbpr", backend="numpy", epochs=3, eval_every=1).fit(data)
    model.save(out)
    return out, model, data


def test_fit_writes_model_metrics_and_log(runner, tmp_path):
    out, mpath, log = tmp_path / "m.npz", tmp_path / "metrics.json", tmp_path / "log.jsonl"
    res = runner.invoke(cli, ["fit", "--model", "vbpr", "--epochs", "3", "--backend", "numpy",
                              "--out", str(out), "--metrics-out", str(mpath), "--log", str(log),
                              "-q"])
    assert res.exit_code == 0, res.output
    assert "synthetic" in res.output and "NDCG@10" in res.output
    metrics = json.loads(mpath.read_text())
    assert set(METRIC_NAMES) <= set(metrics)
    assert metrics["backend"] == "numpy" and len(metrics["epoch_seconds"]) == 3
    assert set(metrics["warm"]) == set(METRIC_NAMES) and metrics["n"]["cold"] > 0
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2, 3] and "valid" in lines[0]
    assert out.exists()


def test_fit_amr_runs_the_pretraining_chain(runner):
    res = runner.invoke(cli, ["fit", "--epochs", "2", "--backend", "numpy", "-q"])
    assert res.exit_code == 0, res.output
    assert "MF-BPR → VBPR → AMR" in res.output
    assert res.output.index("training MF-BPR") < res.output.index("training VBPR") < \
        res.output.index("training AMR")
    side = res.output[res.output.index("side by side (test):"):]      # the chain compared
    assert all(m in side for m in ("MF-BPR", "VBPR", "AMR", "cold HR@10"))
    assert "AMR is above VBPR" in side or "AMR is below VBPR" in side or "level with" in side


def test_eval_every_zero_turns_evaluation_off(runner, tmp_path):
    mpath = tmp_path / "m.json"
    res = runner.invoke(cli, ["fit", "--model", "mf", "--epochs", "2", "--eval-every", "0",
                              "--backend", "numpy", "-q", "--metrics-out", str(mpath)])
    assert res.exit_code == 0 and json.loads(mpath.read_text())["best_epoch"] is None


def test_saved_model_loads_to_identical_scores(saved_vbpr):
    path, model, data = saved_vbpr
    loaded = Model.load(path)
    users, items = np.arange(20), np.arange(20)
    np.testing.assert_array_equal(loaded.score(users, items), model.score(users, items))
    assert evaluate(loaded, data) == evaluate(model, data)
    assert loaded.header["version"] == amrlite.__version__ and loaded.kind == "vbpr"
    assert loaded.header["fingerprint"] == data.fingerprint()


def test_evaluate_and_recommend_commands(runner, saved_vbpr, tmp_path):
    path, model, data = saved_vbpr
    mpath = tmp_path / "e.json"
    res = runner.invoke(cli, ["evaluate", str(path), "--metrics-out", str(mpath)])
    assert res.exit_code == 0, res.output
    assert json.loads(mpath.read_text())["NDCG@10"] == pytest.approx(evaluate(model, data)["NDCG@10"])
    res = runner.invoke(cli, ["evaluate", str(path), "--full-ranking"])
    assert res.exit_code == 0 and "full ranking" in res.output
    res = runner.invoke(cli, ["recommend", str(path), "--user", "3", "-n", "5"])
    assert res.exit_code == 0 and len(res.output.strip().splitlines()) == 5
    items, scores = model.recommend(3, 5)
    assert f"item {items[0]:>6}" in res.output.splitlines()[0]
    seen = set(data.split("loo").train_items[data.split("loo").train_users == 3])
    assert not seen & set(items.tolist()) and np.all(np.diff(scores) <= 0)


def test_gradcheck_command(runner):
    res = runner.invoke(cli, ["gradcheck", "--model", "amr", "--backend", "numpy"])
    assert res.exit_code == 0 and "all gradients match" in res.output


@pytest.mark.parametrize("args,message", [
    (["fit", "--data", "/no/such/folder"], "/no/such/folder"),
    (["fit", "--lr", "-1", "--model", "mf"], "--lr"),
    (["fit", "--model", "mf", "--split", "nosuch"], "nosuch"),
    (["evaluate", "/no/model.npz"], "/no/model.npz"),
    (["recommend", "/no/model.npz", "--user", "1"], "/no/model.npz"),
])
def test_user_errors_are_one_line_without_traceback(runner, args, message):
    res = runner.invoke(cli, args)
    assert res.exit_code == 2, res.output
    lines = [x for x in res.output.splitlines() if x.startswith("amrlite: error")]
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in res.output


def test_recommend_unknown_user_and_bad_model_file(runner, saved_vbpr, tmp_path):
    path, _, _ = saved_vbpr
    res = runner.invoke(cli, ["recommend", str(path), "--user", "100000"])
    assert res.exit_code == 2 and "no such user" in res.output
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    res = runner.invoke(cli, ["evaluate", str(bad)])
    assert res.exit_code == 2 and "not an amrlite model" in res.output


def test_evaluate_refuses_a_model_of_other_data(saved_vbpr, tmp_path):
    path, _, _ = saved_vbpr
    other = load_dataset()  # same synthetic data: fine
    evaluate(Model.load(path), other)
    from amrlite.synthetic import make_synthetic
    with pytest.raises(amrlite.AmrliteError, match="another data set|users"):
        evaluate(Model.load(path), make_synthetic(n_users=300, seed=3))


def test_pop_and_duif_train_and_score():
    data = load_dataset()
    pop = Model("pop").fit(data)
    duif = Model("duif", backend="numpy", epochs=5).fit(data)
    mp, md = evaluate(pop, data), evaluate(duif, data)
    assert 0 < mp["HR@10"] < 1 and md["cold"]["HR@10"] > 0.2     # content reaches cold items
    top, _ = pop.recommend(0, 3)
    counts = np.bincount(data.split("loo").train_items, minlength=data.n_items)
    assert counts[top[0]] >= counts[top[-1]]


def test_init_chain_carries_blocks():
    data = load_dataset()
    mf = Model("mf", backend="numpy", epochs=2, eval_every=0).fit(data)
    vbpr = Model("vbpr", backend="numpy", epochs=0).fit(data, init=mf)
    np.testing.assert_array_equal(vbpr.params["Q"], mf.params["Q"])
    assert vbpr.header["init"]["blocks"] == ["P", "Q"]
    with pytest.raises(amrlite.AmrliteError, match="no parameter block"):
        Model("vbpr", backend="numpy", epochs=0, dim=8).fit(data, init=mf)


def test_interrupt_keeps_what_was_learned(monkeypatch):
    from amrlite.kernels import reference
    data = load_dataset()
    calls = {"n": 0}
    real = reference.train_epoch

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(reference, "train_epoch", flaky)
    m = Model("mf", backend="numpy", epochs=10).fit(data)
    assert m.history.interrupted and len(m.history.losses) == 2 and m.history.best_epoch == 2
