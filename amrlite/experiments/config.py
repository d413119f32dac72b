"""The experiment's configuration as a typed structure: :class:`ExperimentConfig` and its
sections (:class:`StageSettings`, :class:`Stages`, :class:`AttackSettings`,
:class:`PixelAttackSettings`, :class:`SweepSettings`), the :data:`QUICK` smoke-run changes,
how overrides are checked and merged (:func:`check_overrides`, :func:`experiment_config`,
:func:`make_config`), the parsers of ``--set KEY=VALUE``, of configuration files
(:func:`read_config_file`) and of comma-separated number lists.

Why dataclasses (the standard library) and not pydantic or attrs: the structure is small and
flat, the checks it needs — a key must exist, a value must have the field's type, a few
strings come from a fixed set — are one short recursive function over the type hints
(:func:`check_overrides`), and amrlite's core dependencies stay NumPy, Numba, SciPy and click.
:class:`amrlite.train.TrainConfig`, which every stage's settings end in, is a dataclass too,
so a stage's keys are generated from it (:class:`StageSettings`) rather than written twice.

Every user-facing error is one line naming the key: an unknown key names the nearest valid one
(``stages.amr.epz: no such key; did you mean stages.amr.eps?``), a value of the wrong type the
expected type (``sweep.grid=ture: expected a boolean (true/false)``)."""
from __future__ import annotations

import copy
import difflib
import json
import math
import typing
from dataclasses import dataclass, field, fields, is_dataclass, make_dataclass
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from ..errors import AmrliteError, option_error
from ..train import TrainConfig

#: the metrics summarised per model (curves, warm/cold rows, sweeps, paired tests)
SUMMARY = ("HR@10", "NDCG@10")


def _help(text, default=None, factory=None):
    """A field with a one-line description (``metadata["help"]``, shown in the key table)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


#: one stage's own settings: every :class:`amrlite.train.TrainConfig` field, None where the
#: stage takes the shared value (``dim``, ``reg``, ...) or the library's default for its kind
StageSettings = make_dataclass(
    "StageSettings",
    [(f.name, Optional[typing.get_type_hints(TrainConfig)[f.name]],
      field(default=None, metadata={"help": f"TrainConfig.{f.name}"}))
     for f in fields(TrainConfig)],
    namespace={"__doc__": "One stage's settings: any :class:`amrlite.train.TrainConfig` field "
                          "(None: the shared value, or the library's default for the "
                          "stage's model kind)."})
StageSettings.__module__ = __name__          # picklable by name, documented here


def _stage(**values):
    return lambda: StageSettings(**values)


@dataclass
class Stages:
    """The settings of each model stage (over the shared ``dim``, ``batch_size``, ``reg``,
    ``seed`` and ``negative_pool``)."""

    mf: StageSettings = _help("MF-BPR", factory=_stage(epochs=300, lr=0.05))
    duif: StageSettings = _help("DUIF", factory=_stage(epochs=300, lr=0.05))
    vbpr: StageSettings = _help("VBPR pre-training", factory=_stage(epochs=300, lr=0.05))
    vbpr_cont: StageSettings = _help("continued VBPR (from the VBPR checkpoint)",
                                     factory=_stage(epochs=200, lr=0.01))
    amr: StageSettings = _help("AMR (from the VBPR checkpoint)",
                               factory=_stage(epochs=200, lr=0.01, eps=1.0, lmd=1.0))
    # ALS converges in few sweeps. Its λ is the library's eALS default
    # (amrlite.models.KIND_DEFAULTS, as for ``amrlite fit --model eals``), not the shared BPR
    # ``reg``; set ``stages.eals.reg`` to override it.
    eals: StageSettings = _help("MF-eALS (reg: the library's eALS default unless set)",
                                factory=_stage(epochs=20))


@dataclass
class AttackSettings:
    """Table 3: the attacks on continued VBPR and AMR. Kinds: adversarial (one FGM step), pgd
    (``pgd_steps`` projected steps), random, certified (the guaranteed lower bound); random and
    certified do not depend on the objective."""

    eps: list[float] = _help("attack radii ε",
                             factory=lambda: [0.05, 0.1, 0.2, 0.5, 1.0, 2.0])
    kinds: list[Literal["adversarial", "pgd", "random", "certified"]] = _help(
        "attack kinds", factory=lambda: ["adversarial", "pgd", "random", "certified"])
    objectives: list[Literal["test", "train"]] = _help("attacked objectives",
                                                       factory=lambda: ["test", "train"])
    repeats: int = _help("draws of the random attack", 5)
    pgd_steps: int = _help("steps of the pgd attack", 5)


@dataclass
class PixelAttackSettings:
    """The pixel-level attack (Fig. 1), run when the features include ``image``, torch and the
    encoder are installed and the data folder has images.csv: L∞ radii in [0, 1] pixel space,
    1 step (FGSM) and PGD, the positives' images of the first ``rows`` test rows."""

    enabled: bool = _help("run it (when it can run)", True)
    eps: list[float] = _help("L∞ radii in [0, 1] pixel space",
                             factory=lambda: [1 / 255, 2 / 255, 4 / 255, 8 / 255, 0.007])
    steps: list[int] = _help("attack steps (1: FGSM)", factory=lambda: [1, 3])
    rows: int = _help("test rows attacked", 100)
    target: Literal["positive", "negatives"] = _help("whose images are perturbed", "positive")
    batch: int = _help("images per encoder batch", 16)
    figure_eps: float = _help("the radius of the Fig.-1 picture", 8 / 255)
    figure_steps: int = _help("the steps of the Fig.-1 picture", 3)


