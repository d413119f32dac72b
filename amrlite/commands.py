"""The work behind each ``amrlite`` command, as one Python function per command.

Each function takes the command's parameters, with the command's defaults in its signature
(the CLI shows and uses these), does the work, writes what the command writes, and *yields*
what the command says, line by line, in order: a ``str`` for standard output, a :class:`Note`
for standard error. The CLI only parses its options, calls one of these and prints what it
yields, so that everything the command line does can be done, and tested, from Python::

    for line in commands.evaluate("model.npz"):
        print(line, file=sys.stderr if isinstance(line, Note) else sys.stdout)

A generator's return value is the exit status (``gradcheck``: 1 when a gradient is off).
Errors are :class:`~amrlite.errors.AmrliteError`; those about a parameter name it
(:func:`~amrlite.errors.option_error`), which the CLI words as its flag.
"""
from __future__ import annotations

import json
import warnings
from contextlib import nullcontext
from pathlib import Path

from . import attack as attacks
from . import gradcheck as gradchecks
from . import plots, reports
from .backends import resolve_backend_name
from .data import load_dataset
from .errors import AmrliteError, braced, option_error
from .experiments import (check_overrides, deep_merge, parse_float_list, parse_set,
                          read_config_file, run_experiment)
from .experiments import sweep as run_sweep
from .experiments.figures import sweep_errorbars
from .features import extract_image_features, extract_text_features
from .features import pixel_attack as pixel
from .features.extract import sidecars
from .features.inputs import read_item_titles
from .jsonio import check_writable, write_json
from .lists import folder_titles, write_lists
from .modalities import describe, load_new_items
from .models import ModelSpec
from .rawdata import read_id_list
from .recommender import Model, evaluate as evaluate_model, iter_chain, model_data, \
    pretraining_chain
from .significance import compare as run_compare


class Note(str):
    """A line for standard error (what was read, what is being done), not the result."""


# ---------------------------------------------------------------------------- data
def split_name(split=None, sparse=None):
    """``split`` and ``sparse`` (K: ``sparseK``) as one split name (None: the default)."""
    if sparse is not None:
        if split is not None and split != f"sparse{sparse}":
            raise option_error(("sparse", "split"), "give one of them", (sparse, split))
        return f"sparse{sparse}"
    return split


def loaded_notes(ds, sp):
    """What was read: sizes, the data set's notes, its features, the split's notes."""
    if ds.synthetic:
        yield Note("data: synthetic multimedia data set (generated in memory, seeded; not real "
                   f"data): {ds.n_users} users, {ds.n_items} items, {ds.n_features}-d features")
    else:
        yield Note(f"data: {ds.source}: {ds.n_users} users, {ds.n_items} items, "
                   f"{len(ds.users)} interactions, {ds.n_features}-d features")
    for note in ds.notes:
        yield Note(f"data: {note}")
    if ds.feature_info and not ds.synthetic:
        yield Note(f"features: {describe(ds.feature_info)}")
    for note in sp.notes:
        yield Note(f"split: {note}")


