"""The ε × λ sweep: AMR for each setting from one VBPR checkpoint, in spawned worker processes,
one JSON (and model) per setting, best by validation NDCG@10 (:func:`sweep`); and its extras
for the pipeline (:func:`sweep_extras`): each setting's paired test against continued VBPR and
its NDCG@10 drop under an adversarial attack, cached so that a rerun neither retrains nor
re-tests."""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from .. import jsonio, significance
from ..attack import attack, eps_entry
from ..containers import as_split
from ..errors import AmrliteError, option_error
from ..recommender import Model, evaluate
from ..train import TrainConfig
from .config import SUMMARY, parse_float_list, seed_for
from .engine import check_address, run_tasks
from .seeds import aggregate_sweep, per_user_gains
from .store import (changed_parts, checkpoint_path, data_ref, config_key, content_key, data_key, load_data,
                    metrics_summary, model_digest, norm_compare, read_json, split_digest,
                    write_bytes, write_json)


def _sweep_name(eps, lmd):
    return f"amr-eps{eps:g}-lmd{lmd:g}"


def _sweep_job(job, data, init):
    """One AMR run of a sweep: trained from ``init`` (a checkpoint path) on ``data`` (a Dataset
    or a folder), evaluated on validation and test rows. Runs wherever the engine puts it (this
    process, a spawned worker, a Ray worker) and writes nothing: the result, with the model's
    ``.npz`` bytes under ``"model_npz"`` when the job keeps models, goes back to the driver,
    which stores it (:func:`_store_result`)."""
    ds = load_data(data)
    sp = job_split(ds, job)
    t0 = time.perf_counter()
    model = Model("amr", backend=job["backend"], **job["config"])
    model.fit(ds, split=sp, init=init)
    seconds = time.perf_counter() - t0
    res = {"name": job["name"], "eps": job["config"]["eps"], "lmd": job["config"]["lmd"],
           "config": job["config"], "init": job["init_key"], "split": sp.name,
           "key": job["key"], "key_parts": job["key_parts"],
           "best_epoch": model.history.best_epoch, "seconds": round(seconds, 3),
           "pid": os.getpid(), "backend_used": model.backend_used}
    if sp.valid is not None:
        res["valid"] = metrics_summary(evaluate(model, ds, sp, on="valid"))
    res["test"] = metrics_summary(evaluate(model, ds, sp, on="test"))
    if job.get("model_path"):
        with tempfile.TemporaryDirectory() as tmp:
            res["model_npz"] = model.save(Path(tmp) / "m.npz").read_bytes()
    return res


def split_job(sp):
    """What a worker needs to rebuild the split ``sp`` (:func:`job_split`): its name, its
    number of sampled negatives and its content digest."""
    n_neg = 0 if sp.test.negatives is None else int(sp.test.negatives.shape[1])
    return {"split": sp.name, "n_negatives": n_neg, "split_content": split_digest(sp)}


def job_split(ds, job):
    """The split of ``job`` (:func:`split_job`) rebuilt from ``ds``: the same name and number of
    negatives, checked against the driver's by content (a split that differs is an error,
    never a silent other split)."""
    sp = ds.split(job["split"], n_negatives=job.get("n_negatives", 99))
    if job.get("split_content") and split_digest(sp) != job["split_content"]:
        raise AmrliteError(f"split {job['split']!r}: the worker built another split than the "
                           "driver (data or split files differ between them)")
    return sp


def _store_result(job, res):
    """In the driver, as each result arrives: the model (when kept) and the setting's JSON,
    both written atomically, so that a rerun finds every finished setting."""
    blob = res.pop("model_npz", None)
    if blob is not None:
        write_bytes(job["model_path"], blob)
        res["model"] = job["model_path"]
    write_json(job["json"], res)


