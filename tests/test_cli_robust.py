"""The attack and compare commands, end to end on models trained on the synthetic set."""
import json

import pytest
from click.testing import CliRunner

import amrlite
from amrlite import Model
from amrlite.cli import cli


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    ds = amrlite.load_dataset()
    kw = dict(backend="numpy", epochs=3, dim=16, batch_size=256, eval_every=0)
    Model("vbpr", **kw).fit(ds).save(d / "vbpr.npz")
    Model("mf", **kw).fit(ds).save(d / "mf.npz")
    return d


def test_attack_prints_a_table_and_writes_json(saved, tmp_path):
    out = tmp_path / "a.json"
    r = CliRunner().invoke(cli, ["attack", str(saved / "vbpr.npz"), "--eps", "0.05,0.2",
                                 "--metrics-out", str(out)])
    assert r.exit_code == 0, r.output
    assert "NDCG@10" in r.output and "clean" in r.output and "0.05" in r.output
    res = json.loads(out.read_text())
    assert set(res["eps"]) == {"0.05", "0.2"}
    assert res["eps"]["0.2"]["drop"]["NDCG@10"] > 0
    assert res["clean"]["NDCG@10"] == pytest.approx(
        amrlite.evaluate(Model.load(saved / "vbpr.npz"), amrlite.load_dataset())["NDCG@10"])


def test_attack_certified_and_mf(saved):
    r = CliRunner().invoke(cli, ["attack", str(saved / "vbpr.npz"), "--eps", "0.1",
                                 "--kind", "certified"])
    assert r.exit_code == 0, r.output
    assert "smallest" in r.output
    r = CliRunner().invoke(cli, ["attack", str(saved / "mf.npz"), "--eps", "0.1"])
    assert r.exit_code == 2 and "nothing to attack" in r.output   # MF-BPR has no content term


@pytest.mark.parametrize("args, message", [
    (["--eps", "0.1,x"], "'x' is not a number"),
    (["--eps", "-1"], "must be a finite number"),
    (["--kind", "pgd"], "--kind 'pgd'"),
    (["--objective", "all"], "--objective 'all'"),
    (["--steps", "0"], "--steps"),
])
def test_attack_bad_input_is_one_line(saved, args, message):
    r = CliRunner().invoke(cli, ["attack", str(saved / "vbpr.npz"), *args])
    assert r.exit_code == 2
    assert message in r.output and "Traceback" not in r.output
    assert r.output.strip().count("\n") == 0 or "data:" in r.output


def test_certified_needs_content(saved):
    r = CliRunner().invoke(cli, ["attack", str(saved / "mf.npz"), "--kind", "certified"])
    assert r.exit_code == 2 and "no content term" in r.output


def test_compare_prints_means_difference_and_p_values(saved, tmp_path):
    out = tmp_path / "c.json"
    r = CliRunner().invoke(cli, ["compare", str(saved / "vbpr.npz"), str(saved / "mf.npz"),
                                 "--metrics-out", str(out)])
    assert r.exit_code == 0, r.output
    assert "p (Wilcoxon)" in r.output and "NDCG@10" in r.output and "HR@10" in r.output
    res = json.loads(out.read_text())
    assert 0 <= res["NDCG@10"]["p_t"] <= 1 and 0 <= res["HR@10"]["p_wilcoxon"] <= 1
    r = CliRunner().invoke(cli, ["compare", str(saved / "vbpr.npz"), str(tmp_path / "no.npz")])
    assert r.exit_code == 2 and "no such model file" in r.output