def load(data=None, split=None, *, sparse=None, negatives=None, split_seed=None,
         items_path=None, **options):
    """The data set and its split from the data options (``None``: the default; ``options``:
    :func:`amrlite.data.load_dataset`'s). Returns ``(dataset, split, notes)``.

    Parameters
    ----------
    data
        Dataset folder (native or official AMR format) or an interactions CSV/TSV with raw ids.
    split
        loo, temporal (per user the last interaction by time is the test row, the one before
        the validation row), cold, sparseK, none (every interaction in training: nothing held
        out, no evaluation), or NAME for a split-NAME/ folder.
    sparse
        The sparse regime: loo with at most K training rows per user (= --split sparseK).
    negatives
        Sampled negatives per held-out row of a generated split (0: full ranking only).
    split_seed
        Seed of a generated split and its sampled negatives.
    features
        Modalities of the folder (image, or image,text: concatenated) and/or feature files
        (.npy positional, .npz with ids and features).
    normalize
        none, maxabs or l2, for every modality or per modality: image=l2,text=none.
    items_path
        Raw data: a file listing the item id of every .npy feature row.
    missing_features
        Raw data: items without a feature row are an error, or get a zero row.
    user_col
        Raw data: the user id column (name or 1-based).
    item_col
        Raw data: the item id column.
    rating_col
        Raw data: the rating column.
    time_col
        Raw data: the time column (epoch seconds or ISO 8601; found by name: timestamp, time,
        ordered_at, created_at, date, datetime ...).
    min_rating
        Raw data: keep rows with rating >= R (explicit to implicit).
    k_core
        Raw data: keep users and items with >= N interactions (iterated).
    id_order
        Raw data: index raw ids in first-seen or sorted order.
    """
    options["items"] = items_path
    ds = load_dataset(data, **{k: v for k, v in options.items() if v is not None})
    sp = ds.split(split_name(split, sparse), **{k: v for k, v in (
        ("n_negatives", negatives), ("seed", split_seed)) if v is not None})   # else its defaults
    return ds, sp, list(loaded_notes(ds, sp))


def load_for_model(model, data=None, split=None, *, sparse=None, negatives=None,
                   split_seed=None, items_path=None, check="data", **options):
    """The data set and split ``model`` was trained on (:func:`amrlite.recommender.model_data`),
    each data option given (not ``None``) in place of the recorded one. Returns
    ``(dataset, split, notes)``."""
    ds, sp = model_data(model, data, split=split_name(split, sparse), n_negatives=negatives,
                        split_seed=split_seed, check=check, items=items_path, **options)
    return ds, sp, list(loaded_notes(ds, sp))


def _label(kind, form):
    return ModelSpec(kind, form).label


def _backend_label(name):
    resolved = resolve_backend_name(name)
    return resolved if name == resolved else f"{name} → {resolved}"


# ---------------------------------------------------------------------------- fit
def fit(kind="amr", form="eq4", init_path=None, epochs_from=None, pretrain=True,
        backend="auto", full_ranking=False, out=None, metrics_out=None, log_path=None,
        quiet=False, hyper=None, **data):
    """Train a model and report its test metrics (with --split none: train on every
    interaction, nothing held out, no metrics).

    Parameters
    ----------
    form
        VBPR/AMR scoring: the paper's Eq. 4 p·(q+Ec), or He & McAuley's with h_u and biases.
    init_path
        Start from a saved model (MF-BPR → VBPR → AMR chain). Without --data: on the data
        set it was trained on, read with its options and split (each data option given
        replaces the recorded one).
    epochs_from
        Instead of --epochs: the epoch a saved run kept (its best validation epoch), for
        each stage its own: train on every interaction (--split none) as long as a validated
        run found best.
    out
        Save the model (.npz).
    metrics_out
        Write test metrics, backend and epoch seconds as JSON.
    log_path
        Append one JSON line per epoch (loss, seconds, validation metrics).
    pretrain
        AMR without --init: first train MF-BPR, then VBPR from it, then AMR from that.
    hyper : dict
        The hyper-parameters given (:class:`amrlite.train.TrainConfig` fields); the model
        kind's defaults fill the rest.
    **data
        The data options of :func:`load` (of :func:`load_for_model` with ``init_path``).
    """
    hyper = dict(hyper or {})
    for target in (out, metrics_out):           # refused before training, not after it
        if target:
            check_writable(target)
    if epochs_from is not None and "epochs" in hyper:
        raise option_error(("epochs", "epochs_from"), "give one of them")
    init = None if init_path is None else Model.load(init_path)
    ds, sp, notes = load(**data) if init is None else load_for_model(init, **data, check="ids")
    yield from notes
    stages = pretraining_chain(kind, form) if init_path is None and pretrain else [(kind, form)]
    if len(stages) > 1:
        each = f"the epochs {epochs_from} kept, stage by stage" if epochs_from else "--epochs each"
        yield Note("no --init: pre-training chain " + " → ".join(
            _label(k, f) for k, f in stages) + f" ({each}; --no-pretrain trains "
            f"{_label(kind, form)} alone)")
    models = []
    with open(log_path, "a") if log_path else nullcontext() as log_file:
        for model in iter_chain(stages, ds, sp, init=init, backend=backend, hyper=hyper,
                                progress=not quiet, log_file=log_file, epochs_from=epochs_from):
            yield Note(f"training {model.spec.label} on split {sp.name!r} (backend "
                       f"{_backend_label(backend)}; " + ", ".join(
                           f"{k} {getattr(model.config, k)}" for k in ("epochs", "lr", "reg"))
                       + ")")
            models.append(model)
    model = models[-1]
    if sp.test is None:
        yield from _fit_without_test(model, ds, sp, out, metrics_out)
        return
    stage_metrics = [(m, evaluate_model(m, ds, sp, full_ranking=full_ranking)) for m in models]
    for m, metrics in stage_metrics[:-1]:
        yield Note(f"  {m.spec.label}: test HR@10 {metrics['HR@10']:.4f}  "
                   f"NDCG@10 {metrics['NDCG@10']:.4f}")
    if model.history.interrupted:
        yield Note("interrupted: keeping the best parameters so far")
    metrics = stage_metrics[-1][1]
    label = "synthetic data" if ds.synthetic else ds.name
    yield reports.results_table(metrics, f"{model.spec.label} on {label}, split {sp.name!r}, "
                                         f"{metrics['protocol']} ranking (test)")
    if model.history.best_epoch:
        yield (f"best validation epoch {model.history.best_epoch} "
               f"(NDCG@10 {model.history.best_metrics['NDCG@10']:.4f})")
    if len(stage_metrics) > 1:
        yield reports.comparison_table(stage_metrics)
    if out:
        model.save(out)
        yield f"saved {out}"
    if metrics_out:
        write_json(metrics_out, reports.fit_record(model, ds, sp, metrics))