@dataclass
class SweepSettings:
    """Figs. 6, 7: one-axis sweeps around the AMR stage's (ε, λ); ``grid``: also the full
    ``grid_eps × grid_lmd`` grid (a heatmap and a grid table). Every setting is tested against
    continued VBPR (paired, test rows) and attacked at ``attack_eps``."""

    eps: list[float] = _help("ε values (λ: the AMR stage's)",
                             factory=lambda: [0.1, 0.2, 0.5, 1.0, 2.0])
    lmd: list[float] = _help("λ values (ε: the AMR stage's)", factory=lambda: [0.1, 1.0, 10.0])
    processes: Optional[int] = _help("local worker processes (default: one per core)", None)
    grid: bool = _help("also the full grid_eps × grid_lmd grid", False)
    grid_eps: list[float] = _help("ε values of the grid",
                                  factory=lambda: [0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0])
    grid_lmd: list[float] = _help("λ values of the grid",
                                  factory=lambda: [0.1, 0.3, 1.0, 3.0, 10.0])
    attack_eps: float = _help("ε of each setting's adversarial attack", 0.1)


@dataclass
class ExperimentConfig:
    """The configuration of :func:`~amrlite.experiments.run_experiment`: the values shared by
    every model stage, the selection rule, and one section per part of the pipeline."""

    dim: int = _help("K, the latent dimension", 64)
    batch_size: int = _help("triples per mini-batch", 512)
    reg: float = _help("β, L2 on the rows a triple touches (not eALS's λ)", 1e-3)
    seed: int = _help("the base seed (seed index 0 of --seeds)", 0)
    negative_pool: Literal["warm", "all"] = _help(
        "where BPR draws its negatives: items seen in training, or the whole catalogue",
        "warm")
    select: Literal["valid", "final"] = _help(
        "valid: the epoch with the best validation NDCG@10; final: the last epoch", "final")
    eval_every: int = _help("validation (and, for the curves, test) every N epochs", 10)
    vbpr_init: Literal["scratch", "mf"] = _help("VBPR pre-training from scratch or from MF-BPR",
                                                "scratch")
    processes: Optional[int] = _help(
        "worker processes of the seeds' chains (default: one per core, at most one per seed; "
        "1: this process); --engine ray without --address: the local cluster's CPUs", None)
    stages: Stages = _help("per-stage settings", factory=Stages)
    attack: AttackSettings = _help("Table 3's attacks", factory=AttackSettings)
    rank_change_eps: float = _help("ε of the rank change under attack (Fig. 5)", 1.0)
    pixel_attack: PixelAttackSettings = _help("the pixel-level attack (Fig. 1)",
                                              factory=PixelAttackSettings)
    sweep: SweepSettings = _help("the ε / λ sweeps (Figs. 6, 7)", factory=SweepSettings)

    def to_dict(self):
        """The configuration as nested plain dicts (a stage's unset settings left out): what
        the pipeline reads, what ``config.json`` and every stage key hold."""
        return _plain(self)

    @classmethod
    def from_dict(cls, d, source=None):
        """A configuration from a nested dict of (some of) its keys, the rest at their
        defaults; every key and value checked (:func:`check_overrides`)."""
        return _build(cls, check_overrides(d, source, cls))


