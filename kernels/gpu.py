r"""CuPy backend: the reference's functions on one NVIDIA GPU, data and parameters on the device
for the whole run.

The arithmetic is :mod:`.arraylevel`'s, run with ``xp = cupy`` (so the CPU suite, which runs that
module on NumPy against :mod:`.reference`, covers it), plus fused ``RawKernel``\ s
(:mod:`.cuda_src`, also run on the CPU through a C++ compiler in the tests) where launches pay:

* the sampler (``draw_negatives``): one launch draws every negative of an epoch, seeded, with
  the redraw loop on the device (the array-level twin needs one host sync per redraw round);
* deterministic segment sums (``segment_sum``) for AMR's ṽ (no float atomics, so the same seed
  gives the same parameters bit for bit);
* row-sparse Adagrad (``row_adagrad``): segment sum + gather + accumulator + update, one launch
  per table instead of ~8; dense Adagrad (``dense_adagrad``) for Ẽ, one launch instead of 5.

Per batch nothing waits for the device: the loss is added to a device scalar and read once per
epoch; segment bookkeeping for every batch comes from one sort per epoch
(:func:`.arraylevel.prepare_epoch`).

Launches per batch (CuPy elementwise ops, gathers and cuBLAS calls each count one; roughly):
MF ≈ 25, VBPR (Eq. 4) ≈ 35, AMR (Eq. 4, closed form) ≈ 60, of which the fused Adagrad kernels
are 2–5. At ~11 µs of host time per launch (docs: shared/GPU_NOTES.md) AMR at batch 512 on
the Amazon size (1,380 batches) spends ≈ 0.8 s per epoch launching; larger batches amortise it.
``AMRLITE_GPU_FUSED=0`` switches the fused kernels off (pure array-level path, for bisecting).

MF-eALS (``eals_*``, the names of :mod:`.cpu_eals`) is :mod:`.arraylevel`'s epoch on the device:
per factor, every user (then every item) at once, segment sums by ``cupy.bincount`` over the
pair → user ids uploaded once (``eals_layout``); one host read (the objective) per epoch.

Importing this module on a machine without CuPy raises ImportError, which
:func:`amrlite.kernels.get_backend` turns into a one-line AmrliteError.
"""
from __future__ import annotations

import os

import cupy
import numpy as np

from . import arraylevel as al
from . import cuda_src

NAME = "cupy"
xp = cupy
FUSED = os.environ.get("AMRLITE_GPU_FUSED", "1") != "0"
THREADS = 256


def to_device(a):
    return cupy.asarray(a)


def to_host(a):
    return cupy.asnumpy(a) if isinstance(a, cupy.ndarray) else np.asarray(a)


# ----------------------------------------------------------------------------------------------
# kernels
# ----------------------------------------------------------------------------------------------

_KERNELS = {}


def _kernel(name, dtype=None):
    key = (name, None if dtype is None else np.dtype(dtype).name)
    if key not in _KERNELS:
        if name == "draw_negatives":
            module = cupy.RawModule(code=cuda_src.SAMPLER)
        else:
            real = {"float32": "float", "float64": "double"}[key[1]]
            module = cupy.RawModule(code=cuda_src.adagrad_source(real))
        _KERNELS[key] = module.get_function(name)
    return _KERNELS[key]


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

def _row_adagrad(table, accum, grad, index, seg, block, occ_start, lr, eps=1e-10):
    K = 1 if table.ndim == 1 else table.shape[1]
    n_slots = len(index)
    grad = cupy.ascontiguousarray(grad, dtype=table.dtype)
    _kernel("row_adagrad", table.dtype)(
        *_grid(n_slots * K),
        (table, accum, grad, cupy.ascontiguousarray(index, dtype=np.int32), seg["order"],
         seg["heads"], seg["seg_offset"], seg["n_seg"], np.int32(block), np.int64(occ_start),
         np.int64(n_slots), np.int32(K), np.float64(lr), np.float64(eps)))


def _segment_sum(values, seg, block, occ_start):
    values = cupy.ascontiguousarray(values)
    out = cupy.empty_like(values)
    n_slots, K = values.shape
    _kernel("segment_sum", values.dtype)(
        *_grid(n_slots * K),
        (out, values, seg["order"], seg["heads"], seg["seg_offset"], seg["n_seg"],
         np.int32(block), np.int64(occ_start), np.int64(n_slots), np.int32(K)))
    return out


