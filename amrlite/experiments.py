"""The paper's experiments, one call (or one ``amrlite experiment``) away on any data set folder.

* :func:`sweep` — AMR for each (ε, λ) from one VBPR checkpoint, in parallel processes, best by
  validation NDCG@10, one JSON per setting (a rerun skips settings already done).
* :func:`training_curves` — continued VBPR vs AMR from the same checkpoint, validation *and*
  test HR@10/NDCG@10 every N epochs, plus the MF-BPR line (Fig. 3).
* :func:`run_experiment` — the whole pipeline: POP, MF-eALS, MF-BPR, DUIF, VBPR, continued VBPR,
  AMR; Table 2 (with paired significance marks), Table 3 (attacks), Fig. 3, 5, 6, 7 and a
  ``report.md``. Every sweep setting is tested against continued VBPR (paired p-values, clean
  NDCG@10 cost, NDCG@10 drop under the adversarial attack at ``sweep.attack_eps``);
  ``sweep.grid = true`` adds the full ε × λ grid (table and heatmap). Every trained model is
  saved in ``out_dir/models`` and every stage's result is written atomically to
  ``out_dir/stages/<stage>.json``; a rerun loads what exists (when the stage's configuration is
  unchanged) instead of recomputing it.

The protocol of the defaults (:data:`DEFAULTS`) is the one of the PyTorch reference run on
ml100k ``split-sparse3``: K = 64, batch 512, Adagrad, loss summed over the batch, β = 1e-3,
VBPR from scratch (300 epochs, lr 0.05), then 200 more epochs (lr 0.01) of either VBPR
("continued VBPR", the fair baseline) or AMR (ε = 1, λ = 1) from that checkpoint.

The optional modules ``amrlite.attack``, ``amrlite.significance`` and ``amrlite.eals`` are
imported lazily; a stage whose module is missing is recorded as skipped, not failed.
"""
from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .version import __version__
from .errors import AmrliteError
from .metrics import METRIC_NAMES

SUMMARY = ("HR@10", "NDCG@10")

#: defaults of :func:`run_experiment` (``stages`` hold per-stage overrides of the shared values)
DEFAULTS = {
    "dim": 64, "batch_size": 512, "reg": 1e-3, "seed": 0,
    # "valid": keep the epoch with the best validation NDCG@10; "final": the last epoch
    "select": "final",
    "eval_every": 10,              # validation (and, for the curves, test) every N epochs
    "vbpr_init": "scratch",        # VBPR pre-training from "scratch" or from "mf"
    "stages": {
        "mf": {"epochs": 300, "lr": 0.05},
        "duif": {"epochs": 300, "lr": 0.05},
        "vbpr": {"epochs": 300, "lr": 0.05},
        "vbpr_cont": {"epochs": 200, "lr": 0.01},
        "amr": {"epochs": 200, "lr": 0.01, "eps": 1.0, "lmd": 1.0},
        "eals": {"epochs": 20, "reg": 0.01},   # ALS converges in few sweeps; larger λ
    },
    # kinds: adversarial (one FGM step), pgd (``pgd_steps`` projected steps), random, certified
    # (the guaranteed lower bound); random and certified do not depend on the objective
    "attack": {"eps": [0.05, 0.1, 0.2, 0.5, 1.0, 2.0],
               "kinds": ["adversarial", "pgd", "random", "certified"],
               "objectives": ["test", "train"], "repeats": 5, "pgd_steps": 5},
    "rank_change_eps": 1.0,
    # eps/lmd: one-axis sweeps (Figs. 6, 7) around the AMR stage's (ε, λ); grid: also the full
    # grid_eps × grid_lmd grid (``--set sweep.grid=true``; a heatmap and a grid table). Every
    # setting is tested against continued VBPR (paired, test rows) and attacked at attack_eps.
    "sweep": {"eps": [0.1, 0.2, 0.5, 1.0, 2.0], "lmd": [0.1, 1.0, 10.0], "processes": None,
              "grid": False, "grid_eps": [0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0],
              "grid_lmd": [0.1, 0.3, 1.0, 3.0, 10.0], "attack_eps": 0.1},
}

#: attacks whose perturbation does not depend on a loss (reported once, objective "–")
OBJECTIVE_FREE_ATTACKS = ("random", "certified")

#: what ``quick=True`` changes (a smoke run: minutes become seconds)
QUICK = {
    "eval_every": 2,
    "stages": {
        "mf": {"epochs": 6}, "duif": {"epochs": 6}, "vbpr": {"epochs": 6},
        "vbpr_cont": {"epochs": 4}, "amr": {"epochs": 4}, "eals": {"epochs": 3},
    },
    "attack": {"eps": [0.5, 1.0], "repeats": 1, "objectives": ["test"], "pgd_steps": 2},
    "sweep": {"eps": [0.1, 1.0], "lmd": [1.0], "processes": 1},
}


# ---------------------------------------------------------------------------- small helpers
def deep_merge(base, override):
    """A copy of ``base`` with ``override`` merged in (dicts recursively, everything else replaced)."""
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def make_config(*, quick=False, overrides=None):
    """The configuration of :func:`run_experiment`: :data:`DEFAULTS`, then :data:`QUICK` when
    ``quick``, then ``overrides`` (a nested dict, e.g. ``{"stages": {"amr": {"eps": 0.5}}}``)."""
    cfg = deep_merge(DEFAULTS, QUICK if quick else None)
    cfg = deep_merge(cfg, overrides)
    if cfg["select"] not in ("valid", "final"):
        raise AmrliteError(f"select: {cfg['select']!r} is not 'valid' or 'final'")
    if cfg["vbpr_init"] not in ("scratch", "mf"):
        raise AmrliteError(f"vbpr_init: {cfg['vbpr_init']!r} is not 'scratch' or 'mf'")
    return cfg


