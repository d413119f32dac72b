r"""MF-eALS training (He, Zhang, Kan, Chua, SIGIR 2016): matrix factorisation fitted to all of
the user × item matrix by element-wise ALS, missing entries weighted by item popularity

    c_i = c0 · f_i^α / Σ_j f_j^α,     observed pairs weighted w_pos,     no negative sampling.

The coordinate updates (Eq. 12/13) and their derivation are in :mod:`amrlite.kernels.reference`
(``eals_*``); every backend runs them through its ``eals_prepare``/``eals_epoch`` pair
(:mod:`amrlite.kernels.protocol`). :class:`EalsEpochs` is what one epoch means to the training
loop of :mod:`amrlite.train`, exactly as :class:`amrlite.train.BprEpochs` is for BPR.

Knobs (all :class:`~amrlite.train.TrainConfig` fields): ``dim``, ``epochs``, ``reg`` (λ; the
library default for eALS is in :data:`amrlite.models.KIND_DEFAULTS`), ``seed`` (initialisation),
``c0``, ``alpha``, ``w_pos``, ``eval_every`` and ``patience``.
"""
from __future__ import annotations

import numpy as np

from .kernels.reference import eals_confidence


class EalsEpochs:
    """One MF-eALS epoch (every user, then every item) of ``params`` (P, Q) on ``split``."""

    label = "MF-eALS"
    loss_name = "objective"

    def __init__(self, params, split, cfg, backend):
        self.host_params, self.cfg, self.backend = params, cfg, backend
        indptr, indices = split.train_csr
        popularity = np.bincount(split.train_items, minlength=split.n_items)
        conf = eals_confidence(popularity, cfg.c0, cfg.alpha)
        w = np.full(len(indices), float(cfg.w_pos))
        self.state = backend.eals_prepare(params["P"], params["Q"], indptr, indices, w, conf)

    def run_epoch(self, epoch):
        return self.backend.eals_epoch(self.state, float(self.cfg.reg))

    def snapshot(self):
        dtype = np.dtype(self.cfg.dtype)
        return {"P": np.asarray(self.backend.to_host(self.state.P)).astype(dtype),
                "Q": np.asarray(self.backend.to_host(self.state.Q)).astype(dtype)}

    def finish(self):
        self.host_params.update(self.snapshot())
        return self.host_params
