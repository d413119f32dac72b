r"""The one interface between the library and a backend.

A backend is a **module** of plain functions (:mod:`.reference` — NumPy, the specification;
:mod:`.cpu` — Numba; :mod:`.gpu` — CuPy; :mod:`.numpy_arraylevel` — the GPU backend's
array-level code run on NumPy, for the CPU test suite). Each provides every name below with
exactly these signatures (``tests/test_protocol.py`` compares them), so the library calls a
backend without knowing which one it talks to, and never probes it.

Two surfaces:

* :class:`TrainingBackend` — what training and evaluation call: moving arrays, drawing the
  triples of an epoch, one BPR epoch, the two ranking kernels, top-n recommendation, the MF-eALS prepare/epoch pair.
* :class:`CheckingBackend` — one mini-batch's loss and gradients, the content gradient Γ and
  one Adagrad step: what :mod:`amrlite.gradcheck` and the parity tests compare against the
  reference.

Conventions shared by every backend:

* ``spec`` is an :class:`amrlite.models.ModelSpec`-like object (``has_item_factors``,
  ``has_content``, ``separate_content_user``, ``has_bias``, ``adversarial``); ``hp`` a
  :class:`amrlite.train.TrainConfig`-like object (``batch_size, lr, reg, reg_e, eps, lmd,
  adversary``). Kernels read attributes only: they import nothing from :mod:`amrlite`.
* ``params``/``accum`` are dicts of arrays on the backend's device (block name → array),
  updated in place.
* Bad input raises plain :class:`ValueError`; the library turns it into its own error.
* Ranks are host ``int64`` arrays: the number of candidates scoring at least as high as the
  positive (ties count against it). ``U`` is None for user-independent scores (POP).
"""
from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable


class EalsState(NamedTuple):
    """The arrays of one MF-eALS run on a backend's device, from :func:`eals_prepare`.

    ``P``/``Q`` are updated in place by every :func:`eals_epoch`; ``pred`` is the prediction
    cache x̂ of the training pairs (CSR order); ``layout`` is whatever index the backend
    precomputes once per run (None, a CSC index, pair → user ids)."""

    P: Any
    Q: Any
    pred: Any
    indptr: Any
    indices: Any
    w: Any
    conf: Any
    layout: Any


@runtime_checkable
class TrainingBackend(Protocol):
    """Training and evaluation surface."""

    NAME: str

    def to_device(self, a):
        """``a`` (host array) as an array of this backend (no copy where it is the host)."""

    def to_host(self, a):
        """``a`` as a host NumPy array."""

    def synchronize(self) -> None:
        """Wait until every queued device operation has finished (a no-op on the CPU)."""

    def sample_epoch(self, train_users, train_items, indptr, indices, negative_pool, rng):
        """``(u, i, j)``: every training pair once in a random order, each with one negative
        drawn uniformly from ``negative_pool`` and never a training positive of the user
        (``indices[indptr[u]:indptr[u+1]]``, sorted). Seeded by ``rng`` (numpy Generator)."""

    def train_epoch(self, spec, params, accum, features, triples, hp, rng=None) -> float:
        """One Adagrad pass over ``triples`` in mini-batches of ``hp.batch_size``, in order;
        returns the summed loss. ``rng`` feeds the random adversary only."""

    def sampled_ranks(self, U, V, users, items, negatives):
        """Rank of ``items[r]`` among ``negatives[r]`` under scores ``U[u]·V[i]``."""

    def full_ranks(self, U, V, users, items, indptr, indices):
        """Rank of ``items[r]`` among every item outside user ``users[r]``'s training row."""

    def top_items(self, U, V, users, n, indptr, indices):
        """``(items int64 [rows, n], scores [rows, n])`` on the host: the ``n`` best items of
        each user ``users[r]`` outside its (sorted) CSR row, best first, ties by the lower item
        index; rows with fewer than ``n`` items scoring above −∞ padded with −1 / −∞."""

    def eals_prepare(self, P, Q, indptr, indices, w, conf) -> EalsState:
        """Copy one MF-eALS problem (host ``P``, ``Q``, CSR, pair weights ``w``, item
        confidences ``conf``) to the device in float64 — the caller's arrays are never
        updated — and build the prediction cache."""

    def eals_epoch(self, state: EalsState, reg) -> float:
        """One eALS epoch (every user, then every item) in place; returns the objective."""


@runtime_checkable
class CheckingBackend(Protocol):
    """Single-step surface for the gradient checker and the parity tests."""

    NAME: str

    def batch_gradients(self, spec, params, features, u, i, j, hp, rng=None):
        """``(loss, grads)`` of one mini-batch: ``grads[name] = (sorted unique rows, summed
        gradient rows)`` for P, H, Q, b and the dense array for E, w."""

    def content_gradient(self, spec, params, features, u, i, j):
        """``(sorted unique items, Γ)``: the gradient of the batch's BPR loss w.r.t. the
        features of every item it touches."""

    def adagrad_update(self, params, accum, grads, lr, eps=1e-10) -> None:
        """One explicit Adagrad step with ``grads`` in :func:`batch_gradients`' format."""


#: every name a backend module defines, in the order above
TRAINING_NAMES = ("NAME", "to_device", "to_host", "synchronize", "sample_epoch", "train_epoch",
                  "sampled_ranks", "full_ranks", "top_items", "eals_prepare", "eals_epoch")
CHECKING_NAMES = ("batch_gradients", "content_gradient", "adagrad_update")
