"""The ``amrlite`` command line: a thin click layer over the Python API.

Every user error (:class:`amrlite.AmrliteError`) is printed as one line, ``amrlite: error: …``,
with exit status 2 and no traceback.
"""
from __future__ import annotations

import contextlib
import csv
import json
import sys
import time
import warnings
from pathlib import Path

import click
import numpy as np

from .version import __version__
from .errors import AmrliteError
from .jsonio import atomic_write, check_writable, dumps
from .metrics import METRIC_NAMES


class UserError(click.ClickException):
    exit_code = 2

    def show(self, file=None):
        click.echo(f"amrlite: error: {self.format_message()}", err=True)


class Group(click.Group):
    """Turns AmrliteError (and a missing-file OSError) into a one-line message."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AmrliteError as exc:
            if getattr(exc, "param", None) is not None:
                raise UserError(f"{flag_of(exc.param)}: {exc.problem}") from None
            raise UserError(str(exc)) from None
        except FileNotFoundError as exc:
            raise UserError(f"{exc.filename}: no such file or directory") from None


def _show_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"amrlite: warning: {message}", err=True)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="amrlite")
def cli():
    """amrlite: Adversarial Multimedia Recommendation (AMR), VBPR, MF-BPR, DUIF and POP,
    from scratch, with hand-derived gradients on NumPy, Numba and CuPy backends."""
    warnings.showwarning = _show_warning


# ---------------------------------------------------------------------------- shared options
#: library parameter -> command-line flag, where the flag is not ``--`` + the name with dashes:
#: a library error about a parameter (:func:`amrlite.errors.option_error`) names the flag
FLAGS = {"n_negatives": "--negatives", "path": "--data", "init": "--init",
         "max_per_user": "--sparse"}


def flag_of(param):
    """The command-line flag of library parameter ``param`` (``k_core`` -> ``--k-core``)."""
    return FLAGS.get(param, "--" + param.replace("_", "-"))


def _data_option_list(for_model):
    """The data options; ``for_model``: of a command that reads a saved model, whose data set
    and options are its defaults (every option then defaults to ``None``, meaning not given)."""
    def default(fit_default):
        return " Default: the model's." if for_model else f" Default: {fit_default}."
    return [
        click.option("--data", type=click.Path(), default=None,
                     help="Dataset folder (native or official AMR format) or an interactions "
                          "CSV/TSV with raw ids. "
                          + ("Default: the data set the model was trained on (its recorded "
                             "absolute path), read with the model's options; --data replaces "
                             "only the path, and each option given replaces the recorded one."
                             if for_model else "Default: the embedded synthetic data set.")),
        click.option("--split", default=None,
                     help="loo, temporal (per user the last interaction by time is the test row, "
                          "the one before the validation row), cold, sparseK, none (every "
                          "interaction in training: nothing held out, no evaluation), or NAME "
                          "for a split-NAME/ folder. Default: "
                          + ("the model's split." if for_model else
                             "'official' where neg.txt exists, else loo.")),
        click.option("--sparse", type=click.IntRange(min=1), default=None, metavar="K",
                     help="The sparse regime: loo with at most K training rows per user "
                          "(= --split sparseK)."),
        click.option("--negatives", type=click.IntRange(min=0), default=None,
                     help="Sampled negatives per held-out row of a generated split "
                          "(0: full ranking only)." + default("99")),
        click.option("--split-seed", type=int, default=None,
                     help="Seed of a generated split and its sampled negatives."
                          + default("2019")),
        click.option("--features", default=None,
                     help="Modalities of the folder (image, or image,text: concatenated) and/or "
                          "feature files (.npy positional, .npz with ids and features)."
                          + (" Default: the model's." if for_model else "")),
        click.option("--normalize", default=None,
                     help="none, maxabs or l2, for every modality or per modality: "
                          "image=l2,text=none." + default("none")),
        click.option("--items", "items_path", type=click.Path(dir_okay=False), default=None,
                     help="Raw data: a file listing the item id of every .npy feature row."),
        click.option("--missing-features", type=click.Choice(["error", "zero"]),
                     default=None,
                     help="Raw data: items without a feature row are an error, or get a zero "
                          "row." + default("error")),
        click.option("--user-col", default=None, help="Raw data: the user id column (name or 1-based)."),
        click.option("--item-col", default=None, help="Raw data: the item id column."),
        click.option("--rating-col", default=None, help="Raw data: the rating column."),
        click.option("--time-col", default=None,
                     help="Raw data: the time column (epoch seconds or ISO 8601; found by name: "
                          "timestamp, time, ordered_at, created_at, date, datetime ...)."),
        click.option("--min-rating", type=float, default=None,
                     help="Raw data: keep rows with rating >= R (explicit to implicit)."),
        click.option("--k-core", type=click.IntRange(min=1), default=None, metavar="N",
                     help="Raw data: keep users and items with >= N interactions (iterated)."),
        click.option("--id-order", type=click.Choice(["first", "sorted"]), default=None,
                     help="Raw data: index raw ids in first-seen or sorted order."
                          + default("first")),
    ]


def _apply(opts, f):
    for opt in reversed(opts):
        f = opt(f)
    return f


def data_options(f):
    """The options that say which data set, features and split a command reads."""
    return _apply(_data_option_list(False), f)


def model_data_options(f):
    """:func:`data_options` of a command that reads a saved model: each defaults to what the
    model records (:func:`amrlite.recommender.model_data`)."""
    return _apply(_data_option_list(True), f)


DATA_KEYS = ("data", "split", "sparse", "negatives", "split_seed", "features", "normalize",
             "items_path", "missing_features", "user_col", "item_col", "rating_col", "time_col",
             "min_rating", "k_core", "id_order")


def backend_option(f):
    return click.option("--backend", type=click.Choice(["auto", "numpy", "numba", "cupy"]),
                        default="auto", show_default=True,
                        help="auto = cupy with a CUDA GPU, else numba.")(f)


def _split_name(split, sparse):
    """``--split`` and ``--sparse K`` as one split name (None: the default)."""
    if sparse is not None:
        if split is not None and split != f"sparse{sparse}":
            raise AmrliteError(f"--sparse {sparse} and --split {split}: give one of them")
        return f"sparse{sparse}"
    return split


def _say_loaded(ds):
    """What was read (stderr): sizes, notes, features."""
    from .modalities import describe
    if ds.synthetic:
        click.echo("data: synthetic multimedia data set (generated in memory, seeded; not real "
                   f"data): {ds.n_users} users, {ds.n_items} items, {ds.n_features}-d features",
                   err=True)
    else:
        click.echo(f"data: {ds.source}: {ds.n_users} users, {ds.n_items} items, "
                   f"{len(ds.users)} interactions, {ds.n_features}-d features", err=True)
    for note in ds.notes:
        click.echo(f"data: {note}", err=True)
    if ds.feature_info and not ds.synthetic:
        click.echo(f"features: {describe(ds.feature_info)}", err=True)


def _load(data, split=None, *, sparse=None, negatives=None, split_seed=None, **opts):
    """Load the data set and its split, saying what was read (stderr). ``None``: the default."""
    from .data import load_dataset
    opts["items"] = opts.pop("items_path", None)
    ds = load_dataset(data, **{k: v for k, v in opts.items() if v is not None})
    _say_loaded(ds)
    sp = ds.split(_split_name(split, sparse), n_negatives=99 if negatives is None else negatives,
                  seed=2019 if split_seed is None else split_seed)
    _say_split(sp)
    return ds, sp


def _say_split(sp):
    """The split's notes (stderr)."""
    for note in sp.notes:
        click.echo(f"split: {note}", err=True)


