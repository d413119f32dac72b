r"""Numba CPU backend: the protocol of :mod:`.protocol`, and nothing else.

This module is the face of the backend: plain functions with exactly the signatures of
:class:`.protocol.TrainingBackend` and :class:`.protocol.CheckingBackend`. The work is done by
modules grouped by job:

* :mod:`.cpu_bpr` — the fused BPR batch/epoch of the content models and the closed-form
  adversary on Ẽ = [E; wᵀ] (docs/closed-form-adversary.md);
* :mod:`.cpu_mf` — the dedicated MF-BPR epoch;
* :mod:`.cpu_adagrad` — Adagrad, row-sparse and dense;
* :mod:`.cpu_sampling` — the SplitMix64 sampler of an epoch's triples;
* :mod:`.cpu_ranking` — sampled and full rank counting, top-n recommendation;
* :mod:`.cpu_eals` — MF-eALS;
* :mod:`.cpu_common` — the named-tuple arguments and scalar helpers they share.
"""
from __future__ import annotations

import numpy as np

from . import cpu_ranking
from .cpu_adagrad import adagrad_update  # noqa: F401
from .cpu_bpr import (adversarial_closed_form, batch_gradients, content_gradient,  # noqa: F401
                      train_epoch)
from .cpu_eals import eals_epoch, eals_prepare  # noqa: F401
from .cpu_ranking import sampled_ranks, top_items  # noqa: F401
from .cpu_sampling import SAMPLE_CHUNK, sample_epoch  # noqa: F401

NAME = "numba"


def to_device(a):
    """``a`` itself: the host is the device."""
    return a


def to_host(a):
    """``a`` as a NumPy array (no copy)."""
    return np.asarray(a)


def synchronize():
    """Nothing to wait for: every kernel has returned when its call does."""
    return None


def full_ranks(U, V, users, items, indptr, indices):
    """Rank of ``items[r]`` among every item outside user ``users[r]``'s training row
    (:func:`.cpu_ranking.full_ranks`, blocks of :func:`.reference.score_rows` rows)."""
    return cpu_ranking.full_ranks(U, V, users, items, indptr, indices)
