"""Split generation: invariants, determinism, negatives, errors, sparsify."""
import numpy as np
import pytest

from amrlite.errors import AmrliteError
from amrlite.splits import item_cold_start, leave_one_out, sample_negatives, sparsify


@pytest.fixture(scope="module")
def inter():
    """80 users x 300 items, 5-40 interactions each (plus two users with 1 and 2)."""
    rng = np.random.default_rng(7)
    users, items = [], []
    for u in range(80):
        k = 1 if u == 0 else 2 if u == 1 else int(rng.integers(5, 41))
        users += [u] * k
        items += rng.choice(300, k, replace=False).tolist()
    return 80, 300, np.array(users), np.array(items)


def pairs(u, i):
    return set(zip(np.asarray(u).tolist(), np.asarray(i).tolist()))


def check_negatives(rows, all_pairs, n, allowed=None):
    assert rows.negatives.shape == (len(rows), n) and rows.negatives.dtype == np.int32
    for u, pos, negs in zip(rows.users.tolist(), rows.items.tolist(), rows.negatives.tolist()):
        assert len(set(negs)) == n and pos not in negs
        assert not any((u, x) in all_pairs for x in negs)
        if allowed is not None:
            assert set(negs) <= allowed


def test_leave_one_out_invariants(inter):
    nu, ni, u, i = inter
    s = leave_one_out(nu, ni, u, i, seed=2019, n_negatives=20)
    all_pairs = pairs(u, i)
    assert s.name == "loo" and (s.n_users, s.n_items) == (nu, ni)
    assert len(s.test) == len(s.valid) == 78          # users 0 and 1 have < 3 interactions
    assert s.test.users.tolist() == list(range(2, 80))
    tr, va, te = pairs(s.train_users, s.train_items), pairs(s.valid.users, s.valid.items), \
        pairs(s.test.users, s.test.items)
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert tr | va | te == all_pairs and s.n_train + 2 * 78 == len(u)
    assert (np.bincount(s.train_users, minlength=nu)[:2] == [1, 2]).all()
    check_negatives(s.test, all_pairs, 20)
    check_negatives(s.valid, all_pairs, 20)


def test_determinism(inter):
    nu, ni, u, i = inter
    a = leave_one_out(nu, ni, u, i, seed=5)
    b = leave_one_out(nu, ni, u, i, seed=5)
    c = leave_one_out(nu, ni, u, i, seed=6)
    for x, y in [(a.train_items, b.train_items), (a.test.items, b.test.items),
                 (a.test.negatives, b.test.negatives), (a.valid.negatives, b.valid.negatives)]:
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.test.items, c.test.items)
    assert not np.array_equal(a.test.negatives, c.test.negatives)
    ca = item_cold_start(nu, ni, u, i, seed=5, n_negatives=5)
    cb = item_cold_start(nu, ni, u, i, seed=5, n_negatives=5)
    cc = item_cold_start(nu, ni, u, i, seed=6, n_negatives=5)
    np.testing.assert_array_equal(ca.test.negatives, cb.test.negatives)
    assert not np.array_equal(ca.train_items, cc.train_items) or \
        not np.array_equal(ca.test.items, cc.test.items)


def test_no_negatives(inter):
    nu, ni, u, i = inter
    s = leave_one_out(nu, ni, u, i, n_negatives=0)
    assert s.test.negatives is None and s.valid.negatives is None