def _data_args(kw):
    """Pop the data options out of a command's keyword arguments."""
    return {k: kw.pop(k) for k in DATA_KEYS}


def results_table(metrics, title):
    """A small fixed-width table: rows all/warm/cold, columns the nine metrics."""
    cols = list(METRIC_NAMES)
    lines = [title, f"{'items':<6} {'n':>5}  " + "  ".join(f"{c:>7}" for c in cols)]
    for part in ("all", "warm", "cold"):
        m = metrics if part == "all" else metrics.get(part, {})
        n = metrics.get("n", {}).get(part, 0)
        if not n:
            continue
        lines.append(f"{part:<6} {n:>5}  " + "  ".join(f"{m[c]:>7.4f}" for c in cols))
    return "\n".join(lines)


def _write_json(path, obj):
    from .jsonio import write_json
    write_json(path, obj)


# ---------------------------------------------------------------------------- fit
def _default(name):
    """The library's default of hyper-parameter ``name`` (shown in --help; not passed on)."""
    from .train import TrainConfig
    return TrainConfig.__dataclass_fields__[name].default


def hyper_option(name, type_, help_):
    """A hyper-parameter option showing the library's default; only values given on the command
    line are passed on (:func:`_given`), so the model kind's defaults apply to the rest."""
    flag = "--" + name.replace("_", "-")
    return click.option(flag, name, type=type_, default=_default(name), help=help_,
                        show_default=True)


def _given(values):
    """The options of ``values`` that the user set (not click's displayed defaults)."""
    ctx = click.get_current_context()
    return {k: v for k, v in values.items()
            if ctx.get_parameter_source(k) is not click.core.ParameterSource.DEFAULT}


@cli.command()
@data_options
@click.option("--model", "kind", type=click.Choice(["pop", "mf", "duif", "vbpr", "amr", "eals"]),
              default="amr", show_default=True)
@click.option("--form", type=click.Choice(["eq4", "hm"]), default="eq4", show_default=True,
              help="VBPR/AMR scoring: the paper's Eq. 4 p·(q+Ec), or He & McAuley's with h_u and biases.")
@click.option("--init", "init_path", type=click.Path(dir_okay=False), default=None,
              help="Start from a saved model (MF-BPR → VBPR → AMR chain). Without --data: on "
                   "the data set it was trained on, read with its options and split (each data "
                   "option given replaces the recorded one).")
@click.option("--pretrain/--no-pretrain", default=True, show_default=True,
              help="AMR without --init: first train MF-BPR, then VBPR from it, then AMR from that.")
@hyper_option("epochs", int, "Epochs (of every stage of the pre-training chain).")
@click.option("--epochs-from", "epochs_from", type=click.Path(dir_okay=False), default=None,
              metavar="MODEL.npz",
              help="Instead of --epochs: the epoch a saved run kept (its best validation epoch), "
                   "for each stage its own: train on every interaction (--split none) as long "
                   "as a validated run found best.")
@hyper_option("dim", int, "Embedding size K (with --init: the K of that model).")
@hyper_option("batch_size", int, "Triples per mini-batch.")
@hyper_option("lr", float, "Adagrad learning rate.")
@hyper_option("reg", float, "β: L2 on P, Q (H, b); MF-eALS's λ (default 10 for --model eals).")
@hyper_option("reg_e", float, "β_E: L2 on E (and w).")
@hyper_option("eps", float, "Adversary radius ε.")
@hyper_option("lmd", float, "Adversarial weight λ.")
@click.option("--adversary", type=click.Choice(["grad", "sign", "random"]),
              default=_default("adversary"), show_default=True)
@click.option("--negative-pool", type=click.Choice(["warm", "all"]),
              default=_default("negative_pool"),
              show_default=True,
              help="BPR negatives from the items seen in training (unseen items are scored by "
                   "content alone) or from the whole catalogue.")
@backend_option
@hyper_option("seed", int, "Seed of the initialisation, the triples and the adversary.")
@hyper_option("eval_every", int,
              "Validate every N epochs (0: never); the best epoch by NDCG@10 is kept.")
@hyper_option("patience", int, "Stop after N validations without improvement (0: never).")
@click.option("--full-ranking", is_flag=True, help="Test against all items, not the sampled negatives.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Save the model (.npz).")
@click.option("--metrics-out", type=click.Path(dir_okay=False), default=None,
              help="Write test metrics, backend and epoch seconds as JSON.")
@click.option("--log", "log_path", type=click.Path(dir_okay=False), default=None,
              help="Append one JSON line per epoch (loss, seconds, validation metrics).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def fit(kind, form, init_path, epochs_from, pretrain, backend, full_ranking, out, metrics_out,
        log_path, quiet, **hyper):
    """Train a model and report its test metrics (with --split none: train on every
    interaction, nothing held out, no metrics)."""
    from .recommender import Model, evaluate, fit_chain, pretraining_chain
    data_args = _data_args(hyper)
    hyper = _given(hyper)
    for target in (out, metrics_out):           # refused before training, not after it
        if target:
            check_writable(target)
    if epochs_from is not None and "epochs" in hyper:
        raise AmrliteError("--epochs and --epochs-from: give one of them")
    init = None if init_path is None else Model.load(init_path)
    ds, sp = _load(**data_args) if init is None else _load_for_model(init, data_args, check="ids")
    stages = pretraining_chain(kind, form) if init_path is None and pretrain else [(kind, form)]
    if len(stages) > 1:
        each = f"the epochs {epochs_from} kept, stage by stage" if epochs_from else "--epochs each"
        click.echo("no --init: pre-training chain " + " → ".join(
            _label(k, f) for k, f in stages) + f" ({each}; --no-pretrain trains "
            f"{_label(kind, form)} alone)", err=True)

    def announce(model, last):
        click.echo(f"training {model.spec.label} on split {sp.name!r} "
                   f"(backend {_backend_label(backend)}; "
                   + ", ".join(f"{k} {getattr(model.config, k)}" for k in ("epochs", "lr", "reg"))
                   + ")", err=True)

    log_file = open(log_path, "a") if log_path else None
    try:
        models = fit_chain(stages, ds, sp, init=init, backend=backend, hyper=hyper,
                           progress=not quiet, log_file=log_file, on_stage=announce,
                           epochs_from=epochs_from)
    finally:
        if log_file:
            log_file.close()
    if sp.test is None:
        return _fit_done_without_test(models[-1], ds, sp, out, metrics_out)
    stage_metrics = []
    for m in models[:-1]:
        metrics = evaluate(m, ds, sp, full_ranking=full_ranking)
        stage_metrics.append((m, metrics))
        click.echo(f"  {m.spec.label}: test HR@10 {metrics['HR@10']:.4f}  "
                   f"NDCG@10 {metrics['NDCG@10']:.4f}", err=True)
    model = models[-1]
    if model.history.interrupted:
        click.echo("interrupted: keeping the best parameters so far", err=True)
    metrics = evaluate(model, ds, sp, full_ranking=full_ranking)
    stage_metrics.append((model, metrics))
    label = "synthetic data" if ds.synthetic else ds.name
    click.echo(results_table(metrics, f"{model.spec.label} on {label}, split {sp.name!r}, "
                                      f"{metrics['protocol']} ranking (test)"))
    if model.history.best_epoch:
        click.echo(f"best validation epoch {model.history.best_epoch} "
                   f"(NDCG@10 {model.history.best_metrics['NDCG@10']:.4f})")
    if len(stage_metrics) > 1:
        click.echo(comparison_table(stage_metrics))
    if out:
        model.save(out)
        click.echo(f"saved {out}")
    if metrics_out:
        report = {k: metrics[k] for k in METRIC_NAMES}
        report.update({"warm": metrics["warm"], "cold": metrics["cold"], "n": metrics["n"],
                       "protocol": metrics["protocol"], "model": model.kind,
                       "form": model.spec.form, "split": sp.name, "dataset": ds.source,
                       "synthetic": ds.synthetic, "backend": model.backend_used,
                       "epoch_seconds": [round(s, 6) for s in model.history.epoch_seconds],
                       "best_epoch": model.history.best_epoch,
                       "best_valid": model.history.best_metrics,
                       "config": model.config.to_dict(), "version": __version__,
                       "features": ds.feature_info, "filters": ds.filters,
                       "n_negatives": model.header.get("n_negatives")})
        _write_json(metrics_out, report)


