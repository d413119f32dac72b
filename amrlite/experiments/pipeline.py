"""The whole pipeline, :func:`run_experiment`: a sequence of small stage functions (models,
significance, attacks and rank change, sweeps, figures) sharing one :class:`_Context`, each
stage resumable through the stage store (:class:`~amrlite.experiments.store.Stages`), then
``report.md`` and ``summary.json``.

Each seed's chain of model, significance, attack and pixel-attack stages (:data:`CHAIN`) is
one engine task (:func:`_seed_chain_job`, submitted by :func:`stage_chains`), the seeds in
parallel; then every (sweep setting, seed) is one task (:func:`stage_sweeps`). The driver
stores what the tasks return and replays each chain against the store (a load), so the later
stages find every seed's models and results in its :class:`_Context`.

Every stage module of amrlite (attack, significance, eals, the pixel attack) is imported
here, at module level: an ImportError inside one surfaces. Only the optional extra behind a
stage is probed: the pixel attack is skipped, with its reason, when torch (``.[images]``) is
not installed.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import attack, jsonio, significance
from .. import plots as plotting
from ..backends import resolve_backend_name
from ..errors import AmrliteError, option_error
from ..features.pixel_attack import PixelAttacker, attack_images, figure1, find_photos
from ..jsonio import write_text
from ..models import KIND_DEFAULTS
from ..recommender import Model, evaluate
from ..train import TrainConfig
from ..version import __version__
from .config import make_config, seed_for
from .curves import fit_with_curve
from .engine import check_address, run_tasks, session, where
from .figures import seed_figures
from .report import TABLE2_COLUMNS, make_report, make_seeds_report
from .seeds import aggregate_experiment, per_user_gains
from .store import (NotStored, Stages, checkpoint_path, data_key, data_ref, load_data,
                    metrics_summary, modality_key, model_digest, norm_compare, write_json)
from .sweep import finish_sweep, plan_sweep, run_plans, sweep_extras

#: attacks whose perturbation does not depend on a loss (reported once, objective "–")
OBJECTIVE_FREE_ATTACKS = ("random", "certified")

#: the rows of Table 2, in order (those that were trained)
TABLE_ORDER = ("pop", "eals", "mf", "duif", "vbpr", "vbpr_cont", "amr")

#: the models that are attacked (and tested against each sweep setting)
ATTACKED = ("vbpr_cont", "amr")

#: the values of the configuration shared by every model stage (a stage's own entries win)
SHARED = ("dim", "batch_size", "reg", "seed", "negative_pool")


@dataclass
class _Context:
    """What the stages share: inputs, the store, and what earlier stages produced."""

    cfg: dict
    ds: object
    sp: object
    out_dir: Path
    backend: str
    progress: bool
    log: object
    st: Stages
    base_key: dict            # store.data_key (data, features, split, version) and backend
    models: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    curves: dict = field(default_factory=dict)
    significance: dict | None = None
    attacks: dict | None = None
    rank_change: dict | None = None
    pixel_attack: dict | None = None
    sweeps: dict | None = None
    sweep_base: dict | None = None
    sweep_per_user: dict | None = None
    per_user: dict | None = None
    figures: dict = field(default_factory=dict)

    def keys(self, names):
        """What a later stage depends on of the models ``names``: each one's stage key and the
        content of its saved model (a model file replaced in place changes it)."""
        return {n: [self.results[n]["key"], self.results[n].get("model_sha256")]
                for n in names}


def _data_info(ds, sp):
    return {"source": getattr(ds, "source", None), "name": getattr(ds, "name", None),
            "synthetic": bool(getattr(ds, "synthetic", False)),
            "fingerprint": ds.fingerprint(), "split": sp.name, "n_users": int(sp.n_users),
            "n_items": int(sp.n_items), "n_train": int(sp.n_train),
            "n_valid": 0 if sp.valid is None else len(sp.valid), "n_test": len(sp.test),
            "warm_items": int(sp.warm_items.sum()),
            "cold_test_rows": int((~sp.warm_items[sp.test.items]).sum()),
            "n_features": int(ds.n_features), "modalities": modality_key(ds)}


# ---------------------------------------------------------------------------- models
def _stage_config(ctx, name, kind):
    """The TrainConfig of stage ``name`` (a ``kind`` model) as a dict: the shared values, the
    stage's own entries over them, and the library's defaults for ``kind``. A shared value the
    library has a ``kind`` default for (eALS's ``reg``) is not passed, so that default applies
    unless the stage sets it."""
    cfg = ctx.cfg
    shared = {k: cfg[k] for k in SHARED if k not in KIND_DEFAULTS.get(kind, {})}
    shared["eval_every"] = cfg["eval_every"] if cfg["select"] == "valid" else 0
    hyper = {k: v for k, v in dict(shared, **cfg["stages"].get(name, {})).items()
             if k in TrainConfig.__dataclass_fields__}
    return Model(kind, **hyper).config.to_dict()


def _fit(ctx, kind, conf, init, curve):
    """A fitted ``kind`` model and its curve (None when none was recorded)."""
    cfg = ctx.cfg
    if kind == "pop":
        return Model("pop", backend=ctx.backend).fit(ctx.ds, split=ctx.sp), None
    if curve or (cfg["select"] == "final" and conf["eval_every"]):
        return fit_with_curve(kind, ctx.ds, ctx.sp, init=init, config=conf,
                              backend=ctx.backend, select=cfg["select"], progress=ctx.progress)
    m = Model(kind, backend=ctx.backend, **conf).fit(ctx.ds, split=ctx.sp, init=init,
                                                     progress=ctx.progress)
    return m, None


def _train(ctx, name, kind, init_name=None, curve=False):
    """Train stage ``name`` (or load it when done before under the same key)."""
    st, ds, sp = ctx.st, ctx.ds, ctx.sp
    conf = _stage_config(ctx, name, kind)
    if curve:
        conf["eval_every"] = ctx.cfg["eval_every"]
    key = dict(ctx.base_key, kind=kind, config=conf, select=ctx.cfg["select"], init=init_name,
               init_key=ctx.keys([init_name])[init_name] if init_name else None)
    path = st.model_path(name)
    old = st.get(name, key)
    if (old is not None and path.is_file()
            and old.get("model_sha256") == model_digest(path)):
        ctx.log(f"[{name}] done before: {path}")
        ctx.models[name] = Model.load(path)
        ctx.results[name] = old
        ctx.curves[name] = old.get("curve")
        st.reused.append(name)
        return
    st.computing(name)
    ctx.log(f"[{name}] training {kind} ({conf['epochs']} epochs, lr {conf['lr']}"
            + (f", from {init_name}" if init_name else "") + ")")
    t0 = time.perf_counter()
    m, crv = _fit(ctx, kind, conf, ctx.models.get(init_name) if init_name else None, curve)
    secs = time.perf_counter() - t0
    m.save(path)
    res = {"name": name, "kind": kind, "label": m.spec.label, "config": conf,
           "model_sha256": model_digest(path),
           "init": init_name, "seconds": round(secs, 3),
           "best_epoch": m.history.best_epoch, "test": metrics_summary(evaluate(m, ds, sp))}
    if sp.valid is not None:
        res["valid"] = metrics_summary(evaluate(m, ds, sp, on="valid"))
    if crv is not None:
        res["curve"] = crv
    ctx.models[name] = m
    ctx.results[name] = st.put(name, key, res)
    ctx.curves[name] = crv
    st.trained.append(name)
    ctx.log(f"[{name}] test HR@10 {res['test']['HR@10']:.4f}  NDCG@10 "
            f"{res['test']['NDCG@10']:.4f}  ({secs:.1f}s)")


def stage_models(ctx):
    """Table 2's models: POP, MF-eALS, MF-BPR, then (with features) DUIF, VBPR pre-training,
    continued VBPR and AMR (both with training curves, from the VBPR checkpoint)."""
    _train(ctx, "pop", "pop")
    try:
        _train(ctx, "eals", "eals")
    except AmrliteError as exc:
        ctx.log(f"[eals] skipped: {exc}")
    _train(ctx, "mf", "mf")
    if ctx.ds.features is not None:
        _train(ctx, "duif", "duif")
        _train(ctx, "vbpr", "vbpr", init_name="mf" if ctx.cfg["vbpr_init"] == "mf" else None)
        _train(ctx, "vbpr_cont", "vbpr", init_name="vbpr", curve=True)
        _train(ctx, "amr", "amr", init_name="vbpr", curve=True)


# ---------------------------------------------------------------------------- tests, attacks
def stage_significance(ctx):
    """Paired tests of AMR against every other model of Table 2 (test rows)."""
    if "amr" not in ctx.models:
        return
    order = [n for n in TABLE_ORDER if n in ctx.results]
    amr = ctx.models["amr"]

    def compute():
        return {"tests": {n: norm_compare(significance.compare(amr, ctx.models[n], ctx.ds,
                                                               ctx.sp, on="test"))
                          for n in order if n != "amr"}}
    ctx.significance = ctx.st.cached("significance", dict(ctx.base_key, models=ctx.keys(order)),
                                     compute, "[significance] paired tests of AMR vs each model")


def _attack_table(ctx):
    acfg = ctx.cfg["attack"]
    table = {}
    for n in ATTACKED:
        for kind in acfg["kinds"]:
            free = kind in OBJECTIVE_FREE_ATTACKS
            for objective in (["test"] if free else acfg["objectives"]):
                steps = acfg["pgd_steps"] if kind == "pgd" else 1
                r = attack.attack(ctx.models[n], ctx.ds, ctx.sp, acfg["eps"],
                                      kind="adversarial" if kind == "pgd" else kind,
                                      objective=objective, steps=steps,
                                      repeats=acfg["repeats"], seed=ctx.cfg["seed"], on="test")
                table[f"{n}/{kind}/{'–' if free else objective}"] = r
    return {"results": table}


def _rank_changes(ctx, eps):
    rc = {}
    for n in ATTACKED:
        r = attack.rank_change(ctx.models[n], ctx.ds, ctx.sp, eps, kind="adversarial",
                                   objective="test")
        delta = r["per_row"] if "per_row" in r else r["delta"]
        rc[n] = {"delta": np.asarray(delta).tolist(), "summary": r.get("summary")}
    return {"eps": eps, "models": rc}


def stage_attacks(ctx):
    """Table 3 (every attack kind on continued VBPR and AMR) and the rank change (Fig. 5)."""
    if "amr" not in ctx.models:
        return
    acfg, keys = ctx.cfg["attack"], ctx.keys(ATTACKED)
    ctx.attacks = ctx.st.cached(
        "attacks", dict(ctx.base_key, attack=acfg, models=keys),
        lambda: _attack_table(ctx),
        "[attacks] " + ", ".join(acfg["kinds"]) + " on continued VBPR and AMR")
    eps = ctx.cfg["rank_change_eps"]
    ctx.rank_change = ctx.st.cached(
        "rank_change", dict(ctx.base_key, eps=eps, models=keys),
        lambda: _rank_changes(ctx, eps), f"[rank change] ε = {eps}")


def _pixel_photos(ctx):
    """``(photos, why)``: the items' photos (:func:`find_photos`: the features recipe's photo
    folder or images table, or the folder's ``images.csv``) and None, or None and why the pixel
    attack does not run here."""
    pcfg = ctx.cfg["pixel_attack"]
    if not pcfg["enabled"]:
        return None, "disabled (pixel_attack.enabled = false)"
    if not any(m.startswith("image:") for m in ctx.base_key.get("modalities", [])):
        return None, "the features have no image modality"
    if not all(n in ctx.models for n in ATTACKED):
        return None, "no continued VBPR / AMR models"
    try:
        photos = find_photos(ctx.models["amr"], ctx.ds)[0]
    except AmrliteError as exc:
        return None, str(exc)
    try:
        import torch  # noqa: F401  (the images extra: the one optional module probed here)
    except ImportError as exc:
        return None, f"the images extra is not installed ({exc})"
    return photos, None


def _pixel_table(ctx, photos):
    pcfg, encoder, table = ctx.cfg["pixel_attack"], None, {}
    for n in ATTACKED:
        pa = PixelAttacker(ctx.models[n], ctx.ds, ctx.sp, encoder=encoder, rows=pcfg["rows"],
                           target=pcfg["target"], batch=pcfg["batch"], seed=ctx.cfg["seed"],
                           paths=photos)
        encoder = pa.encoder
        for steps in pcfg["steps"]:
            table[f"{n}/{steps}"] = attack_images(ctx.models[n], ctx.ds, ctx.sp, pcfg["eps"],
                                                  steps=steps, attacker=pa, log=ctx.log)
    return {"results": table}


def stage_pixel_attack(ctx):
    """The pixel-level attack table (FGSM and PGD in pixel space) on continued VBPR and AMR."""
    photos, why = _pixel_photos(ctx)
    if why is not None:
        if any(m.startswith("image:") for m in ctx.base_key.get("modalities", [])):
            ctx.log(f"[pixel attack] skipped: {why}")
        return
    pcfg = ctx.cfg["pixel_attack"]
    ctx.pixel_attack = ctx.st.cached(
        "pixel_attack", dict(ctx.base_key, pixel=pcfg, models=ctx.keys(ATTACKED)),
        lambda: _pixel_table(ctx, photos),
        f"[pixel attack] {pcfg['rows']} test rows' {pcfg['target']} images, ε "
        f"{', '.join(f'{e:.4g}' for e in pcfg['eps'])}, steps {pcfg['steps']}")


# ---------------------------------------------------------------------------- each seed's chain
#: the stages of one seed's chain, in order (each needs the ones before): one engine task
CHAIN = (("models", stage_models), ("significance", stage_significance),
         ("attacks", stage_attacks), ("pixel_attack", stage_pixel_attack))

#: the stored stages of a chain (their JSON, and the model where there is one)
CHAIN_FILES = TABLE_ORDER + ("significance", "attacks", "rank_change", "pixel_attack")

#: store tag → the driver's log of that seed, while the local engine runs chains in the
#: driver's own process (:func:`stage_chains`); empty in every worker process
_DRIVER_LOGS = {}


def _quiet(_msg):
    pass


def _run_chain(ctx):
    """Run (or load) the stages of ``ctx``'s chain in order; their seconds by stage."""
    timings = {}
    for name, stage in CHAIN:
        t0 = time.perf_counter()
        stage(ctx)
        timings[name] = round(time.perf_counter() - t0, 2)
    return timings


def _chain_stored(ctx):
    """Whether every stage of ``ctx``'s chain is stored under its current key, found by
    running the chain, silently, over a load-only view of the store (nothing is computed)."""
    probe = replace(ctx, log=_quiet, models={}, results={}, curves={},
                    st=Stages(ctx.out_dir, _quiet, tag=ctx.st.tag, load_only=True))
    try:
        _run_chain(probe)
    except NotStored:
        return False
    return True


def _chain_job(ctx, engine):
    """The engine job of ``ctx``'s chain. Local workers share the driver's file system: they
    read and write ``out_dir``'s store directly (``"store"``), each stage as it finishes. Ray
    workers may be on other nodes: the seed's finished stage files travel with the job
    (``"files"``) and what the chain adds comes back with its result, and the data set is
    named as the sweep jobs name it (:func:`~amrlite.experiments.store.data_ref`), so that
    both batches use the one copy in the object store. Local jobs carry the Dataset itself (a
    chain run in the driver uses it as it is)."""
    shared = engine == "local"
    return {"name": f"seed {ctx.cfg['seed']}", "init": None,
            "data": ctx.ds if shared else data_ref(ctx.ds),
            "split": ctx.sp.name, "cfg": ctx.cfg, "base_key": ctx.base_key,
            "backend": ctx.backend, "tag": ctx.st.tag, "progress": ctx.progress,
            "store": str(ctx.out_dir.resolve()) if shared else None,
            "files": {} if shared else ctx.st.files(CHAIN_FILES)}


def _seed_chain_job(job, data, init):
    """One seed's chain (:data:`CHAIN`: models, significance, attacks, pixel attack) as an
    engine task, wherever the engine runs it; ``init`` is unused (the chain trains its own).

    The stages run over ``job["store"]`` (the driver's out_dir) or, without one, over a
    private temporary store filled with ``job["files"]``; either way a stage already stored
    under its key is loaded, not recomputed. The backend is resolved here (``auto``: cupy on a
    worker with a GPU) and goes into every stage key. In the driver's own process the chain
    logs live (with progress bars); elsewhere its log lines come back in the result.

    Returns ``{"where", "base_key", "trained", "reused", "timings", "files", "log",
    "live"}``: ``files`` are the stage files the chain added or changed (none when it wrote
    into ``job["store"]``), as :meth:`~amrlite.experiments.store.Stages.files` gives them."""
    live = _DRIVER_LOGS.get(job["tag"])
    lines = []

    def log(msg):
        lines.append(msg)
        if live is not None:
            live(msg)
    ds = load_data(data)
    base_key = dict(job["base_key"], backend=resolve_backend_name(job["backend"]))
    # named by this process's id: one left behind by a killed worker is recognisable
    with tempfile.TemporaryDirectory(prefix=f"amrlite-chain-{os.getpid()}-") as tmp:
        root = Path(job["store"] or tmp)
        st = Stages(root, log, tag=job["tag"])
        st.restore(job["files"])
        ctx = _Context(cfg=job["cfg"], ds=ds, sp=ds.split(job["split"]), out_dir=root,
                       backend=job["backend"], progress=job["progress"] and live is not None,
                       log=log, st=st, base_key=base_key)
        timings = _run_chain(ctx)
        files = {} if job["store"] else {k: v for k, v in st.files(CHAIN_FILES).items()
                                         if job["files"].get(k) != v}
    return {"where": where(), "base_key": base_key, "trained": st.trained,
            "reused": st.reused, "timings": timings, "files": files, "log": lines,
            "live": live is not None}


def _took_chain(ctx, res):
    """In the driver, as a seed's chain result arrives: store its files, adopt its stage
    keys' backend, log what it logged (unless it did so live) and where it ran."""
    ctx.st.restore(res["files"])
    ctx.base_key = res["base_key"]
    if not res["live"]:
        for msg in res["log"]:
            ctx.log(msg)
    w = res["where"]
    ctx.log(f"[chain] ran on {w['host']}, pid {w['pid']}"
            + (f", Ray task {w['ray_task']}" if w["ray_task"] else "")
            + f": trained {', '.join(res['trained']) or 'nothing'} "
            f"({sum(res['timings'].values()):.1f}s)")


def stage_chains(ctxs, timings, engine="local", address=None, processes=None):
    """Every seed's chain (:data:`CHAIN`), each one task on ``engine``, the seeds in parallel.

    A seed whose chain is stored whole is not submitted. The driver stores each seed's
    result as it arrives, then replays every chain against the store: each stage finds its
    result there and loads it into the seed's context (a stage no worker could run, e.g. the
    pixel attack on a worker without the images, is computed here). ``timings`` receives the
    seconds of each stage (the workers' and the replay's, summed over seeds).

    Returns one record per chain that ran: ``{"seed", "host", "pid", "ray_task",
    "backend_used", "trained", "seconds"}``."""
    ctx0 = ctxs[0]
    by_tag = {ctx.st.tag: ctx for ctx in ctxs}
    jobs = [_chain_job(ctx, engine) for ctx in ctxs if not _chain_stored(ctx)]
    ran = {}

    def on_result(job, res):
        _took_chain(by_tag[job["tag"]], res)
        ran[job["tag"]] = res

    if jobs:
        ctx0.log(f"[chains] {len(jobs)} of {len(ctxs)} seed(s) to run on the {engine} engine")
    _DRIVER_LOGS.update({tag: ctx.log for tag, ctx in by_tag.items()})
    try:
        run_tasks(_seed_chain_job, jobs, engine=engine, address=address, processes=processes,
                  progress=ctx0.progress, on_result=on_result, log=ctx0.log)
    finally:
        _DRIVER_LOGS.clear()
    records = [_replay(ctx, ran.get(tag), timings) for tag, ctx in by_tag.items()]
    return [r for r in records if r is not None]


def _replay(ctx, res, timings):
    """Load ``ctx``'s chain from the store into ``ctx``; ``res``: the result of its task this
    run (None: it was stored before), whose models count as trained, not reused. Adds the
    stages' seconds to ``timings``; returns the chain's record (None without ``res``)."""
    log = ctx.log
    if res is not None:                # loaded just after being stored: no "done before" lines
        ctx.log = _quiet
    try:
        _add(timings, _run_chain(ctx))
    finally:
        ctx.log = log
    if res is None:
        return None
    _add(timings, res["timings"])
    ctx.st.trained = res["trained"] + ctx.st.trained
    ctx.st.reused = [n for n in ctx.st.reused if n not in res["trained"]]
    return dict(res["where"], seed=ctx.cfg["seed"], trained=res["trained"],
                backend_used=res["base_key"]["backend"],
                seconds=round(sum(res["timings"].values()), 2))


def _add(timings, more):
    """Add the seconds of ``more`` to ``timings``, stage by stage."""
    for k, v in more.items():
        timings[k] = round(timings.get(k, 0) + v, 2)


# ---------------------------------------------------------------------------- sweeps, figures
def _sweep_plan(scfg, amr_conf):
    """``(axis, eps_list, lmd_list)`` of each sweep to run: the grid first (the one-axis sweeps
    then reuse its settings), then ε at AMR's λ and λ at AMR's ε."""
    plan = []
    if scfg.get("grid"):
        plan.append(("grid", scfg["grid_eps"], scfg["grid_lmd"]))
    plan += [("eps", scfg["eps"], [amr_conf["lmd"]]), ("lmd", [amr_conf["eps"]], scfg["lmd"])]
    return [(axis, e, l) for axis, e, l in plan
            if e and l and (axis == "grid" or scfg[axis])]


def stage_sweeps(ctxs, engine="local", address=None):
    """Figs. 6, 7: AMR sweeps from each seed's VBPR checkpoint, every (setting, seed) one task
    of one batch on ``engine``; each setting tested against its seed's continued VBPR and
    attacked at ``sweep.attack_eps``. Seed index 0 keeps the single-seed layout
    (``out_dir/sweep``), seed s > 0 uses ``out_dir/sweep/seed<s>``."""
    ctx0 = ctxs[0]
    scfg = ctx0.cfg["sweep"]
    if "amr" not in ctx0.models or not (scfg["eps"] or scfg["lmd"] or scfg.get("grid")):
        return
    plans = []
    for ctx in ctxs:
        amr_conf = _stage_config(ctx, "amr", "amr")
        amr_conf["eval_every"] = _stage_config(ctx, "vbpr_cont", "vbpr")["eval_every"]
        sweep_dir = ctx.out_dir / "sweep" / ctx.st.tag.replace("@", "")
        init_path = checkpoint_path(ctx.st.model_path("vbpr"), sweep_dir)
        ctx.sweeps = {}
        for axis, eps_list, lmd_list in _sweep_plan(scfg, amr_conf):
            plans.append((ctx, axis, plan_sweep(
                ctx.ds, ctx.sp, init_path=init_path, eps_list=eps_list, lmd_list=lmd_list,
                base_config=amr_conf, out_dir=sweep_dir, backend=ctx.backend,
                save_models=True, log=ctx.log,
                dkey={k: v for k, v in ctx.base_key.items() if k != "backend"})))
    n_jobs = len({j["json"] for _, _, p in plans for j in p["jobs"]})
    ctx0.log(f"[sweeps] {', '.join(sorted({a for _, a, _ in plans}))} × {len(ctxs)} seed(s): "
             f"{n_jobs} task(s) to run on the {engine} engine")
    run_plans([p for _, _, p in plans], engine=engine, address=address,
              processes=scfg["processes"], progress=ctx0.progress, log=ctx0.log)
    for ctx, axis, plan in plans:
        ctx.sweeps[axis] = finish_sweep(plan)
    for ctx in ctxs:
        ctx.sweep_per_user = {}
        ctx.sweep_base = sweep_extras(
            ctx.sweeps, ctx.models["vbpr_cont"], ctx.results["vbpr_cont"], ctx.ds, ctx.sp,
            cache_path=ctx.st.path("sweep_extras"), base_key=ctx.base_key,
            attack_eps=scfg["attack_eps"], seed=ctx.cfg["seed"], log=ctx.log,
            per_user=ctx.sweep_per_user)
        write_json(ctx.st.path("sweeps"), {"sweeps": ctx.sweeps, "baseline": ctx.sweep_base})


def stage_per_user(ctx):
    """Per-user test HR@10/NDCG@10 of every Table 2 model (for the pooled multi-seed tests)."""
    names = [n for n in TABLE_ORDER if n in ctx.models]
    ctx.per_user = ctx.st.cached(
        "per_user", dict(ctx.base_key, models=ctx.keys(names)),
        lambda: {"models": {n: per_user_gains(ctx.models[n], ctx.ds, ctx.sp) for n in names}},
        "[per user] test gains of each model")["models"]


def _sweep_figures(sweeps, out_dir, baseline):
    figures = {}
    if "grid" in sweeps:
        # Figs. 6/7 from the grid: metric vs ε at each λ, metric vs λ at each ε
        runs = sweeps["grid"]["runs"]
        for axis in ("eps", "lmd"):
            figures[f"sweep_{axis}"] = plotting.sweep_grid_plot(
                runs, axis, out_dir / f"fig{6 if axis == 'eps' else 7}_sweep_{axis}.png",
                baseline=baseline)
        figures["sweep_heatmap"] = plotting.sweep_heatmap(runs, out_dir / "sweep_grid_heatmap.png",
                                                       baseline=baseline)
    else:
        for axis, res in sweeps.items():
            figures[f"sweep_{axis}"] = plotting.sweep_plot(
                res["runs"], axis, out_dir / f"fig{6 if axis == 'eps' else 7}_sweep_{axis}.png")
    return figures


def stage_figures(ctx):
    """Fig. 3 (curves), Figs. 6/7 (and the grid heatmap), Fig. 5 (rank change), attack drop."""
    out_dir, results, curves = ctx.out_dir, ctx.results, ctx.curves
    figures = {}
    if curves.get("vbpr_cont") and curves.get("amr"):
        figures["curves"] = plotting.training_curves(
            curves["vbpr_cont"], curves["amr"], out_dir / "fig3_training_curves.png",
            mf_line=results.get("mf", {}).get("test"))
    if ctx.sweeps:
        figures.update(_sweep_figures(ctx.sweeps, out_dir, (ctx.sweep_base or {}).get("test")))
    if ctx.rank_change:
        figures["rank_change"] = plotting.rank_change_plot(
            {results[n]["label"] if n != "vbpr_cont" else "VBPR": np.asarray(v["delta"])
             for n, v in ctx.rank_change["models"].items()},
            out_dir / "fig5_rank_change.png", eps=ctx.rank_change["eps"])
    if ctx.attacks:
        figures["attack"] = plotting.attack_plot(ctx.attacks["results"], out_dir / "attack_drop.png")
    if ctx.pixel_attack:
        pcfg = ctx.cfg["pixel_attack"]
        path, _ = figure1([ctx.models[n] for n in ATTACKED], ctx.ds, ctx.sp,
                          out_dir / "fig1_pixel_attack.png", eps=pcfg["figure_eps"],
                          steps=pcfg["figure_steps"], labels=["VBPR (continued)", "AMR"])
        figures["pixel_attack"] = path
    ctx.figures = {k: Path(v).name for k, v in figures.items() if v}


# ---------------------------------------------------------------------------- the run
def run_experiment(data, split="loo", out_dir="experiment", *, quick=False, backend="auto",
                   overrides=None, progress=True, plots=True, log=None, seeds=1,
                   engine="local", address=None, features=None, normalize="none"):
    """The paper's pipeline on ``data``, every stage resumable, once per seed.

    Stages: POP, MF-eALS, MF-BPR, DUIF, VBPR pre-training,
    continued VBPR and AMR (both with training curves); paired significance of AMR vs every
    other model (:mod:`amrlite.significance`); attacks on continued VBPR and AMR
    (:mod:`amrlite.attack`) and the rank change (Fig. 5); ε / λ sweeps (Figs. 6, 7; with
    ``sweep.grid`` the full ε × λ grid first), each setting tested against continued VBPR;
    figures. A stage whose result exists in ``out_dir/stages`` under the same key (its
    configuration, :func:`~amrlite.experiments.store.data_key` — interactions, features after
    normalisation, split and negatives, version —, the backend and the content of the models
    it starts from or tests) is loaded instead of recomputed.

    With ``seeds`` = S > 1 the whole chain (MF-BPR → VBPR → continued VBPR / AMR, the attacks,
    every sweep setting) runs once per seed ``seed_for(config["seed"], k)``, k < S; seed index
    0 is the single-seed run itself (same files, reused), seed s > 0 has files tagged
    ``@seed<s>``. The report then gives every metric and attack drop as mean ± 95% CI with the
    per-seed values, and AMR vs continued VBPR (and each sweep setting) by two tests, across
    seeds and pooled per user, Holm-corrected within each table
    (:mod:`amrlite.experiments.seeds`).

    Parameters
    ----------
    data : str or Path or Dataset or None
        A data set folder, a Dataset, or None for the synthetic set.
    split : str
        The split (``loo``, ``sparse3``, ...).
    out_dir : str or Path
        Where ``config.json``, ``stages/*.json``, ``models/*.npz``, ``sweep/``, ``*.png``,
        ``report.md`` and ``summary.json`` go.
    quick : bool
        Apply :data:`~amrlite.experiments.QUICK` (a smoke run).
    backend : str
        ``auto``, ``numpy``, ``numba`` or ``cupy``.
    overrides : dict, optional
        Nested overrides of the configuration (see :func:`~amrlite.experiments.make_config`).
    progress : bool
        Log stages and show progress bars on stderr.
    plots : bool
        Draw the figures (needs matplotlib).
    log : callable, optional
        ``log(message)`` instead of printing to stderr.
    seeds : int
        Seeds (1: the single-seed run).
    engine : {"local", "ray"}
        Where the tasks run (:func:`~amrlite.experiments.engine.run_tasks`): first each seed's
        chain (its models, significance, attacks and pixel attack: one task per seed, the
        seeds in parallel; ``local``: ``processes`` spawned workers, or this process when
        ``processes`` is 1 or one seed is left to run), then every (sweep setting, seed) (one
        task each, ``sweep.processes`` workers). The same seeds give the same numbers on
        either engine. A seed whose chain is stored whole is not submitted; each task's
        result is stored as it arrives, so an interrupted run resumes with the missing tasks.
    address : str, optional
        The Ray cluster to join (default with ``engine="ray"``: a local one).
    features : str, optional
        The folder's feature modalities (``"image"``, ``"image,text"``: concatenated; default
        the folder's ``features.npy``), as :func:`amrlite.data.load_dataset` reads them. With
        ``image`` among them (and torch installed) the pixel-level attack stage runs too.
    normalize : str
        Their normalisation: ``"none"``, ``"maxabs"``, ``"l2"`` or ``"image=l2,text=none"``.

    Returns
    -------
    dict
        The summary (also written to ``summary.json``): ``version``, ``data``, ``config``,
        ``backend``, ``backend_used``, ``results`` (per model, in Table 2's order),
        ``significance``, ``attacks`` (bool), ``sweeps``, ``sweep_baseline``, ``figures``,
        ``timings``, ``trained``, ``reused``, ``engine``, ``chains`` (one record per chain
        that ran this time, :func:`stage_chains`); with ``seeds`` > 1 these are seed index 0's,
        plus ``seeds`` and ``multi`` (:func:`~amrlite.experiments.seeds.aggregate_experiment`).
    """
    t_start = time.perf_counter()
    if log is None:
        def log(msg):
            if progress:
                print(msg, file=sys.stderr, flush=True)
    seeds = int(seeds)
    if seeds < 1:
        raise option_error("seeds", "must be at least 1", seeds)
    cfg = make_config(quick=quick, overrides=overrides)
    if engine == "ray":
        check_address(address)          # before any work: a dead address fails in seconds
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = load_data(data, features=features, normalize=normalize)
    sp = ds.split(split)
    backend_used = resolve_backend_name(backend)
    data_info = _data_info(ds, sp)
    seed_values = [seed_for(cfg["seed"], k) for k in range(seeds)]
    # every stage key: the data's content (interactions, features, split and negatives,
    # version) and the backend, plus the stage's own configuration and its models' content
    base_key = dict(data_key(ds, sp), backend=backend_used)
    write_json(out_dir / "config.json", {"config": cfg, "quick": quick, "backend": backend,
                                         "backend_used": backend_used, "data": data_info,
                                         "version": __version__, "seeds": seed_values,
                                         "engine": engine, "key": base_key})
    log("config: " + jsonio.dumps(cfg))
    ctxs = []
    for k, seed in enumerate(seed_values):
        seed_log = log if seeds == 1 else (lambda m, s=seed: log(f"(seed {s}) {m}"))
        ctxs.append(_Context(cfg=dict(cfg, seed=seed), ds=ds, sp=sp, out_dir=out_dir,
                             backend=backend, progress=progress, log=seed_log,
                             st=Stages(out_dir, seed_log, tag="" if k == 0 else f"@seed{seed}"),
                             base_key=base_key))
    timings = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn()
        timings[name] = round(timings.get(name, 0) + time.perf_counter() - t0, 2)
        return out

    with session(engine, address, cfg["processes"]):     # one Ray cluster for both batches
        chains = timed("chains", lambda: stage_chains(ctxs, timings, engine=engine,
                                                      address=address,
                                                      processes=cfg["processes"]))
        timed("sweeps", lambda: stage_sweeps(ctxs, engine=engine, address=address))
    if seeds > 1:
        for ctx in ctxs:
            timed("per_user", lambda: stage_per_user(ctx))
    if plots and seeds == 1:           # several seeds: the figures with intervals, below
        timed("figures", lambda: stage_figures(ctxs[0]))
    ctx = ctxs[0]
    summary = {"version": __version__, "data": data_info, "config": cfg, "backend": backend,
               "backend_used": backend_used,
               "results": {n: ctx.results[n] for n in TABLE_ORDER if n in ctx.results},
               "significance": ctx.significance, "attacks": ctx.attacks is not None,
               "pixel_attack": ctx.pixel_attack is not None,
               "sweeps": ctx.sweeps, "sweep_baseline": ctx.sweep_base, "figures": ctx.figures,
               "timings": timings, "engine": engine, "chains": chains,
               "trained": [n + c.st.tag for c in ctxs for n in c.st.trained],
               "reused": [n + c.st.tag for c in ctxs for n in c.st.reused]}
    if seeds > 1:
        _multi_seed_outputs(ctxs, summary, plots)
    timings["total"] = round(time.perf_counter() - t_start, 2)
    _write_outputs(ctx, summary)
    log(f"report: {out_dir / 'report.md'} ({timings['total']:.1f}s; trained "
        f"{len(summary['trained'])}, reused {len(summary['reused'])})")
    return summary


def _multi_seed_outputs(ctxs, summary, plots):
    """Aggregate the seeds into ``summary["multi"]`` and draw the figures with intervals."""
    per_seed = [{"seed": c.cfg["seed"], "results": c.results, "per_user": c.per_user,
                 "attacks": c.attacks, "sweeps": c.sweeps, "sweep_base": c.sweep_base,
                 "sweep_per_user": c.sweep_per_user, "curves": c.curves} for c in ctxs]
    names = [n for n in TABLE_ORDER if all(n in c.results for c in ctxs)]
    multi = aggregate_experiment(per_seed, names, TABLE2_COLUMNS)
    multi["labels"] = {n: ctxs[0].results[n]["label"] for n in names}
    summary["seeds"] = multi["seeds"]
    summary["multi"] = multi
    if plots:
        summary["figures"] = seed_figures(multi, per_seed, ctxs[0].out_dir)


def _write_outputs(ctx, summary):
    """``report.md`` and ``summary.json`` (the latter without the per-model curves)."""
    text = (make_seeds_report(summary) if summary.get("multi")
            else make_report(summary, ctx.attacks, ctx.rank_change, ctx.pixel_attack))
    write_text(ctx.out_dir / "report.md", text)
    write_json(ctx.out_dir / "summary.json",
               {k: v for k, v in summary.items() if k != "results"} |
               {"results": {n: {k: v for k, v in r.items() if k != "curve"}
                            for n, r in summary["results"].items()}})
