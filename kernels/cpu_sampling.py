r"""The triples of an epoch on the CPU (Numba): a permutation of the training pairs and one
uniform negative per pair, never a training positive of its user.

Determinism: :func:`sample_epoch` draws the permutation with ``rng`` (NumPy), then one 63-bit
seed per chunk of ``SAMPLE_CHUNK`` triples from the same ``rng``; chunks run in ``prange``, each
with its own SplitMix64 stream. The triples therefore depend on the seed only, never on the
thread count or the scheduling. (They are not the reference's triples: parity tests feed both
backends the same triples.)
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu_common import i32

#: triples per independently seeded sampling chunk (fixed: the triples must not depend on it
#: changing with the machine)
SAMPLE_CHUNK = 8192


@njit(cache=True, inline="always")
def _splitmix(state):
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def contains(indices, lo, hi, x):
    """Binary search for ``x`` in the sorted ``indices[lo:hi]``."""
    while lo < hi:
        mid = (lo + hi) >> 1
        v = indices[mid]
        if v < x:
            lo = mid + 1
        elif v > x:
            hi = mid
        else:
            return True
    return False


@njit(cache=True, parallel=True)
def _draw_negatives(u, seeds, chunk, indptr, indices, pool, out):
    n = u.shape[0]
    npool = np.uint64(pool.shape[0])
    failed = np.zeros(seeds.shape[0], np.bool_)
    for c in prange(seeds.shape[0]):
        state = np.uint64(seeds[c])
        for t in range(c * chunk, min(n, (c + 1) * chunk)):
            lo = indptr[u[t]]
            hi = indptr[u[t] + 1]
            tries = 0
            while True:
                state, z = _splitmix(state)
                k = pool[np.int64(((z >> np.uint64(32)) * npool) >> np.uint64(32))]
                if not contains(indices, lo, hi, k):
                    out[t] = k
                    break
                tries += 1
                if tries > 100_000:
                    failed[c] = True
                    out[t] = k
                    break
    return failed.any()


def sample_epoch(train_users, train_items, indptr, indices, negative_pool, rng):
    r"""The triples of one epoch (contract of :func:`.reference.sample_epoch`): every training
    pair once in a random order (``rng.permutation``), one negative per pair drawn uniformly from
    ``negative_pool`` and redrawn while it is in the user's sorted training row (binary search).

    Deterministic for a seed, whatever the thread count: chunks of ``SAMPLE_CHUNK`` triples each
    get a seed from ``rng`` and their own SplitMix64 stream.
    """
    order = rng.permutation(len(train_users))
    u = np.ascontiguousarray(np.asarray(train_users)[order], dtype=np.int32)
    i = np.ascontiguousarray(np.asarray(train_items)[order], dtype=np.int32)
    n_chunks = -(-len(u) // SAMPLE_CHUNK)
    seeds = rng.integers(0, 2**63 - 1, size=n_chunks, dtype=np.int64)
    j = np.empty(len(u), dtype=np.int32)
    pool = i32(negative_pool)
    if len(u) and not len(pool):
        raise ValueError("could not draw negatives: the negative pool is empty")
    if _draw_negatives(u, seeds, SAMPLE_CHUNK, np.ascontiguousarray(indptr, dtype=np.int64),
                       i32(indices), pool, j):
        raise ValueError("could not draw negatives: some user has interacted with (almost) every "
                         "warm item")
    return u, i, j