def _fit_done_without_test(model, ds, sp, out, metrics_out):
    """``fit --split none``: nothing held out, so no metrics; the model and a record of the run."""
    if model.history.interrupted:
        click.echo("interrupted: keeping the parameters of the last epoch", err=True)
    click.echo(f"{model.spec.label}: trained on all {sp.n_train} interactions of "
               + ("synthetic data" if ds.synthetic else ds.name)
               + f" for {len(model.history.losses)} epoch(s); no held-out rows, no evaluation")
    if out:
        model.save(out)
        click.echo(f"saved {out}")
    if metrics_out:
        _write_json(metrics_out, {
            "model": model.kind, "form": model.spec.form, "split": sp.name,
            "evaluated": False, "n_train": sp.n_train, "dataset": ds.source,
            "synthetic": ds.synthetic, "backend": model.backend_used,
            "epochs": len(model.history.losses),
            "epoch_seconds": [round(s, 6) for s in model.history.epoch_seconds],
            "config": model.config.to_dict(), "version": __version__,
            "features": ds.feature_info, "filters": ds.filters})


def comparison_table(stage_metrics):
    """The models of a chain side by side (test HR@10 / NDCG@10, all and cold items), and what
    the comparison says about AMR against VBPR — whichever way it comes out."""
    parts = [p for p in ("all", "cold") if all(m["n"].get(p) for _, m in stage_metrics)]
    head = f"{'model':<8}" + "".join(f" {p + ' HR@10':>12} {p + ' NDCG@10':>13}" for p in parts)
    lines = ["side by side (test):", head]
    for model, m in stage_metrics:
        cells = "".join(f" {(m if p == 'all' else m[p])['HR@10']:>12.4f}"
                        f" {(m if p == 'all' else m[p])['NDCG@10']:>13.4f}" for p in parts)
        lines.append(f"{model.spec.label:<8}{cells}")
    by = {model.kind: m for model, m in stage_metrics}
    if "amr" in by and "vbpr" in by:
        d = by["amr"]["NDCG@10"] - by["vbpr"]["NDCG@10"]
        verdict = "above" if d > 0 else "below" if d < 0 else "level with"
        lines.append(f"AMR is {verdict} VBPR here (NDCG@10 {d:+.4f}; one run, one seed)")
    return "\n".join(lines)


def _label(kind, form):
    from .models import ModelSpec
    return ModelSpec(kind, form).label


def _backend_label(name):
    from .backends import resolve_backend_name
    resolved = resolve_backend_name(name)
    return resolved if name == resolved else f"{name} → {resolved}"


# ---------------------------------------------------------------------------- evaluate
@cli.command()
@click.argument("model_path", type=click.Path(dir_okay=False))
@model_data_options
@click.option("--full-ranking", is_flag=True, help="Rank against all items not in training.")
@click.option("--on", type=click.Choice(["test", "valid"]), default="test", show_default=True)
@backend_option
@click.option("--metrics-out", type=click.Path(dir_okay=False), default=None)
def evaluate(model_path, full_ranking, on, backend, metrics_out, **kw):
    """Evaluate a saved model (HR/NDCG@5/10/20, all / warm / cold test items)."""
    from .backends import resolve_backend_name
    from .recommender import Model
    from .recommender import evaluate as evaluate_model
    model = Model.load(model_path)
    args = _data_args(kw)
    trained_on = model.header.get("split")
    asked = _split_name(args["split"], args["sparse"])
    if trained_on and asked and asked != trained_on:
        warnings.warn(f"{model_path} was trained on split {trained_on!r}"
                      + (" (every interaction)" if trained_on == "none" else "")
                      + f"; its training data may overlap the {asked!r} {on} rows")
    elif trained_on == "none" and not asked:
        raise AmrliteError(f"{model_path} was trained on every interaction (--split none): no "
                           "held-out rows to evaluate it on (--split loo evaluates on rows it "
                           "was trained on)")
    ds, sp = _load_for_model(model, args)
    metrics = evaluate_model(model, ds, sp, on=on, full_ranking=full_ranking, backend=backend)
    click.echo(results_table(metrics, f"{model.spec.label} from {model_path}, split {sp.name!r}, "
                                      f"{metrics['protocol']} ranking ({on})"))
    if metrics_out:
        report = {k: metrics[k] for k in METRIC_NAMES}
        report.update({"warm": metrics["warm"], "cold": metrics["cold"], "n": metrics["n"],
                       "protocol": metrics["protocol"],
                       "backend": resolve_backend_name(backend),
                       "model": model.kind, "split": sp.name})
        _write_json(metrics_out, report)


# ---------------------------------------------------------------------------- recommend
@cli.command()
@click.argument("model_path", type=click.Path(dir_okay=False))
@click.option("--users", default=None, metavar="all|FILE|ID[,ID…]",
              help="Whose lists to write: every user of the model, the users of FILE (one id "
                   "per line, or a CSV with a user column), or the ids given.")
@click.option("--user", default=None,
              help="One user, printed as a table: its raw id for data read with raw ids, else "
                   "its index.")
@click.option("-n", "n", type=click.IntRange(min=1), default=10, show_default=True,
              help="Items per user.")
@click.option("--exclude", type=click.Choice(["seen", "none"]), default="seen", show_default=True,
              help="seen: never an item the user interacted with in the data set the model was "
                   "trained on (training, validation and test rows).")
@click.option("--include-seen", is_flag=True, help="Same as --exclude none.")
@click.option("--candidates", default="all", show_default=True, metavar="all|new|FILE",
              help="The items that may be recommended: all; new (items without any "
                   "interaction, scored by their features alone); or the item ids of FILE.")
@click.option("--unknown", type=click.Choice(["popular", "error"]), default="popular",
              show_default=True,
              help="A user the model does not know: the most popular candidates (source "
                   "'popular'), or an error (the default with --user).")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet"]), default="csv",
              show_default=True,
              help="csv/parquet: columns user,rank,item,score[,title],source; jsonl: one JSON "
                   "object per user.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Output file (written to a temporary file, then renamed). Default: stdout.")
