"""Adagrad on the CPU (Numba): ``A += g²; θ −= lr g/(√A + eps)``, row-sparse for the tables and
dense for the content block, as :func:`.reference.adagrad_update`."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu_common import FAST, i32


@njit(inline="always", fastmath=FAST, boundscheck=False, error_model="numpy")
def adagrad_step(pr, ar, gr, lr, eps):
    """Adagrad on one row, in place (inlined; vectorises with ``error_model="numpy"``, which
    drops the per-division zero check)."""
    for k in range(pr.shape[0]):
        gk = gr[k]
        a = ar[k] + gk * gk
        ar[k] = a
        pr[k] -= lr * gk / (np.sqrt(a) + eps)


@njit(cache=True, fastmath=FAST, boundscheck=False, error_model="numpy")
def adagrad_rows(param, acc, rows, g, lr, eps):
    """Row-sparse Adagrad on a 2-D table: rows ``rows`` get the gradient rows ``g``."""
    for n in prange(rows.shape[0]):
        r = rows[n]
        adagrad_step(param[r], acc[r], g[n], lr, eps)


@njit(cache=True, fastmath=FAST, boundscheck=False, error_model="numpy")
def adagrad_vec_rows(param, acc, rows, g, lr, eps):
    """Row-sparse Adagrad on a 1-D table (item biases)."""
    for n in range(rows.shape[0]):
        r = rows[n]
        gk = g[n]
        a = acc[r] + gk * gk
        acc[r] = a
        param[r] -= lr * gk / (np.sqrt(a) + eps)


@njit(cache=True, parallel=True, fastmath=FAST, boundscheck=False, error_model="numpy")
def adagrad_dense(param, acc, g, lr, eps):
    """Dense Adagrad on a 2-D block (the content block Ẽ), parallel over its rows."""
    for k in prange(param.shape[0]):
        adagrad_step(param[k], acc[k], g[k], lr, eps)


def adagrad_update(params, accum, grads, lr, eps=1e-10):
    """One explicit Adagrad step with ``grads`` in :func:`.cpu_bpr.batch_gradients`' format
    (``(rows, G)`` for tables, a dense array for E, w), in place."""
    for name, grad in grads.items():
        p, a = params[name], accum[name]
        lr_, eps_ = p.dtype.type(lr), p.dtype.type(eps)
        if isinstance(grad, tuple):
            rows, g = grad
            g = np.ascontiguousarray(g, dtype=p.dtype)
            if p.ndim == 2:
                adagrad_rows(p, a, i32(rows), g, lr_, eps_)
            else:
                adagrad_vec_rows(p, a, i32(rows), g, lr_, eps_)
        else:
            g = np.ascontiguousarray(grad, dtype=p.dtype)
            adagrad_dense(p.reshape(1, -1) if p.ndim == 1 else p,
                          a.reshape(1, -1) if a.ndim == 1 else a,
                          g.reshape(1, -1) if g.ndim == 1 else g, lr_, eps_)
