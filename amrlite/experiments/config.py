"""The experiment's configuration: :data:`DEFAULTS`, the :data:`QUICK` smoke-run changes, how
overrides merge (:func:`deep_merge`, :func:`make_config`) and the parsers of ``--set KEY=VALUE``
and comma-separated number lists used by the CLI."""
from __future__ import annotations

import copy
import json
import math

from ..errors import AmrliteError

#: the metrics summarised per model (curves, warm/cold rows, sweeps, paired tests)
SUMMARY = ("HR@10", "NDCG@10")

#: defaults of :func:`~amrlite.experiments.run_experiment` (``stages`` hold per-stage
#: overrides of the shared values)
DEFAULTS = {
    "dim": 64, "batch_size": 512, "reg": 1e-3, "seed": 0,
    # where BPR draws its negatives (amrlite.train.TrainConfig.negative_pool): "warm" (items seen in
    # training; unseen items scored by content alone) or "all" (the whole catalogue)
    "negative_pool": "warm",
    # "valid": keep the epoch with the best validation NDCG@10; "final": the last epoch
    "select": "final",
    "eval_every": 10,              # validation (and, for the curves, test) every N epochs
    "vbpr_init": "scratch",        # VBPR pre-training from "scratch" or from "mf"
    # the local engine's worker processes for the seeds' chains (default: one per core, at most
    # one per seed; 1: this process); with --engine ray and no --address, the CPUs of the
    # local cluster started for the chains and the sweeps
    "processes": None,
    "stages": {
        "mf": {"epochs": 300, "lr": 0.05},
        "duif": {"epochs": 300, "lr": 0.05},
        "vbpr": {"epochs": 300, "lr": 0.05},
        "vbpr_cont": {"epochs": 200, "lr": 0.01},
        "amr": {"epochs": 200, "lr": 0.01, "eps": 1.0, "lmd": 1.0},
        # ALS converges in few sweeps. Its λ is the library's eALS default
        # (amrlite.models.KIND_DEFAULTS, as for ``amrlite fit --model eals``), not the shared
        # BPR ``reg`` above; set ``stages.eals.reg`` to override it.
        "eals": {"epochs": 20},
    },
    # kinds: adversarial (one FGM step), pgd (``pgd_steps`` projected steps), random, certified
    # (the guaranteed lower bound); random and certified do not depend on the objective
    "attack": {"eps": [0.05, 0.1, 0.2, 0.5, 1.0, 2.0],
               "kinds": ["adversarial", "pgd", "random", "certified"],
               "objectives": ["test", "train"], "repeats": 5, "pgd_steps": 5},
    "rank_change_eps": 1.0,
    # the pixel-level attack (Fig. 1), run when the features include "image", torch and the
    # encoder are installed and the data folder has images.csv: L∞ radii in [0, 1] pixel space
    # (1, 2, 4, 8 / 255 and 0.007), 1 step (FGSM) and PGD, the positives' images of the first
    # ``rows`` test rows; ``figure_eps``: the radius of the Fig.-1 picture
    "pixel_attack": {"enabled": True, "eps": [1 / 255, 2 / 255, 4 / 255, 8 / 255, 0.007],
                     "steps": [1, 3], "rows": 100, "target": "positive", "batch": 16,
                     "figure_eps": 8 / 255, "figure_steps": 3},
    # eps/lmd: one-axis sweeps (Figs. 6, 7) around the AMR stage's (ε, λ); grid: also the full
    # grid_eps × grid_lmd grid (``--set sweep.grid=true``; a heatmap and a grid table). Every
    # setting is tested against continued VBPR (paired, test rows) and attacked at attack_eps.
    "sweep": {"eps": [0.1, 0.2, 0.5, 1.0, 2.0], "lmd": [0.1, 1.0, 10.0], "processes": None,
              "grid": False, "grid_eps": [0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0],
              "grid_lmd": [0.1, 0.3, 1.0, 3.0, 10.0], "attack_eps": 0.1},
}

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
    import numpy as np
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


def make_config(*, quick=False, overrides=None):
    """The configuration of :func:`~amrlite.experiments.run_experiment`.

    Parameters
    ----------
    quick : bool
        Merge :data:`QUICK` over :data:`DEFAULTS` (a smoke run).
    overrides : dict, optional
        A nested dict merged last, e.g. ``{"stages": {"amr": {"eps": 0.5}}}``.

    Returns
    -------
    dict
        A new nested configuration dict (the defaults are not modified).

    Raises
    ------
    AmrliteError
        When ``select`` is not ``"valid"``/``"final"`` or ``vbpr_init`` not ``"scratch"``/``"mf"``.
    """
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
