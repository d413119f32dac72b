"""The ``amrlite`` command line: a thin click layer over :mod:`amrlite.commands`.

Each command parses its options, calls the one function of :mod:`amrlite.commands` of its
name and prints what it yields (a :class:`~amrlite.commands.Note` on stderr). The options'
defaults are those of the function's signature. Every user error (:class:`amrlite.AmrliteError`)
is printed as one line, ``amrlite: error: …``, with exit status 2 and no traceback; an error
about a parameter names its flag (:func:`flag_of`).
"""
from __future__ import annotations

import inspect
import re
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
    ``fn``: the options take ``fn``'s defaults and, where they have none, the help of ``fn``'s
    docstring (its Parameters); the function maps its options to ``fn``'s keywords (returns
    them), and what ``fn`` yields is printed; its return value is the exit status."""
    defaults = {k: p.default for k, p in inspect.signature(fn).parameters.items()
                if p.default is not inspect.Parameter.empty}
    helps = param_helps(fn)

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
                p.default, p.show_default = defaults[p.name], True
            if isinstance(p, click.Option) and p.help is None:
                p.help = helps.get(p.name)
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


def param_helps(fn):
    """``fn``'s parameters and their descriptions (its docstring's Parameters, numpydoc)."""
    section = (fn.__doc__ or "").partition("Parameters\n    ----------\n")[2]
    return {k: " ".join(v.split())
            for k, v in re.findall(r"(?m)^    (\w+)(?: : .*)?\n((?:        .*\n?)+)", section)}


#: the data options: flag, name (dest), click settings, default for a data set without a model
DATA = [("--data", "data", dict(type=click.Path()), "the embedded synthetic data set"),
        ("--split", "split", {}, "'official' where neg.txt exists, else loo"),
        ("--sparse", "sparse", dict(type=click.IntRange(min=1), metavar="K"), None),
        ("--negatives", "negatives", dict(type=click.IntRange(min=0)), N_NEGATIVES),
        ("--split-seed", "split_seed", dict(type=int), SPLIT_SEED),
        ("--features", "features", {}, None),
        ("--normalize", "normalize", {}, lib_default(load_dataset, "normalize")),
        ("--items", "items_path", dict(type=click.Path(dir_okay=False)), None),
        ("--missing-features", "missing_features", dict(type=click.Choice(["error", "zero"])),
         lib_default(load_dataset, "missing_features")),
        ("--user-col", "user_col", {}, None), ("--item-col", "item_col", {}, None),
        ("--rating-col", "rating_col", {}, None), ("--time-col", "time_col", {}, None),
        ("--min-rating", "min_rating", dict(type=float), None),
        ("--k-core", "k_core", dict(type=click.IntRange(min=1), metavar="N"), None),
        ("--id-order", "id_order", dict(type=click.Choice(["first", "sorted"])),
         lib_default(load_dataset, "id_order"))]
MODEL_DEFAULT = {"data": "the data set the model was trained on (its recorded absolute path), "
                         "read with the model's options; --data replaces only the path, and "
                         "each option given replaces the recorded one",
                 "split": "the model's split", "features": "the model's"}


def _data_options(for_model):
    """The options that say which data set, features and split a command reads
    (:func:`amrlite.commands.load`); ``for_model``: of a command that reads a saved model, each
    defaulting to what the model records (:func:`amrlite.commands.load_for_model`). ``None``
    (their default) means not given."""
    helps = param_helps(commands.load)

    def default(name, fit_default):
        if for_model and (fit_default is not None or name in MODEL_DEFAULT):
            return " Default: " + MODEL_DEFAULT.get(name, "the model's") + "."
        return "" if fit_default is None else f" Default: {fit_default}."
    return options(*(click.option(flag, name, help=helps[name] + default(name, fit_default), **kw)
                     for flag, name, kw, fit_default in DATA))


data_options, model_data_options = _data_options(False), _data_options(True)
backend_option = click.option("--backend", type=click.Choice(["auto", "numpy", "numba", "cupy"]),
                              help="auto = cupy with a CUDA GPU, else numba.")
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
on_option = click.option("--on", type=click.Choice(["test", "valid"]))
full_ranking_option = click.option("--full-ranking", is_flag=True,
                                   help="Rank against all items not in training.")
model_path = click.argument("model_path", type=click.Path(dir_okay=False))


def metrics_out_option(help_=None):
    return click.option("--metrics-out", type=click.Path(dir_okay=False), help=help_)


def seeds_engine_options(f):
    """``--seeds``, ``--engine`` and ``--address`` of ``sweep`` and ``experiment``."""
    return options(
        click.option("--seeds", type=click.IntRange(min=1),
                     help="Runs per setting, seed index 0 being --seed (or the config's seed); "
                          "results as mean ± 95% CI."),
        click.option("--engine", type=click.Choice(["local", "ray"]),
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
@click.option("--model", "kind", type=click.Choice(["pop", "mf", "duif", "vbpr", "amr", "eals"]))
@click.option("--form", type=click.Choice(["eq4", "hm"]))
@click.option("--init", "init_path", type=click.Path(dir_okay=False))
@click.option("--pretrain/--no-pretrain",
              help="AMR without --init: first train MF-BPR, then VBPR from it, then AMR from that.")
@click.option("--epochs-from", "epochs_from", type=click.Path(dir_okay=False), metavar="MODEL.npz")
@hyper_options
@backend_option
@click.option("--full-ranking", is_flag=True, help="Test against all items, not the sampled negatives.")
@click.option("--out", type=click.Path(dir_okay=False))
@metrics_out_option()
@click.option("--log", "log_path", type=click.Path(dir_okay=False))
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
@click.option("--users", metavar="all|FILE|ID[,ID…]")
@click.option("--user")
@click.option("-n", "n", type=click.IntRange(min=1))
@click.option("--exclude", type=click.Choice(["seen", "none"]))
@click.option("--include-seen", is_flag=True)
@click.option("--candidates", metavar="all|new|FILE")
@click.option("--unknown", type=click.Choice(["popular", "error"]))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet"]))
@click.option("--out", type=click.Path(dir_okay=False))
@click.option("--titles", "titles_path", type=click.Path(dir_okay=False))
@click.option("--title-col")
@click.option("--chunk-size", type=click.IntRange(min=1))
@backend_option
@quiet_option
def recommend(**kw):
    """Top-N items per user of a saved model, with raw ids: for every customer (--users all),
    some, or one (--user)."""


@command(commands.add_items)
@model_path
@click.option("--features", "features_spec", required=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True)

def add_items(**kw):
    """Add new products to a trained DUIF, VBPR or AMR model without retraining: each is scored
    by its features alone (through the model's recorded normalisation), as the model scores
    any item without interactions."""


@command(commands.gradcheck)
@click.option("--model", "kind", type=click.Choice(["all", "mf", "duif", "vbpr", "amr"]))
@click.option("--form", type=click.Choice(["both", "eq4", "hm"]))
@backend_option
@click.option("--seed", type=int)
def gradcheck(**kw):
    """Analytic gradients vs central finite differences (float64); exit 1 above 1e-6."""


@command(commands.attack)
@model_path
@model_data_options
@click.option("--eps", "eps_text")
@click.option("--kind")
@click.option("--objective")
@click.option("--steps", type=int)
@click.option("--repeats", type=int)
@click.option("--seed", type=int)
@on_option
@full_ranking_option
@metrics_out_option()
def attack(**kw):
    """Perturb item features at test time and report what HR/NDCG lose at each ε."""


@command(commands.attack_images)
@model_path
@model_data_options
@click.option("--eps", "eps_text")
@click.option("--steps", type=click.IntRange(min=1))
@click.option("--rows", type=click.IntRange(min=1))
@click.option("--target", type=click.Choice(["positive", "negatives"]))
@click.option("--batch", type=click.IntRange(min=1))
@click.option("--out", "out_dir", type=click.Path(file_okay=False))
@click.option("--figure-model", "figure_models", multiple=True, type=click.Path(dir_okay=False))
@metrics_out_option()
@click.option("--photos", type=click.Path())
@click.option("--images", "images_csv", type=click.Path(dir_okay=False))
@click.option("--image-id-col")
@click.option("--path-col")
@click.option("--titles", "titles_path", type=click.Path(dir_okay=False))
@click.option("--title-col")

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
@click.option("--model", "kind", type=click.Choice(["amr"]))
@click.option("--init", "init_path", type=click.Path(dir_okay=False), required=True)
@click.option("--eps", "eps_list")
@click.option("--lmd", "lmd_list")
@click.option("--epochs", type=int)
@click.option("--lr", type=float)
@click.option("--reg", type=float)
@click.option("--dim", type=int)
@click.option("--batch-size", type=int)
@click.option("--eval-every", type=int)
@click.option("--seed", type=int)
@backend_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False))
@click.option("--processes", type=int)
@seeds_engine_options
@click.option("--no-plots", is_flag=True)
@quiet_option
def sweep(**kw):
    """Train AMR for every (ε, λ) from one VBPR checkpoint; pick the best by validation NDCG@10.

    Writes one JSON per setting and sweep.json into --out, then fig6_sweep_eps.png (test
    HR@10/NDCG@10 vs ε, one line per λ; when more than one ε) and fig7_sweep_lmd.png (vs λ,
    one line per ε; when more than one λ). For p-values against continued VBPR and the
    robustness of each setting, run the whole pipeline instead:
    ``amrlite experiment ... --set sweep.grid=true``."""


@command(commands.experiment)
@click.option("--data", type=click.Path())
@click.option("--split")
@click.option("--features")
@click.option("--normalize")
@click.option("--out", "out_dir", type=click.Path(file_okay=False))
@click.option("--quick", is_flag=True)
@backend_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False))
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE")
@seeds_engine_options
@click.option("--no-plots", is_flag=True)
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
        click.option("--batch", type=click.IntRange(min=1)),
        click.option("--out", type=click.Path(dir_okay=False),
                     help=f"Output: .npz (ids and features) for raw ids; .npy (row i = item "
                          f"i) for a native folder's item indices. Default: "
                          f"features-{name}.npz/.npy in --data, else beside the input."),
        click.option("--overwrite", is_flag=True, help="Replace features made with another recipe."),
        click.option("--device", help="torch device. Default: cuda when available, else cpu."),
        quiet_option)


@command(commands.features_image, "image", features)
@features_options("image")
@click.option("--photos", type=click.Path())
@click.option("--images", "images_csv")
@click.option("--path-col")
@click.option("--items", "items_path", type=click.Path(dir_okay=False))
@click.option("--model")
@click.option("--strict", is_flag=True)

def features_image(**kw):
    """Image features (CNN, global average pool) of every item; resumable.

    \b
    amrlite features image --photos photos/ --out features-image.npz
    amrlite features image --images images.csv --item-col sku --path-col file
    amrlite features image --data DIR          (native: DIR/images.csv → DIR/features-image.npy)
    """


@command(commands.features_text, "text", features)
@features_options("text")
@click.option("--items", "items_csv")
@click.option("--columns")
@click.option("--template")
@click.option("--model")
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
