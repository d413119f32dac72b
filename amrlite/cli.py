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
from click import Choice, option
from click.core import ParameterSource

from . import commands
from .commands import Note
from .containers import Dataset
from .data import load_dataset
from .errors import AmrliteError, OptionError
from .train import TrainConfig
from .version import __version__

FILE, DIR = click.Path(dir_okay=False), click.Path(file_okay=False)
#: library parameter -> command-line flag, where it is no option of the command and the flag is
#: not ``--`` + the name with dashes (the one place where parameters become flags)
FLAGS = {"n_negatives": "--negatives", "path": "--data", "init": "--init", "items": "--items",
         "max_per_user": "--sparse", "data_dir": "--data", "images_csv": "--images",
         "items_csv": "--items"}


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


def command(fn, *opts, name=None, group=cli, prepare=None):
    """The command ``name`` (default: ``fn``'s name with dashes) of ``group`` with the options
    ``opts``, calling ``fn`` with them (mapped by ``prepare(keywords)`` where given) and
    printing what it yields; its return value is the exit status. The command's help is
    ``fn``'s docstring up to its Parameters; each option takes ``fn``'s default and, where it
    has none, its help from the Parameters."""
    defaults = {k: p.default for k, p in inspect.signature(fn).parameters.items()
                if p.default is not inspect.Parameter.empty}
    helps = param_helps(fn)

    def run(**kw):
        lines = fn(**(prepare(kw) if prepare else kw))
        while True:
            try:
                line = next(lines)
            except StopIteration as stop:
                if stop.value:
                    sys.exit(stop.value)
                return
            click.echo(line, err=isinstance(line, Note))
    run = options(*opts)(run)
    for p in run.__click_params__:
        if p.name in defaults and isinstance(p, click.Option) and not p.required:
            p.default, p.show_default = defaults[p.name], True
            if p.type is click.STRING and type(p.default) in (int, float):
                p.type = click.INT if type(p.default) is int else click.FLOAT
        if isinstance(p, click.Option) and p.help is None:
            p.help = helps.get(p.name)
    doc = inspect.cleandoc(fn.__doc__).partition("\n\nParameters\n----------\n")[0]
    return group.command(name or fn.__name__.replace("_", "-"), help=doc)(run)


def options(*opts):
    """Several click options (or arguments) as one decorator."""
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
        ("--negatives", "negatives", dict(type=click.IntRange(min=0)),
         lib_default(Dataset.split, "n_negatives")),
        ("--split-seed", "split_seed", dict(type=int), lib_default(Dataset.split, "seed")),
        ("--features", "features", {}, None),
        ("--normalize", "normalize", {}, lib_default(load_dataset, "normalize")),
        ("--items", "items_path", dict(type=FILE), None),
        ("--missing-features", "missing_features", dict(type=Choice(["error", "zero"])),
         lib_default(load_dataset, "missing_features")),
        ("--user-col", "user_col", {}, None), ("--item-col", "item_col", {}, None),
        ("--rating-col", "rating_col", {}, None), ("--time-col", "time_col", {}, None),
        ("--min-rating", "min_rating", dict(type=float), None),
        ("--k-core", "k_core", dict(type=click.IntRange(min=1), metavar="N"), None),
        ("--id-order", "id_order", dict(type=Choice(["first", "sorted"])),
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
    return options(*(option(flag, name, help=helps[name] + default(name, fit_default), **kw)
                     for flag, name, kw, fit_default in DATA))


data_options, model_data_options = _data_options(False), _data_options(True)
backend_option = option("--backend", type=Choice(["auto", "numpy", "numba", "cupy"]),
                              help="auto = cupy with a CUDA GPU, else numba.")
quiet_option = option("-q", "--quiet", is_flag=True, help="No progress bar.")
on_option = option("--on", type=Choice(["test", "valid"]))
full_ranking_option = option("--full-ranking", is_flag=True,
                                   help="Rank against all items not in training.")
model_path = click.argument("model_path", type=FILE)


def metrics_out_option(help_=None):
    return option("--metrics-out", type=FILE, help=help_)


def seeds_engine_options(f):
    """``--seeds``, ``--engine`` and ``--address`` of ``sweep`` and ``experiment``."""
    return options(
        option("--seeds", type=click.IntRange(min=1),
                     help="Runs per setting, seed index 0 being --seed (or the config's seed); "
                          "results as mean ± 95% CI."),
        option("--engine", type=Choice(["local", "ray"]),
                     help="Where the tasks run (experiment: each seed's model chain, then each "
                          "sweep setting × seed; sweep: each setting × seed): local processes, "
                          "or Ray (pip install -e '.[cluster]')."),
        option("--address", metavar="ADDRESS",
                     help="--engine ray: the cluster to join (auto, HOST:6379, ray://HOST:10001);"
                          " default: a local cluster started here."))(f)


# ---------------------------------------------------------------------------- fit
#: the hyper-parameter options of ``fit``: TrainConfig field -> help (the type and the default
#: shown are the field's; only the values given are passed on, the kind's defaults fill the rest)
HYPER = {
    "epochs": "Epochs (of every stage of the pre-training chain).",
    "dim": "Embedding size K (with --init: the K of that model).", "batch_size": "Triples per mini-batch.",
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
    option("--" + k.replace("_", "-"), k, default=_FIELDS[k].default, help=h, show_default=True,
           type=Choice(CHOICES[k]) if k in CHOICES else type(_FIELDS[k].default))
    for k, h in HYPER.items()))


def _fit_keywords(kw):
    """The keywords of commands.fit from fit's options: the hyper-parameters given."""
    ctx = click.get_current_context()
    hyper = {k: kw.pop(k) for k in HYPER}
    given = {k for k in hyper if ctx.get_parameter_source(k) is not ParameterSource.DEFAULT}
    return dict(kw, hyper={k: hyper[k] for k in given})