def _fit_without_test(model, ds, sp, out, metrics_out):
    """``fit --split none``: nothing held out, so no metrics; the model and a record of the run."""
    if model.history.interrupted:
        yield Note("interrupted: keeping the parameters of the last epoch")
    yield (f"{model.spec.label}: trained on all {sp.n_train} interactions of "
           + ("synthetic data" if ds.synthetic else ds.name)
           + f" for {len(model.history.losses)} epoch(s); no held-out rows, no evaluation")
    if out:
        model.save(out)
        yield f"saved {out}"
    if metrics_out:
        write_json(metrics_out, reports.untested_record(model, ds, sp))


# ---------------------------------------------------------------------------- evaluate
def evaluate(model_path, full_ranking=False, on="test", backend="auto", metrics_out=None,
             **data):
    """Evaluate a saved model (HR/NDCG@5/10/20, all / warm / cold test items)."""
    model = Model.load(model_path)
    trained_on = model.header.get("split")
    asked = split_name(data.get("split"), data.get("sparse"))
    if trained_on and asked and asked != trained_on:
        warnings.warn(f"{model_path} was trained on split {trained_on!r}"
                      + (" (every interaction)" if trained_on == "none" else "")
                      + f"; its training data may overlap the {asked!r} {on} rows")
    elif trained_on == "none" and not asked:
        raise option_error((), braced(f"{model_path} was trained on every interaction (") +
                           "{split} none): no held-out rows to evaluate it on ({split} loo "
                           "evaluates on rows it was trained on)", names=("split",))
    ds, sp, notes = load_for_model(model, **data)
    yield from notes
    metrics = evaluate_model(model, ds, sp, on=on, full_ranking=full_ranking, backend=backend)
    yield reports.results_table(metrics, f"{model.spec.label} from {model_path}, split "
                                         f"{sp.name!r}, {metrics['protocol']} ranking ({on})")
    if metrics_out:
        write_json(metrics_out, reports.metrics_record(
            metrics, backend=resolve_backend_name(backend), model=model.kind, split=sp.name))


