"""Evaluation flows one way: parameters → factors (:func:`amrlite.models.factors`) → ranks (a
backend's ``sampled_ranks``/``full_ranks``) → metrics (:mod:`amrlite.metrics`)."""
from __future__ import annotations

import numpy as np

from .backends import get_backend
from .metrics import metrics_from_ranks
from .models import factors


def evaluate_factors(U, V, split, rows, *, full_ranking=False, backend=None):
    """Metrics of the factorised scorer ``U[u]·V[i]`` on ``rows`` of ``split``.

    Parameters
    ----------
    U, V : ndarray
        Host factor matrices (``U`` None for POP).
    split : Split
        Gives the training CSR (masked in full ranking) and the warm-item mask.
    rows : EvalRows
        The held-out rows; ranked among their sampled negatives, or among all items when
        ``full_ranking`` or when they have no negatives.
    backend : module, optional
        The backend that counts the ranks (default: the NumPy reference); every backend returns
        the same integer ranks.

    Returns
    -------
    dict
        ``{"all", "warm", "cold"}`` metric dicts (cold = test items never seen in training),
        ``"n"`` (row counts of each part) and ``"ranks"`` (per row, host int64).
    """
    backend = backend if backend is not None else get_backend("numpy")
    if U is not None:
        U = backend.to_device(np.ascontiguousarray(U))
    V = backend.to_device(np.ascontiguousarray(V))
    if full_ranking or rows.negatives is None:
        indptr, indices = split.train_csr
        ranks = backend.full_ranks(U, V, rows.users, rows.items, indptr, indices)
    else:
        ranks = backend.sampled_ranks(U, V, rows.users, rows.items, rows.negatives)
    ranks = np.asarray(ranks)
    warm = split.warm_items[rows.items]
    return {"all": metrics_from_ranks(ranks), "warm": metrics_from_ranks(ranks[warm]),
            "cold": metrics_from_ranks(ranks[~warm]),
            "n": {"all": int(len(ranks)), "warm": int(warm.sum()), "cold": int((~warm).sum())},
            "ranks": ranks}


def evaluate_params(spec, params, features, split, rows, *, id_items=None, popularity=None,
                    full_ranking=False, backend=None):
    """:func:`evaluate_factors` of a model's parameters: items outside ``id_items`` (the
    model's ID-embedded items, :attr:`amrlite.Model.warm`; default ``split.warm_items``) are
    scored by content alone; ``popularity`` gives POP's scores."""
    id_items = split.warm_items if id_items is None else id_items
    U, V = factors(spec, params, features, id_items, popularity=popularity)
    return evaluate_factors(U, V, split, rows, full_ranking=full_ranking, backend=backend)