@click.option("--titles", "titles_path", type=click.Path(dir_okay=False), default=None,
              help="A products CSV (item id column and --title-col): adds a title column.")
@click.option("--title-col", default="title", show_default=True)
@click.option("--chunk-size", type=click.IntRange(min=1), default=4096, show_default=True,
              help="Users computed and written at a time (bounds the memory).")
@backend_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def recommend(model_path, users, user, n, exclude, include_seen, candidates, unknown, fmt, out,
              titles_path, title_col, chunk_size, backend, quiet):
    """Top-N items per user of a saved model, with raw ids: for every customer (--users all),
    some, or one (--user)."""
    from .recommender import Model
    from .rawdata import read_id_list, read_item_titles
    if (users is None) == (user is None):
        raise AmrliteError("give --users all|FILE|ID[,ID…] (lists written as --format) or "
                           "--user ID (one list as a table)" if users is None else
                           "--users and --user: give one of them")
    model = Model.load(model_path)
    if include_seen:
        exclude = "none"
    titles = read_item_titles(titles_path, title_col) if titles_path else None
    if candidates not in ("all", "new"):
        candidates = read_id_list(candidates, role="item")
    flags = {"users": "--user" if user is not None else "--users", "n": "-n",
             "candidates": "--candidates", "chunk_size": "--chunk-size"}
    try:
        if user is not None:     # as before --users: an unknown user is an error by default
            given = click.get_current_context().get_parameter_source("unknown")
            chunks = model.recommend_many(
                [user], n, exclude=exclude, candidates=candidates, backend=backend,
                unknown=unknown if given.name == "COMMANDLINE" else "error")
            return _print_one_list(next(iter(chunks)), model, titles)
        if users == "all":
            wanted = None
        elif Path(users).is_file():
            wanted = read_id_list(users, role="user")
        elif "/" in users or Path(users).suffix.lower() in (".csv", ".tsv", ".txt", ".gz"):
            raise AmrliteError(f"--users {users}: no such file")    # not taken for a user id
        else:
            wanted = [u.strip() for u in users.split(",") if u.strip()]
        if fmt == "parquet" and out is None:
            raise AmrliteError("--format parquet: give --out FILE (Parquet is not written to "
                               "a terminal)")
        chunks = model.recommend_many(wanted, n, exclude=exclude, candidates=candidates,
                                      unknown=unknown, chunk_size=chunk_size, backend=backend)
    except AmrliteError as exc:
        raise AmrliteError(_as_flag(str(exc), flags)) from None
    _write_lists(chunks, fmt, out, titles, n_users=len(model._seen[0]) - 1 if wanted is None
                 else len(wanted), progress=not quiet, what=f"top {n}, exclude {exclude}, "
                 f"candidates {'a list' if not isinstance(candidates, str) else candidates}")


def _as_flag(message, flags):
    """A library message naming a parameter (``users C-9: no such user``), naming the flag."""
    for param, flag in flags.items():
        if message.startswith(param + " ") or message.startswith(param + ":"):
            return flag + message[len(param):]
    return message


def _print_one_list(chunk, model, titles):
    """``--user``: the list as a fixed-width table, titles from --titles or the folder's
    items.csv."""
    k = int(chunk.counts[0])
    items, scores = chunk.items[0, :k].tolist(), chunk.scores[0, :k].tolist()
    if chunk.source[0] == "popular":
        click.echo(f"user {chunk.users[0]} is not in the model: the most popular items", err=True)
    folder = _item_titles(model.header.get("dataset")) if model.item_ids is None else None
    width = max([6] + [len(str(i)) for i in items])
    for rank, (item, score) in enumerate(zip(items, scores), 1):
        name = titles.get(str(item), "") if titles is not None else (
            folder[item] if folder and item < len(folder) else "")
        click.echo(f"{rank:>3}  item {item!s:>{width}}  score {score: .4f}"
                   + (f"  {name}" if name else ""))


def _score_text(scores):
    """Scores as text that reads back to the same value: 9 significant digits for float32."""
    if scores.dtype == np.float32:
        return np.char.mod("%.9g", scores).tolist()
    return [repr(v) for v in scores.tolist()]


class _ListWriter:
    """Writes :class:`~amrlite.recommender.Recommendations` chunks as CSV, JSON lines or
    Parquet (columns ``user,rank,item,score[,title],source``; JSON: one object per user)."""

    def __init__(self, fmt, fh, titles):
        self.fmt, self.fh, self.titles = fmt, fh, titles
        self.columns = ["user", "rank", "item", "score"] + (["title"] if titles is not None else []) + \
            ["source"]
        self.parquet = None
        if fmt == "csv":
            self.csv = csv.writer(fh, lineterminator="\n")
            self.csv.writerow(self.columns)

    def _table(self, chunk):
        keep = chunk.item_index >= 0
        counts = keep.sum(axis=1)
        cols = {"user": np.repeat(chunk.users, counts).tolist(),
                "rank": (np.nonzero(keep)[1] + 1).tolist(),
                "item": chunk.items[keep].tolist(),
                "score": chunk.scores[keep]}
        if self.titles is not None:
            cols["title"] = [self.titles.get(str(i), "") for i in cols["item"]]
        cols["source"] = np.repeat(chunk.source, counts).tolist()
        return cols

    def write(self, chunk):
        if self.fmt == "jsonl":
            return self._write_json(chunk)
        cols = self._table(chunk)
        if self.fmt == "csv":
            cols["score"] = _score_text(cols["score"])
            self.csv.writerows(zip(*(cols[c] for c in self.columns)))
            return None
        return self._write_parquet(cols)

    def _write_json(self, chunk):
        for r, k in enumerate(chunk.counts.tolist()):
            items = chunk.items[r, :k].tolist()
            obj = {"user": chunk.users[r], "source": str(chunk.source[r]),
                   "items": items, "scores": [float(t) for t in _score_text(chunk.scores[r, :k])]}
            if self.titles is not None:
                obj["titles"] = [self.titles.get(str(i), "") for i in items]
            self.fh.write(dumps(obj) + "\n")

    def _write_parquet(self, cols):
        import pyarrow as pa
        import pyarrow.parquet as pq
        cols.update(user=[str(v) for v in cols["user"]], item=[str(v) for v in cols["item"]],
                    score=cols["score"].astype(np.float64))
        table = pa.table({c: pa.array(cols[c], type=_PARQUET_TYPES[c]()) for c in self.columns})
        if self.parquet is None:
            self.parquet = pq.ParquetWriter(self.fh, table.schema)
        self.parquet.write_table(table)

    def close(self):
        if self.fmt == "parquet" and self.parquet is None:    # no user: a valid empty file
            self._write_parquet({c: [] for c in self.columns} | {"score": np.zeros(0)})
        if self.parquet is not None:
            self.parquet.close()


def _parquet_type(name):
    def make():
        import pyarrow as pa
        return getattr(pa, name)()
    return make


#: Parquet column types (ids as text, whatever the model's id type)
_PARQUET_TYPES = {"user": _parquet_type("string"), "rank": _parquet_type("int32"),
                  "item": _parquet_type("string"), "score": _parquet_type("float64"),
                  "title": _parquet_type("string"), "source": _parquet_type("string")}


