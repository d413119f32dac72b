"""The ε × λ sweep: AMR for each setting from one VBPR checkpoint, in spawned worker processes,
one JSON (and model) per setting, best by validation NDCG@10 (:func:`sweep`); and its extras
for the pipeline (:func:`sweep_extras`): each setting's paired test against continued VBPR and
its NDCG@10 drop under an adversarial attack, cached so that a rerun neither retrains nor
re-tests."""
from __future__ import annotations

import math
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import AmrliteError
from .config import SUMMARY, parse_float_list
from .store import config_key, load_data, metrics_summary, norm_compare, read_json, write_json


def _data_ref(ds):
    """What a worker process needs to rebuild ``ds``: its path, or the (picklable) object."""
    src = getattr(ds, "source", None)
    if src and not getattr(ds, "synthetic", False) and Path(src).exists():
        return str(src)
    return ds


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


class _NullBar:
    def update(self, n):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def _progress(total, label, enabled):
    if not enabled or total <= 0:
        return _NullBar()
    import click
    return click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True)


def _sweep_name(eps, lmd):
    return f"amr-eps{eps:g}-lmd{lmd:g}"


def _sweep_job(job):
    """One AMR run of a sweep (runs in a worker process, or in-process with processes=1)."""
    from ..recommender import Model, evaluate
    ds = load_data(job["data"])
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
        res["valid"] = metrics_summary(evaluate(model, ds, sp, on="valid"))
    res["test"] = metrics_summary(evaluate(model, ds, sp, on="test"))
    if job.get("model_path"):
        model.save(job["model_path"])
        res["model"] = job["model_path"]
    write_json(job["json"], res)
    return res


def _init_path(init, out_dir):
    """The resolved path of the checkpoint ``init`` (a Model is saved to ``out_dir/init.npz``)."""
    from ..recommender import Model
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
    return str(init_path.resolve())


def _run_jobs(jobs, processes, progress):
    """The results of ``jobs`` (in completion order), in ``processes`` spawned workers."""
    n_proc = processes or (os.cpu_count() or 1)
    n_proc = max(1, min(int(n_proc), len(jobs) or 1))
    done = []
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
    return done


def sweep(dataset, split="loo", *, init, eps_list, lmd_list, base_config=None, out_dir,
          processes=None, progress=True, backend="auto", save_models=False):
    """Train AMR for every (ε, λ) in ``eps_list × lmd_list`` from the same VBPR checkpoint.

    Each setting writes ``out_dir/amr-eps{ε}-lmd{λ}.json`` with its validation and test
    metrics; a setting whose JSON exists with the same configuration, init and split is not
    retrained. The whole result is also written to ``out_dir/sweep.json``.

    Parameters
    ----------
    dataset : Dataset or str or Path or None
        The data (workers reload a folder by path; None is the synthetic set).
    split : str or Split
        The split to train and evaluate on.
    init : Model or str or Path
        The fitted VBPR (or AMR) checkpoint every setting starts from; a Model is saved to
        ``out_dir/init.npz``.
    eps_list, lmd_list : list of float or str
        The values of ε and λ (a list, or comma-separated text).
    base_config : dict, optional
        :class:`amrlite.train.TrainConfig` fields (epochs, lr, reg, ...); ``eps``/``lmd`` are
        set per setting.
    out_dir : str or Path
        Where the per-setting JSON (and models) go.
    processes : int, optional
        Worker processes (default: one per core, at most one per setting; 1 runs in this
        process).
    progress : bool
        Show a progress bar on stderr.
    backend : str
        The backend of every run (``auto``, ``numpy``, ``numba``, ``cupy``).
    save_models : bool
        Also keep each setting's model (``amr-eps{ε}-lmd{λ}.npz``, the ``"model"`` entry of its
        run); a setting whose model file is missing is then retrained.

    Returns
    -------
    dict
        ``{"runs": [...], "best": run, "selected_by": text, "skipped": [names], "eps": [...],
        "lmd": [...], "init": path}``; runs in ``eps_list × lmd_list`` order, the best has the
        highest validation NDCG@10 (test NDCG@10 when the split has no validation rows).
    """
    from ..train import TrainConfig
    eps_list = parse_float_list(eps_list, "--eps")
    lmd_list = parse_float_list(lmd_list, "--lmd")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = load_data(dataset)
    sp = ds.split(split)
    init_path = _init_path(init, out_dir)
    base = TrainConfig.from_dict(dict(base_config or {})).to_dict()
    jobs, done, skipped = [], [], []
    for eps in eps_list:
        for lmd in lmd_list:
            cfg = dict(base, eps=float(eps), lmd=float(lmd))
            TrainConfig(**cfg).validate()
            name = _sweep_name(eps, lmd)
            path = out_dir / f"{name}.json"
            model_path = str((out_dir / f"{name}.npz").resolve()) if save_models else None
            old = read_json(path)
            if (old and (not save_models or Path(model_path).is_file())
                    and config_key(old.get("config")) == config_key(cfg)
                    and old.get("init") == init_path and old.get("split") == sp.name):
                if save_models:
                    old["model"] = model_path
                done.append(old)
                skipped.append(name)
                continue
            jobs.append({"name": name, "data": _data_ref(ds),
                         "split": split if isinstance(split, str) else sp.name, "config": cfg,
                         "init": init_path, "backend": backend, "json": str(path),
                         "model_path": model_path})
    done += _run_jobs(jobs, processes, progress)
    order = {_sweep_name(e, l): k for k, (e, l) in
             enumerate((e, l) for e in eps_list for l in lmd_list)}
    done.sort(key=lambda r: order.get(r["name"], 1 << 30))
    key = "valid" if all("valid" in r for r in done) else "test"
    best = max(done, key=lambda r: r[key]["NDCG@10"]) if done else None
    result = {"runs": done, "best": best, "selected_by": f"{key} NDCG@10", "skipped": skipped,
              "eps": eps_list, "lmd": lmd_list, "init": init_path}
    write_json(out_dir / "sweep.json", result)
    return result