def _plain(obj):
    if is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj)
                if not (isinstance(obj, StageSettings) and getattr(obj, f.name) is None)}
    return copy.deepcopy(obj)


def _build(cls, values):
    """An instance of ``cls`` from checked ``values`` (sections merged over their defaults)."""
    hints = typing.get_type_hints(cls)
    base = cls()
    kw = {}
    for f in fields(cls):
        if f.name not in values:
            continue
        v = values[f.name]
        if is_dataclass(hints[f.name]):
            default = _plain(getattr(base, f.name))
            v = _build(hints[f.name], deep_merge(default, v))
        kw[f.name] = v
    return cls(**kw)


# ---------------------------------------------------------------------------- checking
def _value_text(value):
    """How a value reads in a message: text as typed on the command line, the rest as JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _type_text(tp):
    """What a type hint expects, in words."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union:
        inner = [a for a in args if a is not type(None)]
        return " or ".join(_type_text(a) for a in inner) + " or null"
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in args)
    if origin is list:
        if args[0] is float:
            return "a list of numbers (e.g. [0.1, 1])"
        if args[0] is int:
            return "a list of integers (e.g. [1, 3])"
        return f"a list, each {_type_text(args[0])}"
    if is_dataclass(tp):
        return "a table of settings"
    return {bool: "a boolean (true/false)", int: "an integer", float: "a number",
            str: "a string"}[tp]


