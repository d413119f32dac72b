"""The evaluation-negative sampler (:func:`amrlite.negatives.sample_negatives`): uniform over the
candidates a user never interacted with (chi-square, and a biased sampler that the same check
rejects), distinct, never seen, inside the candidates, seeded, independent of the thread count,
and the one-line error when a user has too few candidates."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import chi2

from amrlite.errors import AmrliteError
from amrlite.negatives import sample_negatives

#: a uniform sampler fails the chi-square check with this probability (per check)
ALPHA = 1e-4

N_ITEMS = 20
SEEN = {0: [1, 3, 7, 8, 19], 1: [], 2: list(range(10))}    # user → items it interacted with


def _log():
    users = np.array([u for u, its in SEEN.items() for _ in its], dtype=np.int64)
    items = np.array([i for its in SEEN.values() for i in its], dtype=np.int64)
    return users, items


def uniformity_p_value(negatives, allowed):
    """p-value of Pearson's chi-square test that the items of ``negatives`` are uniform over
    ``allowed`` (every allowed item expected equally often; an item outside ``allowed`` fails)."""
    counts = np.bincount(np.asarray(negatives).ravel(), minlength=N_ITEMS)
    outside = np.setdiff1d(np.arange(N_ITEMS), allowed)
    if counts[outside].any():
        return 0.0
    observed = counts[allowed]
    expected = observed.sum() / len(allowed)
    stat = float(((observed - expected) ** 2 / expected).sum())
    return float(chi2.sf(stat, df=len(allowed) - 1))


def _allowed(user, candidates=range(N_ITEMS)):
    return np.setdiff1d(np.asarray(list(candidates)), SEEN[user])


@pytest.mark.parametrize("n_neg", [1, 4, 7, 10])      # rejection (avail ≥ 2n) and permutation rows
@pytest.mark.parametrize("user", [0, 1, 2])
def test_items_are_uniform_over_the_unseen_candidates(user, n_neg):
    users, items = _log()
    allowed = _allowed(user)
    neg = sample_negatives(np.full(6000, user), users, items, N_ITEMS, n_neg, seed=11)
    assert uniformity_p_value(neg, allowed) > ALPHA


def test_pairs_of_items_are_uniform():
    """Not only each item: every 2-subset of the 15 unseen items is equally likely."""
    users, items = _log()
    allowed = _allowed(0)
    neg = sample_negatives(np.zeros(40_000, dtype=np.int64), users, items, N_ITEMS, 2, seed=5)
    pair = (np.searchsorted(allowed, neg[:, 0]) * len(allowed)
            + np.searchsorted(allowed, neg[:, 1]))
    counts = np.bincount(pair, minlength=len(allowed) ** 2).reshape(len(allowed), -1)
    observed = counts[np.triu_indices(len(allowed), 1)]     # rows are sorted: a < b
    assert observed.sum() == 40_000
    expected = observed.sum() / len(observed)
    stat = float(((observed - expected) ** 2 / expected).sum())
    assert chi2.sf(stat, df=len(observed) - 1) > ALPHA


def _biased_sampler(row_users, users, items, n_neg, rng):
    """A classic mistake: draw any item and, if the user saw it, take the next unseen one up
    (items just above a seen run come up too often)."""
    seen = {u: set(items[users == u].tolist()) for u in np.unique(row_users).tolist()}
    out = np.empty((len(row_users), n_neg), dtype=np.int64)
    for r, u in enumerate(row_users.tolist()):
        got = []
        while len(got) < n_neg:
            i = int(rng.integers(N_ITEMS))
            while i in seen[u] or i in got:
                i = (i + 1) % N_ITEMS
            got.append(i)
        out[r] = got
    return out


def test_the_uniformity_check_rejects_a_biased_sampler():
    users, items = _log()
    biased = _biased_sampler(np.zeros(6000, dtype=np.int64), users, items, 4,
                             np.random.default_rng(11))
    assert uniformity_p_value(biased, _allowed(0)) < ALPHA
    # and an item the user saw fails outright
    assert uniformity_p_value(np.array([[1, 2]]), _allowed(0)) == 0.0


def test_distinct_unseen_inside_the_candidates_and_sorted():
    rng = np.random.default_rng(3)
    n_users, n_items = 300, 500
    users = rng.integers(0, n_users, 6000)
    items = rng.integers(0, n_items, 6000)                  # with repeated interactions
    cand = np.sort(rng.choice(n_items, 260, replace=False))
    row_users = np.concatenate([np.arange(n_users), rng.integers(0, n_users, 200)])
    for n_neg, candidates in [(99, None), (230, None), (40, cand), (200, cand)]:
        neg = sample_negatives(row_users, users, items, n_items, n_neg, candidates=candidates,
                               seed=2)
        assert neg.shape == (len(row_users), n_neg) and neg.dtype == np.int32
        assert (np.diff(neg, axis=1) > 0).all()                       # distinct, sorted
        assert np.isin(neg, np.arange(n_items) if candidates is None else cand).all()
        seen = set(zip(users.tolist(), items.tolist()))
        assert not any((u, x) in seen for u, row in zip(row_users.tolist(), neg.tolist())
                       for x in row)


def test_every_unseen_candidate_when_exactly_enough():
    users, items = _log()
    neg = sample_negatives([2, 1], users, items, N_ITEMS, 10, candidates=range(10, 20), seed=1)
    assert neg.tolist() == [list(range(10, 20))] * 2
    neg = sample_negatives([0], users, items, N_ITEMS, 15, seed=1)
    assert neg[0].tolist() == _allowed(0).tolist()


def test_seeded_and_deterministic():
    users, items = _log()
    rows = np.tile([0, 1, 2], 50)
    a = sample_negatives(rows, users, items, N_ITEMS, 5, seed=4)
    np.testing.assert_array_equal(a, sample_negatives(rows, users, items, N_ITEMS, 5, seed=4))
    np.testing.assert_array_equal(
        a, sample_negatives(rows, users, items, N_ITEMS, 5, rng=np.random.default_rng(4)))
    assert not np.array_equal(a, sample_negatives(rows, users, items, N_ITEMS, 5, seed=5))


_CHILD = """
import hashlib, sys
import numpy as np
from amrlite.negatives import sample_negatives
rng = np.random.default_rng(9)
u, i = rng.integers(0, 2000, 30000), rng.integers(0, 5000, 30000)
neg = sample_negatives(np.arange(2000), u, i, 5000, 99, seed=3)
print(hashlib.sha256(neg.tobytes()).hexdigest())
"""


def test_independent_of_the_thread_count():
    digests = set()
    for threads in ("1", "2"):
        env = dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads,
                   MKL_NUM_THREADS=threads, NUMBA_NUM_THREADS=threads)
        out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                             text=True, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1, json.dumps(sorted(digests))


def test_too_few_candidates_is_one_line_naming_the_user():
    users, items = _log()
    with pytest.raises(AmrliteError) as err:
        sample_negatives([1, 2, 2], users, items, N_ITEMS, 11, user_ids=np.array(["a", "b", "c"]))
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("user 'c' (index 2): only 10 items the user never interacted with, "
                          "but 11 negatives per held-out row were asked for (1 user(s) affected)")