def _dense_adagrad(theta, accum, grad, lr, eps=1e-10):
    grad = cupy.ascontiguousarray(grad, dtype=theta.dtype)
    _kernel("dense_adagrad", theta.dtype)(*_grid(theta.size),
                                          (theta, accum, grad, np.int64(theta.size),
                                           np.float64(lr), np.float64(eps)))


def train_epoch(spec, params, accum, features, triples, hp, rng=None, *, fused=None,
                host_total=True):
    """One epoch over ``triples`` (device arrays) in batches of ``hp.batch_size``, in order, as
    :func:`.reference.train_epoch`; returns the summed loss (one device→host read per epoch;
    ``host_total=False``: the device scalar, no read)."""
    fused = FUSED if fused is None else fused
    if not fused:
        return al.train_epoch(spec, params, accum, features, triples, hp, rng, cupy,
                              host_total=host_total)
    for name in params:
        if not (params[name].flags.c_contiguous and accum[name].flags.c_contiguous):
            raise ValueError(f"block {name} must be C-contiguous on the device")
    return al.train_epoch_fused(spec, params, accum, features, triples, hp, rng, cupy,
                                _row_adagrad, _dense_adagrad, _segment_sum,
                                host_total=host_total)


def train_batch(spec, params, accum, features, u, i, j, hp, rng=None):
    """One Adagrad step on one batch (a one-batch epoch); returns the batch loss."""
    batch = TrainBatch(hp)
    return train_epoch(spec, params, accum, features, (u, i, j), batch, rng)


class TrainBatch:
    """``hp`` with the batch size widened to the whole batch."""

    def __init__(self, hp):
        self._hp = hp

    def __getattr__(self, name):
        if name == "batch_size":
            return 1 << 40
        return getattr(self._hp, name)


def batch_gradients(spec, params, features, u, i, j, hp, rng=None):
    return al.batch_gradients(spec, params, features, u, i, j, hp, rng, cupy)


def content_gradient(spec, params, features, u, i, j):
    return al.content_gradient(spec, params, features, u, i, j, cupy)


def adversarial_perturbation(gamma, eps, kind="grad", rng=None):
    return al.adversarial_perturbation(gamma, eps, kind, rng, cupy)


def adagrad_update(params, accum, grads, lr, eps=1e-10):
    al.adagrad_update(params, accum, grads, lr, cupy, eps)


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------

def sampled_ranks(U, V, users, items, negatives, chunk=4096):
    """Rank of each held-out item among its sampled negatives, on the device (host int64)."""
    return al.sampled_ranks(U, V, users, items, negatives, cupy, chunk)


def full_ranks(U, V, users, items, indptr, indices, chunk=2048):
    """Full ranking on the device: scores of a chunk of users against every item (cuBLAS),
    training items masked, rank counted (host int64)."""
    return al.full_ranks(U, V, users, items, indptr, indices, cupy, chunk)


# ----------------------------------------------------------------------------------------------
# MF-eALS (the protocol of kernels/cpu_eals.py; arrays on the device)
# ----------------------------------------------------------------------------------------------

def eals_layout(indptr, indices, n_items=None):
    """Pair → user ids on the device, once per run (passed to the sweeps as ``layout=``)."""
    return al.eals_layout(indptr, indices, cupy)


def eals_predictions(P, Q, indptr, indices, layout=None):
    return al.eals_predictions(P, Q, indptr, indices, cupy, layout)


def eals_update_users(P, Q, pred, indptr, indices, w, conf, reg, layout=None):
    al.eals_update_users(P, Q, pred, indptr, indices, w, conf, reg, cupy, layout)


def eals_update_items(P, Q, pred, indptr, indices, w, conf, reg, layout=None):
    al.eals_update_items(P, Q, pred, indptr, indices, w, conf, reg, cupy, layout)


def eals_objective(P, Q, pred, indptr, indices, w, conf, reg):
    return al.eals_objective(P, Q, pred, indptr, indices, w, conf, reg, cupy)


def eals_epoch(P, Q, pred, indptr, indices, w, conf, reg, layout=None):
    """Users, then items (device arrays, in place); returns the objective (host float)."""
    return al.eals_epoch(P, Q, pred, indptr, indices, w, conf, reg, cupy, layout)