def parse_set(items):
    """``["stages.amr.eps=0.5", "select=valid"]`` → a nested override dict (values JSON or text)."""
    out = {}
    for item in items or ():
        if "=" not in item:
            raise AmrliteError(f"--set {item!r}: expected KEY=VALUE (e.g. stages.amr.eps=0.5)")
        key, value = item.split("=", 1)
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def parse_float_list(text, option):
    """``"0.01,0.1,1"`` → ``[0.01, 0.1, 1.0]``; a one-line error for anything else."""
    if isinstance(text, (list, tuple)):
        return [float(x) for x in text]
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [float(p) for p in parts if p]
    except ValueError:
        raise AmrliteError(f"{option} {text!r}: expected comma-separated numbers, "
                           "e.g. 0.01,0.1,1") from None
    if not values:
        raise AmrliteError(f"{option}: empty list")
    bad = [v for v in values if not (math.isfinite(v) and v >= 0)]
    if bad:
        raise AmrliteError(f"{option} {text!r}: values must be finite and >= 0 (got {bad[0]})")
    return values


def write_json(path, obj):
    """Write JSON atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(_jsonable(obj), indent=1) + "\n")
    tmp.replace(path)
    return path


def read_json(path):
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, OSError):
        return None        # a torn or foreign file: recompute


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _metrics(flat):
    """The nine headline metrics of an :func:`amrlite.evaluate` result, plus warm/cold HR/NDCG@10."""
    out = {k: float(flat[k]) for k in METRIC_NAMES}
    for part in ("warm", "cold"):
        if flat.get("n", {}).get(part):
            out[part] = {k: float(flat[part][k]) for k in SUMMARY}
    return out


def _load_data(data):
    """A Dataset from a Dataset (returned as is), a folder path, or None (the synthetic set)."""
    from .data import Dataset, load_dataset
    if isinstance(data, Dataset):
        return data
    return load_dataset(None if data is None else str(data))


def _data_ref(ds):
    """What a worker process needs to rebuild ``ds``: its path, or the (picklable) object."""
    src = getattr(ds, "source", None)
    if src and not getattr(ds, "synthetic", False) and Path(src).exists():
        return str(src)
    return ds


def _config_key(d):
    return json.dumps(_jsonable(d), sort_keys=True)


@contextmanager
def _single_threaded_children():
    """Spawned workers inherit the environment: one BLAS/OpenMP/Numba thread each."""
    names = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {n: os.environ.get(n) for n in names}
    os.environ.update({n: "1" for n in names})
    try:
        yield
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def _progress(total, label, enabled):
    import click
    if not enabled or total <= 0:
        class _Null:
            def update(self, n):
                pass

            def __enter__(self):
                return self

            def __exit__(self, *a):
                return False
        return _Null()
    return click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True)


# ---------------------------------------------------------------------------- sweep
def _sweep_name(eps, lmd):
    return f"amr-eps{eps:g}-lmd{lmd:g}"


def _sweep_job(job):
    """One AMR run of a sweep (runs in a worker process, or in-process with processes=1)."""
    from .recommender import Model, evaluate
    ds = _load_data(job["data"])
    sp = ds.split(job["split"])
    t0 = time.perf_counter()
    model = Model("amr", backend=job["backend"], **job["config"])
    model.fit(ds, split=sp, init=job["init"])
    seconds = time.perf_counter() - t0
    res = {"name": job["name"], "eps": job["config"]["eps"], "lmd": job["config"]["lmd"],
           "config": job["config"], "init": job["init"], "split": sp.name,
           "best_epoch": model.history.best_epoch, "seconds": round(seconds, 3),
           "pid": os.getpid()}
    if sp.valid is not None:
        res["valid"] = _metrics(evaluate(model, ds, sp, on="valid"))
    res["test"] = _metrics(evaluate(model, ds, sp, on="test"))
    if job.get("model_path"):
        model.save(job["model_path"])
        res["model"] = job["model_path"]
    write_json(job["json"], res)
    return res


def sweep(dataset, split="loo", *, init, eps_list, lmd_list, base_config=None, out_dir,
          processes=None, progress=True, backend="auto", save_models=False):
    """Train AMR for every (ε, λ) in ``eps_list × lmd_list`` from the same VBPR checkpoint.

    ``dataset``: a Dataset or a folder path (workers reload it by path). ``init``: a fitted
    Model or the path of a saved one (saved to ``out_dir/init.npz`` when given as a Model).
    ``base_config``: TrainConfig fields (epochs, lr, reg, ...; ``eps``/``lmd`` are set per run).
    ``processes``: worker processes (default: one per core, at most one per setting; 1 runs
    in this process). Each setting writes ``out_dir/amr-eps{ε}-lmd{λ}.json`` with its
    validation and test metrics; a setting whose JSON exists with the same configuration and
    init is not retrained. ``save_models``: also keep each setting's model
    (``amr-eps{ε}-lmd{λ}.npz``, the ``"model"`` entry of its run); a setting whose model file
    is missing is then retrained.

    Returns ``{"runs": [...], "best": run, "skipped": [names]}``; the best run has the highest
    validation NDCG@10 (test NDCG@10 when the split has no validation rows).
    """
    from .recommender import Model
    from .train import TrainConfig
    eps_list = parse_float_list(eps_list, "--eps")
    lmd_list = parse_float_list(lmd_list, "--lmd")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = _load_data(dataset)
    sp = ds.split(split)
    if isinstance(init, Model):
        init_path = out_dir / "init.npz"
        init.save(init_path)
    else:
        init_path = Path(init)
        if not init_path.is_file():
            raise AmrliteError(f"--init {init}: no such model file")
        init_kind = Model.load(init_path).kind
        if init_kind not in ("vbpr", "amr"):
            raise AmrliteError(f"--init {init}: a {init_kind} model; AMR sweeps start from a "
                               "VBPR (or AMR) checkpoint")
    init_path = str(init_path.resolve())
    base = TrainConfig.from_dict(dict(base_config or {})).to_dict()
    jobs, done, skipped = [], [], []
    for eps in eps_list:
        for lmd in lmd_list:
            cfg = dict(base, eps=float(eps), lmd=float(lmd))
            TrainConfig(**cfg).validate()
            name = _sweep_name(eps, lmd)
            path = out_dir / f"{name}.json"
            old = read_json(path)
            model_ok = not save_models or (out_dir / f"{name}.npz").is_file()
            if (old and model_ok and _config_key(old.get("config")) == _config_key(cfg)
                    and old.get("init") == init_path and old.get("split") == sp.name):
                if save_models:
                    old["model"] = str((out_dir / f"{name}.npz").resolve())
                done.append(old)
                skipped.append(name)
                continue
            jobs.append({"name": name, "data": _data_ref(ds), "split": split
                         if isinstance(split, str) else sp.name, "config": cfg,
                         "init": init_path, "backend": backend, "json": str(path),
                         "model_path": str((out_dir / f"{name}.npz").resolve())
                         if save_models else None})
    n_proc = processes or (os.cpu_count() or 1)
    n_proc = max(1, min(int(n_proc), len(jobs) or 1))
    with _progress(len(jobs), f"sweep ({n_proc} process{'es' if n_proc > 1 else ''})",
                   progress) as bar:
        if n_proc == 1:
            for job in jobs:
                done.append(_sweep_job(job))
                bar.update(1)
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed
            with _single_threaded_children(), ProcessPoolExecutor(
                    max_workers=n_proc, mp_context=mp.get_context("spawn")) as pool:
                futures = [pool.submit(_sweep_job, job) for job in jobs]
                for fut in as_completed(futures):
                    done.append(fut.result())
                    bar.update(1)
    order = {_sweep_name(e, l): k for k, (e, l) in
             enumerate((e, l) for e in eps_list for l in lmd_list)}
    done.sort(key=lambda r: order.get(r["name"], 1 << 30))
    key = "valid" if all("valid" in r for r in done) else "test"
    best = max(done, key=lambda r: r[key]["NDCG@10"]) if done else None
    result = {"runs": done, "best": best, "selected_by": f"{key} NDCG@10", "skipped": skipped,
              "eps": eps_list, "lmd": lmd_list, "init": init_path}
    write_json(out_dir / "sweep.json", result)
    return result


# ---------------------------------------------------------------------------- training curves
def _curve_model(kind, sp, ds, *, backend, config):
    """A Model whose validation callback also records test metrics (and the parameters at the
    last evaluation, so that the final epoch can be kept when selection is 'final')."""
    from .recommender import Model

    class CurveModel(Model):
        def _evaluate_rows(self, params, features, split, rows, full_ranking=False):
            out = super()._evaluate_rows(params, features, split, rows, full_ranking)
            if rows is split.valid and split.test is not None:
                test = super()._evaluate_rows(params, features, split, split.test, full_ranking)
                self.curve_test.append({k: float(test["all"][k]) for k in SUMMARY})
                self.curve_valid.append({k: float(out["all"][k]) for k in SUMMARY})
                self.last_params = {k: np.array(v, copy=True) for k, v in params.items()}
            return out

    m = CurveModel(kind, backend=backend, **config)
    m.curve_test, m.curve_valid, m.last_params = [], [], None
    return m


def fit_with_curve(kind, ds, sp, *, init=None, config, backend="auto", select="final",
                   progress=False):
    """Fit ``kind`` with validation + test metrics every ``config['eval_every']`` epochs.

    Returns ``(model, curve)``; ``curve = {"epoch": [...], "valid": [...], "test": [...]}``.
    With ``select="final"`` the model keeps the last epoch's parameters (the last epoch is
    always evaluated), with ``"valid"`` the best by validation NDCG@10.
    """
    config = dict(config)
    every = int(config.get("eval_every") or 0)
    epochs = int(config["epochs"])
    if sp.valid is None or every <= 0:
        from .recommender import Model
        config["eval_every"] = 0
        m = Model(kind, backend=backend, **config).fit(ds, split=sp, init=init, progress=progress)
        return m, {"epoch": [], "valid": [], "test": []}
    if epochs % every:
        # evaluate at the last epoch too: the greatest divisor of `epochs` not above `every`
        every = max(d for d in range(1, every + 1) if epochs % d == 0)
        config["eval_every"] = every
    m = _curve_model(kind, sp, ds, backend=backend, config=config)
    m.fit(ds, split=sp, init=init, progress=progress)
    if select == "final" and m.last_params is not None:
        m.params = m.last_params
        m._refresh_factors(getattr(ds, "features", None))
    curve = {"epoch": [e["epoch"] for e in m.history.evaluations], "valid": m.curve_valid,
             "test": m.curve_test}
    m.last_params = None
    return m, curve


def training_curves(dataset, split="loo", *, init, epochs, every=10, vbpr_config=None,
                    amr_config=None, mf_model=None, backend="auto", select="final",
                    progress=False):
    """Fig. 3: continue VBPR and train AMR from the same checkpoint ``init`` for ``epochs``
    epochs each, with validation and test HR@10/NDCG@10 every ``every`` epochs, plus the test
    metrics of ``mf_model`` (MF-BPR) as a horizontal line.

    Returns ``{"vbpr": curve, "amr": curve, "mf": {...} | None, "models": {...}}``.
    """
    from .recommender import Model, evaluate
    from .train import TrainConfig
    ds = _load_data(dataset)
    sp = ds.split(split)
    init = Model.load(init) if isinstance(init, (str, Path)) else init
    out = {"models": {}}
    for kind, extra in (("vbpr", vbpr_config), ("amr", amr_config)):
        cfg = TrainConfig.from_dict(dict(extra or {}, epochs=epochs, eval_every=every)).to_dict()
        m, curve = fit_with_curve(kind, ds, sp, init=init, config=cfg, backend=backend,
                                  select=select, progress=progress)
        out[kind] = curve
        out["models"][kind] = m
    out["mf"] = None
    if mf_model is not None:
        mf_model = Model.load(mf_model) if isinstance(mf_model, (str, Path)) else mf_model
        res = evaluate(mf_model, ds, sp)
        out["mf"] = {k: float(res[k]) for k in SUMMARY}
    return out


# ---------------------------------------------------------------------------- the pipeline
def _norm_compare(res):
    """``significance.compare`` output as ``{metric: {mean_a, mean_b, diff, t_p, wilcoxon_p}}``
    (accepts the ``p_t``/``p_wilcoxon`` spelling and drops non-metric entries)."""
    out = {}
    for m, v in res.items():
        if not isinstance(v, dict):
            continue
        out[m] = dict(v, t_p=v.get("t_p", v.get("p_t")),
                      wilcoxon_p=v.get("wilcoxon_p", v.get("p_wilcoxon")))
    return out


class _Stages:
    """Stage results as JSON files in ``out_dir/stages`` and models in ``out_dir/models``."""

    def __init__(self, out_dir, log):
        self.dir = Path(out_dir) / "stages"
        self.models = Path(out_dir) / "models"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.models.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.trained, self.reused = [], []

    def get(self, name, key):
        old = read_json(self.dir / f"{name}.json")
        if old is not None and old.get("key") == key:
            return old
        return None

    def put(self, name, key, result):
        result = dict(result, key=key)
        write_json(self.dir / f"{name}.json", result)
        return result

    def model_path(self, name):
        return self.models / f"{name}.npz"


def _try_import(name):
    import importlib
    try:
        return importlib.import_module(f"amrlite.{name}")
    except ImportError:
        return None


def run_experiment(data, split="loo", out_dir="experiment", *, quick=False, backend="auto",
                   overrides=None, progress=True, plots=True, log=None):
    """The paper's pipeline on ``data`` (a folder, a Dataset, or None for the synthetic set).

    Stages (each resumable): POP, MF-eALS (when :mod:`amrlite.eals` exists), MF-BPR, DUIF,
    VBPR pre-training, continued VBPR and AMR (both with training curves), paired significance
    of AMR vs every other model (:mod:`amrlite.significance`), attacks on continued VBPR and AMR
    (:mod:`amrlite.attack`), rank change (Fig. 5), and ε / λ sweeps (Figs. 6, 7; with
    ``sweep.grid`` the full ε × λ grid first), each setting tested against continued VBPR. Writes
    ``config.json``, ``stages/*.json``, ``models/*.npz``, ``*.png`` and ``report.md`` into
    ``out_dir``; returns the summary dict (also ``summary.json``).
    """
    from .recommender import Model, evaluate
    from .train import TrainConfig
    t_start = time.perf_counter()
    if log is None:
        def log(msg):
            if progress:
                print(msg, file=sys.stderr, flush=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = make_config(quick=quick, overrides=overrides)
    ds = _load_data(data)
    sp = ds.split(split)
    from .kernels import resolve_backend_name
    backend_used = resolve_backend_name(backend)
    data_info = {"source": getattr(ds, "source", None), "name": getattr(ds, "name", None),
                 "synthetic": bool(getattr(ds, "synthetic", False)),
                 "fingerprint": ds.fingerprint(), "split": sp.name, "n_users": int(sp.n_users),
                 "n_items": int(sp.n_items), "n_train": int(sp.n_train),
                 "n_valid": 0 if sp.valid is None else len(sp.valid), "n_test": len(sp.test),
                 "warm_items": int(sp.warm_items.sum()),
                 "cold_test_rows": int((~sp.warm_items[sp.test.items]).sum()),
                 "n_features": int(ds.n_features)}
    write_json(out_dir / "config.json", {"config": cfg, "quick": quick, "backend": backend,
                                         "backend_used": backend_used, "data": data_info,
                                         "version": __version__})
    st = _Stages(out_dir, log)
    base_key = {"data": data_info["fingerprint"], "split": sp.name, "backend": backend_used}
    timings = {}

    def stage_config(kind_key):
        shared = {k: cfg[k] for k in ("dim", "batch_size", "reg", "seed")}
        shared["eval_every"] = cfg["eval_every"] if cfg["select"] == "valid" else 0
        return TrainConfig.from_dict(dict(shared, **cfg["stages"].get(kind_key, {}))).to_dict()

    models, results, curves = {}, {}, {}

    def train(name, kind, init_name=None, curve=False):
        conf = stage_config(name)
        if curve:
            conf["eval_every"] = cfg["eval_every"]
        key = dict(base_key, kind=kind, config=conf, select=cfg["select"], init=init_name,
                   init_key=results.get(init_name, {}).get("key") if init_name else None)
        path = st.model_path(name)
        old = st.get(name, key)
        if old is not None and path.is_file():
            log(f"[{name}] done before: {path}")
            models[name] = Model.load(path)
            results[name] = old
            curves[name] = old.get("curve")
            st.reused.append(name)
            return
        log(f"[{name}] training {kind} ({conf['epochs']} epochs, lr {conf['lr']}"
            + (f", from {init_name}" if init_name else "") + ")")
        t0 = time.perf_counter()
        init = models.get(init_name) if init_name else None
        if kind == "pop":
            m = Model("pop", backend=backend).fit(ds, split=sp)
            crv = None
        elif curve or (cfg["select"] == "final" and conf["eval_every"]):
            m, crv = fit_with_curve(kind, ds, sp, init=init, config=conf, backend=backend,
                                    select=cfg["select"], progress=progress)
        else:
            m = Model(kind, backend=backend, **conf).fit(ds, split=sp, init=init,
                                                           progress=progress)
            crv = None
        secs = time.perf_counter() - t0
        m.save(path)
        res = {"name": name, "kind": kind, "label": m.spec.label, "config": conf,
               "init": init_name, "seconds": round(secs, 3),
               "best_epoch": m.history.best_epoch, "test": _metrics(evaluate(m, ds, sp))}
        if sp.valid is not None:
            res["valid"] = _metrics(evaluate(m, ds, sp, on="valid"))
        if crv is not None:
            res["curve"] = crv
        models[name] = m
        results[name] = st.put(name, key, res)
        curves[name] = crv
        st.trained.append(name)
        log(f"[{name}] test HR@10 {res['test']['HR@10']:.4f}  NDCG@10 "
            f"{res['test']['NDCG@10']:.4f}  ({secs:.1f}s)")

    # ------------------------------------------------------------------ models (Table 2)
    t0 = time.perf_counter()
    train("pop", "pop")
    if _try_import("eals") is not None:
        try:
            train("eals", "eals")
        except AmrliteError as exc:
            log(f"[eals] skipped: {exc}")
    else:
        log("[eals] skipped: amrlite.eals is not installed in this tree")
    train("mf", "mf")
    has_features = ds.features is not None
    if has_features:
        train("duif", "duif")
        train("vbpr", "vbpr", init_name="mf" if cfg["vbpr_init"] == "mf" else None)
        train("vbpr_cont", "vbpr", init_name="vbpr", curve=True)
        train("amr", "amr", init_name="vbpr", curve=True)
    timings["models"] = round(time.perf_counter() - t0, 2)
    table_order = [n for n in ("pop", "eals", "mf", "duif", "vbpr", "vbpr_cont", "amr")
                   if n in results]

    # ------------------------------------------------------------------ significance
    t0 = time.perf_counter()
    sig = None
    significance = _try_import("significance")
    if "amr" in models and significance is not None:
        key = dict(base_key, models={n: results[n]["key"] for n in table_order})
        sig = st.get("significance", key)
        if sig is None:
            log("[significance] paired tests of AMR vs each model")
            tests = {}
            for n in table_order:
                if n != "amr":
                    tests[n] = _norm_compare(
                        significance.compare(models["amr"], models[n], ds, sp, on="test"))
            sig = st.put("significance", key, {"tests": tests})
    elif "amr" in models:
        log("[significance] skipped: amrlite.significance is not installed in this tree")
    timings["significance"] = round(time.perf_counter() - t0, 2)

    # ------------------------------------------------------------------ attacks (Table 3)
    t0 = time.perf_counter()
    attacks, rank_change = None, None
    attack_mod = _try_import("attack")
    if "amr" in models and attack_mod is not None:
        acfg = cfg["attack"]
        key = dict(base_key, attack=acfg, models={n: results[n]["key"] for n in
                                                  ("vbpr_cont", "amr")})
        attacks = st.get("attacks", key)
        if attacks is None:
            log("[attacks] " + ", ".join(acfg["kinds"]) + " on continued VBPR and AMR")
            table = {}
            for n in ("vbpr_cont", "amr"):
                for kind in acfg["kinds"]:
                    free = kind in OBJECTIVE_FREE_ATTACKS
                    for objective in (["test"] if free else acfg["objectives"]):
                        steps = acfg.get("pgd_steps", 5) if kind == "pgd" else 1
                        r = attack_mod.attack(models[n], ds, sp, acfg["eps"],
                                              kind="adversarial" if kind == "pgd" else kind,
                                              objective=objective, steps=steps,
                                              repeats=acfg["repeats"], seed=cfg["seed"],
                                              on="test")
                        table[f"{n}/{kind}/{'–' if free else objective}"] = r
            attacks = st.put("attacks", key, {"results": table})
        eps_rc = cfg["rank_change_eps"]
        key = dict(base_key, eps=eps_rc, models={n: results[n]["key"] for n in
                                                 ("vbpr_cont", "amr")})
        rank_change = st.get("rank_change", key)
        if rank_change is None:
            log(f"[rank change] ε = {eps_rc}")
            rc = {}
            for n in ("vbpr_cont", "amr"):
                r = attack_mod.rank_change(models[n], ds, sp, eps_rc, kind="adversarial",
                                           objective="test")
                delta = r["per_row"] if "per_row" in r else r["delta"]
                rc[n] = {"delta": np.asarray(delta).tolist(), "summary": r.get("summary")}
            rank_change = st.put("rank_change", key, {"eps": eps_rc, "models": rc})
    elif "amr" in models:
        log("[attacks] skipped: amrlite.attack is not installed in this tree")
    timings["attacks"] = round(time.perf_counter() - t0, 2)

    # ------------------------------------------------------------------ sweeps (Figs. 6, 7)
    t0 = time.perf_counter()
    sweeps, sweep_base = None, None
    scfg = cfg["sweep"]
    grid = bool(scfg.get("grid"))
    if "amr" in models and (scfg["eps"] or scfg["lmd"] or grid):
        amr_conf = stage_config("amr")
        amr_conf["eval_every"] = stage_config("vbpr_cont")["eval_every"]
        sdir = out_dir / "sweep"
        init_path = st.model_path("vbpr")
        sweeps = {}
        plan = []
        if grid:     # first: the one-axis sweeps below reuse the grid's settings
            plan.append(("grid", scfg["grid_eps"], scfg["grid_lmd"]))
        plan += [("eps", scfg["eps"], [amr_conf["lmd"]]), ("lmd", [amr_conf["eps"]], scfg["lmd"])]
        for axis, eps_list, lmd_list in plan:
            if not (eps_list and lmd_list) or (axis != "grid" and not scfg[axis]):
                continue
            log(f"[sweep {axis}] ε ∈ {eps_list}, λ ∈ {lmd_list}")
            sweeps[axis] = sweep(ds, sp.name, init=init_path, eps_list=eps_list,
                                 lmd_list=lmd_list, base_config=amr_conf, out_dir=sdir,
                                 processes=scfg["processes"], progress=progress,
                                 backend=backend, save_models=True)
        sweep_base = _sweep_extras(sweeps, models["vbpr_cont"], results["vbpr_cont"], ds, sp,
                                   st, base_key, scfg.get("attack_eps", 0.1), cfg["seed"], log)
        write_json(st.dir / "sweeps.json", {"sweeps": sweeps, "baseline": sweep_base})
    timings["sweeps"] = round(time.perf_counter() - t0, 2)

    # ------------------------------------------------------------------ figures and report
    t0 = time.perf_counter()
    figures = {}
    if plots:
        figures = _make_figures(out_dir, results, curves, attacks, rank_change, sweeps, log,
                                sweep_base)
    timings["figures"] = round(time.perf_counter() - t0, 2)
    timings["total"] = round(time.perf_counter() - t_start, 2)
    summary = {"version": __version__, "data": data_info, "config": cfg, "backend": backend,
               "backend_used": backend_used, "results": {n: results[n] for n in table_order},
               "significance": sig, "attacks": attacks is not None, "sweeps": sweeps,
               "sweep_baseline": sweep_base, "figures": figures, "timings": timings,
               "trained": st.trained, "reused": st.reused}
    report = make_report(summary, attacks, rank_change)
    (out_dir / "report.md").write_text(report)
    write_json(out_dir / "summary.json",
               {k: v for k, v in summary.items() if k != "results"} |
               {"results": {n: {k: v for k, v in r.items() if k != "curve"}
                            for n, r in summary["results"].items()}})
    log(f"report: {out_dir / 'report.md'} ({timings['total']:.1f}s; trained "
        f"{len(st.trained)}, reused {len(st.reused)})")
    return summary


def _find_eps(eps_dict, eps):
    """The entry of an attack result's ``"eps"`` dict for ``eps`` (keys are text)."""
    for k, v in eps_dict.items():
        if math.isclose(float(k), float(eps)):
            return v
    return None


def _robustness(attack_mod, model, ds, sp, eps, seed):
    r = attack_mod.attack(model, ds, sp, [eps], kind="adversarial", objective="test",
                          steps=1, repeats=1, seed=seed, on="test")
    x = _find_eps(r["eps"], eps) or {}
    return {"eps": float(eps), "objective": "test", "kind": "adversarial",
            "clean": r["clean"].get("NDCG@10"), "NDCG@10": x.get("NDCG@10"),
            "drop": x.get("drop", {}).get("NDCG@10")}


def _sweep_extras(sweeps, cont_model, cont_result, ds, sp, st, base_key, attack_eps, seed,
                  log):
    """Per sweep setting: the paired test against continued VBPR (``run["vs_cont"]``) and the
    NDCG@10 drop under the adversarial test-objective attack at ``attack_eps``
    (``run["robust"]``), computed from the setting's saved model and cached in
    ``stages/sweep_extras.json`` (a rerun neither retrains nor re-tests). Returns the
    continued-VBPR baseline row: its test metrics and robustness."""
    from .recommender import Model
    significance, attack_mod = _try_import("significance"), _try_import("attack")
    path = st.dir / "sweep_extras.json"
    cache = read_json(path) or {}
    cont_key = cont_result.get("key")
    base = {"test": cont_result["test"], "robust": None}
    bkey = _config_key(dict(base_key, cont=cont_key, attack_eps=attack_eps, what="baseline"))
    if attack_mod is not None:
        if cache.get("baseline", {}).get("key") == bkey:
            base["robust"] = cache["baseline"]["robust"]
        else:
            base["robust"] = _robustness(attack_mod, cont_model, ds, sp, attack_eps, seed)
            cache["baseline"] = {"key": bkey, "robust": base["robust"]}
    changed = False
    seen = {}
    for axis, sw in sweeps.items():
        for r in sw["runs"]:
            name = r["name"]
            if name not in seen:
                key = _config_key(dict(base_key, cont=cont_key, attack_eps=attack_eps,
                                       config=r["config"], init=r["init"],
                                       sig=significance is not None,
                                       attack=attack_mod is not None))
                hit = cache.get(name)
                if hit is None or hit.get("key") != key:
                    log(f"[sweep extras] {name}: paired test vs continued VBPR, attack at "
                        f"ε = {attack_eps}")
                    hit = {"key": key, "vs_cont": None, "robust": None}
                    model = (Model.load(r["model"]) if significance or attack_mod else None)
                    if significance is not None:
                        cmp = _norm_compare(significance.compare(model, cont_model, ds, sp,
                                                                 on="test"))
                        hit["vs_cont"] = {m: cmp[m] for m in SUMMARY if m in cmp}
                    if attack_mod is not None:
                        hit["robust"] = _robustness(attack_mod, model, ds, sp, attack_eps, seed)
                    cache[name] = hit
                    changed = True
                seen[name] = hit
            r["vs_cont"], r["robust"] = seen[name]["vs_cont"], seen[name]["robust"]
    if changed or "baseline" in cache:
        write_json(path, cache)
    return base


def _make_figures(out_dir, results, curves, attacks, rank_change, sweeps, log, sweep_base=None):
    from . import plots
    figures = {}
    if curves.get("vbpr_cont") and curves.get("amr"):
        mf = results.get("mf", {}).get("test")
        figures["curves"] = plots.training_curves(
            curves["vbpr_cont"], curves["amr"], out_dir / "fig3_training_curves.png",
            mf_line=mf)
    base_test = (sweep_base or {}).get("test")
    if sweeps and "grid" in sweeps:
        # Figs. 6/7 from the grid: metric vs ε at each λ, metric vs λ at each ε
        runs = sweeps["grid"]["runs"]
        for axis in ("eps", "lmd"):
            figures[f"sweep_{axis}"] = plots.sweep_grid_plot(
                runs, axis, out_dir / f"fig{6 if axis == 'eps' else 7}_sweep_{axis}.png",
                baseline=base_test)
        figures["sweep_heatmap"] = plots.sweep_heatmap(runs, out_dir / "sweep_grid_heatmap.png",
                                                       baseline=base_test)
    elif sweeps:
        for axis, res in sweeps.items():
            figures[f"sweep_{axis}"] = plots.sweep_plot(
                res["runs"], axis, out_dir / f"fig{6 if axis == 'eps' else 7}_sweep_{axis}.png")
    if rank_change:
        figures["rank_change"] = plots.rank_change_plot(
            {results[n]["label"] if n != "vbpr_cont" else "VBPR": np.asarray(v["delta"])
             for n, v in rank_change["models"].items()},
            out_dir / "fig5_rank_change.png", eps=rank_change["eps"])
    if attacks:
        figures["attack"] = plots.attack_plot(attacks["results"], out_dir / "attack_drop.png")
    return {k: Path(v).name for k, v in figures.items() if v}


# ---------------------------------------------------------------------------- report
def _fmt(x, nd=4):
    return "–" if x is None else f"{x:.{nd}f}"


def _p(p):
    return "–" if p is None or (isinstance(p, float) and math.isnan(p)) else f"{p:.2g}"


def _stars(p):
    if p is None or math.isnan(p):
        return ""
    return "**" if p < 0.01 else "*" if p < 0.05 else ""


def _row_label(n, r):
    if n == "vbpr":
        return "VBPR (pre-training)"
    if n == "vbpr_cont":
        return "VBPR (continued)"
    return r["label"]


def _pct(a, b):
    return "–" if a is None or not b else f"{100 * (a - b) / b:+.1f}%"


def _sweep_notes(base, cfg):
    bt, br = base.get("test") or {}, base.get("robust") or {}
    eps_a = br.get("eps", cfg["sweep"].get("attack_eps", 0.1))
    out = [f"Every setting is AMR trained from the same VBPR checkpoint as Table 2's AMR, compared "
           f"with continued VBPR (test HR@10 {_fmt(bt.get('HR@10'))}, NDCG@10 "
           f"{_fmt(bt.get('NDCG@10'))}"
           + (f", NDCG@10 drop {100 * br['drop']:.1f}% under the adversarial test-objective "
              f"attack at ε = {eps_a:g}" if br.get("drop") is not None else "") + ").",
           "Δ HR@10: test HR@10 of the setting minus continued VBPR's; p: paired t-test and "
           "Wilcoxon signed-rank of the per-user HR@10 differences (test rows; * p < 0.05, "
           "** p < 0.01, no correction for the number of settings). NDCG@10 cost: the "
           "setting's test NDCG@10 relative to continued VBPR (negative = clean accuracy lost). "
           f"Robust drop: relative NDCG@10 drop under the adversarial (FGM, test objective) "
           f"attack at ε = {eps_a:g} (lower is more robust).", ""]
    return out


def _grid_matrix(runs, base):
    """A compact ε × λ matrix of Δ HR@10 with significance marks."""
    bt = (base or {}).get("test") or {}
    eps = sorted({r["eps"] for r in runs})
    lmd = sorted({r["lmd"] for r in runs})
    cell = {(r["eps"], r["lmd"]): r for r in runs}
    out = ["Δ test HR@10 vs continued VBPR (rows ε, columns λ; marks: paired t-test):", "",
           "| ε ↓ / λ → | " + " | ".join(f"{v:g}" for v in lmd) + " |",
           "|---|" + "---|" * len(lmd)]
    for e in eps:
        cells = []
        for l in lmd:
            r = cell.get((e, l))
            if r is None or bt.get("HR@10") is None:
                cells.append("–")
                continue
            vs = (r.get("vs_cont") or {}).get("HR@10") or {}
            cells.append(f"{r['test']['HR@10'] - bt['HR@10']:+.4f}{_stars(vs.get('t_p'))}")
        out.append(f"| {e:g} | " + " | ".join(cells) + " |")
    return out + [""]


def _sweep_table(runs, base):
    bt, br = (base or {}).get("test") or {}, (base or {}).get("robust") or {}
    out = ["| ε | λ | valid NDCG@10 | test HR@10 | Δ HR@10 vs continued VBPR | p (t-test) | "
           "p (Wilcoxon) | test NDCG@10 | NDCG@10 cost vs continued VBPR | robust drop "
           "(NDCG@10) | seconds |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    if bt:
        out.append(f"| VBPR (continued) | – | – | {_fmt(bt.get('HR@10'))} | – | – | – | "
                   f"{_fmt(bt.get('NDCG@10'))} | – | "
                   + (f"{100 * br['drop']:.1f}%" if br.get("drop") is not None else "–")
                   + " | – |")
    for r in runs:
        vs = (r.get("vs_cont") or {}).get("HR@10") or {}
        rb = r.get("robust") or {}
        d = (f"{r['test']['HR@10'] - bt['HR@10']:+.4f}{_stars(vs.get('t_p'))}"
             if bt.get("HR@10") is not None else "–")
        out.append(f"| {r['eps']:g} | {r['lmd']:g} | "
                   f"{_fmt(r.get('valid', {}).get('NDCG@10'))} | {_fmt(r['test']['HR@10'])} | "
                   f"{d} | {_p(vs.get('t_p'))} | {_p(vs.get('wilcoxon_p'))} | "
                   f"{_fmt(r['test']['NDCG@10'])} | "
                   f"{_pct(r['test']['NDCG@10'], bt.get('NDCG@10'))} | "
                   + (f"{100 * rb['drop']:.1f}%" if rb.get("drop") is not None else "–")
                   + f" | {r.get('seconds', 0):.1f} |")
    return out


def make_report(summary, attacks=None, rank_change=None):
    """The Markdown report: configuration, Table 2, significance, Table 3, sweeps, figures."""
    res = summary["results"]
    d = summary["data"]
    cfg = summary["config"]
    L = [f"# amrlite experiment: {d.get('name')} / split {d['split']}", ""]
    L.append(f"amrlite {summary['version']}, backend {summary['backend_used']} "
             f"(asked: {summary['backend']}); data `{d.get('source')}`"
             + (" (synthetic)" if d.get("synthetic") else "")
             + f", fingerprint `{d['fingerprint']}`.")
    L.append(f"{d['n_users']} users, {d['n_items']} items ({d['warm_items']} in training), "
             f"{d['n_train']} training rows, {d['n_valid']} validation and {d['n_test']} test "
             f"rows ({d['cold_test_rows']} test rows with an item never seen in training), "
             f"{d['n_features']}-d features.")
    L.append(f"Model selection: **{cfg['select']}** "
             + ("(the last epoch's parameters)" if cfg["select"] == "final" else
                "(the epoch with the best validation NDCG@10)")
             + f"; VBPR pre-training from {cfg['vbpr_init']}. Trained this run: "
             + (", ".join(summary["trained"]) or "nothing")
             + "; reused: " + (", ".join(summary["reused"]) or "nothing") + ".")
    L += ["", "## Table 2: top-K recommendation (test)", ""]
    cols = ["HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20"]
    L.append("| model | init | epochs | lr | " + " | ".join(cols) + " |")
    L.append("|---|---|---|---|" + "---|" * len(cols))
    sig = {n: _norm_compare(t) for n, t in
           ((summary.get("significance") or {}).get("tests", {}) or {}).items()}
    for n, r in res.items():
        c = r.get("config", {})
        cells = []
        for m in cols:
            v = _fmt(r["test"][m])
            if n == "amr" and "vbpr_cont" in sig and m in sig["vbpr_cont"]:
                v += _stars(sig["vbpr_cont"][m].get("t_p"))
            cells.append(v)
        ep = c.get("epochs", "–") if r["kind"] != "pop" else "–"
        lr = c.get("lr", "–") if r["kind"] != "pop" else "–"
        L.append(f"| {_row_label(n, r)} | {r.get('init') or '–'} | {ep} | {lr} | "
                 + " | ".join(cells) + " |")
    if "amr" in res and "vbpr_cont" in res:
        a, v = res["amr"]["test"], res["vbpr_cont"]["test"]
        L.append("| AMR vs continued VBPR | | | | " + " | ".join(
            f"{100 * (a[m] - v[m]) / v[m]:+.1f}%" if v[m] else "–" for m in cols) + " |")
    amr_cfg = res.get("amr", {}).get("config", {})
    if amr_cfg:
        L.append("")
        L.append(f"AMR: ε = {amr_cfg.get('eps')}, λ = {amr_cfg.get('lmd')}. Marks on AMR: paired "
                 "t-test of per-user gains vs continued VBPR, * p < 0.05, ** p < 0.01 "
                 "(only HR@10 and NDCG@10 are tested).")
    if "amr" in res:
        L += ["", "Warm / cold test items (HR@10, NDCG@10):", "",
              "| model | warm HR@10 | warm NDCG@10 | cold HR@10 | cold NDCG@10 | valid NDCG@10 | best valid epoch | seconds |",
              "|---|---|---|---|---|---|---|---|"]
        for n, r in res.items():
            t = r["test"]
            w, cd = t.get("warm", {}), t.get("cold", {})
            L.append(f"| {_row_label(n, r)} | {_fmt(w.get('HR@10'))} | {_fmt(w.get('NDCG@10'))} | "
                     f"{_fmt(cd.get('HR@10'))} | {_fmt(cd.get('NDCG@10'))} | "
                     f"{_fmt(r.get('valid', {}).get('NDCG@10'))} | {r.get('best_epoch') or '–'} | "
                     f"{r.get('seconds', 0):.1f} |")
    L += ["", "## Paired significance (AMR vs each model, test rows)", ""]
    if sig:
        L.append("| AMR vs | metric | mean AMR | mean other | diff | t-test p | Wilcoxon p |")
        L.append("|---|---|---|---|---|---|---|")
        for n, t in sig.items():
            for m, s in t.items():
                L.append(f"| {_row_label(n, res[n])} | {m} | {_fmt(s.get('mean_a'))} | "
                         f"{_fmt(s.get('mean_b'))} | {s.get('diff') or 0:+.4f} | "
                         f"{_p(s.get('t_p'))} | {_p(s.get('wilcoxon_p'))} |")
    else:
        L.append("Not computed (amrlite.significance is not available in this tree).")
    L += ["", "## Table 3: robustness to perturbations of the item features (test)", ""]
    if attacks:
        eps_cols = None
        L_rows = []
        for key, r in attacks["results"].items():
            n, kind, objective = key.split("/")
            eps_keys = list(r["eps"].keys())
            eps_cols = eps_cols or eps_keys
            cells = []
            for e in eps_cols:
                x = r["eps"].get(e, {})
                drop = x.get("drop", {}).get("NDCG@10")
                cells.append(f"{_fmt(x.get('NDCG@10'))} ({100 * drop:+.1f}%)" if drop is not None
                             else _fmt(x.get("NDCG@10")))
            L_rows.append(f"| {_row_label(n, res[n])} | {kind} | {objective} | "
                          f"{_fmt(r['clean'].get('NDCG@10'))} | " + " | ".join(cells) + " |")
        L.append("| model | attack | objective | clean NDCG@10 | " + " | ".join(
            f"ε={e}" for e in eps_cols) + " |")
        L.append("|---|---|---|---|" + "---|" * len(eps_cols))
        L += L_rows
        L += ["", "Cells: NDCG@10 under attack (relative drop vs clean)."]
    else:
        L.append("Not computed (amrlite.attack is not available in this tree).")
    if rank_change:
        L += ["", f"Rank change under the adversarial attack at ε = {rank_change['eps']} "
                  "(rank before − rank after; negative = the positive fell):", ""]
        for n, v in rank_change["models"].items():
            dlt = np.asarray(v["delta"], dtype=float)
            L.append(f"* {_row_label(n, res[n])}: mean {dlt.mean():+.2f}, median "
                     f"{np.median(dlt):+.1f}, share of rows that fell {np.mean(dlt < 0):.3f}")
    L += ["", "## Sweeps over ε and λ (Figs. 6, 7)", ""]
    if summary.get("sweeps"):
        base = summary.get("sweep_baseline") or {}
        L += _sweep_notes(base, cfg)
        titles = {"grid": "Full ε × λ grid", "eps": "ε sweep (λ fixed)",
                  "lmd": "λ sweep (ε fixed)"}
        for axis, sw in summary["sweeps"].items():
            L += [f"### {titles.get(axis, axis)}", ""]
            L.append(f"Selected by {sw['selected_by']}: best ε = {sw['best']['eps']}, "
                     f"λ = {sw['best']['lmd']}.")
            L.append("")
            if axis == "grid":
                L += _grid_matrix(sw["runs"], base)
            L += _sweep_table(sw["runs"], base)
            L.append("")
    else:
        L.append("Not run.")
    L += ["", "## Figures", ""]
    names = {"curves": "Fig. 3: training curves", "rank_change": "Fig. 5: rank change",
             "sweep_eps": "Fig. 6: effect of ε", "sweep_lmd": "Fig. 7: effect of λ",
             "sweep_heatmap": "ε × λ grid: test HR@10 gain over continued VBPR",
             "attack": "Attack: NDCG@10 drop vs ε"}
    for k, f in summary.get("figures", {}).items():
        L.append(f"* [{names.get(k, k)}]({f})")
        L.append(f"  ![{names.get(k, k)}]({f})")
    if not summary.get("figures"):
        L.append("None.")
    L += ["", "## Timings (seconds)", ""]
    L.append(", ".join(f"{k} {v}" for k, v in summary["timings"].items()))
    L += ["", "## Configuration", "", "```json", json.dumps(_jsonable(cfg), indent=1), "```", ""]
    return "\n".join(L)