# ---------------------------------------------------------------------------- recommend
def _wanted_users(users):
    """``all`` (None), the ids of a users file, or comma-separated ids."""
    if users == "all":
        return None
    if Path(users).is_file():
        return read_id_list(users, role="user")
    if "/" in users or Path(users).suffix.lower() in (".csv", ".tsv", ".txt", ".gz"):
        raise option_error("users", "no such file", users)    # not taken for a user id
    return [u.strip() for u in users.split(",") if u.strip()]


def recommend(model_path, users=None, user=None, n=10, exclude="seen", include_seen=False,
              candidates="all", unknown=None, fmt="csv", out=None, titles_path=None,
              title_col="title", chunk_size=4096, backend="auto", quiet=False):
    """Top-N items per user of a saved model, with raw ids: for every customer (--users all),
    some, or one (--user).

    Parameters
    ----------
    users
        Whose lists to write: every user of the model, the users of FILE (one id per line,
        or a CSV with a user column), or the ids given.
    user
        One user, printed as a table: its raw id for data read with raw ids, else its index.
    n
        Items per user.
    exclude
        seen: never an item the user interacted with in the data set the model was trained
        on (training, validation and test rows).
    include_seen
        Same as --exclude none.
    candidates
        The items that may be recommended: all; new (items without any interaction, scored
        by their features alone); or the item ids of FILE.
    unknown
        A user the model does not know: the most popular candidates (source 'popular'; the
        default), or an error (the default with --user).
    fmt
        csv/parquet: columns user,rank,item,score[,title],source; jsonl: one JSON object per
        user.
    out
        Output file (written to a temporary file, then renamed). Default: stdout.
    titles_path
        A products CSV (item id column and --title-col): adds a title column.
    chunk_size
        Users computed and written at a time (bounds the memory).
    """
    if (users is None) == (user is None):
        raise (option_error((), "give {users} all|FILE|ID[,ID…] (lists written as {fmt}) or "
                            "{user} ID (one list as a table)", (), names=("users", "user", "fmt"))
               if users is None else option_error(("users", "user"), "give one of them"))
    model = Model.load(model_path)
    if include_seen:
        exclude = "none"
    titles = read_item_titles(titles_path, title_col) if titles_path else None
    if candidates not in ("all", "new"):
        candidates = read_id_list(candidates, role="item")
    if user is not None:
        chunk = next(iter(model.recommend_many([user], n, exclude=exclude, candidates=candidates,
                                               backend=backend, unknown=unknown or "error",
                                               _param="user")))
        k = int(chunk.counts[0])
        items, scores = chunk.items[0, :k].tolist(), chunk.scores[0, :k].tolist()
        if chunk.source[0] == "popular":
            yield Note(f"user {chunk.users[0]} is not in the model: the most popular items")
        folder = folder_titles(model.header.get("dataset")) if model.item_ids is None else None
        names = [titles.get(str(i), "") if titles is not None else
                 folder[i] if folder and i < len(folder) else "" for i in items]
        if items:
            yield reports.top_list_table(items, scores, names)
        return
    wanted = _wanted_users(users)
    if fmt == "parquet" and out is None:
        raise option_error("fmt", "give {out} FILE (Parquet is not written to a terminal)",
                           "parquet", names=("out",))
    chunks = model.recommend_many(wanted, n, exclude=exclude, candidates=candidates,
                                  unknown=unknown or "popular", chunk_size=chunk_size,
                                  backend=backend)
    what = (f"top {n}, exclude {exclude}, candidates "
            f"{'a list' if not isinstance(candidates, str) else candidates}")
    yield Note(write_lists(chunks, fmt, out, titles, progress=not quiet, what=what,
                           n_users=int(model.header["n_users"]) if wanted is None else len(wanted)))


