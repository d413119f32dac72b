r"""What the Numba kernels share: the argument tuples, the BPR scalar terms, the BLAS pin.

The fused kernels take their arrays and scalars packed in named tuples (numba compiles a
``NamedTuple`` argument like any tuple: attribute access is free, nothing is boxed):

* :class:`Blocks` — the parameter arrays ``P, Q, H, Et, b`` (also used for their Adagrad
  accumulators). ``Et`` is the content block Ẽ = [E; wᵀ] ((K+1)×D) in He & McAuley's form and
  E itself (K×D) in the Eq. 4 form (see :mod:`.arraylevel` and ``docs/closed-form-adversary.md``);
  a block a model lacks is a 1-row dummy.
* :class:`Triples` — one batch (or epoch) of ``u, i, j`` (int32).
* :class:`Flags` — which blocks the model has: ``has_q, has_c, sep, has_b, adv``.
* :class:`Scalars` — ``lmd, eps, two_beta = 2β, two_re = 2β_E, lr, aeps`` in the parameters'
  dtype and ``reg, reg_e`` in float64 (they only feed the loss).
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, NamedTuple

import numpy as np
from numba import njit

#: fastmath flags of the inner loops: reassociation (vectorised sums), FMA contraction, no
#: signed zeros. Never on a statement that adds an adversarial term to a VBPR one (cpu_bpr).
FAST = {"reassoc", "contract", "nsz"}


class Blocks(NamedTuple):
    """Parameter arrays (or their Adagrad accumulators), absent ones as 1-row dummies."""
    P: Any
    Q: Any
    H: Any
    Et: Any
    b: Any


class Triples(NamedTuple):
    """``(u, i, j)``: users, positive items, negative items (int32, same length)."""
    u: Any
    i: Any
    j: Any


class Flags(NamedTuple):
    """Item factors Q, content, separate content user H, bias (b, w), the adversary."""
    has_q: bool
    has_c: bool
    sep: bool
    has_b: bool
    adv: bool


class Scalars(NamedTuple):
    """Hyper-parameters: ``lmd, eps, two_beta, two_re, lr, aeps`` (parameter dtype), ``reg,
    reg_e`` (float64)."""
    lmd: Any
    eps: Any
    two_beta: Any
    two_re: Any
    reg: float
    reg_e: float
    lr: Any
    aeps: Any


def flags_of(spec):
    return Flags(bool(spec.has_item_factors), bool(spec.has_content),
                 bool(spec.separate_content_user), bool(spec.has_bias), bool(spec.adversarial))


def scalars_of(hp, dt, adversarial, aeps=1e-10):
    t = np.dtype(dt).type
    return Scalars(t(hp.lmd if adversarial else 0.0), t(hp.eps), t(2 * hp.reg), t(2 * hp.reg_e),
                   float(hp.reg), float(hp.reg_e), t(hp.lr), t(aeps))


def i32(a):
    return np.ascontiguousarray(a, dtype=np.int32)


@njit(cache=True, inline="always")
def bpr_terms(x):
    """``(−σ(−x), softplus(−x))`` of one score difference, stable, in float64 (the first is
    stored by the caller in the parameters' dtype; the second only feeds the loss). Both come
    from one ``e = exp(−|x|)``: ``σ(−x) = e/(1+e)`` for x ≥ 0 and ``1/(1+e)`` otherwise;
    ``softplus(−x) = max(−x, 0) + log1p(e)``."""
    y = float(x)
    ex = math.exp(-abs(y))
    s = -(ex / (1.0 + ex)) if y >= 0 else -(1.0 / (1.0 + ex))
    return s, max(-y, 0.0) + math.log1p(ex)


_BLAS = None


def one_blas_thread():
    """A context pinning BLAS (OpenBLAS of scipy, which numba's ``np.dot`` calls through
    ``scipy.linalg.cython_blas``, and numpy's) to one thread, restored on exit: the content
    kernels split their products over the cores themselves (``prange`` over ``N_BLOCKS``), and
    OpenBLAS's spinning workers on top of numba's threads oversubscribe the cores. A no-op
    without threadpoolctl."""
    global _BLAS
    if _BLAS is None:
        try:
            import scipy.linalg.cython_blas  # noqa: F401  (loaded, so the controller sees it)
            from threadpoolctl import ThreadpoolController
            _BLAS = ThreadpoolController()
        except Exception:            # pragma: no cover - threadpoolctl is a dependency
            _BLAS = False
    if _BLAS is False:
        return contextlib.nullcontext()
    return _BLAS.limit(limits=1, user_api="blas")
