"""The one progress mechanism (amrlite.progress): a tqdm bar on a terminal, one summary line
elsewhere, nothing when disabled; and the training loop, the feature batches and the engine
report through it."""
import io
import sys

from amrlite.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_off_a_terminal_one_summary_line(capsys):
    with Progress(3, "VBPR", unit="epoch") as bar:
        for k in range(3):
            bar.update(1, f"loss {k}")
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("VBPR: 3/3 in ") and err.rstrip().endswith(", loss 2")


def test_disabled_or_empty_prints_nothing(capsys):
    for bar in (Progress(3, "x", enabled=False), Progress(0, "x")):
        bar.update(1, "loss 1")
        bar.close()
    assert capsys.readouterr().err == ""


def test_write_receives_the_line_and_close_is_once():
    lines = []
    bar = Progress(2, "[local] tasks", write=lines.append)
    bar.update(2, "failed 0")
    bar.close()
    bar.close()
    assert len(lines) == 1 and lines[0].startswith("[local] tasks: 2/2 in ")


def test_on_a_terminal_a_tqdm_bar(monkeypatch):
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    with Progress(4, "image features", unit="item") as bar:
        bar.update(4, "ok")
    out = term.getvalue()
    assert "image features" in out and "4/4" in out and "item" in out and "\r" in out


def test_training_reports_through_it(capsys):
    from amrlite import Model
    from amrlite.synthetic import make_synthetic
    ds = make_synthetic(n_users=30, n_items=40, n_features=4, n_latent=2, seed=1,
                        min_per_user=4, max_per_user=6, n_negatives=5)
    Model("mf", backend="numpy", dim=4, epochs=2, eval_every=0).fit(ds, progress=True)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("MF-BPR: 2/2 in ") and "loss" in err[0]


def test_the_engine_reports_through_it(capsys):
    from amrlite.experiments.engine import run_tasks
    lines = []
    jobs = [{"name": str(k), "data": None, "init": None, "k": k} for k in range(3)]
    assert sorted(run_tasks(_square, jobs, processes=1, log=lines.append)) == [0, 1, 4]
    assert len(lines) == 1 and lines[0].startswith("[local, 1 process] tasks: 3/3 in ")
    assert lines[0].endswith("running 0, queued 0, failed 0")


def _square(job, data, init):
    return job["k"] ** 2