def add_items(model_path, features_spec, out):
    """Add new products to a trained DUIF, VBPR or AMR model without retraining: each is scored
    by its features alone (through the model's recorded normalisation), as the model scores
    any item without interactions.

    Parameters
    ----------
    features_spec
        The new products' features: an .npz with ids and features, as `amrlite features`
        writes them (raw, not normalised); one per modality of the model, comma-separated in
        its order.
    out
        Where to save the extended model (.npz).
    """
    model = Model.load(model_path)
    ids, rows, recipes = load_new_items(features_spec)
    n_before = int(model.header["n_items"])
    model.add_items(ids, rows, recipe=recipes, source=features_spec)
    model.save(out)
    shown = ", ".join(map(str, ids[:5].tolist())) + (", ..." if len(ids) > 5 else "")
    yield (f"added {len(ids)} item(s) to {model_path} ({n_before} → "
           f"{model.header['n_items']} items): {shown}")
    yield f"saved {out}"


# ---------------------------------------------------------------------------- gradcheck
def gradcheck(kind="all", form="both", backend="auto", seed=0):
    """Analytic gradients vs central finite differences (float64); exit 1 above 1e-6."""
    backend, tol = resolve_backend_name(backend), gradchecks.TOLERANCE
    worst = 0.0
    yield f"backend {backend}: relative error of each gradient block (tolerance {tol:g})"
    for k, f in gradchecks.CHECKED:
        if kind in ("all", k) and form in ("both", f):
            errors = gradchecks.check_model(k, f, backend, seed)
            worst = max([worst, *errors.values()])
            yield reports.gradcheck_line(k, f, errors, tol)
    if worst >= tol:
        yield Note(f"worst relative error {worst:.2e} is above {tol:g}")
        return 1
    yield f"all gradients match (worst {worst:.1e})"
    return 0


# ---------------------------------------------------------------------------- attacks
def attack(model_path, eps_text="0.01,0.05,0.1,0.2,0.5", kind="adversarial", objective="test",
           steps=1, repeats=5, seed=0, on="test", full_ranking=False, metrics_out=None,
           **data):
    """Perturb item features at test time and report what HR/NDCG lose at each ε.

    Parameters
    ----------
    eps_text
        Comma-separated radii ε of the per-item feature perturbation.
    kind
        adversarial (FGM/PGD), random, sign (FGSM, L∞) or certified (worst case).
    objective
        Loss the adversary ascends: test (evaluation rows) or train (training pairs).
    steps
        Projected gradient steps (1 = one-step FGM).
    repeats
        Draws of --kind random.
    metrics_out
        Write the clean and attacked metrics with their drops as JSON.
    """
    eps_list = attacks.parse_eps_list(eps_text)
    if kind not in attacks.KINDS:
        raise option_error("kind", f"choose one of {', '.join(attacks.KINDS)}", repr(kind))
    if objective not in attacks.OBJECTIVES:
        raise option_error("objective", "choose test or train", repr(objective))
    model = Model.load(model_path)
    if not model.spec.has_content:
        raise AmrliteError(f"{model_path}: a {model.spec.label} model has no content term "
                           "(E c_i), so there is nothing to attack: a feature perturbation cannot "
                           "change its scores (attack a DUIF, VBPR or AMR model)")
    ds, sp, notes = load_for_model(model, **data)
    yield from notes
    res = attacks.attack(model, ds, sp, eps_list, kind=kind, objective=objective, steps=steps,
                         repeats=repeats, seed=seed, on=on, full_ranking=full_ranking)
    yield reports.attack_table(res, f"{model.spec.label} from {model_path}, split {sp.name!r}, "
                                    f"{res['protocol']} ranking ({on}): {kind} attack"
                                    + ("" if kind in ("random", "certified") else
                                       f", {objective} objective, {steps} step(s)"))
    if res.get("note"):
        yield f"note: {res['note']}"
    if "flip_eps" in res and reports.flip_line(res["flip_eps"]):
        yield reports.flip_line(res["flip_eps"])
    if metrics_out:
        write_json(metrics_out, res)


