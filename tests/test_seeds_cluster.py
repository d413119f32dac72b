"""Seeds as an axis (derivation, statistics, the multi-seed pipeline and report) and the
engines: the local process pool and a real local Ray cluster (skipped without the ``cluster``
extra). Sweep settings and each seed's model chain are engine tasks: the same numbers in the
driver, in spawned processes and on Ray workers, a rerun submits nothing, and a worker killed
mid-sweep or mid-chain costs a retry, not a result."""
import json
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from amrlite import experiments as ex
from amrlite.experiments import engine as eng
from amrlite.experiments import seeds as sd
import importlib
from amrlite.containers import Dataset
from amrlite.errors import AmrliteError
from amrlite.recommender import Model
from amrlite.synthetic import make_synthetic

sweep_mod = importlib.import_module("amrlite.experiments.sweep")


@pytest.fixture(scope="module")
def tiny():
    return make_synthetic(n_users=80, n_items=120, n_features=12, n_latent=4, seed=3,
                          min_per_user=5, max_per_user=10, n_negatives=20)


@pytest.fixture(scope="module")
def vbpr(tiny, tmp_path_factory):
    path = tmp_path_factory.mktemp("init") / "vbpr.npz"
    Model("vbpr", backend="numpy", dim=8, epochs=2).fit(tiny, split="loo").save(path)
    return path


# ---------------------------------------------------------------------------- statistics
def test_seed_for_keeps_index_zero_and_is_fixed():
    assert ex.config.seed_for(0, 0) == 0 and ex.config.seed_for(42, 0) == 42
    s = [ex.config.seed_for(0, k) for k in range(6)]
    assert len(set(s)) == 6 and all(0 <= v < 2 ** 31 for v in s)
    assert s == [ex.config.seed_for(0, k) for k in range(6)]      # fixed by (base, k)
    assert ex.config.seed_for(1, 1) != s[1]


def test_mean_ci_by_hand():
    r = sd.mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)         # t_{0.975, 2} · sd (= 1) / √3
    assert r["mean"] == 2.0 and r["sd"] == pytest.approx(1.0)
    assert r["half"] == pytest.approx(half) and r["lo"] == pytest.approx(2 - half)
    one = sd.mean_ci([0.5])
    assert one["mean"] == 0.5 and one["half"] is None and one["n"] == 1


def test_holm_by_hand():
    # sorted: 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → running max 0.06; None ignored
    assert sd.holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    assert sd.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_pooled_user_test_by_hand():
    # per-user means over 2 seeds: A − B = [0.5, 1, −0.25, 0.75, 1.5]; |d| ranks 2, 4, 1, 3, 5
    # W− = 1, W+ = 14; exact two-sided p = 2 · P(W− ≤ 1) = 2 · 2/32 = 0.125 (n = 5)
    a = [[0.5, 1, 0, 1, 2], [0.5, 1, 0, 0.5, 1]]
    b = [[0, 0, 0.25, 0, 0], [0, 0, 0.25, 0, 0]]
    r = sd.pooled_user_test(a, b)
    assert r["p"] == pytest.approx(0.125) and r["n_users"] == 5 and r["n_seeds"] == 2
    assert r["diff"] == pytest.approx(np.mean([0.5, 1, -0.25, 0.75, 1.5]))
    d = np.array([0.5, 1, -0.25, 0.75, 1.5])
    assert r["p_t"] == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
    across = sd.across_seed_test([0.30, 0.35, 0.32], [0.28, 0.30, 0.31])
    assert across["p"] == pytest.approx(stats.ttest_rel([0.30, 0.35, 0.32],
                                                        [0.28, 0.30, 0.31]).pvalue)
    assert sd.across_seed_test([0.3], [0.2])["p"] is None


# ---------------------------------------------------------------------------- the pipeline
TINY = {"eval_every": 1, "dim": 8,
        "stages": {"mf": {"epochs": 2}, "duif": {"epochs": 2}, "vbpr": {"epochs": 3},
                   "vbpr_cont": {"epochs": 2}, "amr": {"epochs": 2, "eps": 0.5}},
        "attack": {"eps": [0.1, 0.5], "repeats": 1, "objectives": ["test"], "pgd_steps": 2},
        "sweep": {"eps": [0.1, 1.0], "lmd": [1.0], "processes": 1}}


