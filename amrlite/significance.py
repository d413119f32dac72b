r"""Is model A better than model B on the same evaluation rows? Paired tests per user.

For each evaluation row r both models rank the same positive among the same candidates, giving
per-row gains (HR@10 ∈ {0, 1}, NDCG@10 = 1[rank<10]/log2(rank+2)). Rows are averaged per user
(with leave-one-out splits every user has exactly one row), and the per-user differences
``d_u = gain_A(u) − gain_B(u)`` are tested for a zero mean / zero median:

* paired t-test (``scipy.stats.ttest_rel``): assumes the d_u are roughly normal — fine for
  hundreds of users, although HR differences take only the values −1, 0, 1;
* Wilcoxon signed-rank (``scipy.stats.wilcoxon``): ranks |d_u|, no normality; zero differences
  are dropped (``zero_method="wilcox"``).

Degenerate cases are answered without asking scipy (which would warn or raise): all d_u = 0
gives p = 1.0 for both tests; a constant non-zero d_u gives t = ±∞ and p = 0.0.
"""
from __future__ import annotations

import warnings

import numpy as np

from .containers import as_split
from .errors import AmrliteError
from .metrics import per_row_gains
from .recommender import check_sizes, evaluate_with_ranks

METRICS = ("NDCG@10", "HR@10")


def paired_tests(a, b):
    """Paired t-test and Wilcoxon signed-rank on per-unit values ``a``, ``b`` (same length).

    Returns ``{"mean_a", "mean_b", "diff", "t", "p_t", "w", "p_wilcoxon", "n", "n_nonzero"}``.
    """
    from scipy import stats     # here, not at import: scipy.stats costs every command 0.5 s
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise AmrliteError(f"paired test: the two models were evaluated on different rows "
                           f"({a.shape} vs {b.shape})")
    d = a - b
    n = len(d)
    nz = int(np.count_nonzero(d))
    out = {"mean_a": float(a.mean()) if n else float("nan"),
           "mean_b": float(b.mean()) if n else float("nan"),
           "diff": float(d.mean()) if n else float("nan"), "n": n, "n_nonzero": nz}
    if nz == 0:
        out.update(t=0.0, p_t=1.0, w=0.0, p_wilcoxon=1.0)
        return out
    if np.all(d == d[0]):                       # constant, non-zero: no variance at all
        out.update(t=float(np.sign(d[0]) * np.inf), p_t=0.0)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = stats.ttest_rel(a, b)
        out.update(t=float(t.statistic), p_t=float(t.pvalue))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = stats.wilcoxon(d, zero_method="wilcox")
    out.update(w=float(w.statistic), p_wilcoxon=float(w.pvalue))
    return out


def per_user_means(users, values):
    """Mean of ``values`` per user (users in ascending order)."""
    uniq, inv = np.unique(users, return_inverse=True)
    sums = np.bincount(inv, weights=values, minlength=len(uniq))
    return sums / np.bincount(inv, minlength=len(uniq))


def compare(model_a, model_b, dataset, split="loo", on="test", *, full_ranking=False):
    """Paired comparison of two fitted models on the same rows, per user.

    Parameters
    ----------
    model_a, model_b : Model
        Fitted on the same data (checked: user and item counts).
    dataset : Dataset or Split
    split : str or Split
    on : {"test", "valid"}
    full_ranking : bool
        Rank among all items outside the training set instead of the sampled negatives.

    Returns
    -------
    dict
        ``{"a": label, "b": label, "split", "on", "n_rows", "n_users", "NDCG@10": {mean_a,
        mean_b, diff, t, p_t, w, p_wilcoxon, n, n_nonzero}, "HR@10": {...}}`` with
        ``diff = mean_a − mean_b`` over users: a paired t-test and a Wilcoxon signed-rank test
        on the per-user means.
    """
    sp = as_split(dataset, split)
    rows = getattr(sp, on, None)
    if rows is None:
        raise AmrliteError(f"split {sp.name!r} has no {on} rows")
    for m in (model_a, model_b):
        check_sizes(m.trained_part(), sp, who=f"{m.spec.label}: ")
    ranks = [evaluate_with_ranks(m, dataset, sp, on=on, full_ranking=full_ranking)["ranks"]
             for m in (model_a, model_b)]
    out = {"a": model_a.spec.label, "b": model_b.spec.label, "split": sp.name, "on": on,
           "n_rows": int(len(rows)), "n_users": int(len(np.unique(rows.users)))}
    gains = [per_row_gains(r, 10) for r in ranks]          # (HR, NDCG) per model
    for name, k in (("NDCG@10", 1), ("HR@10", 0)):
        out[name] = paired_tests(per_user_means(rows.users, gains[0][k]),
                                 per_user_means(rows.users, gains[1][k]))
    return out