def _write_lists(chunks, fmt, out, titles, *, n_users, progress, what):
    """Stream the chunks to ``out`` (:func:`amrlite.jsonio.atomic_write`: complete or not at
    all, also on Ctrl-C) or stdout, with a progress bar on a terminal and a summary line."""
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise AmrliteError("--format parquet needs pyarrow (pip install "
                               "'amrlite[parquet]')") from None
    t0 = time.perf_counter()
    done = popular = 0
    target = (atomic_write(out, mode="wb" if fmt == "parquet" else "w", newline="")
              if out is not None else contextlib.nullcontext(sys.stdout))
    bar = (click.progressbar(length=n_users, label="recommend", file=sys.stderr)
           if progress and sys.stderr.isatty() and n_users else None)
    try:
        with target as fh:
            writer = _ListWriter(fmt, fh, titles)
            for chunk in chunks:
                writer.write(chunk)
                done += len(chunk)
                popular += int((chunk.source == "popular").sum())
                if bar is not None:
                    bar.update(len(chunk))
            writer.close()
    finally:
        if bar is not None:
            bar.render_finish()
    click.echo(f"recommend: {done} users ({done - popular} by the model, {popular} unknown: "
               f"most popular), {what}, {time.perf_counter() - t0:.1f}s"
               + (f" → {out}" if out else ""), err=True)


@cli.command("add-items")
@click.argument("model_path", type=click.Path(dir_okay=False))
@click.option("--features", "features_spec", required=True,
              help="The new products' features: an .npz with ids and features, as "
                   "`amrlite features` writes them (raw, not normalised); one per modality of "
                   "the model, comma-separated in its order.")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Where to save the extended model (.npz).")
def add_items(model_path, features_spec, out):
    """Add new products to a trained DUIF, VBPR or AMR model without retraining: each is scored
    by its features alone (through the model's recorded normalisation), as the model scores
    any item without interactions."""
    from .modalities import load_new_items
    from .recommender import Model
    model = Model.load(model_path)
    ids, rows, recipes = load_new_items(features_spec)
    n_before = int(model.header["n_items"])
    model.add_items(ids, rows, recipe=recipes, source=features_spec)
    model.save(out)
    shown = ", ".join(map(str, ids[:5].tolist())) + (", ..." if len(ids) > 5 else "")
    click.echo(f"added {len(ids)} item(s) to {model_path} ({n_before} → "
               f"{model.header['n_items']} items): {shown}")
    click.echo(f"saved {out}")



def _item_titles(source):
    if not source or not Path(source).is_dir():
        return None
    path = Path(source) / "items.csv"
    if not path.is_file():
        return None
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "title" not in rows[0]:
        return None
    return [r["title"] for r in rows]


# ---------------------------------------------------------------------------- gradcheck
@cli.command()
@click.option("--model", "kind", type=click.Choice(["all", "mf", "duif", "vbpr", "amr"]), default="all",
              show_default=True)
@click.option("--form", type=click.Choice(["both", "eq4", "hm"]), default="both", show_default=True)
@backend_option
@click.option("--seed", type=int, default=0, show_default=True)
def gradcheck(kind, form, backend, seed):
    """Analytic gradients vs central finite differences (float64); exit 1 above 1e-6."""
    from .gradcheck import CHECKED, TOLERANCE, check_model
    from .backends import resolve_backend_name
    backend = resolve_backend_name(backend)
    worst = 0.0
    click.echo(f"backend {backend}: relative error of each gradient block (tolerance {TOLERANCE:g})")
    for k, f in CHECKED:
        if kind not in ("all", k) or form not in ("both", f):
            continue
        errors = check_model(k, f, backend, seed)
        worst = max([worst, *errors.values()])
        cells = "  ".join(f"{name}={err:.1e}" for name, err in errors.items())
        flag = "ok" if max(errors.values()) < TOLERANCE else "FAIL"
        click.echo(f"  {k:<5} {f:<4} {flag:<4} {cells}")
    if worst >= TOLERANCE:
        click.echo(f"worst relative error {worst:.2e} is above {TOLERANCE:g}", err=True)
        sys.exit(1)
    click.echo(f"all gradients match (worst {worst:.1e})")


# ---------------------------------------------------------------------------- attack
def _load_for_model(model, args, check="data"):
    """The data set and split ``model`` was trained on (:func:`amrlite.recommender.model_data`),
    with the data options given on the command line (``args``, ``None``: not given) in place of
    the recorded ones; says what was read (stderr)."""
    from .recommender import model_data
    args = dict(args)
    split = _split_name(args.pop("split"), args.pop("sparse"))
    args["items"] = args.pop("items_path", None)
    ds, sp = model_data(model, args.pop("data"), split=split, n_negatives=args.pop("negatives"),
                        split_seed=args.pop("split_seed"), check=check, **args)
    _say_loaded(ds)
    _say_split(sp)
    return ds, sp


@cli.command()
@click.argument("model_path", type=click.Path(dir_okay=False))
@model_data_options
@click.option("--eps", "eps_text", default="0.01,0.05,0.1,0.2,0.5", show_default=True,
              help="Comma-separated radii ε of the per-item feature perturbation.")
@click.option("--kind", default="adversarial", show_default=True,
              help="adversarial (FGM/PGD), random, sign (FGSM, L∞) or certified (worst case).")
@click.option("--objective", default="test", show_default=True,
              help="Loss the adversary ascends: test (evaluation rows) or train (training pairs).")
@click.option("--steps", type=int, default=1, show_default=True,
              help="Projected gradient steps (1 = one-step FGM).")
@click.option("--repeats", type=int, default=5, show_default=True, help="Draws of --kind random.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--on", type=click.Choice(["test", "valid"]), default="test", show_default=True)
@click.option("--full-ranking", is_flag=True, help="Rank against all items not in training.")
@click.option("--metrics-out", type=click.Path(dir_okay=False), default=None,
              help="Write the clean and attacked metrics with their drops as JSON.")
def attack(model_path, eps_text, kind, objective, steps, repeats, seed, on, full_ranking,
           metrics_out, **kw):
    """Perturb item features at test time and report what HR/NDCG lose at each ε."""
    from .attack import KINDS, OBJECTIVES, parse_eps_list
    from .attack import attack as run_attack
    from .recommender import Model
    eps_list = parse_eps_list(eps_text)
    if kind not in KINDS:
        raise AmrliteError(f"--kind {kind!r}: choose one of {', '.join(KINDS)}")
    if objective not in OBJECTIVES:
        raise AmrliteError(f"--objective {objective!r}: choose test or train")
    model = Model.load(model_path)
    if not model.spec.has_content:
        raise AmrliteError(f"{model_path}: a {model.spec.label} model has no content term "
                           "(E c_i), so there is nothing to attack: a feature perturbation cannot "
                           "change its scores (attack a DUIF, VBPR or AMR model)")
    ds, sp = _load_for_model(model, _data_args(kw))
    res = run_attack(model, ds, sp, eps_list, kind=kind, objective=objective, steps=steps,
                     repeats=repeats, seed=seed, on=on, full_ranking=full_ranking)
    click.echo(attack_table(res, f"{model.spec.label} from {model_path}, split {sp.name!r}, "
                                 f"{res['protocol']} ranking ({on}): {kind} attack"
                                 + ("" if kind in ("random", "certified") else
                                    f", {objective} objective, {steps} step(s)")))
    if res.get("note"):
        click.echo(f"note: {res['note']}")
    if "flip_eps" in res and res["flip_eps"]["median"] is not None:
        f = res["flip_eps"]
        click.echo(f"smallest ε that can push the positive out of the top {f['top_n']}: median "
                   f"{f['median']:.4g} (quartiles {f['q1']:.4g}, {f['q3']:.4g}); already out at "
                   f"ε=0: {f['share_already_out']:.1%}")
    if metrics_out:
        _write_json(metrics_out, res)