def test_item_cold_start_invariants(inter):
    nu, ni, u, i = inter
    s = item_cold_start(nu, ni, u, i, seed=2019, n_negatives=10)
    all_pairs = pairs(u, i)
    warm = s.warm_items
    assert warm.sum() <= 180 and warm.sum() > 150            # 60% of 300 items, minus unused ones
    test_cold, valid_cold = set(s.test.items.tolist()), set(s.valid.items.tolist())
    assert not warm[list(test_cold | valid_cold)].any()     # cold items never in train
    assert not test_cold & valid_cold
    assert len(np.unique(s.test.users)) == len(s.test)     # at most one row per user
    assert len(np.unique(s.valid.users)) == len(s.valid)
    # train = exactly the interactions with warm-set items
    seen_warm = {(a, b) for a, b in all_pairs if warm[b]}
    assert pairs(s.train_users, s.train_items) == seen_warm
    # users with a test-cold interaction all get a test row
    assert pairs(s.test.users, s.test.items) <= all_pairs
    # negatives come from the same cold set: never warm, never a valid-cold positive's set for test
    check_negatives(s.test, all_pairs, 10)
    check_negatives(s.valid, all_pairs, 10)
    assert not warm[s.test.negatives].any() and not warm[s.valid.negatives].any()
    test_set = set(s.test.items.tolist()) | set(s.test.negatives.ravel().tolist())
    valid_set = set(s.valid.items.tolist()) | set(s.valid.negatives.ravel().tolist())
    assert not test_set & valid_set
    with pytest.raises(AmrliteError, match="option 'fractions'"):
        item_cold_start(nu, ni, u, i, fractions=(0.5, 0.2, 0.2))


def test_too_few_candidates():
    # user 1 interacted with 8 of 10 items: only 2 candidates for 3 negatives
    u = np.array([0, 0, 0] + [1] * 8)
    i = np.array([0, 1, 2] + list(range(8)))
    with pytest.raises(AmrliteError, match=r"user 1: only 2 items the user never interacted with, "
                                           r"but 3 negatives"):
        leave_one_out(2, 10, u, i, n_negatives=3)
    s = leave_one_out(2, 10, u, i, n_negatives=2)
    assert sorted(s.test.negatives[1].tolist()) == [8, 9]
    with pytest.raises(AmrliteError, match=r"user \d+: only \d+ test-cold items"):
        item_cold_start(2, 10, u, i, n_negatives=3)


def test_sample_negatives_uniform_and_candidates():
    row_users = np.zeros(4000, dtype=np.int64)
    neg = sample_negatives(row_users, [0, 0], [1, 3], 10, 2, seed=1)
    counts = np.bincount(neg.ravel(), minlength=10)
    assert counts[1] == counts[3] == 0
    allowed = counts[[0, 2, 4, 5, 6, 7, 8, 9]]
    assert allowed.min() > 0.85 * 1000 and allowed.max() < 1.15 * 1000   # 8000 draws / 8 items
    neg = sample_negatives([0, 1], [0], [5], 10, 2, candidates=[4, 5, 6], seed=1)
    assert set(neg[0].tolist()) == {4, 6} and set(neg[1].tolist()) <= {4, 5, 6}


def test_bad_ids():
    with pytest.raises(AmrliteError, match=r"item ids must lie in 0..4, got 0..5"):
        leave_one_out(2, 5, [0, 1], [0, 5])


def test_sparsify(inter):
    nu, ni, u, i = inter
    loo = leave_one_out(nu, ni, u, i, n_negatives=5)
    sp = sparsify(loo, 3, seed=2019)
    counts = np.bincount(sp.train_users, minlength=nu)
    full = np.bincount(loo.train_users, minlength=nu)
    np.testing.assert_array_equal(counts, np.minimum(full, 3))
    assert pairs(sp.train_users, sp.train_items) <= pairs(loo.train_users, loo.train_items)
    assert sp.test is loo.test and sp.valid is loo.valid and sp.name == "loo-sparse3"
    np.testing.assert_array_equal(sparsify(loo, 3, seed=2019).train_items, sp.train_items)
    assert not np.array_equal(sparsify(loo, 3, seed=1).train_items, sp.train_items)


def test_ml100k_generated_like_shared(shared_data):
    """Splits generated from ml100k have the shared splits' sizes (not the same rows)."""
    from amrlite.data import load_dataset
    ds = load_dataset(shared_data / "ml100k")
    ds.split_dirs.clear()              # force generation
    loo = ds.split("loo")
    assert (loo.n_train, len(loo.valid), len(loo.test)) == (98_114, 943, 943)
    sp = ds.split("sparse3")
    assert sp.name == "sparse3" and sp.n_train == 2829   # every user keeps 3 (min 20 interactions)
    cold = ds.split("cold")
    assert len(cold.test) > 900 and cold.test.negatives.shape[1] == 99
    assert not cold.warm_items[cold.test.negatives].any()