def _coerce(value, tp, key):
    """``value`` as type ``tp`` (ints are numbers; nothing else is converted), or a one-line
    :class:`AmrliteError` naming ``key`` and the expected type."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)

    def bad():
        return AmrliteError(f"{key}={_value_text(value)}: expected {_type_text(tp)}")
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            try:
                return _coerce(value, inner[0], key)
            except AmrliteError:
                raise bad() from None
        raise bad()
    if origin is Literal:
        if isinstance(value, str) and value in args:
            return value
        raise bad()
    if origin is list:
        if not isinstance(value, list):
            raise bad()
        try:
            return [_coerce(v, args[0], f"{key}[{k}]") for k, v in enumerate(value)]
        except AmrliteError:
            raise bad() from None
    if is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad()
        return check_overrides(value, cls=tp, _prefix=f"{key}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    raise bad()


def config_keys(section=None, prefix=""):
    """Every key of the configuration: ``[(dotted key, type hint, default, help)]``, in the
    order of the dataclasses' fields (sections expanded; a stage lists the settings it sets
    and a line for any other TrainConfig field)."""
    section = ExperimentConfig() if section is None else section
    hints, out = typing.get_type_hints(type(section)), []
    for f in fields(section):
        tp, value = hints[f.name], getattr(section, f.name)
        if isinstance(section, StageSettings) and value is None:
            continue
        if is_dataclass(tp):
            out += config_keys(value, f"{prefix}{f.name}.")
            if tp is StageSettings:
                out.append((f"{prefix}{f.name}.*", None, None,
                             "any other amrlite.train.TrainConfig field (unset: the shared "
                             "value, or the default of the stage's model kind)"))
        else:
            out.append((f"{prefix}{f.name}", tp, value, f.metadata.get("help", "")))
    return out


def _all_keys(cls, prefix=""):
    """Every valid dotted key under ``cls`` (sections and their keys)."""
    hints, out = typing.get_type_hints(cls), []
    for f in fields(cls):
        out.append(prefix + f.name)
        if is_dataclass(hints[f.name]):
            out += _all_keys(hints[f.name], f"{prefix}{f.name}.")
    return out


def _unknown(key, cls, prefix):
    """The one-line error of an unknown ``key``, naming the nearest valid one."""
    here = [prefix + f.name for f in fields(cls)]
    near = (difflib.get_close_matches(key, here, n=1, cutoff=0.6)
            or difflib.get_close_matches(key, _all_keys(ExperimentConfig), n=1, cutoff=0.6))
    hint = f"did you mean {near[0]}?" if near else "valid keys here: " + ", ".join(here)
    return AmrliteError(f"{key}: no such key; {hint}")


def check_overrides(overrides, source=None, cls=None, *, _prefix=""):
    """The overrides ``overrides`` (a nested dict of some keys) checked against the typed
    configuration ``cls`` (default :class:`ExperimentConfig`), with ints taken as numbers where a
    number is expected. Returns the checked nested dict.

    Raises
    ------
    AmrliteError
        One line, prefixed with ``source`` (e.g. the configuration file) when given: an unknown
        key names the nearest valid key, a wrong value the expected type.
    """
    cls = cls or ExperimentConfig
    if overrides is None:
        return {}
    try:
        if not isinstance(overrides, dict):
            raise AmrliteError(f"{_prefix.rstrip('.') or 'the configuration'}: expected a table "
                               f"of settings, got {_value_text(overrides)}")
        hints, out = typing.get_type_hints(cls), {}
        for k, v in overrides.items():
            key = f"{_prefix}{k}"
            if k not in hints:
                raise _unknown(key, cls, _prefix)
            out[k] = _coerce(v, hints[k], key)
        if cls is StageSettings:
            _check_stage(out, _prefix)
        return out
    except AmrliteError as exc:
        if source is None:
            raise
        raise AmrliteError(f"{source}: {exc}") from None


def _check_stage(values, prefix):
    """A stage's values go through :meth:`amrlite.train.TrainConfig.validate` (ranges, choices)."""
    try:
        TrainConfig(**values).validate()
    except AmrliteError as exc:
        raise AmrliteError(f"{prefix.rstrip('.')}: {exc}") from None


# ---------------------------------------------------------------------------- resolving
#: defaults of :func:`~amrlite.experiments.run_experiment` as nested dicts
#: (``ExperimentConfig().to_dict()``; ``stages`` hold per-stage overrides of the shared values)
DEFAULTS = ExperimentConfig().to_dict()

#: what ``quick=True`` changes (a smoke run: minutes become seconds)
QUICK = {
    "eval_every": 2,
    "stages": {
        "mf": {"epochs": 6}, "duif": {"epochs": 6}, "vbpr": {"epochs": 6},
        "vbpr_cont": {"epochs": 4}, "amr": {"epochs": 4}, "eals": {"epochs": 3},
    },
    "attack": {"eps": [0.5, 1.0], "repeats": 1, "objectives": ["test"], "pgd_steps": 2},
    "sweep": {"eps": [0.1, 1.0], "lmd": [1.0], "processes": 1},
    "pixel_attack": {"eps": [0.007], "steps": [1], "rows": 4, "figure_steps": 1},
}


def seed_for(base, index):
    """The seed of run ``index`` (0, 1, ...) of a multi-seed experiment with base seed ``base``.

    Index 0 is ``base`` itself, so ``--seeds 1`` is exactly the single-seed run (and a
    multi-seed run reuses its stages); index k > 0 is the first 31-bit word of NumPy's
    ``SeedSequence([base, k])``: fixed by (base, k) alone, whatever ran it, and well separated
    from ``base + k`` (seeds 0, 1, 2 of a user's own runs do not collide with ours)."""
    base, index = int(base), int(index)
    if index < 0:
        raise AmrliteError(f"seed index {index}: must be >= 0")
    if index == 0:
        return base
    return int(np.random.SeedSequence([base, index]).generate_state(1)[0] & 0x7FFFFFFF)


