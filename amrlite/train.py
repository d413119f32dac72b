"""The backend-free training loop: epochs, evaluation schedule, best model, early stop, progress.

It talks to a backend module (see :mod:`amrlite.kernels`) through ``sample_epoch`` and
``train_epoch`` only, so the same loop drives NumPy, Numba and CuPy.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from .errors import AmrliteError


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (the CLI options of ``amrlite fit``).

    ``reg`` is β (L2 on the rows a triple touches), ``reg_e`` is β_E (L2 on E and w, once per
    batch; 0 as in the official code), ``eps`` the adversary's radius ε, ``lmd`` its weight λ.
    """

    dim: int = 64
    epochs: int = 20
    batch_size: int = 512
    lr: float = 0.05
    reg: float = 1e-3
    reg_e: float = 0.0
    eps: float = 0.1
    lmd: float = 1.0
    adversary: str = "grad"
    seed: int = 0
    eval_every: int = 1
    patience: int = 0
    dtype: str = "float32"
    init_std: float = 0.01

    def validate(self):
        checks = [
            ("dim", self.dim >= 1), ("epochs", self.epochs >= 0),
            ("batch_size", self.batch_size >= 1), ("lr", self.lr > 0),
            ("reg", self.reg >= 0), ("reg_e", self.reg_e >= 0), ("eps", self.eps >= 0),
            ("lmd", self.lmd >= 0), ("eval_every", self.eval_every >= 0),
            ("patience", self.patience >= 0), ("init_std", self.init_std > 0),
        ]
        for name, ok in checks:
            if not ok:
                raise AmrliteError(f"option --{name.replace('_', '-')}: invalid value "
                                   f"{getattr(self, name)!r}")
        if self.adversary not in ("grad", "sign", "random"):
            raise AmrliteError(f"option --adversary: {self.adversary!r} is not one of grad, sign, "
                               "random")
        if self.dtype not in ("float32", "float64"):
            raise AmrliteError(f"option --dtype: {self.dtype!r} is not float32 or float64")
        return self

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class History:
    """What a run did, epoch by epoch (evaluation time excluded from ``epoch_seconds``)."""

    losses: list = field(default_factory=list)
    epoch_seconds: list = field(default_factory=list)
    evaluations: list = field(default_factory=list)   # {"epoch": e, **metrics}
    best_epoch: int | None = None
    best_metrics: dict | None = None
    interrupted: bool = False
    stopped_early: bool = False


class Validation:
    """Validate every ``cfg.eval_every`` epochs, keep the best parameters by NDCG@10, and tell
    when ``cfg.patience`` validations in a row brought no improvement. Shared by every training
    loop (BPR here, eALS in :mod:`amrlite.eals`)."""

    def __init__(self, evaluate, cfg, history):
        self.evaluate, self.cfg, self.history = evaluate, cfg, history
        self.best = None
        self.since_best = 0

    def __call__(self, epoch, snapshot):
        """Validate after ``epoch`` if it is due; ``snapshot()`` returns host parameters.
        Returns the metrics, or None when no validation was due."""
        if self.evaluate is None or not self.cfg.eval_every or epoch % self.cfg.eval_every:
            return None
        params = snapshot()
        metrics = self.evaluate(params)
        h = self.history
        h.evaluations.append({"epoch": epoch, **metrics})
        if self.best is None or metrics["NDCG@10"] > h.best_metrics["NDCG@10"]:
            self.best, self.since_best = params, 0
            h.best_epoch, h.best_metrics = epoch, metrics
        else:
            self.since_best += 1
        return metrics

    def progress_info(self, loss, label="loss"):
        info = f"{label} {loss:.4g}"
        if self.history.best_metrics:
            info += f"  best NDCG@10 {self.history.best_metrics['NDCG@10']:.4f}"
        return info

    @property
    def should_stop(self):
        if self.cfg.patience and self.since_best >= self.cfg.patience:
            self.history.stopped_early = True
            return True
        return False


def epoch_rngs(seed, epoch):
    """Independent, reproducible streams for one epoch: triple sampling and the adversary."""
    return np.random.default_rng([seed, 1, epoch]), np.random.default_rng([seed, 2, epoch])


class _Progress:
    """A one-line progress bar on stderr (click's), showing the running loss."""

    def __init__(self, total, label, enabled):
        self.bar = None
        self.info = ""
        if enabled and total > 0:
            import click
            self.bar = click.progressbar(length=total, label=label, file=sys.stderr,
                                         item_show_func=lambda _: self.info, show_pos=True)
            self.bar.__enter__()

    def update(self, info):
        if self.bar is not None:
            self.info = info
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def train_bpr(spec, params, accum, split, features, cfg, backend, *, evaluate=None,
              progress=False, log_file=None, label=None):
    """Train ``params`` (host dict, updated in place) for ``cfg.epochs`` epochs.

    ``evaluate(params) -> metrics dict`` is called every ``cfg.eval_every`` epochs (never when
    0 or None); the parameters with the best validation NDCG@10 are kept and returned, and with
    ``cfg.patience > 0`` training stops after that many evaluations without improvement.
    Ctrl-C stops training after the current epoch's bookkeeping and keeps what was learned.

    Returns ``(best_params, history)``; ``best_params`` is ``params`` itself when no evaluation ran.
    """
    xp = backend.xp
    dev_params = {k: backend.to_device(v) for k, v in params.items()}
    dev_accum = {k: backend.to_device(v) for k, v in accum.items()}
    dev_features = None if features is None else backend.to_device(
        np.ascontiguousarray(features, dtype=cfg.dtype))
    indptr, indices = split.train_csr
    pool = np.flatnonzero(split.warm_items).astype(np.int32)
    history = History()
    validation = Validation(evaluate, cfg, history)
    bar = _Progress(cfg.epochs, label or spec.label, progress)
    try:
        for epoch in range(1, cfg.epochs + 1):
            sample_rng, adversary_rng = epoch_rngs(cfg.seed, epoch)
            t0 = time.perf_counter()
            triples = backend.sample_epoch(split.train_users, split.train_items, indptr, indices,
                                           pool, sample_rng)
            loss = backend.train_epoch(spec, dev_params, dev_accum, dev_features, triples, cfg,
                                       adversary_rng)
            if xp is not np:
                xp.cuda.get_current_stream().synchronize()
            history.epoch_seconds.append(time.perf_counter() - t0)
            history.losses.append(float(loss))
            if not math.isfinite(loss):
                raise AmrliteError(f"training diverged at epoch {epoch} (loss {loss}); lower --lr")
            record = {"epoch": epoch, "loss": float(loss),
                      "seconds": round(history.epoch_seconds[-1], 6)}
            metrics = validation(epoch, lambda: {k: backend.to_host(v).copy()
                                                 for k, v in dev_params.items()})
            if metrics is not None:
                record["valid"] = metrics
            if log_file is not None:
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
            bar.update(validation.progress_info(loss))
            if validation.should_stop:
                break
    except KeyboardInterrupt:
        history.interrupted = True
    finally:
        bar.close()
    for k, v in dev_params.items():
        params[k] = np.asarray(backend.to_host(v))
    for k, v in dev_accum.items():
        accum[k] = np.asarray(backend.to_host(v))
    return (validation.best if validation.best is not None else params), history