def attack_table(res, title):
    """ε, then HR@10 and NDCG@10 with their relative drops, then the other metrics."""
    cols = ["HR@10", "NDCG@10"]
    rest = [c for c in METRIC_NAMES if c not in cols]
    head = (f"{'eps':>7}  " + "  ".join(f"{c:>8} {'drop':>7}" for c in cols) + "  "
            + "  ".join(f"{c:>7}" for c in rest))
    lines = [title, head]

    def row(label, m):
        cells = []
        for c in cols:
            d = m.get("drop", {}).get(c, 0.0)
            cells.append(f"{m[c]:>8.4f} {'' if d is None else format(d, '>7.1%'):>7}")
        return (f"{label:>7}  " + "  ".join(cells) + "  "
                + "  ".join(f"{m[c]:>7.4f}" for c in rest))
    lines.append(row("clean", res["clean"]))
    for key, m in res["eps"].items():
        lines.append(row(f"{float(key):g}", m))
    return "\n".join(lines)


# ---------------------------------------------------------------------------- attack-images
@cli.command("attack-images")
@click.argument("model_path", type=click.Path(dir_okay=False))
@model_data_options
@click.option("--eps", "eps_text", default="0.007", show_default=True,
              help="Comma-separated L∞ radii in (0, 1] pixel space (e.g. 0.0039 = 1/255).")
@click.option("--steps", type=click.IntRange(min=1), default=1, show_default=True,
              help="1 = FGSM; S > 1 = PGD with step 2.5ε/S, the most damaging iterate kept.")
@click.option("--rows", type=click.IntRange(min=1), default=None,
              help="Attack the first N test rows (default: all).")
@click.option("--target", type=click.Choice(["positive", "negatives"]), default="positive",
              show_default=True, help="Perturb the rows' positives' images, or their negatives'.")
@click.option("--batch", type=click.IntRange(min=1), default=16, show_default=True,
              help="Images per CNN forward/backward.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write the Fig.-1 picture (fig1_pixel_attack.png) here.")
@click.option("--figure-model", "figure_models", multiple=True, type=click.Path(dir_okay=False),
              help="Another model (e.g. AMR) for the Fig.-1 picture; repeatable.")
@click.option("--metrics-out", type=click.Path(dir_okay=False), default=None,
              help="Write the clean and attacked metrics (schema of attack --metrics-out) as JSON.")
@click.option("--photos", type=click.Path(), default=None,
              help="The item photos: a folder of files named by item id. Default: what the "
                   "recipe of the model's image features (features-image.json) records.")
@click.option("--images", "images_csv", type=click.Path(dir_okay=False), default=None,
              help="The item photos as a table of item id and path (instead of --photos).")
@click.option("--image-id-col", default=None,
              help="The item id column of --images (default: item, item_id, id, sku …).")
@click.option("--path-col", default=None,
              help="The path column of --images (default: path, file, image, photo …).")
@click.option("--titles", "titles_path", type=click.Path(dir_okay=False), default=None,
              help="An items table (e.g. products.csv) whose titles label the Fig.-1 picture.")
@click.option("--title-col", default="title", show_default=True,
              help="The title column of --titles.")
def attack_images(model_path, eps_text, steps, rows, target, batch, out_dir, figure_models,
                  metrics_out, photos, images_csv, image_id_col, path_col, titles_path,
                  title_col, **kw):
    """Pixel-level attack (the paper's Fig. 1): perturb item images in an L∞ ball, re-extract
    their CNN features, re-score (needs the images extra: torch, pillow, efficientnet).

    Works from any data set the model was trained on (its data and feature options are
    reused; --data replaces only the path). Photos are found by raw item id; items without a
    readable photo are left unperturbed and counted."""
    from .attack import parse_eps_list
    from .recommender import Model
    try:
        from .features.pixel_attack import attack_images as run
        from .features.pixel_attack import (check_eps, eps_label, figure1, find_photos,
                                            image_block, read_titles)
    except ImportError as exc:
        raise AmrliteError(f"attack-images needs the images extra (pip install amrlite[images]: "
                           f"torch, pillow, efficientnet-lite-pytorch): {exc}") from None
    eps_list = check_eps(parse_eps_list(eps_text), low_open=True)
    model = Model.load(model_path)
    image_block(model)                  # a model without image features: one line, early
    titles = read_titles(titles_path, title_col) if titles_path else None
    ds, sp = _load_for_model(model, _data_args(kw))
    paths, where = find_photos(model, ds, images=images_csv, photos=photos,
                               item_col=image_id_col, path_col=path_col)
    click.echo(f"photos: {where}: {len(paths)} of the {ds.n_items} items", err=True)
    res = run(model, ds, sp, eps_list, steps=steps, rows=rows, target=target, batch=batch,
              paths=paths)
    title = (f"{model.spec.label} from {model_path}, split {sp.name!r}: pixel attack "
             f"({'FGSM' if steps == 1 else f'PGD, {steps} steps'}) on the {target} images of "
             f"{res['rows']} test rows ({res['n_images']} images, "
             f"{res['n_no_image']} without a readable photo, not perturbed)")
    click.echo(attack_table(res, title))
    for bad in res["unreadable"][:5]:
        click.echo(f"  not perturbed: item {bad['item']}: {bad['reason']}", err=True)
    click.echo(f"{'eps':>9} {'|dc| median':>12} {'|dc| max':>9} {'PSNR dB':>8} "
               f"{'rank change':>12} {'worse':>6}")
    for key, m in res["eps"].items():
        fd, ps, rc = m["feature_distance"], m["psnr"], m["rank_change"]

        def num(v, fmt):
            return "-" if v is None else format(v, fmt)
        click.echo(f"{eps_label(float(key)):>9} {num(fd['median'], '12.4f')} "
                   f"{num(fd['max'], '9.4f')} {num(ps['median'], '8.1f')} "
                   f"{num(rc['mean'], '+12.2f')} {num(rc['share_worse'], '6.0%')}")
    click.echo(f"cost: {res['seconds_per_image_step']:.3f} s per image per gradient step "
               f"({res['seconds']:.1f}s in all)")
    if out_dir:
        others = [Model.load(p) for p in figure_models]
        path, _ = figure1([model] + others, ds, sp, Path(out_dir) / "fig1_pixel_attack.png",
                          eps=max(eps_list), steps=steps, paths=paths, titles=titles)
        click.echo(f"figure: {path}")
    if metrics_out:
        _write_json(metrics_out, res)