def test_multi_seed_pipeline_reuses_seed_zero_and_reports_intervals(tiny, tmp_path):
    out = tmp_path / "exp"
    one = ex.run_experiment(tiny, "loo", out, quick=True, backend="numpy", overrides=TINY,
                            progress=False, plots=False)
    two = ex.run_experiment(tiny, "loo", out, quick=True, backend="numpy", overrides=TINY,
                            progress=False, seeds=2)
    s1 = ex.config.seed_for(0, 1)
    # seed index 0 is the single-seed run: reused, not retrained; seed 1 trains its own chain
    assert set(two["reused"]) == set(one["trained"])
    assert set(two["trained"]) == {f"{n}@seed{s1}" for n in one["trained"]}
    assert two["seeds"] == [0, s1]
    multi = two["multi"]
    for m in ("HR@10", "NDCG@10"):
        vals = multi["models"]["amr"][m]["values"]
        assert vals[0] == one["results"]["amr"]["test"][m]
        seed1 = json.loads((out / "stages" / f"amr@seed{s1}.json").read_text())
        assert vals[1] == seed1["test"][m]
        assert multi["models"]["amr"][m]["mean"] == pytest.approx(np.mean(vals))
    cmp = multi["vs_amr"]["vbpr_cont"]["HR@10"]
    assert cmp["pooled"]["n_seeds"] == 2 and "p_holm" in cmp["pooled"]
    assert cmp["across"]["p"] is None or 0 <= cmp["across"]["p"] <= 1
    grid = multi["sweeps"]["axes"]["eps"]["runs"]
    assert len(grid) == 2 and all(r["vs_cont"]["pooled"] for r in grid)
    assert (out / "sweep" / f"seed{s1}" / "amr-eps0.1-lmd1.json").is_file()
    report = (out / "report.md").read_text()
    for needle in ("(2 seeds)", "mean ± 95% CI", "across-seed", "pooled per-user Wilcoxon",
                   "Holm", f"seed {s1}", "Table 3", "Fig. 6"):
        assert needle in report, needle
    for png in ("fig3_training_curves.png", "fig6_sweep_eps.png", "attack_drop.png"):
        assert (out / png).stat().st_size > 5000, png
    json.loads((out / "summary.json").read_text(), parse_constant=pytest.fail)   # strict
    again = ex.run_experiment(tiny, "loo", out, quick=True, backend="numpy", overrides=TINY,
                              progress=False, plots=False, seeds=2)
    assert again["trained"] == []
    assert again["multi"]["models"] == multi["models"]


def test_local_engine_reports_failures_after_the_rest(tmp_path):
    stored = []
    jobs = [{"name": f"j{k}", "data": None, "init": None, "k": k} for k in range(4)]
    with pytest.raises(eng.TaskFailed, match="1 of 4 task"):
        eng.run_tasks(_fails_on_two, jobs, engine="local", processes=1, progress=False,
                      on_result=lambda job, res: stored.append(res))
    assert sorted(stored) == [0, 1, 3]


def _fails_on_two(job, data, init):
    if job["k"] == 2:
        raise ValueError("task 2 fails")
    return job["k"]


def test_engine_arguments_are_checked():
    with pytest.raises(Exception, match="^engine 'spark': expected one of"):
        eng.run_tasks(_fails_on_two, [{"name": "a"}], engine="spark")
    with pytest.raises(Exception, match="^address is for engine ray"):
        eng.run_tasks(_fails_on_two, [{"name": "a", "data": None, "init": None, "k": 0}],
                      engine="local", address="auto")


