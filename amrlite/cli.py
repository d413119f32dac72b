"""The ``amrlite`` command line: a thin click layer over :mod:`amrlite.commands`.

Each command parses its options, calls the one function of :mod:`amrlite.commands` of its
name and prints what it yields (a :class:`~amrlite.commands.Note` on stderr). The options'
defaults are those of the function's signature. Every user error (:class:`amrlite.AmrliteError`)
is printed as one line, ``amrlite: error: …``, with exit status 2 and no traceback; an error
about a parameter names its flag (:func:`flag_of`).
"""
from __future__ import annotations

import inspect
import sys
import warnings

import click

from . import commands
from .commands import N_NEGATIVES, SPLIT_SEED, Note
from .data import load_dataset
from .errors import AmrliteError, OptionError
from .train import TrainConfig
from .version import __version__

#: library parameter -> command-line flag, where it is no option of the command and the flag is
#: not ``--`` + the name with dashes (the one place where parameters become flags)
FLAGS = {"n_negatives": "--negatives", "path": "--data", "init": "--init", "items": "--items"}


def flag_of(param, command=None):
    """The flag of library parameter ``param``: the ``command``'s option of that name
    (``n`` -> ``-n``, ``fmt`` -> ``--format``), else :data:`FLAGS`, else ``--k-core`` for
    ``k_core``."""
    for p in getattr(command, "params", ()):
        if p.name == param and isinstance(p, click.Option):
            return max(p.opts, key=len)
    return FLAGS.get(param, "--" + param.replace("_", "-"))


class UserError(click.ClickException):
    exit_code = 2

    def show(self, file=None):
        click.echo(f"amrlite: error: {self.format_message()}", err=True)