# ---------------------------------------------------------------------------- compare
@cli.command()
@click.argument("model_a", type=click.Path(dir_okay=False))
@click.argument("model_b", type=click.Path(dir_okay=False))
@model_data_options
@click.option("--on", type=click.Choice(["test", "valid"]), default="test", show_default=True)
@click.option("--full-ranking", is_flag=True, help="Rank against all items not in training.")
@click.option("--metrics-out", type=click.Path(dir_okay=False), default=None)
def compare(model_a, model_b, on, full_ranking, metrics_out, **kw):
    """Paired per-user t-test and Wilcoxon signed-rank test of model A against model B."""
    from .recommender import Model
    from .significance import compare as run_compare
    a, b = Model.load(model_a), Model.load(model_b)
    ds, sp = _load_for_model(a, _data_args(kw))
    res = run_compare(a, b, ds, sp, on=on, full_ranking=full_ranking)
    click.echo(f"A = {res['a']} ({model_a}), B = {res['b']} ({model_b}); split {sp.name!r} "
               f"({on}), {res['n_users']} users, {res['n_rows']} rows")
    click.echo(f"{'metric':<8} {'mean A':>8} {'mean B':>8} {'A - B':>8} {'p (t)':>10} "
               f"{'p (Wilcoxon)':>13}")
    for m in ("NDCG@10", "HR@10"):
        r = res[m]
        click.echo(f"{m:<8} {r['mean_a']:>8.4f} {r['mean_b']:>8.4f} {r['diff']:>+8.4f} "
                   f"{r['p_t']:>10.3g} {r['p_wilcoxon']:>13.3g}")
    if metrics_out:
        _write_json(metrics_out, res)

# ---------------------------------------------------------------------------- sweep
def seeds_engine_options(f):
    """``--seeds``, ``--engine`` and ``--address`` of ``sweep`` and ``experiment``."""
    f = click.option("--address", default=None, metavar="ADDRESS",
                     help="--engine ray: the cluster to join (auto, HOST:6379, "
                          "ray://HOST:10001); default: a local cluster started here.")(f)
    f = click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
                     show_default=True,
                     help="Where the tasks run (experiment: each seed's model chain, then "
                          "each sweep setting × seed; sweep: each setting × seed): local "
                          "processes, or Ray (pip install -e '.[cluster]').")(f)
    return click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
                        help="Runs per setting, seed index 0 being --seed (or the config's "
                             "seed); results as mean ± 95% CI.")(f)


@cli.command()
@data_options
@click.option("--model", "kind", type=click.Choice(["amr"]), default="amr", show_default=True,
              help="The swept model (AMR: ε and λ).")
@click.option("--init", "init_path", type=click.Path(dir_okay=False), required=True,
              help="The VBPR checkpoint (.npz) every run starts from.")
@click.option("--eps", "eps_list", default="0.01,0.1,1,10", show_default=True,
              help="Comma-separated ε values.")
@click.option("--lmd", "lmd_list", default="1", show_default=True,
              help="Comma-separated λ values.")
@click.option("--epochs", type=int, default=200, show_default=True)
@click.option("--lr", type=float, default=0.01, show_default=True)
@click.option("--reg", type=float, default=1e-3, show_default=True)
@click.option("--dim", type=int, default=None, help="Default: the checkpoint's K.")
@click.option("--batch-size", type=int, default=512, show_default=True)
@click.option("--eval-every", type=int, default=0, show_default=True,
              help="Validate every N epochs and keep the best epoch (0: keep the last epoch).")
@click.option("--seed", type=int, default=0, show_default=True)
@backend_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="sweep",
              show_default=True, help="One JSON per setting (reruns skip finished ones).")
@click.option("--processes", type=int, default=None,
              help="Worker processes (default: one per core).")
@seeds_engine_options
@click.option("--no-plots", is_flag=True, help="Skip fig6_sweep_eps.png / fig7_sweep_lmd.png.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def sweep(kind, init_path, eps_list, lmd_list, epochs, lr, reg, dim, batch_size, eval_every, seed,
          backend, out_dir, processes, seeds, engine, address, no_plots, quiet, **kw):
    """Train AMR for every (ε, λ) from one VBPR checkpoint; pick the best by validation NDCG@10.

    Writes one JSON per setting and sweep.json into --out, then fig6_sweep_eps.png (test
    HR@10/NDCG@10 vs ε, one line per λ; when more than one ε) and fig7_sweep_lmd.png (vs λ,
    one line per ε; when more than one λ). For p-values against continued VBPR and the
    robustness of each setting, run the whole pipeline instead:
    ``amrlite experiment ... --set sweep.grid=true``."""
    from .experiments import parse_float_list
    from .experiments import sweep as run_sweep
    from .recommender import Model
    eps_values = parse_float_list(eps_list, "--eps")
    lmd_values = parse_float_list(lmd_list, "--lmd")
    if processes is not None and processes < 1:
        raise AmrliteError(f"--processes {processes}: must be at least 1")
    init = Model.load(init_path)          # a one-line error when missing or not a model
    if dim is None:
        dim = int(init.config.dim)
    ds, sp = _load(**_data_args(kw))
    if sp.test is None:
        raise AmrliteError(f"--split {sp.name}: holds nothing out, and a sweep picks its best "
                           "setting on held-out rows (sweep on a split, then train the chosen "
                           "setting with fit --split none)")
    base = dict(epochs=epochs, lr=lr, reg=reg, dim=dim, batch_size=batch_size,
                eval_every=eval_every, seed=seed, negative_pool=init.config.negative_pool)
    res = run_sweep(ds, sp, init=init_path, eps_list=eps_values, lmd_list=lmd_values,
                    base_config=base, out_dir=out_dir, processes=processes,
                    progress=not quiet, backend=backend, seeds=seeds, engine=engine,
                    address=address)
    click.echo(f"{'eps':>8} {'lmd':>8} {'valid NDCG@10':>14} {'test HR@10':>11} "
               f"{'test NDCG@10':>13}" + (f"   (mean ± 95% CI over {seeds} seeds)"
                                         if seeds > 1 else ""))
    for r in res["runs"]:
        if seeds > 1:
            a = res["aggregate"][r["name"]]
            cells = [a["valid"]["NDCG@10"], a["test"]["HR@10"], a["test"]["NDCG@10"]]
            click.echo(f"{r['eps']:>8g} {r['lmd']:>8g} " + " ".join(
                "–" if c["mean"] is None else f"{c['mean']:.4f} ± {c['half']:.4f}"
                for c in cells))
            continue
        v = r.get("valid", {}).get("NDCG@10", float("nan"))
        click.echo(f"{r['eps']:>8g} {r['lmd']:>8g} {v:>14.4f} {r['test']['HR@10']:>11.4f} "
                   f"{r['test']['NDCG@10']:>13.4f}")
    b = res["best"]
    click.echo(f"best by {res['selected_by']}: eps {b['eps']:g}, lmd {b['lmd']:g} "
               f"(test HR@10 {b['test']['HR@10']:.4f}, NDCG@10 {b['test']['NDCG@10']:.4f}); "
               f"{len(res['skipped'])} setting(s) reused from {out_dir}")
    if not no_plots:
        from . import plots
        from .experiments.figures import sweep_errorbars
        for axis, values, fig in (("eps", eps_values, 6), ("lmd", lmd_values, 7)):
            if len(set(values)) > 1:
                path = Path(out_dir) / f"fig{fig}_sweep_{axis}.png"
                path = (sweep_errorbars(list(res["aggregate"].values()), axis, path)
                        if seeds > 1 else plots.sweep_grid_plot(res["runs"], axis, path))
                click.echo(f"figure: {path}")


# ---------------------------------------------------------------------------- experiment
@cli.command()
@click.option("--data", type=click.Path(), default=None,
              help="Dataset folder. Default: the embedded synthetic data set.")
@click.option("--split", default="loo", show_default=True,
              help="loo, cold, sparse3, or NAME for a split-NAME/ folder in --data.")