# ---------------------------------------------------------------------------- dead address
def _closed_port():
    """A loopback port that was just bound and closed: nothing listens there."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dead_cluster_address_exits_fast_with_one_line(tmp_path):
    """``--engine ray --address`` where nothing answers: exit 2 within 30 s (Ray alone keeps
    retrying for minutes), one line naming the address, nothing computed."""
    import subprocess
    import sys
    pytest.importorskip("ray")
    address = f"127.0.0.1:{_closed_port()}"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "from amrlite.cli import main; main()", "experiment",
             "--quick", "--engine", "ray", "--address", address, "--out", str(tmp_path / "x")],
            capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"--address {address}: still waiting after 30 s")
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("amrlite: error: --address " + address)
    assert "nothing answers" in lines[0] and not (tmp_path / "x").exists()


def test_dead_cluster_address_in_the_library(tmp_path, monkeypatch, vbpr):
    monkeypatch.setattr(eng, "CONNECT_TIMEOUT", 1.0)
    address = f"ray://127.0.0.1:{_closed_port()}"
    with pytest.raises(AmrliteError, match="^address " + address):
        ex.sweep(None, "loo", init=vbpr, eps_list=[0.1], lmd_list=[1.0], out_dir=tmp_path,
                 engine="ray", address=address, progress=False, backend="numpy")
    assert not list(tmp_path.iterdir())
    with pytest.raises(AmrliteError, match="expected HOST:PORT"):
        eng.check_address("host:port")


# ---------------------------------------------------------------------------- Ray
SWEEP = dict(eps_list=[0.1, 0.5, 1.0], lmd_list=[1.0], seeds=2, save_models=True,
             base_config={"dim": 8, "epochs": 3, "eval_every": 0, "seed": 5},
             progress=False, backend="numpy")


def _npz(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files if k != "header"}


def _same(a, b):
    """Two sweeps' per-seed runs are equal bit for bit: metrics and every saved array."""
    for ra, rb in zip(a["per_seed"], b["per_seed"]):
        assert [r["name"] for r in ra["runs"]] == [r["name"] for r in rb["runs"]]
        for x, y in zip(ra["runs"], rb["runs"]):
            assert x["test"] == y["test"] and x["valid"] == y["valid"]
            za, zb = _npz(x["model"]), _npz(y["model"])
            assert za.keys() == zb.keys()
            for k in za:
                assert np.array_equal(za[k], zb[k]), k


def _dead(pid, wait=10.0):
    """The process is gone or a zombie (its parent, Ray's raylet, may not have reaped it yet)."""
    import time
    t0 = time.monotonic()
    while time.monotonic() - t0 < wait:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    with eng.ray_cluster(processes=2):
        yield ray


def test_ray_sweep_equals_local_survives_a_killed_worker_and_resumes(
        tiny, vbpr, tmp_path, ray_cluster, monkeypatch):
    local = ex.sweep(tiny, "loo", init=vbpr, out_dir=tmp_path / "local", engine="local",
                     processes=2, **SWEEP)
    on_ray = ex.sweep(tiny, "loo", init=vbpr, out_dir=tmp_path / "ray", engine="ray", **SWEEP)
    _same(local, on_ray)
    assert {r["pid"] for p in on_ray["per_seed"] for r in p["runs"]} - {os.getpid()}

    # kill the worker that delivered the first result (Ray hands it the next task at once):
    # Ray retries what it was running, the sweep completes with every result
    store, killed = sweep_mod._store_result, []

    def store_and_kill(job, res):
        if not killed:
            killed.append(res["pid"])
            os.kill(res["pid"], signal.SIGKILL)
        store(job, res)
    monkeypatch.setattr(sweep_mod, "_store_result", store_and_kill)
    hurt = ex.sweep(tiny, "loo", init=vbpr, out_dir=tmp_path / "killed", engine="ray",
                    **SWEEP)
    monkeypatch.setattr(sweep_mod, "_store_result", store)
    assert killed and all(len(p["runs"]) == 3 for p in hurt["per_seed"])
    assert _dead(killed[0])
    _same(local, hurt)

    # a rerun does no work: every setting of every seed is found in the store
    files = sorted((tmp_path / "killed").rglob("amr-*.json"))
    mtimes = [f.stat().st_mtime_ns for f in files]
    calls = []
    monkeypatch.setattr(eng, "_run_ray", lambda *a, **k: calls.append(a) or [])
    again = ex.sweep(tiny, "loo", init=vbpr, out_dir=tmp_path / "killed", engine="ray",
                     **SWEEP)
    assert calls == [] and all(len(p["skipped"]) == 3 for p in again["per_seed"])
    assert [f.stat().st_mtime_ns for f in files] == mtimes and len(files) == 6
    _same(local, again)


