"""``numpy-arraylevel``: the GPU backend's array-level code (:mod:`.arraylevel`) on NumPy.

Not a backend users pick: it lets the CPU test suite (and ``bench/gpu_bench.py`` without a GPU)
run, against :mod:`.reference`, the very functions that :mod:`.gpu` runs on CuPy for the
``sign``/``random`` adversaries, single steps and MF-eALS. Each function is the
:mod:`.protocol` name bound to ``xp = numpy``.
"""
from __future__ import annotations

import numpy as np

from . import arraylevel as al

NAME = "numpy-arraylevel"


def to_device(a):
    return np.asarray(a)


def to_host(a):
    return np.asarray(a)


def synchronize():
    """Nothing to wait for on the host."""


def sample_epoch(train_users, train_items, indptr, indices, negative_pool, rng):
    """:func:`.arraylevel.sample_epoch`, seeded by one draw from ``rng`` (as on the GPU)."""
    return al.sample_epoch(train_users, train_items, indptr, indices, negative_pool,
                           al.draw_seed(rng), np)


def train_epoch(spec, params, accum, features, triples, hp, rng=None):
    return al.train_epoch(spec, params, accum, features, triples, hp, rng, np)


def sampled_ranks(U, V, users, items, negatives):
    return al.sampled_ranks(U, V, users, items, negatives, np)


def full_ranks(U, V, users, items, indptr, indices):
    return al.full_ranks(U, V, users, items, indptr, indices, np)


def top_items(U, V, users, n, indptr, indices):
    return al.top_items(U, V, users, n, indptr, indices, np)


def eals_prepare(P, Q, indptr, indices, w, conf):
    return al.eals_prepare(P, Q, indptr, indices, w, conf, np)


def eals_epoch(state, reg):
    return al.eals_epoch(state, reg, np)


def batch_gradients(spec, params, features, u, i, j, hp, rng=None):
    return al.batch_gradients(spec, params, features, u, i, j, hp, rng, np)


def content_gradient(spec, params, features, u, i, j):
    return al.content_gradient(spec, params, features, u, i, j, np)


def adagrad_update(params, accum, grads, lr, eps=1e-10):
    al.adagrad_update(params, accum, grads, lr, np, eps)
