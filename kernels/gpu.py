r"""CuPy backend: the reference's functions on one NVIDIA GPU, data and parameters on the device
for the whole run.

* Training (every BPR model; AMR with the closed-form ``grad`` adversary) is :mod:`.fused`'s
  epoch: per batch at most 8 ``RawKernel`` launches (:mod:`.cuda_src`) and 3 cuBLAS products,
  into buffers allocated once per epoch; nothing waits for the device until the epoch's loss is
  read. No float atomics: the same seed gives the same parameters bit for bit.
* The ``sign`` and ``random`` adversaries (which need Δ itself), ``batch_gradients`` and the
  other single-step functions run :mod:`.arraylevel` with ``xp = cupy`` (the CPU suite runs the
  same code on NumPy against :mod:`.reference`). ``AMRLITE_GPU_FUSED=0`` sends training there
  too (for bisecting).
* Sampling is one ``draw_negatives`` launch per epoch (seeded, redraws on the device).
* Evaluation: cuBLAS scores per chunk of users, ranks counted on the device.
* MF-eALS (``eals_*``, the names of :mod:`.cpu_eals`) is :mod:`.arraylevel`'s epoch on the
  device: per factor, every user (then every item) at once; one host read per epoch.

Importing this module on a machine without CuPy raises ImportError, which
:func:`amrlite.kernels.get_backend` turns into a one-line AmrliteError.
"""
from __future__ import annotations

import os

import cupy
import numpy as np
from cupy import cublas

from . import arraylevel as al
from . import cuda_src, fused as fused_epoch

NAME = "cupy"
FUSED = os.environ.get("AMRLITE_GPU_FUSED", "1") != "0"
THREADS = 256


def to_device(a):
    return cupy.asarray(a)


def to_host(a):
    return cupy.asnumpy(a) if isinstance(a, cupy.ndarray) else np.asarray(a)


def synchronize():
    """Wait for the current stream (the epoch's kernels are queued without waiting)."""
    cupy.cuda.get_current_stream().synchronize()


# ----------------------------------------------------------------------------------------------
# kernels
# ----------------------------------------------------------------------------------------------

_MODULES = {}
_KERNELS = {}


def _module(dtype):
    """The compiled module of :mod:`.cuda_src` for ``dtype`` (None: the sampler), once."""
    key = None if dtype is None else np.dtype(dtype).name
    if key not in _MODULES:
        code = (cuda_src.SAMPLER if key is None else
                cuda_src.real_source({"float32": "float", "float64": "double"}[key]))
        _MODULES[key] = cupy.RawModule(code=code)
    return _MODULES[key]


def _kernel(name, dtype=None):
    key = (name, dtype)
    hit = _KERNELS.get(key)
    if hit is None:
        hit = _KERNELS[key] = _module(dtype).get_function(name)
    return hit