def attack_images(model_path, eps_text="0.007", steps=1, rows=None, target="positive",
                  batch=16, out_dir=None, figure_models=(), metrics_out=None, photos=None,
                  images_csv=None, image_id_col=None, path_col=None, titles_path=None,
                  title_col="title", **data):
    """Pixel-level attack (the paper's Fig. 1): perturb item images in an L∞ ball, re-extract
    their CNN features, re-score (needs the images extra: torch, pillow, efficientnet).

    Works from any data set the model was trained on (its data and feature options are
    reused; --data replaces only the path). Photos are found by raw item id; items without a
    readable photo are left unperturbed and counted.

    Parameters
    ----------
    eps_text
        Comma-separated L∞ radii in (0, 1] pixel space (e.g. 0.0039 = 1/255).
    steps
        1 = FGSM; S > 1 = PGD with step 2.5ε/S, the most damaging iterate kept.
    rows
        Attack the first N test rows (default: all).
    target
        Perturb the rows' positives' images, or their negatives'.
    batch
        Images per CNN forward/backward.
    out_dir
        Write the Fig.-1 picture (fig1_pixel_attack.png) here.
    figure_models
        Another model (e.g. AMR) for the Fig.-1 picture; repeatable.
    metrics_out
        Write the clean and attacked metrics (schema of attack --metrics-out) as JSON.
    photos
        The item photos: a folder of files named by item id. Default: what the recipe of the
        model's image features (features-image.json) records.
    images_csv
        The item photos as a table of item id and path (instead of --photos).
    image_id_col
        The item id column of --images (default: item, item_id, id, sku …).
    path_col
        The path column of --images (default: path, file, image, photo …).
    titles_path
        An items table (e.g. products.csv) whose titles label the Fig.-1 picture.
    title_col
        The title column of --titles.
    """
    eps_list = pixel.check_eps(attacks.parse_eps_list(eps_text), low_open=True)
    model = Model.load(model_path)
    pixel.image_block(model)                  # a model without image features: one line, early
    titles = read_item_titles(titles_path, title_col) if titles_path else None
    ds, sp, notes = load_for_model(model, **data)
    yield from notes
    paths, where = pixel.find_photos(model, ds, images=images_csv, photos=photos,
                                     item_col=image_id_col, path_col=path_col)
    yield Note(f"photos: {where}: {len(paths)} of the {ds.n_items} items")
    try:
        res = pixel.attack_images(model, ds, sp, eps_list, steps=steps, rows=rows,
                                  target=target, batch=batch, paths=paths)
    except ImportError as exc:
        raise AmrliteError(f"attack-images needs the images extra (pip install amrlite[images]: "
                           f"torch, pillow, efficientnet-lite-pytorch): {exc}") from None
    yield reports.attack_table(res, (
        f"{model.spec.label} from {model_path}, split {sp.name!r}: pixel attack "
        f"({'FGSM' if steps == 1 else f'PGD, {steps} steps'}) on the {target} images of "
        f"{res['rows']} test rows ({res['n_images']} images, "
        f"{res['n_no_image']} without a readable photo, not perturbed)"))
    for bad in res["unreadable"][:5]:
        yield Note(f"  not perturbed: item {bad['item']}: {bad['reason']}")
    yield reports.pixel_table(res, pixel.eps_label)
    if out_dir:
        others = [Model.load(p) for p in figure_models]
        path, _ = pixel.figure1([model] + others, ds, sp, Path(out_dir) / "fig1_pixel_attack.png",
                                eps=max(eps_list), steps=steps, paths=paths, titles=titles)
        yield f"figure: {path}"
    if metrics_out:
        write_json(metrics_out, res)


def compare(model_a, model_b, on="test", full_ranking=False, metrics_out=None, **data):
    """Paired per-user t-test and Wilcoxon signed-rank test of model A against model B."""
    a, b = Model.load(model_a), Model.load(model_b)
    ds, sp, notes = load_for_model(a, **data)
    yield from notes
    res = run_compare(a, b, ds, sp, on=on, full_ranking=full_ranking)
    yield reports.compare_table(res, sp.name, on, model_a, model_b)
    if metrics_out:
        write_json(metrics_out, res)