# ---------------------------------------------------------------------------- extras
def _find_eps(eps_dict, eps):
    """The entry of an attack result's ``"eps"`` dict for ``eps`` (keys are text)."""
    for k, v in eps_dict.items():
        if math.isclose(float(k), float(eps)):
            return v
    return None


def _robustness(attack_mod, model, ds, sp, eps, seed):
    """NDCG@10 clean and under the adversarial test-objective attack at ``eps``, and the drop."""
    r = attack_mod.attack(model, ds, sp, [eps], kind="adversarial", objective="test",
                          steps=1, repeats=1, seed=seed, on="test")
    x = _find_eps(r["eps"], eps) or {}
    return {"eps": float(eps), "objective": "test", "kind": "adversarial",
            "clean": r["clean"].get("NDCG@10"), "NDCG@10": x.get("NDCG@10"),
            "drop": x.get("drop", {}).get("NDCG@10")}


def _setting_extras(model_path, cont_model, ds, sp, key, attack_eps, seed, significance,
                    attack_mod):
    """The paired test against continued VBPR and the robustness of one saved setting."""
    from ..recommender import Model
    hit = {"key": key, "vs_cont": None, "robust": None}
    model = Model.load(model_path) if significance or attack_mod else None
    if significance is not None:
        cmp = norm_compare(significance.compare(model, cont_model, ds, sp, on="test"))
        hit["vs_cont"] = {m: cmp[m] for m in SUMMARY if m in cmp}
    if attack_mod is not None:
        hit["robust"] = _robustness(attack_mod, model, ds, sp, attack_eps, seed)
    return hit


def sweep_extras(sweeps, cont_model, cont_result, ds, sp, *, cache_path, base_key, attack_eps,
                 seed, significance, attack_mod, log):
    """Per sweep setting: the paired test against continued VBPR (``run["vs_cont"]``) and the
    NDCG@10 drop under the adversarial test-objective attack at ``attack_eps``
    (``run["robust"]``), computed from the setting's saved model and cached in ``cache_path``
    (a rerun neither retrains nor re-tests). ``significance``/``attack_mod``: the optional
    modules, or None (then that part is None). The runs of ``sweeps`` are updated in place.

    Returns the continued-VBPR baseline row: ``{"test": its test metrics, "robust": ...}``."""
    cache = read_json(cache_path) or {}
    cont_key = cont_result.get("key")
    base = {"test": cont_result["test"], "robust": None}
    bkey = config_key(dict(base_key, cont=cont_key, attack_eps=attack_eps, what="baseline"))
    if attack_mod is not None:
        if cache.get("baseline", {}).get("key") == bkey:
            base["robust"] = cache["baseline"]["robust"]
        else:
            base["robust"] = _robustness(attack_mod, cont_model, ds, sp, attack_eps, seed)
            cache["baseline"] = {"key": bkey, "robust": base["robust"]}
    changed = False
    seen = {}
    for sw in sweeps.values():
        for r in sw["runs"]:
            name = r["name"]
            if name not in seen:
                key = config_key(dict(base_key, cont=cont_key, attack_eps=attack_eps,
                                      config=r["config"], init=r["init"],
                                      sig=significance is not None,
                                      attack=attack_mod is not None))
                hit = cache.get(name)
                if hit is None or hit.get("key") != key:
                    log(f"[sweep extras] {name}: paired test vs continued VBPR, attack at "
                        f"ε = {attack_eps}")
                    hit = _setting_extras(r["model"], cont_model, ds, sp, key, attack_eps,
                                          seed, significance, attack_mod)
                    cache[name] = hit
                    changed = True
                seen[name] = hit
            r["vs_cont"], r["robust"] = seen[name]["vs_cont"], seen[name]["robust"]
    if changed or "baseline" in cache:
        write_json(cache_path, cache)
    return base