@click.option("--features", default=None,
              help="Modalities of --data (image, text, or image,text: concatenated). Default: "
                   "the folder's features.npy. With image (and torch) the pixel attack runs too.")
@click.option("--normalize", default="none", show_default=True,
              help="none, maxabs or l2, for every modality or per modality: image=l2,text=none.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="experiment",
              show_default=True, help="Output folder (a rerun resumes from what it holds).")
@click.option("--quick", is_flag=True, help="A few epochs per model and reduced sweeps (smoke run).")
@backend_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="JSON (or .toml) file of overrides of the defaults "
                   "(amrlite.experiments.ExperimentConfig); unknown keys and wrong types are "
                   "errors.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="One override, e.g. --set stages.amr.eps=0.5 --set select=valid (checked "
                   "like --config).")
@seeds_engine_options
@click.option("--no-plots", is_flag=True, help="Skip the figures (no matplotlib needed).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def experiment(data, split, features, normalize, out_dir, quick, backend, config_path, settings,
               seeds, engine, address, no_plots, quiet):
    """The paper's experiments: Table 2, Table 3, Figs. 3, 5, 6, 7 and report.md (resumable)."""
    from .experiments import (check_overrides, deep_merge, parse_set, read_config_file,
                              run_experiment)
    overrides = read_config_file(config_path) if config_path else {}
    overrides = deep_merge(overrides, check_overrides(parse_set(settings)))
    summary = run_experiment(data, split, out_dir, quick=quick, backend=backend,
                             overrides=overrides, progress=not quiet, plots=not no_plots,
                             seeds=seeds, engine=engine, address=address, features=features,
                             normalize=normalize)
    res = summary["results"]
    if summary.get("multi"):
        for n, m in summary["multi"]["models"].items():
            click.echo(f"{n:<10} test HR@10 {m['HR@10']['mean']:.4f} ± {m['HR@10']['half']:.4f}"
                       f"  NDCG@10 {m['NDCG@10']['mean']:.4f} ± {m['NDCG@10']['half']:.4f}"
                       f"  ({seeds} seeds, 95% CI)")
        res = {}
    for n, r in res.items():
        click.echo(f"{n:<10} test HR@10 {r['test']['HR@10']:.4f}  NDCG@10 "
                   f"{r['test']['NDCG@10']:.4f}")
    click.echo(f"report: {Path(out_dir) / 'report.md'} ({summary['timings']['total']:.1f}s)")



# ---------------------------------------------------------------------------- features
@cli.group()
def features():
    """Deep item features from raw inputs (extras: amrlite[images], amrlite[text])."""


def _features_options(name, batch):
    """The options both ``features`` commands share (--data, --item-col, --batch, --out, …)."""
    def wrap(f):
        for opt in reversed([
            click.option("--data", "data_dir", type=click.Path(file_okay=False, exists=True),
                         default=None,
                         help="A data folder: its tables are read from there and the output "
                              "written there (not needed with raw ids)."),
            click.option("--item-col", default=None,
                         help="The item id column (default: item, item_id, id, sku, asin, "
                              "product_id …): features keyed by raw id, written as .npz."),
            click.option("--batch", type=click.IntRange(min=1), default=batch, show_default=True),
            click.option("--out", type=click.Path(dir_okay=False), default=None,
                         help=f"Output: .npz (ids and features) for raw ids; .npy (row i = item "
                              f"i) for a native folder's item indices. Default: "
                              f"features-{name}.npz/.npy in --data, else beside the input."),
            click.option("--overwrite", is_flag=True,
                         help="Replace features made with another recipe."),
            click.option("--device", default=None,
                         help="torch device. Default: cuda when available, else cpu."),
            click.option("-q", "--quiet", is_flag=True, help="No progress bar."),
        ]):
            f = opt(f)
        return f
    return wrap


def _features_done(path):
    from .features.extract import sidecars
    meta, report, _ = sidecars(path)
    click.echo(f"features: {path} (recipe: {meta.name}, report: {report.name})")
    return json.loads(report.read_text())


@features.command("image")
@_features_options("image", 64)
@click.option("--photos", type=click.Path(), default=None,
              help="A folder of photos named by item id (SKU-8F3A2B.jpg; jpg, jpeg, png, webp, "
                   "bmp, gif, tiff; subfolders searched).")
@click.option("--images", "images_csv", default=None,
              help="An images table: item id and path columns (a relative path is relative "
                   "to the table's folder). Default with --data: DATA/images.csv.")
@click.option("--path-col", default=None,
              help="The image path column of --images (default: path, file, image, photo …).")
@click.option("--items", "items_path", type=click.Path(dir_okay=False), default=None,
              help="A catalogue (e.g. products.csv): each item it lists gets a row, a zero "
                   "row where it has no photo.")
@click.option("--model", default="efficientnet-lite0", show_default=True)
@click.option("--strict", is_flag=True, help="A missing or unreadable image is an error.")
def features_image(data_dir, photos, images_csv, path_col, items_path, item_col, model, batch,
                   out, strict, overwrite, device, quiet):
    """Image features (CNN, global average pool) of every item; resumable.

    \b
    amrlite features image --photos photos/ --out features-image.npz
    amrlite features image --images images.csv --item-col sku --path-col file
    amrlite features image --data DIR          (native: DIR/images.csv → DIR/features-image.npy)
    """
    from .features import extract_image_features
    path = extract_image_features(data_dir, images_csv, out, model=model, batch=batch,
                                  strict=strict, progress=not quiet, overwrite=overwrite,
                                  device=device, photos=photos, items=items_path,
                                  item_col=item_col, path_col=path_col)
    report = _features_done(path)
    click.echo(f"{report['n_items']} item(s): {report['n_images']} image(s), "
               f"{report['n_zero_rows']} zero row(s), {len(report['converted'])} converted "
               "to RGB")
    for row in report["zero_rows"][:5]:
        click.echo(f"  zero row: item {row['item']}: {row['reason']}", err=True)
    if report["n_zero_rows"] > 5:
        click.echo(f"  … {report['n_zero_rows'] - 5} more in the report", err=True)


@features.command("text")
@_features_options("text", 128)
@click.option("--items", "items_csv", default=None,
              help="The items table (one row per item). Default with --data: DATA/items.csv.")
@click.option("--columns", default="title,genres", show_default=True,
              help="Columns of the items CSV that make the text.")
@click.option("--template", default=None,
              help="str.format template over the columns. Default: '{c1}. C2: {c2}.', i.e. "
                   "'{title}. Genres: {genres}.' (reproduces ml100k's item_texts.txt); "
                   "'|'-joined values are joined by ', '.")
@click.option("--model", default="all-MiniLM-L6-v2", show_default=True)
def features_text(data_dir, items_csv, item_col, columns, template, model, batch, out, overwrite,
                  device, quiet):
    """Text features (sentence embeddings) of every item; resumable.

    \b
    amrlite features text --items products.csv --item-col sku --columns title,category
    amrlite features text --data DIR           (native: DIR/items.csv → DIR/features-text.npy)
    """
    from .features import extract_text_features
    cols = tuple(c.strip() for c in columns.split(",") if c.strip())
    path = extract_text_features(data_dir, items_csv, out, model=model, columns=cols,
                                 template=template, batch=batch, progress=not quiet,
                                 overwrite=overwrite, device=device, item_col=item_col)
    _features_done(path)


def main():
    cli(prog_name="amrlite")


if __name__ == "__main__":
    main()