# ---------------------------------------------------------------------------- sweep, experiment
def sweep(init_path, kind="amr", eps_list="0.01,0.1,1,10", lmd_list="1", epochs=200, lr=0.01,
          reg=1e-3, dim=None, batch_size=512, eval_every=0, seed=0, backend="auto",
          out_dir="sweep", processes=None, seeds=1, engine="local", address=None,
          no_plots=False, quiet=False, **data):
    """Train AMR for every (ε, λ) from one VBPR checkpoint; pick the best by validation NDCG@10.

    Writes one JSON per setting and sweep.json into --out, then fig6_sweep_eps.png (test
    HR@10/NDCG@10 vs ε, one line per λ; when more than one ε) and fig7_sweep_lmd.png (vs λ,
    one line per ε; when more than one λ). For p-values against continued VBPR and the
    robustness of each setting, run the whole pipeline instead:
    ``amrlite experiment ... --set sweep.grid=true``.

    Parameters
    ----------
    kind
        The swept model (AMR: ε and λ).
    init_path
        The VBPR checkpoint (.npz) every run starts from.
    eps_list
        Comma-separated ε values.
    lmd_list
        Comma-separated λ values.
    dim
        Default: the checkpoint's K.
    eval_every
        Validate every N epochs and keep the best epoch (0: keep the last epoch).
    out_dir
        One JSON per setting (reruns skip finished ones).
    processes
        Worker processes (default: one per core).
    no_plots
        Skip fig6_sweep_eps.png / fig7_sweep_lmd.png.
    """
    eps_values = parse_float_list(eps_list, "eps_list")
    lmd_values = parse_float_list(lmd_list, "lmd_list")
    if processes is not None and processes < 1:
        raise option_error("processes", "must be at least 1", processes)
    init = Model.load(init_path)          # a one-line error when missing or not a model
    ds, sp, notes = load(**data)
    yield from notes
    if sp.test is None:
        raise option_error("split", "holds nothing out, and a sweep picks its best setting on "
                           "held-out rows (sweep on a split, then train the chosen setting with "
                           "fit {split} none)", sp.name, names=("split",))
    base = dict(epochs=epochs, lr=lr, reg=reg, dim=int(init.config.dim) if dim is None else dim,
                batch_size=batch_size, eval_every=eval_every, seed=seed,
                negative_pool=init.config.negative_pool)
    res = run_sweep(ds, sp, init=init_path, eps_list=eps_values, lmd_list=lmd_values,
                    base_config=base, out_dir=out_dir, processes=processes,
                    progress=not quiet, backend=backend, seeds=seeds, engine=engine,
                    address=address)
    yield reports.sweep_table(res, seeds, out_dir)
    for axis, values, fig in (("eps", eps_values, 6), ("lmd", lmd_values, 7)):
        if not no_plots and len(set(values)) > 1:
            path = Path(out_dir) / f"fig{fig}_sweep_{axis}.png"
            path = (sweep_errorbars(list(res["aggregate"].values()), axis, path)
                    if seeds > 1 else plots.sweep_grid_plot(res["runs"], axis, path))
            yield f"figure: {path}"


def experiment(data=None, split="loo", features=None, normalize="none", out_dir="experiment",
               quick=False, backend="auto", config_path=None, settings=(), seeds=1,
               engine="local", address=None, no_plots=False, quiet=False):
    """The paper's experiments: Table 2, Table 3, Figs. 3, 5, 6, 7 and report.md (resumable).

    Parameters
    ----------
    data
        Dataset folder. Default: the embedded synthetic data set.
    split
        loo, cold, sparse3, or NAME for a split-NAME/ folder in --data.
    features
        Modalities of --data (image, text, or image,text: concatenated). Default: the
        folder's features.npy. With image (and torch) the pixel attack runs too.
    normalize
        none, maxabs or l2, for every modality or per modality: image=l2,text=none.
    out_dir
        Output folder (a rerun resumes from what it holds).
    quick
        A few epochs per model and reduced sweeps (smoke run).
    config_path
        JSON (or .toml) file of overrides of the defaults
        (amrlite.experiments.ExperimentConfig); unknown keys and wrong types are errors.
    settings
        One override, e.g. --set stages.amr.eps=0.5 --set select=valid (checked like
        --config).
    no_plots
        Skip the figures (no matplotlib needed).
    """
    overrides = read_config_file(config_path) if config_path else {}
    overrides = deep_merge(overrides, check_overrides(parse_set(settings)))
    summary = run_experiment(data, split, out_dir, quick=quick, backend=backend,
                             overrides=overrides, progress=not quiet, plots=not no_plots,
                             seeds=seeds, engine=engine, address=address, features=features,
                             normalize=normalize)
    yield from reports.experiment_lines(summary, seeds)
    yield f"report: {Path(out_dir) / 'report.md'} ({summary['timings']['total']:.1f}s)"