def test_cli_sweep_with_seeds(tmp_path):
    from click.testing import CliRunner
    from amrlite.cli import cli
    from amrlite.experiments.store import load_data
    init = tmp_path / "vbpr.npz"
    Model("vbpr", backend="numpy", dim=8, epochs=1).fit(load_data(None), split="loo").save(init)
    args = ["sweep", "--init", str(init), "--eps", "0.1,1", "--epochs", "1", "--seed", "3",
            "--processes", "1", "--backend", "numpy", "-q", "--out", str(tmp_path / "sw"),
            "--seeds", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "mean ± 95% CI over 2 seeds" in result.output and " ± " in result.output
    s1 = ex.config.seed_for(3, 1)
    assert len(list((tmp_path / "sw" / f"seed{s1}").glob("amr-*.json"))) == 2
    saved = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert saved["seeds"] == [3, s1] and set(saved["aggregate"]) == {"amr-eps0.1-lmd1",
                                                                    "amr-eps1-lmd1"}
    assert (tmp_path / "sw" / "fig6_sweep_eps.png").stat().st_size > 5000
    bad = CliRunner().invoke(cli, args[:-1] + ["0"])
    assert bad.exit_code != 0 and "--seeds" in bad.output


# ---------------------------------------------------------------------------- chains on engines
CHAINS = ex.deep_merge(TINY, {"sweep": {"processes": 2}})


def _experiment(tiny, out, engine, processes=None):
    over = ex.deep_merge(CHAINS, {"processes": processes})
    return ex.run_experiment(tiny, "loo", out, quick=True, backend="numpy", overrides=over,
                             progress=False, plots=False, seeds=2, engine=engine)


def _stored(out):
    """Every stored result of an experiment folder, ``{relative path: content}``: each JSON
    (out_dir spelt ``OUT``, without the timings and process ids that differ between runs) and
    every array of every model (``path:array``). Left out: timings, process ids and a sweep's
    ``skipped`` list (what a rerun reused), which say how a run went, not what it found."""
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in ("seconds", "pid", "skipped")}
        return [strip(v) for v in x] if isinstance(x, list) else x
    got = {}
    for f in sorted(out.rglob("*")):
        rel = f.relative_to(out).as_posix()
        if f.suffix == ".json" and rel not in ("summary.json", "config.json"):
            got[rel] = strip(json.loads(f.read_text().replace(str(out), "OUT")))
        elif f.suffix == ".npz":
            got.update({f"{rel}:{k}": v for k, v in _npz(f).items()})
    return got