def plan_sweep(ds, sp, *, init_path, eps_list, lmd_list, base_config, out_dir, backend,
               save_models, log=None, dkey=None):
    """The jobs of one sweep (one checkpoint, one seed) and the settings already stored.

    Every setting is keyed by the content hash (:func:`~.store.content_key`) of everything
    that determines it: the data (:func:`~.store.data_key`: interactions, features after
    normalisation, split with its negatives, amrlite version), the checkpoint's content
    (:func:`~.store.model_digest`, not its path) and the training configuration. A setting
    whose JSON (and model, with ``save_models``) is stored under the same key is in ``done``
    and not run again; one stored under another key is run again and replaced (``log`` says
    which parts changed), never reported as reused. ``dkey``: :func:`~.store.data_key` ``(ds,
    sp)`` where the caller has it (it hashes the features and the split).

    Returns ``{"jobs", "done", "skipped", "eps", "lmd", "init", "out_dir", "config"}``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = TrainConfig.from_dict(dict(base_config or {})).to_dict()
    dkey = data_key(ds, sp) if dkey is None else dkey
    init_sha, sjob = model_digest(init_path), split_job(sp)
    jobs, done, skipped = [], [], []
    for eps in eps_list:
        for lmd in lmd_list:
            cfg = dict(base, eps=float(eps), lmd=float(lmd))
            TrainConfig(**cfg).validate()
            parts = {"data": dkey, "init": init_sha, "config": cfg}
            key = content_key(parts)
            name = _sweep_name(eps, lmd)
            path = out_dir / f"{name}.json"
            model_path = str((out_dir / f"{name}.npz").resolve()) if save_models else None
            old = read_json(path)
            if (old and old.get("key") == key
                    and (not save_models or Path(model_path).is_file())):
                if save_models:
                    old["model"] = model_path
                done.append(old)
                skipped.append(name)
                continue
            if old and old.get("key") != key and log is not None:
                why = ", ".join(changed_parts(old.get("key_parts"), parts)) or "key"
                log(f"[sweep] {name}: the stored result is of another configuration ({why} "
                    "changed): run again")
            jobs.append({"name": name, "data": data_ref(ds), **sjob, "config": cfg,
                         "init": init_path, "init_key": init_path, "backend": backend,
                         "json": str(path), "model_path": model_path, "key": key,
                         "key_parts": parts})
    return {"jobs": jobs, "done": done, "skipped": skipped, "eps": list(eps_list),
            "lmd": list(lmd_list), "init": init_path, "out_dir": str(out_dir),
            "config": {"train": {k: v for k, v in base.items() if k not in ("eps", "lmd")},
                       "eps": list(eps_list), "lmd": list(lmd_list),
                       "init": init_path, "init_sha256": init_sha, "data": dkey,
                       "n_negatives": sjob["n_negatives"], "backend": backend}}


def run_plans(plans, *, engine="local", address=None, processes=None, progress=True, log=None):
    """Run the jobs of every plan (all seeds, all axes) as one batch on ``engine``; a job
    shared by two plans (the same JSON: a one-axis sweep's setting inside the grid) runs once.
    Each result is stored as it arrives; the plans' ``done`` lists are completed in place."""
    unique = {}
    for plan in plans:
        for job in plan["jobs"]:
            if job["json"] in unique:           # run by an earlier plan: reused here
                plan["skipped"].append(job["name"])
            unique.setdefault(job["json"], job)
    results = {}

    def on_result(job, res):
        _store_result(job, res)
        results[job["json"]] = res

    run_tasks(_sweep_job, list(unique.values()), engine=engine, address=address,
              processes=processes, progress=progress, on_result=on_result, log=log)
    for plan in plans:
        plan["done"] = plan["done"] + [results[j["json"]] for j in plan["jobs"]]
        plan["jobs"] = []
    return plans


def finish_sweep(plan):
    """The result of a plan whose jobs have run: runs in ε × λ order, the best by validation
    NDCG@10 (test when there are no validation rows); also written to ``sweep.json``."""
    eps_list, lmd_list, done = plan["eps"], plan["lmd"], list(plan["done"])
    order = {_sweep_name(e, l): k for k, (e, l) in
             enumerate((e, l) for e in eps_list for l in lmd_list)}
    done.sort(key=lambda r: order.get(r["name"], 1 << 30))
    key = "valid" if all("valid" in r for r in done) else "test"
    best = max(done, key=lambda r: r[key]["NDCG@10"]) if done else None
    result = {"runs": done, "best": best, "selected_by": f"{key} NDCG@10",
              "skipped": plan["skipped"], "eps": eps_list, "lmd": lmd_list,
              "init": plan["init"], "config": plan["config"]}
    write_json(Path(plan["out_dir"]) / "sweep.json", result)
    return result


def sweep(dataset, split="loo", *, init, eps_list, lmd_list, base_config=None, out_dir,
          processes=None, progress=True, backend="auto", save_models=False, seeds=1,
          engine="local", address=None, log=None):
    """Train AMR for every (ε, λ) in ``eps_list × lmd_list`` from the same VBPR checkpoint.

    Each setting writes ``out_dir/amr-eps{ε}-lmd{λ}.json`` with its validation and test
    metrics and its content key (:func:`plan_sweep`: data, features, split and negatives,
    checkpoint content, configuration, version); a setting stored under the same key is not
    retrained, one stored under another key is retrained and replaced. The whole result is
    also written to ``out_dir/sweep.json``, with the resolved configuration (``"config"``,
    also printed with ``progress``). With ``seeds`` > 1 every setting is trained once per seed
    (:func:`~amrlite.experiments.config.seed_for`; seed index 0 is ``base_config["seed"]``
    itself, in ``out_dir``; the others in ``out_dir/seed<SEED>/``), all as one batch of tasks,
    and each setting gets its mean ± 95% confidence interval over seeds (``"aggregate"``).

    Parameters
    ----------
    dataset : Dataset or str or Path or None
        The data (workers reload a folder by path; None is the synthetic set).
    split : str or Split
        The split to train and evaluate on: a name (``ds.split(name)``, 99 sampled negatives
        where generated) or the Split itself (e.g. made with other ``n_negatives``; workers
        rebuild it by name and number of negatives, checked by content).
    init : Model or str or Path
        The fitted VBPR (or AMR) checkpoint every setting starts from; a Model is saved to
        ``out_dir/init.npz``.
    eps_list, lmd_list : list of float or str
        The values of ε and λ (a list, or comma-separated text).
    base_config : dict, optional
        :class:`amrlite.train.TrainConfig` fields (epochs, lr, reg, seed, ...); ``eps``/``lmd``
        are set per setting.
    out_dir : str or Path
        Where the per-setting JSON (and models) go.
    processes : int, optional
        Worker processes (default: one per core, at most one per setting; 1 runs in this
        process); with ``engine="ray"`` and no ``address``, the CPUs of the local cluster.
    progress : bool
        Log tasks done / running / failed on stderr.
    backend : str
        The backend of every run (``auto``, ``numpy``, ``numba``, ``cupy``).
    save_models : bool
        Also keep each setting's model (``amr-eps{ε}-lmd{λ}.npz``, the ``"model"`` entry of its
        run); a setting whose model file is missing is then retrained.
    seeds : int
        Seeds per setting (1: one run per setting, as before).
    engine : {"local", "ray"}
        Where the tasks run (:func:`~amrlite.experiments.engine.run_tasks`).
    address : str, optional
        The Ray cluster to join (default: a local one).
    log : callable, optional
        Where progress lines go.

    Returns
    -------
    dict
        ``{"runs": [...], "best": run, "selected_by": text, "skipped": [names], "eps": [...],
        "lmd": [...], "init": path}``; runs in ``eps_list × lmd_list`` order, the best has the
        highest validation NDCG@10 (test NDCG@10 when the split has no validation rows). With
        ``seeds`` > 1 these are seed index 0's, plus ``"seeds"`` (the seed values),
        ``"per_seed"`` (one such dict per seed) and ``"aggregate"`` (per setting: mean, CI and
        per-seed values of each metric); ``"best"`` is then the best mean.
    """
    eps_list = parse_float_list(eps_list, "eps_list")
    lmd_list = parse_float_list(lmd_list, "lmd_list")
    seeds = int(seeds)
    if seeds < 1:
        raise option_error("seeds", "must be at least 1", seeds)
    if engine == "ray":
        check_address(address)          # before any work: a dead address fails in seconds
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = load_data(dataset)
    sp = as_split(ds, split)
    init_path = checkpoint_path(init, out_dir)
    base_seed = int(dict(base_config or {}).get("seed", 0))
    seed_values = [seed_for(base_seed, k) for k in range(seeds)]
    dkey = data_key(ds, sp)                      # hashed once, for every seed's plan

    def say(msg):
        if progress:
            (log or (lambda m: print(m, file=sys.stderr, flush=True)))(msg)
    plans = [plan_sweep(ds, sp, init_path=init_path, eps_list=eps_list, lmd_list=lmd_list,
                        base_config=dict(base_config or {}, seed=s),
                        out_dir=out_dir if k == 0 else out_dir / f"seed{s}", backend=backend,
                        save_models=save_models, log=say, dkey=dkey)
             for k, s in enumerate(seed_values)]
    say("config: " + jsonio.dumps(dict(plans[0]["config"], seeds=seed_values)))
    run_plans(plans, engine=engine, address=address, processes=processes, progress=progress,
              log=log)
    results = [finish_sweep(p) for p in plans]
    if seeds == 1:
        return results[0]
    agg = aggregate_sweep(results)
    key = results[0]["selected_by"].split()[0]
    best_name = max(agg, key=lambda n: agg[n][key]["NDCG@10"]["mean"])
    result = dict(results[0], seeds=seed_values, per_seed=results, aggregate=agg,
                  best=dict(next(r for r in results[0]["runs"] if r["name"] == best_name)),
                  selected_by=f"mean {results[0]['selected_by']} over {seeds} seeds")
    write_json(out_dir / "sweep.json", result)
    return result


# ---------------------------------------------------------------------------- extras
def _robustness(model, ds, sp, eps, seed):
    """NDCG@10 clean and under the adversarial test-objective attack at ``eps``, and the drop."""
    r = attack(model, ds, sp, [eps], kind="adversarial", objective="test",
                          steps=1, repeats=1, seed=seed, on="test")
    x = eps_entry(r["eps"], eps) or {}
    return {"eps": float(eps), "objective": "test", "kind": "adversarial",
            "clean": r["clean"].get("NDCG@10"), "NDCG@10": x.get("NDCG@10"),
            "drop": x.get("drop", {}).get("NDCG@10")}


def _setting_extras(model_path, cont_model, ds, sp, key, attack_eps, seed):
    """The paired test against continued VBPR and the robustness of one saved setting."""
    model = Model.load(model_path)
    cmp = norm_compare(significance.compare(model, cont_model, ds, sp, on="test"))
    return {"key": key, "per_user": per_user_gains(model, ds, sp),
            "vs_cont": {m: cmp[m] for m in SUMMARY if m in cmp},
            "robust": _robustness(model, ds, sp, attack_eps, seed)}


def sweep_extras(sweeps, cont_model, cont_result, ds, sp, *, cache_path, base_key, attack_eps,
                 seed, log, per_user=None):
    """Per sweep setting: the paired test against continued VBPR (``run["vs_cont"]``) and the
    NDCG@10 drop under the adversarial test-objective attack at ``attack_eps``
    (``run["robust"]``), computed from the setting's saved model and cached in ``cache_path``
    (a rerun neither retrains nor re-tests). The runs of ``sweeps`` are updated in place;
    ``per_user`` (a dict), when given, receives each setting's per-user test HR@10/NDCG@10
    (and continued VBPR's under ``"__baseline__"``), for the pooled multi-seed tests.

    Returns the continued-VBPR baseline row: ``{"test": its test metrics, "robust": ...}``."""
    cache = read_json(cache_path) or {}
    cont_key = [cont_result.get("key"), cont_result.get("model_sha256")]
    base = {"test": cont_result["test"], "robust": None}
    bkey = config_key(dict(base_key, cont=cont_key, attack_eps=attack_eps, what="baseline"))
    if cache.get("baseline", {}).get("key") == bkey:
        base["robust"] = cache["baseline"]["robust"]
    else:
        base["robust"] = _robustness(cont_model, ds, sp, attack_eps, seed)
        cache["baseline"] = {"key": bkey, "robust": base["robust"]}
    changed = False
    seen = {}
    for sw in sweeps.values():
        for r in sw["runs"]:
            name = r["name"]
            if name not in seen:
                key = config_key(dict(base_key, cont=cont_key, attack_eps=attack_eps,
                                      config=r["config"], setting=r.get("key"),
                                      per_user=True))
                hit = cache.get(name)
                if hit is None or hit.get("key") != key:
                    log(f"[sweep extras] {name}: paired test vs continued VBPR, attack at "
                        f"ε = {attack_eps}")
                    hit = _setting_extras(r["model"], cont_model, ds, sp, key, attack_eps, seed)
                    cache[name] = hit
                    changed = True
                seen[name] = hit
            r["vs_cont"], r["robust"] = seen[name]["vs_cont"], seen[name]["robust"]
            if per_user is not None:
                per_user[name] = seen[name]["per_user"]
    if per_user is not None:
        pkey = config_key(dict(base_key, cont=cont_key, what="baseline per user"))
        if cache.get("baseline_per_user", {}).get("key") != pkey:
            cache["baseline_per_user"] = {"key": pkey,
                                          "per_user": per_user_gains(cont_model, ds, sp)}
            changed = True
        per_user["__baseline__"] = cache["baseline_per_user"]["per_user"]
    if changed or "baseline" in cache:
        write_json(cache_path, cache)
    return base