# ---------------------------------------------------------------------------- features
def _features_done(path):
    meta, report, _ = sidecars(path)
    return f"features: {path} (recipe: {meta.name}, report: {report.name})", json.loads(report.read_text())


def features_image(data_dir=None, photos=None, images_csv=None, path_col=None, items_path=None,
                   item_col=None, model="efficientnet-lite0", batch=64, out=None, strict=False,
                   overwrite=False, device=None, quiet=False):
    """Image features (CNN, global average pool) of every item; resumable.

    \b
    amrlite features image --photos photos/ --out features-image.npz
    amrlite features image --images images.csv --item-col sku --path-col file
    amrlite features image --data DIR          (native: DIR/images.csv → DIR/features-image.npy)
    

    Parameters
    ----------
    photos
        A folder of photos named by item id (SKU-8F3A2B.jpg; jpg, jpeg, png, webp, bmp, gif,
        tiff; subfolders searched).
    images_csv
        An images table: item id and path columns (a relative path is relative to the
        table's folder). Default with --data: DATA/images.csv.
    path_col
        The image path column of --images (default: path, file, image, photo …).
    items_path
        A catalogue (e.g. products.csv): each item it lists gets a row, a zero row where it
        has no photo.
    strict
        A missing or unreadable image is an error.
    """
    path = extract_image_features(data_dir, images_csv, out, model=model, batch=batch,
                                  strict=strict, progress=not quiet, overwrite=overwrite,
                                  device=device, photos=photos, items=items_path,
                                  item_col=item_col, path_col=path_col)
    line, report = _features_done(path)
    yield line
    yield (f"{report['n_items']} item(s): {report['n_images']} image(s), "
           f"{report['n_zero_rows']} zero row(s), {len(report['converted'])} converted to RGB")
    for row in report["zero_rows"][:5]:
        yield Note(f"  zero row: item {row['item']}: {row['reason']}")
    if report["n_zero_rows"] > 5:
        yield Note(f"  … {report['n_zero_rows'] - 5} more in the report")


def features_text(data_dir=None, items_csv=None, item_col=None, columns="title,genres",
                  template=None, model="all-MiniLM-L6-v2", batch=128, out=None, overwrite=False,
                  device=None, quiet=False):
    """Text features (sentence embeddings) of every item; resumable.

    \b
    amrlite features text --items products.csv --item-col sku --columns title,category
    amrlite features text --data DIR           (native: DIR/items.csv → DIR/features-text.npy)
    

    Parameters
    ----------
    items_csv
        The items table (one row per item). Default with --data: DATA/items.csv.
    columns
        Columns of the items CSV that make the text.
    template
        str.format template over the columns. Default: '{c1}. C2: {c2}.', i.e. '{title}.
        Genres: {genres}.' (reproduces ml100k's item_texts.txt); '|'-joined values are
        joined by ', '.
    """
    cols = tuple(c.strip() for c in columns.split(",") if c.strip())
    path = extract_text_features(data_dir, items_csv, out, model=model, columns=cols,
                                 template=template, batch=batch, progress=not quiet,
                                 overwrite=overwrite, device=device, item_col=item_col)
    yield _features_done(path)[0]