class Group(click.Group):
    """Turns AmrliteError (and a missing-file OSError) into a one-line message."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except OptionError as exc:
            command = self.get_command(ctx, ctx.invoked_subcommand or "")
            raise UserError(exc.naming(lambda p: flag_of(p, command))) from None
        except AmrliteError as exc:
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


def command(fn, name=None, group=cli):
    """Make the decorated function (its options and help) the command ``name`` calling
    ``fn``: the options take ``fn``'s defaults, the function maps its options to ``fn``'s
    keywords (returns them), and what ``fn`` yields is printed; its return value is the exit
    status."""
    defaults = {k: p.default for k, p in inspect.signature(fn).parameters.items()
                if p.default is not inspect.Parameter.empty}

    def wrap(f):
        def run(**kw):
            lines = fn(**(f(**kw) or kw))
            while True:
                try:
                    line = next(lines)
                except StopIteration as stop:
                    if stop.value:
                        sys.exit(stop.value)
                    return
                click.echo(line, err=isinstance(line, Note))
        run.__doc__, run.__click_params__ = f.__doc__, f.__click_params__
        for p in run.__click_params__:
            if p.name in defaults and isinstance(p, click.Option) and not p.required:
                p.default = defaults[p.name]
        return group.command(name or fn.__name__.replace("_", "-"))(run)
    return wrap


def options(*opts):
    """Several click options as one decorator."""
    def wrap(f):
        for opt in reversed(opts):
            f = opt(f)
        return f
    return wrap


def lib_default(fn, name):
    return inspect.signature(fn).parameters[name].default


def _data_options(for_model):
    """The options that say which data set, features and split a command reads; ``for_model``:
    of a command that reads a saved model, each defaulting to what the model records
    (:func:`amrlite.recommender.model_data`). ``None`` (their default) means not given."""
    def default(fit_default):
        return " Default: the model's." if for_model else f" Default: {fit_default}."
    return options(
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
                          "(0: full ranking only)." + default(N_NEGATIVES)),
        click.option("--split-seed", type=int, default=None,
                     help="Seed of a generated split and its sampled negatives."
                          + default(SPLIT_SEED)),
        click.option("--features", default=None,
                     help="Modalities of the folder (image, or image,text: concatenated) and/or "
                          "feature files (.npy positional, .npz with ids and features)."
                          + (" Default: the model's." if for_model else "")),
        click.option("--normalize", default=None,
                     help="none, maxabs or l2, for every modality or per modality: "
                          "image=l2,text=none." + default(lib_default(load_dataset, "normalize"))),
        click.option("--items", "items_path", type=click.Path(dir_okay=False), default=None,
                     help="Raw data: a file listing the item id of every .npy feature row."),
        click.option("--missing-features", type=click.Choice(["error", "zero"]), default=None,
                     help="Raw data: items without a feature row are an error, or get a zero "
                          "row." + default(lib_default(load_dataset, "missing_features"))),
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
                          + default(lib_default(load_dataset, "id_order"))))


data_options, model_data_options = _data_options(False), _data_options(True)
backend_option = click.option("--backend", type=click.Choice(["auto", "numpy", "numba", "cupy"]),
                              show_default=True, help="auto = cupy with a CUDA GPU, else numba.")
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
on_option = click.option("--on", type=click.Choice(["test", "valid"]), show_default=True)
full_ranking_option = click.option("--full-ranking", is_flag=True,
                                   help="Rank against all items not in training.")
model_path = click.argument("model_path", type=click.Path(dir_okay=False))


def metrics_out_option(help_=None):
    return click.option("--metrics-out", type=click.Path(dir_okay=False), help=help_)


def seeds_engine_options(f):
    """``--seeds``, ``--engine`` and ``--address`` of ``sweep`` and ``experiment``."""
    return options(
        click.option("--seeds", type=click.IntRange(min=1), show_default=True,
                     help="Runs per setting, seed index 0 being --seed (or the config's seed); "
                          "results as mean ± 95% CI."),
        click.option("--engine", type=click.Choice(["local", "ray"]), show_default=True,
                     help="Where the tasks run (experiment: each seed's model chain, then each "
                          "sweep setting × seed; sweep: each setting × seed): local processes, "
                          "or Ray (pip install -e '.[cluster]')."),
        click.option("--address", metavar="ADDRESS",
                     help="--engine ray: the cluster to join (auto, HOST:6379, ray://HOST:10001);"
                          " default: a local cluster started here."))(f)


# ---------------------------------------------------------------------------- fit
#: the hyper-parameter options of ``fit``: TrainConfig field -> help (the type and the default
#: shown are the field's; only the values given are passed on, the kind's defaults fill the rest)
HYPER = {
    "epochs": "Epochs (of every stage of the pre-training chain).",
    "dim": "Embedding size K.", "batch_size": "Triples per mini-batch.",
    "lr": "Adagrad learning rate.",
    "reg": "β: L2 on P, Q (H, b); MF-eALS's λ (default 10 for --model eals).",
    "reg_e": "β_E: L2 on E (and w).", "eps": "Adversary radius ε.", "lmd": "Adversarial weight λ.",
    "adversary": None,
    "negative_pool": "BPR negatives from the items seen in training (unseen items are scored by "
                     "content alone) or from the whole catalogue.",
    "seed": "Seed of the initialisation, the triples and the adversary.",
    "eval_every": "Validate every N epochs (0: never); the best epoch by NDCG@10 is kept.",
    "patience": "Stop after N validations without improvement (0: never)."}
CHOICES = {"adversary": ["grad", "sign", "random"], "negative_pool": ["warm", "all"]}
_FIELDS = TrainConfig.__dataclass_fields__
hyper_options = options(*(
    click.option("--" + k.replace("_", "-"), k, default=_FIELDS[k].default, help=h,
                 show_default=True,
                 type=click.Choice(CHOICES[k]) if k in CHOICES else type(_FIELDS[k].default))
    for k, h in HYPER.items()))


@command(commands.fit)
@data_options
@click.option("--model", "kind", type=click.Choice(["pop", "mf", "duif", "vbpr", "amr", "eals"]),
              show_default=True)
@click.option("--form", type=click.Choice(["eq4", "hm"]), show_default=True,
              help="VBPR/AMR scoring: the paper's Eq. 4 p·(q+Ec), or He & McAuley's with h_u and biases.")
@click.option("--init", "init_path", type=click.Path(dir_okay=False),
              help="Start from a saved model (MF-BPR → VBPR → AMR chain). Without --data: on "
                   "the data set it was trained on, read with its options and split (each data "
                   "option given replaces the recorded one).")
@click.option("--pretrain/--no-pretrain", show_default=True,
              help="AMR without --init: first train MF-BPR, then VBPR from it, then AMR from that.")
@click.option("--epochs-from", "epochs_from", type=click.Path(dir_okay=False), metavar="MODEL.npz",
              help="Instead of --epochs: the epoch a saved run kept (its best validation epoch), "
                   "for each stage its own: train on every interaction (--split none) as long "
                   "as a validated run found best.")
@hyper_options
@backend_option
@click.option("--full-ranking", is_flag=True, help="Test against all items, not the sampled negatives.")
@click.option("--out", type=click.Path(dir_okay=False), help="Save the model (.npz).")
@metrics_out_option("Write test metrics, backend and epoch seconds as JSON.")
@click.option("--log", "log_path", type=click.Path(dir_okay=False),
              help="Append one JSON line per epoch (loss, seconds, validation metrics).")
@quiet_option
def fit(**kw):
    """Train a model and report its test metrics (with --split none: train on every
    interaction, nothing held out, no metrics)."""
    ctx = click.get_current_context()
    hyper = {k: kw.pop(k) for k in HYPER}
    return dict(kw, hyper={k: v for k, v in hyper.items()
                           if ctx.get_parameter_source(k) is not click.core.ParameterSource.DEFAULT})


@command(commands.evaluate)
@model_path
@model_data_options
@full_ranking_option
@on_option
@backend_option
@metrics_out_option()
def evaluate(**kw):
    """Evaluate a saved model (HR/NDCG@5/10/20, all / warm / cold test items)."""


@command(commands.recommend)
@model_path
@click.option("--users", metavar="all|FILE|ID[,ID…]",
              help="Whose lists to write: every user of the model, the users of FILE (one id "
                   "per line, or a CSV with a user column), or the ids given.")
@click.option("--user", help="One user, printed as a table: its raw id for data read with raw "
                             "ids, else its index.")
@click.option("-n", "n", type=click.IntRange(min=1), show_default=True, help="Items per user.")
@click.option("--exclude", type=click.Choice(["seen", "none"]), show_default=True,
              help="seen: never an item the user interacted with in the data set the model was "
                   "trained on (training, validation and test rows).")
@click.option("--include-seen", is_flag=True, help="Same as --exclude none.")
@click.option("--candidates", show_default=True, metavar="all|new|FILE",
              help="The items that may be recommended: all; new (items without any "
                   "interaction, scored by their features alone); or the item ids of FILE.")
@click.option("--unknown", type=click.Choice(["popular", "error"]),
              help="A user the model does not know: the most popular candidates (source "
                   "'popular'; the default), or an error (the default with --user).")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet"]), show_default=True,
              help="csv/parquet: columns user,rank,item,score[,title],source; jsonl: one JSON "
                   "object per user.")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Output file (written to a temporary file, then renamed). Default: stdout.")
@click.option("--titles", "titles_path", type=click.Path(dir_okay=False),
              help="A products CSV (item id column and --title-col): adds a title column.")
@click.option("--title-col", show_default=True)
@click.option("--chunk-size", type=click.IntRange(min=1), show_default=True,
              help="Users computed and written at a time (bounds the memory).")
@backend_option
@quiet_option
def recommend(**kw):
    """Top-N items per user of a saved model, with raw ids: for every customer (--users all),
    some, or one (--user)."""


@command(commands.add_items)
@model_path
@click.option("--features", "features_spec", required=True,
              help="The new products' features: an .npz with ids and features, as "
                   "`amrlite features` writes them (raw, not normalised); one per modality of "
                   "the model, comma-separated in its order.")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Where to save the extended model (.npz).")
def add_items(**kw):
    """Add new products to a trained DUIF, VBPR or AMR model without retraining: each is scored
    by its features alone (through the model's recorded normalisation), as the model scores
    any item without interactions."""


@command(commands.gradcheck)
@click.option("--model", "kind", type=click.Choice(["all", "mf", "duif", "vbpr", "amr"]),
              show_default=True)
@click.option("--form", type=click.Choice(["both", "eq4", "hm"]), show_default=True)
@backend_option
@click.option("--seed", type=int, show_default=True)
def gradcheck(**kw):
    """Analytic gradients vs central finite differences (float64); exit 1 above 1e-6."""


@command(commands.attack)
@model_path
@model_data_options
@click.option("--eps", "eps_text", show_default=True,
              help="Comma-separated radii ε of the per-item feature perturbation.")
@click.option("--kind", show_default=True,
              help="adversarial (FGM/PGD), random, sign (FGSM, L∞) or certified (worst case).")
@click.option("--objective", show_default=True,
              help="Loss the adversary ascends: test (evaluation rows) or train (training pairs).")
@click.option("--steps", type=int, show_default=True,
              help="Projected gradient steps (1 = one-step FGM).")
@click.option("--repeats", type=int, show_default=True, help="Draws of --kind random.")
@click.option("--seed", type=int, show_default=True)
@on_option
@full_ranking_option
@metrics_out_option("Write the clean and attacked metrics with their drops as JSON.")
def attack(**kw):
    """Perturb item features at test time and report what HR/NDCG lose at each ε."""


@command(commands.attack_images)
@model_path
@model_data_options
@click.option("--eps", "eps_text", show_default=True,
              help="Comma-separated L∞ radii in (0, 1] pixel space (e.g. 0.0039 = 1/255).")
@click.option("--steps", type=click.IntRange(min=1), show_default=True,
              help="1 = FGSM; S > 1 = PGD with step 2.5ε/S, the most damaging iterate kept.")
@click.option("--rows", type=click.IntRange(min=1),
              help="Attack the first N test rows (default: all).")
@click.option("--target", type=click.Choice(["positive", "negatives"]), show_default=True,
              help="Perturb the rows' positives' images, or their negatives'.")
@click.option("--batch", type=click.IntRange(min=1), show_default=True,
              help="Images per CNN forward/backward.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Write the Fig.-1 picture (fig1_pixel_attack.png) here.")
@click.option("--figure-model", "figure_models", multiple=True, type=click.Path(dir_okay=False),
              help="Another model (e.g. AMR) for the Fig.-1 picture; repeatable.")
@metrics_out_option("Write the clean and attacked metrics (schema of attack --metrics-out) as JSON.")
@click.option("--photos", type=click.Path(),
              help="The item photos: a folder of files named by item id. Default: what the "
                   "recipe of the model's image features (features-image.json) records.")
@click.option("--images", "images_csv", type=click.Path(dir_okay=False),
              help="The item photos as a table of item id and path (instead of --photos).")
@click.option("--image-id-col",
              help="The item id column of --images (default: item, item_id, id, sku …).")
@click.option("--path-col", help="The path column of --images (default: path, file, image, photo …).")
@click.option("--titles", "titles_path", type=click.Path(dir_okay=False),
              help="An items table (e.g. products.csv) whose titles label the Fig.-1 picture.")
@click.option("--title-col", show_default=True, help="The title column of --titles.")
def attack_images(**kw):
    """Pixel-level attack (the paper's Fig. 1): perturb item images in an L∞ ball, re-extract
    their CNN features, re-score (needs the images extra: torch, pillow, efficientnet).

    Works from any data set the model was trained on (its data and feature options are
    reused; --data replaces only the path). Photos are found by raw item id; items without a
    readable photo are left unperturbed and counted."""


@command(commands.compare)
@click.argument("model_a", type=click.Path(dir_okay=False))
@click.argument("model_b", type=click.Path(dir_okay=False))
@model_data_options
@on_option
@full_ranking_option
@metrics_out_option()
def compare(**kw):
    """Paired per-user t-test and Wilcoxon signed-rank test of model A against model B."""


@command(commands.sweep)
@data_options
@click.option("--model", "kind", type=click.Choice(["amr"]), show_default=True,
              help="The swept model (AMR: ε and λ).")
@click.option("--init", "init_path", type=click.Path(dir_okay=False), required=True,
              help="The VBPR checkpoint (.npz) every run starts from.")
@click.option("--eps", "eps_list", show_default=True, help="Comma-separated ε values.")
@click.option("--lmd", "lmd_list", show_default=True, help="Comma-separated λ values.")
@click.option("--epochs", type=int, show_default=True)
@click.option("--lr", type=float, show_default=True)
@click.option("--reg", type=float, show_default=True)
@click.option("--dim", type=int, help="Default: the checkpoint's K.")
@click.option("--batch-size", type=int, show_default=True)
@click.option("--eval-every", type=int, show_default=True,
              help="Validate every N epochs and keep the best epoch (0: keep the last epoch).")
@click.option("--seed", type=int, show_default=True)
@backend_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), show_default=True,
              help="One JSON per setting (reruns skip finished ones).")
@click.option("--processes", type=int, help="Worker processes (default: one per core).")
@seeds_engine_options
@click.option("--no-plots", is_flag=True, help="Skip fig6_sweep_eps.png / fig7_sweep_lmd.png.")
@quiet_option
def sweep(**kw):
    """Train AMR for every (ε, λ) from one VBPR checkpoint; pick the best by validation NDCG@10.

    Writes one JSON per setting and sweep.json into --out, then fig6_sweep_eps.png (test
    HR@10/NDCG@10 vs ε, one line per λ; when more than one ε) and fig7_sweep_lmd.png (vs λ,
    one line per ε; when more than one λ). For p-values against continued VBPR and the
    robustness of each setting, run the whole pipeline instead:
    ``amrlite experiment ... --set sweep.grid=true``."""


@command(commands.experiment)
@click.option("--data", type=click.Path(),
              help="Dataset folder. Default: the embedded synthetic data set.")
@click.option("--split", show_default=True,
              help="loo, cold, sparse3, or NAME for a split-NAME/ folder in --data.")
@click.option("--features",
              help="Modalities of --data (image, text, or image,text: concatenated). Default: "
                   "the folder's features.npy. With image (and torch) the pixel attack runs too.")
@click.option("--normalize", show_default=True,
              help="none, maxabs or l2, for every modality or per modality: image=l2,text=none.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), show_default=True,
              help="Output folder (a rerun resumes from what it holds).")
@click.option("--quick", is_flag=True, help="A few epochs per model and reduced sweeps (smoke run).")
@backend_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="JSON (or .toml) file of overrides of the defaults "
                   "(amrlite.experiments.ExperimentConfig); unknown keys and wrong types are "
                   "errors.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="One override, e.g. --set stages.amr.eps=0.5 --set select=valid (checked "
                   "like --config).")
@seeds_engine_options
@click.option("--no-plots", is_flag=True, help="Skip the figures (no matplotlib needed).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def experiment(**kw):
    """The paper's experiments: Table 2, Table 3, Figs. 3, 5, 6, 7 and report.md (resumable)."""


# ---------------------------------------------------------------------------- features
@cli.group()
def features():
    """Deep item features from raw inputs (extras: amrlite[images], amrlite[text])."""


def features_options(name):
    """The options both ``features`` commands share (--data, --item-col, --batch, --out, …)."""
    return options(
        click.option("--data", "data_dir", type=click.Path(file_okay=False, exists=True),
                     help="A data folder: its tables are read from there and the output "
                          "written there (not needed with raw ids)."),
        click.option("--item-col", help="The item id column (default: item, item_id, id, sku, "
                                        "asin, product_id …): features keyed by raw id, written "
                                        "as .npz."),
        click.option("--batch", type=click.IntRange(min=1), show_default=True),
        click.option("--out", type=click.Path(dir_okay=False),
                     help=f"Output: .npz (ids and features) for raw ids; .npy (row i = item "
                          f"i) for a native folder's item indices. Default: "
                          f"features-{name}.npz/.npy in --data, else beside the input."),
        click.option("--overwrite", is_flag=True, help="Replace features made with another recipe."),
        click.option("--device", help="torch device. Default: cuda when available, else cpu."),
        quiet_option)


@command(commands.features_image, "image", features)
@features_options("image")
@click.option("--photos", type=click.Path(),
              help="A folder of photos named by item id (SKU-8F3A2B.jpg; jpg, jpeg, png, webp, "
                   "bmp, gif, tiff; subfolders searched).")
@click.option("--images", "images_csv",
              help="An images table: item id and path columns (a relative path is relative "
                   "to the table's folder). Default with --data: DATA/images.csv.")
@click.option("--path-col",
              help="The image path column of --images (default: path, file, image, photo …).")
@click.option("--items", "items_path", type=click.Path(dir_okay=False),
              help="A catalogue (e.g. products.csv): each item it lists gets a row, a zero "
                   "row where it has no photo.")
@click.option("--model", show_default=True)
@click.option("--strict", is_flag=True, help="A missing or unreadable image is an error.")
def features_image(**kw):
    """Image features (CNN, global average pool) of every item; resumable.

    \b
    amrlite features image --photos photos/ --out features-image.npz
    amrlite features image --images images.csv --item-col sku --path-col file
    amrlite features image --data DIR          (native: DIR/images.csv → DIR/features-image.npy)
    """


@command(commands.features_text, "text", features)
@features_options("text")
@click.option("--items", "items_csv",
              help="The items table (one row per item). Default with --data: DATA/items.csv.")
@click.option("--columns", show_default=True, help="Columns of the items CSV that make the text.")
@click.option("--template",
              help="str.format template over the columns. Default: '{c1}. C2: {c2}.', i.e. "
                   "'{title}. Genres: {genres}.' (reproduces ml100k's item_texts.txt); "
                   "'|'-joined values are joined by ', '.")
@click.option("--model", show_default=True)
def features_text(**kw):
    """Text features (sentence embeddings) of every item; resumable.

    \b
    amrlite features text --items products.csv --item-col sku --columns title,category
    amrlite features text --data DIR           (native: DIR/items.csv → DIR/features-text.npy)
    """


def main():
    cli(prog_name="amrlite")


if __name__ == "__main__":
    main()
