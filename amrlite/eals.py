r"""MF-eALS training (He, Zhang, Kan, Chua, SIGIR 2016): matrix factorisation fitted to all of
the user × item matrix by element-wise ALS, missing entries weighted by item popularity

    c_i = c0 · f_i^α / Σ_j f_j^α,     observed pairs weighted w_pos,     no negative sampling.

The coordinate updates (Eq. 12/13) and their derivation are in :mod:`amrlite.kernels.reference`
(``eals_*``); :mod:`amrlite.kernels.cpu_eals` runs them with Numba and
:mod:`amrlite.kernels.arraylevel` over an array module (on the GPU through
:mod:`amrlite.kernels.gpu`). The backend ``numpy`` uses the reference, ``numba`` the Numba
kernel, ``cupy`` (and any backend object exposing ``eals_layout``, e.g. the test-only
``numpy-arraylevel``) its own, with P, Q and the prediction cache on its device for the run.

Knobs: ``dim``, ``epochs``, ``reg`` (λ), ``seed`` (initialisation), ``eval_every`` and
``patience`` from the model's :class:`~amrlite.train.TrainConfig`; ``c0``, ``alpha``,
``w_pos`` from ``model.eals_options`` (a dict) over :data:`DEFAULTS`. An ``eals_options["reg"]``
overrides ``reg`` (eALS wants a larger λ than BPR's default).
"""
from __future__ import annotations

import math
import time

import numpy as np

from .errors import AmrliteError
from .train import History, Validation, _Progress

DEFAULTS = {"c0": 512.0, "alpha": 0.4, "w_pos": 1.0}


def eals_options(model):
    opts = dict(DEFAULTS)
    opts.update(getattr(model, "eals_options", None) or {})
    unknown = set(opts) - set(DEFAULTS) - {"reg"}
    if unknown:
        raise AmrliteError(f"eALS options: unknown {', '.join(sorted(unknown))}; "
                           f"known: c0, alpha, w_pos, reg")
    if not (opts["c0"] >= 0 and opts["alpha"] >= 0 and opts["w_pos"] > 0):
        raise AmrliteError(f"eALS options: need c0 ≥ 0, alpha ≥ 0, w_pos > 0 (got {opts})")
    return opts


def _kernels(backend):
    """``(kernel module, prepare)``: ``prepare(indptr, indices, n_items)`` gives the extra keyword
    arguments of ``eals_epoch`` (built once per run), or None."""
    if hasattr(backend, "eals_layout"):                  # cupy (kernels/gpu.py), numpy-arraylevel
        return backend, lambda indptr, indices, n: {"layout": backend.eals_layout(indptr,
                                                                                  indices, n)}
    if getattr(backend, "NAME", "numpy") == "numpy":
        from .kernels import reference as k
        return k, None
    try:
        from .kernels import cpu_eals as k
    except ImportError:                                  # no numba: the reference still works
        from .kernels import reference as k
        return k, None
    return k, lambda indptr, indices, n: {"csc": k.eals_csc(indptr, indices, n)}


def train_eals(model, split, backend, progress=False):
    """Fit ``model.params`` (P, Q, already initialised by ``Model.fit``) by eALS on ``split``.

    Returns ``(best_params, history)``; ``history.losses`` holds the eALS objective after each
    epoch. With a validation set and ``eval_every``, the epoch with the best validation NDCG@10
    is kept (as for BPR training).
    """
    cfg = model.config
    opts = eals_options(model)
    reg = float(opts.get("reg", cfg.reg))
    model.header["eals"] = {**opts, "reg": reg}
    kern, prepare = _kernels(backend)
    dev = getattr(kern, "to_device", lambda a: a)       # identity for the host kernels
    host = getattr(kern, "to_host", np.asarray)
    indptr, indices = split.train_csr
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    popularity = np.bincount(split.train_items, minlength=split.n_items)
    conf = _confidence(popularity, opts)
    w = np.full(len(indices), float(opts["w_pos"]))
    extra = prepare(indptr, indices, split.n_items) if prepare else {}
    indptr, indices, conf, w = (dev(a) for a in (indptr, indices, conf, w))
    P = dev(np.array(model.params["P"], dtype=np.float64))
    Q = dev(np.array(model.params["Q"], dtype=np.float64))
    pred = kern.eals_predictions(P, Q, indptr, indices,
                                 **{k: v for k, v in extra.items() if k == "layout"})
    history = History()
    rows = split.valid
    validation = Validation(
        None if rows is None else
        (lambda params: model._evaluate_rows(params, None, split, rows)["all"]), cfg, history)
    bar = _Progress(cfg.epochs, model.spec.label, progress)
    dtype = np.dtype(cfg.dtype)

    def snapshot():
        return {"P": np.asarray(host(P)).astype(dtype), "Q": np.asarray(host(Q)).astype(dtype)}
    try:
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            loss = kern.eals_epoch(P, Q, pred, indptr, indices, w, conf, reg, **extra)
            history.epoch_seconds.append(time.perf_counter() - t0)
            history.losses.append(float(loss))
            if not math.isfinite(loss):
                raise AmrliteError(f"eALS diverged at epoch {epoch} (objective {loss})")
            validation(epoch, snapshot)
            bar.update(validation.progress_info(loss, "objective"))
            if validation.should_stop:
                break
    except KeyboardInterrupt:
        history.interrupted = True
    finally:
        bar.close()
    return (validation.best if validation.best is not None else snapshot()), history


def _confidence(popularity, opts):
    from .kernels.reference import eals_confidence
    return eals_confidence(popularity, opts["c0"], opts["alpha"])