def _grid(n):
    return (max(1, (int(n) + THREADS - 1) // THREADS),), (THREADS,)


# ----------------------------------------------------------------------------------------------
# sampling
# ----------------------------------------------------------------------------------------------

_UPLOADS = {}


def _on_device(a, dtype):
    """Host arrays that stay the same for a run (training pairs, CSR, pool) are uploaded once."""
    if isinstance(a, cupy.ndarray):
        return a.astype(dtype, copy=False)
    key = (id(a), a.shape, np.dtype(dtype).name)
    hit = _UPLOADS.get(key)
    if hit is not None and hit[0] is a:
        return hit[1]
    dev = cupy.asarray(np.ascontiguousarray(a, dtype=dtype))
    if len(_UPLOADS) > 16:
        _UPLOADS.clear()
    _UPLOADS[key] = (a, dev)
    return dev


def sample_epoch_seeded(train_users, train_items, indptr, indices, negative_pool, seed,
                        max_tries=al.MAX_TRIES):
    """The device twin of :func:`.arraylevel.sample_epoch` (identical triples for a seed):
    the permutation by hashed keys, then one ``draw_negatives`` launch. One host sync (the
    failure flag) per epoch."""
    tu = _on_device(train_users, np.int32)
    ti = _on_device(train_items, np.int32)
    indptr_d = _on_device(indptr, np.int64)
    indices_d = _on_device(indices, np.int32)
    pool = _on_device(negative_pool, np.int32)
    n = len(tu)
    order = al.permutation(n, seed, cupy)
    u, i = tu[order], ti[order]
    j = cupy.empty(n, dtype=np.int32)
    failed = cupy.zeros(1, dtype=np.int32)
    if n:
        _kernel("draw_negatives")(*_grid(n), (u, indptr_d, indices_d, pool, np.int64(len(pool)),
                                              np.uint64(seed), np.int64(n), np.int32(max_tries),
                                              j, failed))
        if int(failed[0]):
            raise ValueError("could not draw negatives: some user has interacted with (almost) "
                             "every warm item")
    return u, i, j


def sample_epoch(train_users, train_items, indptr, indices, negative_pool, rng):
    """Triples of one epoch on the device, seeded by one draw from the loop's NumPy ``rng``."""
    return sample_epoch_seeded(train_users, train_items, indptr, indices, negative_pool,
                               al.draw_seed(rng))


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------

def _launch(name, dtype, n_threads, *args):
    """:mod:`.fused`'s launcher: kernel ``name`` of the ``dtype`` module over ``n_threads``."""
    _kernel(name, dtype)(*_grid(n_threads), args)


def _gemm(transa, transb, a, b, out):
    """``out = op(a) op(b)`` by one cuBLAS call (no temporary, no transposed copy)."""
    cublas.gemm(transa, transb, a, b, out=out)


def train_epoch(spec, params, accum, features, triples, hp, rng=None):
    """One epoch over ``triples`` (device arrays) in batches of ``hp.batch_size``, in order, as
    :func:`.reference.train_epoch`; returns the summed loss (one device→host read per epoch)."""
    return float(train_epoch_queued(spec, params, accum, features, triples, hp, rng))


def train_epoch_queued(spec, params, accum, features, triples, hp, rng=None, *, fused=None):
    """:func:`train_epoch` without the final read: the loss as a device scalar, so that a
    benchmark can time the host's issuing apart from the device. ``fused=False`` runs the
    array-level path (default: :data:`FUSED`)."""
    fused = FUSED if fused is None else fused
    if not (fused and fused_epoch.supports(spec, hp)):
        return al.train_epoch(spec, params, accum, features, triples, hp, rng, cupy,
                              host_total=False)
    for name in params:
        if not (params[name].flags.c_contiguous and accum[name].flags.c_contiguous):
            raise ValueError(f"block {name} must be C-contiguous on the device")
    if features is not None and not features.flags.c_contiguous:
        features = cupy.ascontiguousarray(features)
    return fused_epoch.train_epoch(spec, params, accum, features, triples, hp, cupy, _launch,
                                   _gemm, host_total=False)


def batch_gradients(spec, params, features, u, i, j, hp, rng=None):
    return al.batch_gradients(spec, params, features, u, i, j, hp, rng, cupy)


def content_gradient(spec, params, features, u, i, j):
    return al.content_gradient(spec, params, features, u, i, j, cupy)


def adagrad_update(params, accum, grads, lr, eps=1e-10):
    al.adagrad_update(params, accum, grads, lr, cupy, eps)


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------

def sampled_ranks(U, V, users, items, negatives):
    """Rank of each held-out item among its sampled negatives, on the device (host int64)."""
    return al.sampled_ranks(U, V, users, items, negatives, cupy)


def full_ranks(U, V, users, items, indptr, indices):
    """Full ranking on the device: scores of a chunk of users against every item (cuBLAS),
    training items masked, rank counted (host int64)."""
    return al.full_ranks(U, V, users, items, indptr, indices, cupy, count=_count_at_least)


def top_items(U, V, users, n, indptr, indices):
    """Top-n recommendation on the device: cuBLAS scores per chunk of users, excluded items
    masked, a stable sort per row (:func:`.arraylevel.top_items`; not yet run on a GPU)."""
    return al.top_items(U, V, users, n, indptr, indices, cupy)


#: threads per score row in ``count_at_least`` (each strides over the items)
RANK_LANES = 1024


def _count_at_least(scores, pos, xp=cupy):
    scores = cupy.ascontiguousarray(scores)
    rows, n_items = scores.shape
    counts = cupy.zeros(rows, dtype=np.uint64)
    _launch("count_at_least", scores.dtype, rows * RANK_LANES, scores,
            cupy.ascontiguousarray(pos, dtype=scores.dtype), np.int64(rows), np.int64(n_items),
            np.int32(RANK_LANES), counts)
    return counts


# ----------------------------------------------------------------------------------------------
# MF-eALS: arraylevel's epoch on the device (per factor, every user then every item at once)
# ----------------------------------------------------------------------------------------------

def eals_prepare(P, Q, indptr, indices, w, conf):
    return al.eals_prepare(P, Q, indptr, indices, w, conf, cupy)


def eals_epoch(state, reg):
    """Users, then items (device arrays, in place); returns the objective (host float)."""
    return al.eals_epoch(state, reg, cupy)
