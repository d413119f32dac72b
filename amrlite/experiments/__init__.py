"""The paper's experiments, one call (or one ``amrlite experiment``) away on any data set folder.

* :func:`sweep` — AMR for each (ε, λ) from one VBPR checkpoint, in parallel processes, best by
  validation NDCG@10, one JSON per setting (a rerun skips settings already done).
* :func:`training_curves` — continued VBPR vs AMR from the same checkpoint, validation *and*
  test HR@10/NDCG@10 every N epochs, plus the MF-BPR line (Fig. 3).
* :func:`run_experiment` — the whole pipeline: POP, MF-eALS, MF-BPR, DUIF, VBPR, continued VBPR,
  AMR; Table 2 (with paired significance marks), Table 3 (attacks), Fig. 3, 5, 6, 7 and a
  ``report.md``. Every sweep setting is tested against continued VBPR (paired p-values, clean
  NDCG@10 cost, NDCG@10 drop under the adversarial attack at ``sweep.attack_eps``);
  ``sweep.grid = true`` adds the full ε × λ grid (table and heatmap). Every trained model is
  saved in ``out_dir/models`` and every stage's result is written atomically to
  ``out_dir/stages/<stage>.json`` under a content key (data, features, split and negatives,
  configuration, the content of the models it used, amrlite version); a rerun loads what is
  stored under the current key instead of recomputing it, and recomputes the rest.

The protocol of the defaults (:data:`DEFAULTS`) is the one of the PyTorch reference run on
ml100k ``split-sparse3``: K = 64, batch 512, Adagrad, loss summed over the batch, β = 1e-3,
VBPR from scratch (300 epochs, lr 0.05), then 200 more epochs (lr 0.01) of either VBPR
("continued VBPR", the fair baseline) or AMR (ε = 1, λ = 1) from that checkpoint.

``seeds = N`` (``--seeds N``) runs every stage per seed (seed index 0 is the configured seed,
so ``N = 1`` is the single-seed run) and reports mean ± 95% CI, the per-seed values and the
across-seed and pooled per-user tests with Holm's correction. Each seed's model chain
(models, significance, attacks) is one task and each sweep setting of each seed another, run
in local processes or, with ``engine = "ray"`` (``--engine ray [--address ADDRESS]``, the
``cluster`` extra), on Ray; the same seeds give the same numbers on either.

Modules: :mod:`.config` (the typed configuration :class:`~.config.ExperimentConfig`, checked
overrides, parsers, :func:`~.config.seed_for`), :mod:`.store` (strict JSON, content keys,
stage store), :mod:`.engine` (where tasks run: local processes or
Ray), :mod:`.sweep` (the ε × λ sweep and its extras), :mod:`.seeds` (statistics over seeds),
:mod:`.curves` (Fig. 3), :mod:`.figures` (figures with intervals), :mod:`.pipeline`
(:func:`run_experiment` as a sequence of stages), :mod:`.report` (``report.md``).
"""
from .config import (DEFAULTS, QUICK, ExperimentConfig, check_overrides, deep_merge,
                     experiment_config, make_config, parse_float_list, parse_set,
                     read_config_file, seed_for)
from .curves import fit_with_curve, training_curves
from .pipeline import run_experiment
from .report import make_report
from .store import read_json, write_json
from .sweep import sweep

__all__ = ["run_experiment", "sweep", "training_curves", "fit_with_curve", "make_config",
           "experiment_config", "ExperimentConfig", "check_overrides", "read_config_file",
           "deep_merge", "parse_set", "parse_float_list", "seed_for", "DEFAULTS", "QUICK",
           "make_report",
           "write_json", "read_json"]
