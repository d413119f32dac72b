"""The library behind the thin CLI: amrlite.commands (one function per command, yielding what
the command prints), amrlite.reports (tables and records), amrlite.lists (list files) and the
parameter errors that the CLI words as flags."""
import ast
import csv
import inspect
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import amrlite
from amrlite import Model, commands, load_dataset
from amrlite.cli import cli, flag_of
from amrlite.commands import Note
from amrlite.errors import AmrliteError, OptionError, option_error
from amrlite.experiments.engine import check_address
from amrlite.features.extract import extract_image_features
from amrlite.lists import ListWriter, score_text
from amrlite.metrics import METRIC_NAMES
from amrlite.recommender import Recommendations
from amrlite.reports import metrics_record, results_table


@pytest.fixture(scope="module")
def saved_mf(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "mf.npz"
    Model("mf", backend="numpy", epochs=2).fit(load_dataset()).save(path)
    return path


def test_evaluate_yields_notes_then_the_table_and_writes_the_record(saved_mf, tmp_path):
    out = tmp_path / "metrics.json"
    lines = list(commands.evaluate(str(saved_mf), backend="numpy", metrics_out=str(out)))
    notes = [x for x in lines if isinstance(x, Note)]
    results = [x for x in lines if not isinstance(x, Note)]
    assert notes and notes[0].startswith("data: synthetic")
    assert len(results) == 1 and results[0].splitlines()[0].startswith("MF-BPR from ")
    record = json.loads(out.read_text())
    assert set(METRIC_NAMES) <= set(record) and record["model"] == "mf"
    assert record["backend"] == "numpy"
    # the CLI prints exactly what the function yields (stdout part)
    res = CliRunner().invoke(cli, ["evaluate", str(saved_mf), "--backend", "numpy"])
    assert res.exit_code == 0 and results[0] in res.output


def test_cli_defaults_are_the_library_defaults():
    for name, fn in (("evaluate", commands.evaluate), ("recommend", commands.recommend),
                     ("attack", commands.attack), ("sweep", commands.sweep)):
        sig = inspect.signature(fn).parameters
        for p in cli.commands[name].params:
            if p.name in sig and sig[p.name].default not in (None, inspect.Parameter.empty):
                assert p.default == sig[p.name].default, (name, p.name)


def test_recommend_one_user_from_python(saved_mf):
    lines = list(commands.recommend(str(saved_mf), user="0", n=3))
    assert len(lines) == 1 and [ln.split()[0] for ln in lines[0].splitlines()] == ["1", "2", "3"]
    with pytest.raises(OptionError) as exc:
        list(commands.recommend(str(saved_mf), user="nobody"))
    assert str(exc.value).startswith("user nobody: no such user")
    assert exc.value.naming(lambda p: "--" + p).startswith("--user nobody: no such user")


def test_parameter_errors_name_the_parameter_and_the_cli_the_flag(saved_mf):
    with pytest.raises(OptionError) as exc:
        list(commands.recommend(str(saved_mf), users="all", n=0))
    assert str(exc.value) == "n 0: must be a whole number of at least 1"
    assert flag_of("n", cli.commands["recommend"]) == "-n"
    assert flag_of("fmt", cli.commands["recommend"]) == "--format"
    assert flag_of("k_core") == "--k-core" and flag_of("n_negatives") == "--negatives"
    e = option_error(("epochs", "epochs_from"), "give one of them")
    assert str(e) == "epochs and epochs_from: give one of them"
    assert e.naming(lambda p: flag_of(p, cli.commands["fit"])) == \
        "--epochs and --epochs-from: give one of them"
    assert isinstance(e, AmrliteError)
    res = CliRunner().invoke(cli, ["recommend", str(saved_mf)])
    assert res.exit_code == 2 and res.output.strip() == (
        "amrlite: error: give --users all|FILE|ID[,ID…] (lists written as --format) "
        "or --user ID (one list as a table)")


def test_results_table_leaves_out_parts_without_rows():
    m = {k: 0.5 for k in METRIC_NAMES}
    metrics = dict(m, warm=m, cold={}, n={"all": 4, "warm": 4, "cold": 0}, protocol="full")
    rows = results_table(metrics, "title").splitlines()
    assert rows[0] == "title" and [r.split()[0] for r in rows[2:]] == ["all", "warm"]
    record = metrics_record(metrics, model="mf")
    assert record["model"] == "mf" and record["protocol"] == "full" and record["n"]["all"] == 4


def test_list_writer_csv_and_jsonl_read_back():
    scores = np.array([[0.1, 1 / 3], [2.0, -np.inf]], dtype=np.float32)
    chunk = Recommendations(users=np.array(["a", "b"], dtype=object),
                            user_index=np.array([0, -1]), source=np.array(["model", "popular"]),
                            item_index=np.array([[0, 1], [2, -1]]),
                            items=np.array([["x", "y"], ["z", ""]], dtype=object), scores=scores)
    fh = io.StringIO()
    w = ListWriter("csv", fh)
    w.write(chunk)
    w.close()
    rows = list(csv.DictReader(io.StringIO(fh.getvalue())))
    assert [(r["user"], r["rank"], r["item"], r["source"]) for r in rows] == [
        ("a", "1", "x", "model"), ("a", "2", "y", "model"), ("b", "1", "z", "popular")]
    assert np.float32(float(rows[1]["score"])) == scores[0, 1]
    fh = io.StringIO()
    ListWriter("jsonl", fh, {"x": "X"}).write(chunk)
    first = json.loads(fh.getvalue().splitlines()[0])
    assert first["items"] == ["x", "y"] and first["titles"] == ["X", ""]
    assert score_text(np.array([1 / 3])) == [repr(1 / 3)]


FLAG = re.compile(r"(?:^|[\s(\"'])(?:--[a-z][a-z-]*|-n)(?=$|[\s,:;)=\"'])")
#: flags of other programs that messages may quote (``ray start --head``)
FOREIGN = {"--head"}


def literal_flags(source):
    """``(line, text)`` of each string piece naming a command-line flag inside a ``raise`` or
    an ``option_error(...)`` call (the messages the library gives a Python caller)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        calls = isinstance(node, ast.Call) and getattr(node.func, "id", None) == "option_error"
        if isinstance(node, ast.Raise) or calls:
            for sub in ast.walk(node):
                if (isinstance(sub, ast.Constant) and isinstance(sub.value, str)
                        and {m.strip(" (\"'") for m in FLAG.findall(sub.value)} - FOREIGN):
                    found.append((sub.lineno, sub.value))
    return found


def test_library_messages_name_parameters_not_flags():
    root = Path(amrlite.__file__).parent
    assert literal_flags('raise AmrliteError(f"--out {out}: is a folder")')   # it can fail
    assert literal_flags('raise option_error((), "give -n 3")')
    assert not literal_flags('raise option_error((), "give {out}", names=("out",))')
    left = [f"{path.relative_to(root)}:{line}: {text!r}"
            for path in sorted(root.rglob("*.py")) if path.name != "cli.py"
            for line, text in literal_flags(path.read_text())]
    assert not left, "\n".join(left)


def test_python_callers_are_told_parameters(tmp_path):
    with pytest.raises(OptionError) as e:
        extract_image_features(photos=tmp_path, images_csv=tmp_path / "i.csv")
    assert str(e.value) == "photos and images_csv: give one of them"
    with pytest.raises(OptionError, match=r"^address nowhere:x: expected HOST:PORT"):
        check_address("nowhere:x")
    with pytest.raises(OptionError) as e:
        extract_image_features(batch=1)
    assert str(e.value).startswith("give photos DIR (photos named by item id), images_csv CSV "
                                   "or data_dir DIR")
    r = CliRunner().invoke(cli, ["features", "image", "--photos", str(tmp_path), "--images",
                                 str(tmp_path / "i.csv")])
    assert r.exit_code == 2
    assert r.output.strip() == "amrlite: error: --photos and --images: give one of them"
    r = CliRunner().invoke(cli, ["features", "image"])
    assert r.output.strip() == ("amrlite: error: give --photos DIR (photos named by item id), "
                                "--images CSV or --data DIR (a data folder with images.csv)")