def _assert_same_store(a, b):
    sa, sb = _stored(a), _stored(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        same = np.array_equal(sa[k], sb[k]) if isinstance(sa[k], np.ndarray) else sa[k] == sb[k]
        assert same, k


@pytest.fixture(scope="module")
def in_driver(tiny, tmp_path_factory):
    """The two-seed experiment with the local engine in one process (the driver's threads)."""
    out = tmp_path_factory.mktemp("in_driver")
    return out, _experiment(tiny, out, "local", processes=1)


CHAIN_MODELS = ["pop", "eals", "mf", "duif", "vbpr", "vbpr_cont", "amr"]


def test_seed_chains_are_tasks_and_the_same_on_every_engine(tiny, tmp_path, in_driver,
                                                            ray_cluster, monkeypatch):
    out1, one = in_driver
    seeds = one["seeds"]
    assert [c["pid"] for c in one["chains"]] == [os.getpid()] * 2      # ran in this process
    put, data_puts = ray_cluster.put, []

    def counting_put(obj, **kw):
        data_puts.extend([obj] if isinstance(obj, Dataset) else [])
        return put(obj, **kw)
    monkeypatch.setattr(ray_cluster, "put", counting_put)
    runs = {"local": _experiment(tiny, tmp_path / "local", "local", processes=2),
            "ray": _experiment(tiny, tmp_path / "ray", "ray")}
    monkeypatch.undo()
    assert len(data_puts) == 1          # the data went into the object store once, for both batches
    for engine, run in runs.items():
        # each seed's chain was one task, run in a worker process: spawned, or a Ray worker
        # (the Ray task id comes from Ray's runtime in the process that ran it)
        chains = {c["seed"]: c for c in run["chains"]}
        assert sorted(chains) == sorted(seeds), engine
        for c in chains.values():
            assert c["pid"] != os.getpid() and c["trained"] == CHAIN_MODELS, (engine, c)
            assert (c["ray_task"] is not None) == (engine == "ray"), (engine, c)
        assert run["multi"]["models"] == one["multi"]["models"], engine
        assert run["multi"]["sweeps"] == one["multi"]["sweeps"], engine
        _assert_same_store(out1, tmp_path / engine)          # every metric, every parameter
    assert "Ray task" in (tmp_path / "ray" / "report.md").read_text()

    # a rerun submits nothing and trains nothing: every seed's chain is found in the store
    models = sorted((tmp_path / "ray" / "models").glob("*.npz"))
    mtimes = [f.stat().st_mtime_ns for f in models]
    calls = []
    monkeypatch.setattr(eng, "_run_ray", lambda *a, **k: calls.append(a) or [])
    again = _experiment(tiny, tmp_path / "ray", "ray")
    monkeypatch.undo()
    assert calls == [] and again["trained"] == [] and again["chains"] == []
    assert [f.stat().st_mtime_ns for f in models] == mtimes and len(models) == 14

    # a seed missing one model: its chain runs again on a Ray worker, which gets the seed's
    # finished stages with the job (it has no out_dir) and trains that model alone
    s1 = seeds[1]
    for f in (f"stages/amr@seed{s1}.json", f"models/amr@seed{s1}.npz"):
        (tmp_path / "ray" / f).unlink()
    part = _experiment(tiny, tmp_path / "ray", "ray")
    assert part["trained"] == [f"amr@seed{s1}"]
    assert [c["seed"] for c in part["chains"]] == [s1] and part["chains"][0]["ray_task"]
    _assert_same_store(out1, tmp_path / "ray")


def test_ray_chain_survives_a_killed_worker(tiny, tmp_path, in_driver, ray_cluster):
    """A Ray worker killed in the middle of a seed's chain (its private store already holds
    the VBPR checkpoint): Ray reruns the chain on another worker, every result is there."""
    import glob
    import shutil
    import tempfile
    import threading
    pattern = os.path.join(tempfile.gettempdir(), "amrlite-chain-*", "models", "vbpr*.npz")
    before = set(glob.glob(pattern))
    killed, stop = [], threading.Event()

    def kill_mid_chain():
        while not stop.is_set() and not killed:
            for f in set(glob.glob(pattern)) - before:
                pid = int(Path(f).parents[1].name.split("-")[2])
                os.kill(pid, signal.SIGKILL)
                killed.append((pid, Path(f).parents[1]))
                break
            stop.wait(0.005)
    watcher = threading.Thread(target=kill_mid_chain)
    watcher.start()
    try:
        run = _experiment(tiny, tmp_path / "killed", "ray")
    finally:
        stop.set()
        watcher.join()
        for _, left in killed:            # the killed worker's private store stays behind
            shutil.rmtree(left, ignore_errors=True)
    assert killed, "no chain was seen running on a Ray worker"
    pid = killed[0][0]
    assert _dead(pid)
    assert sorted(c["seed"] for c in run["chains"]) == sorted(in_driver[1]["seeds"])
    assert pid not in {c["pid"] for c in run["chains"]}          # the retry ran elsewhere
    assert all(c["trained"] == CHAIN_MODELS for c in run["chains"])
    _assert_same_store(in_driver[0], tmp_path / "killed")