def deep_merge(base, override):
    """A copy of ``base`` with ``override`` merged in (dicts recursively, everything else replaced)."""
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def experiment_config(*, quick=False, overrides=None, source=None):
    """The typed configuration of :func:`~amrlite.experiments.run_experiment`.

    Parameters
    ----------
    quick : bool
        Merge :data:`QUICK` over the defaults (a smoke run).
    overrides : dict or ExperimentConfig, optional
        A nested dict merged last, e.g. ``{"stages": {"amr": {"eps": 0.5}}}`` (checked:
        :func:`check_overrides`), or a whole configuration (then ``quick`` is ignored).
    source : str, optional
        Where ``overrides`` come from, named in an error (a file, ``--set``).

    Returns
    -------
    ExperimentConfig

    Raises
    ------
    AmrliteError
        An unknown key (naming the nearest valid one) or a value of the wrong type or out of
        range (naming the expected type), in one line.
    """
    if isinstance(overrides, ExperimentConfig):
        return copy.deepcopy(overrides)
    checked = check_overrides(overrides, source)
    return _build(ExperimentConfig, deep_merge(QUICK if quick else {}, checked))


def make_config(*, quick=False, overrides=None, source=None):
    """:func:`experiment_config` as nested plain dicts (:meth:`ExperimentConfig.to_dict`): what
    the pipeline reads and stores in ``config.json``. Same parameters and errors."""
    return experiment_config(quick=quick, overrides=overrides, source=source).to_dict()


def parse_set(items, param="settings"):
    """``["stages.amr.eps=0.5", "select=valid"]`` → a nested override dict (values JSON or text;
    checked later against the typed configuration, :func:`check_overrides`). ``param``: the
    parameter that gave ``items`` (named in an error)."""
    out = {}
    for item in items or ():
        if "=" not in item:
            raise option_error(param, "expected KEY=VALUE (e.g. stages.amr.eps=0.5)", repr(item))
        key, value = item.split("=", 1)
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
        node = out
        parts = key.strip().split(".")
        for k, p in enumerate(parts[:-1]):
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise option_error(param, f"{'.'.join(parts[:k + 1])} is given a value and keys",
                                   repr(item))
        node[parts[-1]] = value
    return out


def read_config_file(path):
    """The overrides in a configuration file: JSON (``.json`` or any other name) or TOML
    (``.toml``), checked against the typed configuration (:func:`check_overrides`, errors
    prefixed with the file's path)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise AmrliteError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if path.suffix.lower() == ".toml":
        try:
            import tomllib
        except ImportError:                      # Python 3.10
            raise AmrliteError(f"{path}: TOML needs Python >= 3.11; use JSON") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise AmrliteError(f"{path}: not valid TOML ({exc})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AmrliteError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise AmrliteError(f"{path}: expected a JSON object (a table of settings)")
    return check_overrides(data, str(path))


def key_table():
    """The Markdown table of every configuration key, its type and default (the docs' table,
    generated from the dataclasses)."""
    def short(v):                         # 8/255 as 0.031373, not 0.03137254901960784
        return [short(x) for x in v] if isinstance(v, list) else (
            round(v, 6) if isinstance(v, float) else v)
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, tp, d, h in config_keys():
        typ, default = ("", "") if tp is None else (_type_text(tp), f"`{json.dumps(short(d))}`")
        rows.append(f"| `{key}` | {typ} | {default} | {h} |")
    return "\n".join(rows)


def parse_float_list(text, param):
    """``"0.01,0.1,1"`` → ``[0.01, 0.1, 1.0]``; a one-line error naming the parameter ``param``
    (that gave ``text``) for anything else."""
    if isinstance(text, (list, tuple)):
        return [float(x) for x in text]
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [float(p) for p in parts if p]
    except ValueError:
        raise option_error(param, "expected comma-separated numbers, e.g. 0.01,0.1,1",
                           repr(text)) from None
    if not values:
        raise option_error(param, "empty list", "")
    bad = [v for v in values if not (math.isfinite(v) and v >= 0)]
    if bad:
        raise option_error(param, f"values must be finite and >= 0 (got {bad[0]})", repr(text))
    return values