fit = command(commands.fit, data_options,
              option("--model", "kind", type=Choice(["pop", "mf", "duif", "vbpr", "amr", "eals"])),
              option("--form", type=Choice(["eq4", "hm"])),
              option("--init", "init_path", type=FILE), option("--pretrain/--no-pretrain"),
              option("--epochs-from", "epochs_from", type=FILE, metavar="MODEL.npz"), hyper_options,
              backend_option,
              option("--full-ranking", is_flag=True,
                     help="Test against all items, not the sampled negatives."),
              option("--out", type=FILE), metrics_out_option(),
              option("--log", "log_path", type=FILE), quiet_option, prepare=_fit_keywords)


evaluate = command(commands.evaluate, model_path, model_data_options, full_ranking_option,
                   on_option, backend_option, metrics_out_option())


recommend = command(commands.recommend, model_path, option("--users", metavar="all|FILE|ID[,ID…]"),
                    option("--user"), option("-n", "n", type=click.IntRange(min=1)),
                    option("--exclude", type=Choice(["seen", "none"])),
                    option("--include-seen", is_flag=True),
                    option("--candidates", metavar="all|new|FILE"),
                    option("--unknown", type=Choice(["popular", "error"])),
                    option("--format", "fmt", type=Choice(["csv", "jsonl", "parquet"])),
                    option("--out", type=FILE), option("--titles", "titles_path", type=FILE),
                    option("--title-col"), option("--chunk-size", type=click.IntRange(min=1)),
                    backend_option, quiet_option)


add_items = command(commands.add_items, model_path,
                    option("--features", "features_spec", required=True),
                    option("--out", type=FILE, required=True))


gradcheck = command(commands.gradcheck,
                    option("--model", "kind", type=Choice(["all", "mf", "duif", "vbpr", "amr"])),
                    option("--form", type=Choice(["both", "eq4", "hm"])), backend_option,
                    option("--seed"))


attack = command(commands.attack, model_path, model_data_options, option("--eps", "eps_text"),
                 option("--kind"), option("--objective"), option("--steps"), option("--repeats"),
                 option("--seed"), on_option, full_ranking_option, metrics_out_option())


attack_images = command(commands.attack_images, model_path, model_data_options,
                        option("--eps", "eps_text"), option("--steps", type=click.IntRange(min=1)),
                        option("--rows", type=click.IntRange(min=1)),
                        option("--target", type=Choice(["positive", "negatives"])),
                        option("--batch", type=click.IntRange(min=1)),
                        option("--out", "out_dir", type=DIR),
                        option("--figure-model", "figure_models", multiple=True, type=FILE),
                        metrics_out_option(), option("--photos", type=click.Path()),
                        option("--images", "images_csv", type=FILE), option("--image-id-col"),
                        option("--path-col"), option("--titles", "titles_path", type=FILE),
                        option("--title-col"))


compare = command(commands.compare, click.argument("model_a", type=FILE),
                  click.argument("model_b", type=FILE), model_data_options, on_option,
                  full_ranking_option, metrics_out_option())


sweep = command(commands.sweep, data_options, option("--model", "kind", type=Choice(["amr"])),
                option("--init", "init_path", type=FILE, required=True),
                option("--eps", "eps_list"), option("--lmd", "lmd_list"), option("--epochs"),
                option("--lr"), option("--reg"), option("--dim", type=int), option("--batch-size"),
                option("--eval-every"), option("--seed"), backend_option,
                option("--out", "out_dir", type=DIR), option("--processes", type=int),
                seeds_engine_options, option("--no-plots", is_flag=True), quiet_option)


experiment = command(commands.experiment, option("--data", type=click.Path()), option("--split"),
                     option("--features"), option("--normalize"),
                     option("--out", "out_dir", type=DIR), option("--quick", is_flag=True),
                     backend_option, option("--config", "config_path", type=FILE),
                     option("--set", "settings", multiple=True, metavar="KEY=VALUE"),
                     seeds_engine_options, option("--no-plots", is_flag=True),
                     option("-q", "--quiet", is_flag=True, help="No progress output."))


# ---------------------------------------------------------------------------- features
@cli.group()
def features():
    """Deep item features from raw inputs (extras: amrlite[images], amrlite[text])."""


def features_options(name):
    """The options both ``features`` commands share (--data, --item-col, --batch, --out, …)."""
    return options(
        option("--data", "data_dir", type=click.Path(file_okay=False, exists=True),
                     help="A data folder: its tables are read from there and the output "
                          "written there (not needed with raw ids)."),
        option("--item-col", help="The item id column (default: item, item_id, id, sku, "
                                        "asin, product_id …): features keyed by raw id, written "
                                        "as .npz."),
        option("--batch", type=click.IntRange(min=1)),
        option("--out", type=FILE,
                     help=f"Output: .npz (ids and features) for raw ids; .npy (row i = item "
                          f"i) for a native folder's item indices. Default: "
                          f"features-{name}.npz/.npy in --data, else beside the input."),
        option("--overwrite", is_flag=True, help="Replace features made with another recipe."),
        option("--device", help="torch device. Default: cuda when available, else cpu."),
        quiet_option)


features_image = command(commands.features_image, features_options("image"),
                         option("--photos", type=click.Path()), option("--images", "images_csv"),
                         option("--path-col"), option("--items", "items_path", type=FILE),
                         option("--model"), option("--strict", is_flag=True), name="image",
                         group=features)


features_text = command(commands.features_text, features_options("text"),
                        option("--items", "items_csv"), option("--columns"), option("--template"),
                        option("--model"), name="text", group=features)


def main():
    cli(prog_name="amrlite")


if __name__ == "__main__":
    main()
