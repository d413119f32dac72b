"""One training loop for every model: epochs, validation schedule, best (or last) parameters,
early stop, a per-epoch callback, progress bar, JSON-lines log, Ctrl-C.

What one epoch *is* comes from an :class:`EpochRunner`: :class:`BprEpochs` (sample the triples,
one BPR epoch; MF-BPR, DUIF, VBPR, AMR) or :class:`amrlite.eals.EalsEpochs` (one MF-eALS sweep).
Both talk to a backend module only through the protocol of :mod:`amrlite.kernels.protocol`, so
the same loop drives NumPy, Numba and CuPy without knowing which.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Callable, Protocol

import numpy as np

from . import jsonio
from .errors import AmrliteError, option_error
from .progress import Progress

#: the values of :attr:`TrainConfig.negative_pool`
NEGATIVE_POOLS = ("warm", "all")


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (the CLI options of ``amrlite fit``).

    ``reg`` is β (L2 on the rows a triple touches), ``reg_e`` is β_E (L2 on E and w, once per
    batch; 0 as in the official code), ``eps`` the adversary's radius ε, ``lmd`` its weight λ.
    ``negative_pool`` is where BPR draws each triple's negative item j (never one of the user's
    training items): ``"warm"`` — only items that occur in training, so an item without a
    training interaction keeps no ID embedding and is scored by content alone (right for item
    cold start: split-cold's test items must stay unseen); ``"all"`` — the whole catalogue
    (Rendle et al.'s j ∈ I ∖ I_u⁺, the usual BPR sampler), so every item gets an ID
    embedding, pushed down for items seen only as negatives (a catalogue item without
    interactions is one: a new product then ranks below its content score; items added later
    with :meth:`amrlite.Model.add_items` are scored by content alone under either pool).
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
    negative_pool: str = "warm"
    # MF-eALS only (He et al. 2016): missing-data confidence c_i = c0 f_i^alpha / Σ f^alpha,
    # observed pairs weighted w_pos (reg is its λ)
    c0: float = 512.0
    alpha: float = 0.4
    w_pos: float = 1.0

    def validate(self):
        checks = [
            ("dim", self.dim >= 1), ("epochs", self.epochs >= 0),
            ("batch_size", self.batch_size >= 1), ("lr", self.lr > 0),
            ("reg", self.reg >= 0), ("reg_e", self.reg_e >= 0), ("eps", self.eps >= 0),
            ("lmd", self.lmd >= 0), ("eval_every", self.eval_every >= 0),
            ("patience", self.patience >= 0), ("init_std", self.init_std > 0),
            ("c0", self.c0 >= 0), ("alpha", self.alpha >= 0), ("w_pos", self.w_pos > 0),
        ]
        for name, ok in checks:
            if not ok:
                raise option_error(name, f"invalid value {getattr(self, name)!r}")
        if self.adversary not in ("grad", "sign", "random"):
            raise option_error("adversary", f"{self.adversary!r} is not one of grad, sign, random")
        if self.negative_pool not in NEGATIVE_POOLS:
            raise option_error("negative_pool", f"{self.negative_pool!r} is not one of "
                               + ", ".join(NEGATIVE_POOLS))
        if self.dtype not in ("float32", "float64"):
            raise option_error("dtype", f"{self.dtype!r} is not float32 or float64")
        return self

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class History:
    """What a run did, epoch by epoch (evaluation time excluded from ``epoch_seconds``).

    ``kept_epoch`` is the epoch whose parameters the run returned: the best validation epoch
    (``keep="best"`` with validation), else the last epoch run (0: none). Training that many
    epochs again, on the same or on more data, reproduces the schedule of the kept parameters
    (``amrlite fit --epochs-from``).
    """

    losses: list = field(default_factory=list)
    epoch_seconds: list = field(default_factory=list)
    evaluations: list = field(default_factory=list)   # {"epoch": e, **metrics}
    best_epoch: int | None = None
    best_metrics: dict | None = None
    interrupted: bool = False
    stopped_early: bool = False
    kept_epoch: int = 0


@dataclass
class EpochInfo:
    """What the per-epoch ``callback`` of :meth:`amrlite.Model.fit` receives.

    ``valid`` holds the validation metrics (``HR@5`` … ``NDCG@20``) on epochs where validation
    ran, else None; :meth:`params` returns host copies of the parameters after this epoch.
    """

    epoch: int
    loss: float
    seconds: float
    valid: dict | None
    _snapshot: Callable[[], dict] = field(repr=False)

    def params(self) -> dict:
        return self._snapshot()


class EpochRunner(Protocol):
    """One training method as the loop sees it."""

    label: str         # shown in the progress bar and in errors ("MF-BPR", "MF-eALS", ...)
    loss_name: str     # what :meth:`run_epoch` returns ("loss", "objective")

    def run_epoch(self, epoch: int) -> float:
        """Train one epoch (1-based) and return its loss."""

    def snapshot(self) -> dict:
        """Host copies of the current parameters."""

    def finish(self) -> dict:
        """Write the device state back to the host; the final host parameters."""


def epoch_rngs(seed, epoch):
    """Independent, reproducible streams for one epoch: triple sampling and the adversary."""
    return np.random.default_rng([seed, 1, epoch]), np.random.default_rng([seed, 2, epoch])


def run_epochs(runner: EpochRunner, cfg, *, evaluate=None, callback=None, keep="best",
               progress=False, log_file=None):
    """The training loop: ``cfg.epochs`` epochs of ``runner``.

    Parameters
    ----------
    runner : EpochRunner
        What one epoch is (:class:`BprEpochs`, :class:`amrlite.eals.EalsEpochs`).
    cfg : TrainConfig
        ``epochs``, ``eval_every`` (validate every N epochs; 0 never) and ``patience`` (stop
        after that many validations without a better NDCG@10; 0 never) are read here.
    evaluate : callable, optional
        ``evaluate(params) -> metrics dict`` on the validation rows.
    callback : callable, optional
        ``callback(EpochInfo)`` after every epoch; a true return value stops training.
    keep : {"best", "last"}
        Return the parameters of the best validation epoch (the last epoch when no validation
        ran) or of the last epoch.
    progress : bool
        A progress bar on stderr.
    log_file : file, optional
        One JSON line per epoch (epoch, loss, seconds, validation metrics) is appended.

    Returns
    -------
    params : dict
        Host parameters (see ``keep``).
    history : History
        Losses, epoch seconds, validations, the best epoch; ``interrupted`` after Ctrl-C (which
        stops after the epoch in progress and keeps what was learned).
    """
    if keep not in ("best", "last"):
        raise AmrliteError(f"keep={keep!r}: choose 'best' or 'last'")
    history = History()
    best, since_best = None, 0
    bar = Progress(cfg.epochs, runner.label, enabled=progress, unit="epoch")
    try:
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            loss = float(runner.run_epoch(epoch))
            seconds = time.perf_counter() - t0
            history.epoch_seconds.append(seconds)
            history.losses.append(loss)
            if not math.isfinite(loss):
                raise option_error("lr", f"{runner.label}: training diverged at epoch {epoch} "
                                   f"({runner.loss_name} {loss}); lower it", "")
            metrics = None
            if evaluate is not None and cfg.eval_every and epoch % cfg.eval_every == 0:
                params = runner.snapshot()
                metrics = evaluate(params)
                history.evaluations.append({"epoch": epoch, **metrics})
                if best is None or metrics["NDCG@10"] > history.best_metrics["NDCG@10"]:
                    best, since_best = params, 0
                    history.best_epoch, history.best_metrics = epoch, metrics
                else:
                    since_best += 1
            if log_file is not None:
                record = {"epoch": epoch, runner.loss_name: loss, "seconds": round(seconds, 6)}
                if metrics is not None:
                    record["valid"] = metrics
                log_file.write(jsonio.dumps(record) + "\n")
                log_file.flush()
            info = f"{runner.loss_name} {loss:.4g}"
            if history.best_metrics:
                info += f"  best NDCG@10 {history.best_metrics['NDCG@10']:.4f}"
            bar.update(1, info)
            if callback is not None and callback(EpochInfo(epoch, loss, seconds, metrics,
                                                           runner.snapshot)):
                break
            if cfg.patience and since_best >= cfg.patience:
                history.stopped_early = True
                break
    except KeyboardInterrupt:
        history.interrupted = True
    finally:
        bar.close()
    last = runner.finish()
    if keep == "best" and best is not None:
        history.kept_epoch = history.best_epoch
        return best, history
    history.kept_epoch = len(history.losses)
    return last, history


class BprEpochs:
    """One BPR epoch on a backend: draw the epoch's triples, then one Adagrad pass over them.

    The host ``params``/``accum`` dicts are moved to the backend's device once and written back
    by :meth:`finish`. Each epoch's triples and random adversary come from
    :func:`epoch_rngs` ``(cfg.seed, epoch)``: a seed fixes the run.
    """

    loss_name = "loss"

    def __init__(self, spec, params, accum, split, features, cfg, backend):
        self.label = spec.label
        self.spec, self.cfg, self.backend, self.split = spec, cfg, backend, split
        self.host_params, self.host_accum = params, accum
        self.params = {k: backend.to_device(v) for k, v in params.items()}
        self.accum = {k: backend.to_device(v) for k, v in accum.items()}
        self.features = None if features is None else backend.to_device(
            np.ascontiguousarray(features, dtype=cfg.dtype))
        self.indptr, self.indices = split.train_csr
        self.pool = np.flatnonzero(split.id_items(cfg.negative_pool)).astype(np.int32)

    def run_epoch(self, epoch):
        sample_rng, adversary_rng = epoch_rngs(self.cfg.seed, epoch)
        sp = self.split
        try:
            triples = self.backend.sample_epoch(sp.train_users, sp.train_items, self.indptr,
                                                self.indices, self.pool, sample_rng)
        except ValueError as exc:
            raise AmrliteError(f"split {sp.name!r}: {exc}") from None
        loss = self.backend.train_epoch(self.spec, self.params, self.accum, self.features,
                                        triples, self.cfg, adversary_rng)
        self.backend.synchronize()
        return loss

    def snapshot(self):
        return {k: np.array(self.backend.to_host(v)) for k, v in self.params.items()}

    def finish(self):
        for host, dev in ((self.host_params, self.params), (self.host_accum, self.accum)):
            for k, v in dev.items():
                host[k] = np.asarray(self.backend.to_host(v))
        return self.host_params
