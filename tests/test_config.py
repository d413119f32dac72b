"""The experiment configuration is typed: ``--set`` and configuration files refuse unknown keys
(naming the nearest valid one) and values of the wrong type (naming the expected type) in one
line with exit status 2, before any work; the resolved configuration is printed and stored
beside the results; the key table of docs/experiments.md is the one the dataclasses give."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from amrlite import experiments as ex
from amrlite.cli import cli
from amrlite.errors import AmrliteError
from helpers import one_line_error

DOCS = Path(__file__).resolve().parents[1] / "docs" / "experiments.md"


@pytest.mark.parametrize("sets, message", [
    (["selct=valid", "stages.amr.epz=0.5"], "selct: no such key; did you mean select?"),
    (["stages.amr.epz=0.5"], "stages.amr.epz: no such key; did you mean stages.amr.eps?"),
    (["stages.amx.eps=0.5"], "stages.amx: no such key; did you mean stages.amr?"),
    (["sweep.grid=ture"], "sweep.grid=ture: expected a boolean (true/false)"),
    (["sweep.eps=0.1"], "sweep.eps=0.1: expected a list of numbers"),
    (["attack.repeats=2.5"], "attack.repeats=2.5: expected an integer"),
    (["select=best"], 'select=best: expected one of "valid", "final"'),
    (["attack.kinds=[\"pgd\",\"fgsm\"]"], 'attack.kinds=["pgd", "fgsm"]: expected a list, each '
                                         'one of "adversarial"'),
    (["stages.amr.lr=-1"], "stages.amr: "),
])
def test_set_refuses_unknown_keys_and_wrong_types(sets, message, tmp_path):
    args = ["experiment", "--quick", "--out", str(tmp_path / "x")]
    for s in sets:
        args += ["--set", s]
    line = one_line_error(CliRunner().invoke(cli, args), only=True)
    assert message in line
    assert not (tmp_path / "x").exists()          # refused before any work


def test_config_files_json_and_toml_are_checked(tmp_path):
    js = tmp_path / "over.json"
    js.write_text(json.dumps({"stages": {"amr": {"epz": 0.5}}}))
    line = one_line_error(CliRunner().invoke(cli, ["experiment", "--config", str(js),
                                                    "--out", str(tmp_path / "x")]), only=True)
    assert f"{js}: stages.amr.epz: no such key; did you mean stages.amr.eps?" in line
    toml = tmp_path / "over.toml"
    toml.write_text('select = "valid"\n[sweep]\ngrid = "yes"\n')
    line = one_line_error(CliRunner().invoke(cli, ["experiment", "--config", str(toml),
                                                    "--out", str(tmp_path / "x")]), only=True)
    assert f"{toml}: sweep.grid=yes: expected a boolean (true/false)" in line
    toml.write_text('select = "valid"\n[stages.amr]\neps = 0.5\n[sweep]\ngrid = true\n')
    assert ex.read_config_file(toml) == {"select": "valid", "stages": {"amr": {"eps": 0.5}},
                                         "sweep": {"grid": True}}


def test_typed_configuration_resolves_as_before():
    cfg = ex.experiment_config(quick=True, overrides=ex.parse_set(
        ["stages.amr.eps=1", "sweep.grid=true", "processes=2"]))
    assert isinstance(cfg, ex.ExperimentConfig)
    assert cfg.stages.amr.eps == 1.0 and isinstance(cfg.stages.amr.eps, float)  # int → number
    assert cfg.stages.amr.epochs == ex.QUICK["stages"]["amr"]["epochs"]          # quick kept
    assert cfg.stages.amr.lmd == 1.0 and cfg.sweep.grid is True and cfg.processes == 2
    d = cfg.to_dict()
    assert d["stages"]["eals"] == {"epochs": 3}          # a stage's unset settings left out
    assert ex.make_config() == ex.DEFAULTS and ex.DEFAULTS["stages"]["amr"] == {
        "epochs": 200, "lr": 0.01, "eps": 1.0, "lmd": 1.0}
    assert ex.ExperimentConfig.from_dict(d) == cfg
    with pytest.raises(AmrliteError, match=r"^stages\.amr\.epz: no such key; did you mean "
                                           r"stages\.amr\.eps\?$"):
        ex.make_config(overrides={"stages": {"amr": {"epz": 0.5}}})
    with pytest.raises(AmrliteError, match="^conf.json: dim=64.0: expected an integer$"):
        ex.check_overrides({"dim": 64.0}, "conf.json")


def test_resolved_configuration_is_printed_and_stored(tmp_path):
    out = tmp_path / "run"
    args = ["experiment", "--quick", "--backend", "numpy", "--no-plots", "--out", str(out),
            "--set", "stages.amr.eps=0.25", "--set", "sweep.eps=[]", "--set", "sweep.lmd=[]",
            "--set", 'attack.kinds=["random"]', "--set", "dim=8"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    printed = [x for x in result.stderr.splitlines() if x.startswith("config: ")]
    assert len(printed) == 1
    shown = json.loads(printed[0][len("config: "):])
    stored = json.loads((out / "config.json").read_text())["config"]
    assert shown == stored == ex.make_config(quick=True, overrides={
        "stages": {"amr": {"eps": 0.25}}, "sweep": {"eps": [], "lmd": []},
        "attack": {"kinds": ["random"]}, "dim": 8})
    # beside every stage result: the configuration it ran with, in its key
    amr = json.loads((out / "stages" / "amr.json").read_text())
    assert amr["key"]["config"]["eps"] == 0.25 and amr["key"]["config"]["dim"] == 8
    quiet = CliRunner().invoke(cli, args + ["-q"])
    assert quiet.exit_code == 0 and "config: " not in quiet.output


def test_docs_key_table_is_generated_from_the_dataclasses():
    assert ex.config.key_table() in DOCS.read_text(), (
        "docs/experiments.md: paste amrlite.experiments.config.key_table() between the markers")
