"""Seeded split generation: leave-one-out, temporal, item cold start, sparsification, no split
(train on everything), negative sampling.

Everything is driven by one ``np.random.default_rng(seed)``, so the same inputs and seed give the
same split, bit for bit. These mirror how the shared ``ml100k`` splits were made (see
``shared/data/ml100k/README.md``); a generated split is not byte-identical to those files.
"""
from __future__ import annotations

import numpy as np

from amrlite.containers import Dataset, EvalRows, Split
from amrlite.negatives import sample_negatives
from amrlite.errors import AmrliteError, braced, option_error

def _pairs(n_users, n_items, users, items):
    users = np.asarray(users, dtype=np.int64).ravel()
    items = np.asarray(items, dtype=np.int64).ravel()
    if users.shape != items.shape:
        raise AmrliteError(f"users and items differ in length ({len(users)} vs {len(items)})")
    if len(users) and (users.min() < 0 or users.max() >= n_users):
        raise AmrliteError(f"user ids must lie in 0..{n_users - 1}, got {users.min()}..{users.max()}")
    if len(items) and (items.min() < 0 or items.max() >= n_items):
        raise AmrliteError(f"item ids must lie in 0..{n_items - 1}, got {items.min()}..{items.max()}")
    return users, items


def _rank_in_user(users, keys, n_users):
    """``(rank, counts)``: the place of each interaction inside its user's group in the order
    ``keys`` (:func:`numpy.lexsort` keys, the last one primary; 0 = first), and the
    interactions per user."""
    order = np.lexsort((*keys, users))
    counts = np.bincount(users, minlength=n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(len(users), dtype=np.int64)
    rank[order] = np.arange(len(users)) - starts[users[order]]
    return rank, counts


def _first_two_per_user(users, keys, n_users):
    """``(test_idx, valid_idx, counts)``: for every user with at least 3 interactions, the
    interaction ranked first by ``keys`` (:func:`_rank_in_user`) and the one ranked second,
    both sorted by user; ``counts``: interactions per user."""
    rank, counts = _rank_in_user(users, keys, n_users)
    eligible = counts[users] >= 3
    test_idx = np.flatnonzero((rank == 0) & eligible)
    valid_idx = np.flatnonzero((rank == 1) & eligible)
    return (test_idx[np.argsort(users[test_idx], kind="stable")],
            valid_idx[np.argsort(users[valid_idx], kind="stable")], counts)


def _first_per_user(rng, users, idx):
    """One random element of ``idx`` per user (sorted by user)."""
    if len(idx) == 0:
        return idx
    key = rng.random(len(idx))
    order = np.lexsort((key, users[idx]))
    idx = idx[order]
    u = users[idx]
    first = np.concatenate(([True], u[1:] != u[:-1]))
    return idx[first]


def _rows(users, items, idx, negatives):
    return EvalRows(users=users[idx].astype(np.int32), items=items[idx].astype(np.int32),
                    negatives=negatives)


def leave_one_out(n_users, n_items, users, items, *, seed=2019, n_negatives=99, name="loo",
                  user_ids=None):
    """Per user: one random interaction is the test row, another the validation row, rest train.

    Users with fewer than 3 interactions keep everything in train (no held-out row). Each held-out
    row gets ``n_negatives`` distinct items the user never interacted with (``0``: ``negatives``
    is ``None``, full ranking only). ``user_ids`` (raw ids) only name users in messages.
    """
    users, items = _pairs(n_users, n_items, users, items)
    rng = np.random.default_rng(seed)
    test_idx, valid_idx, _ = _first_two_per_user(users, (rng.random(len(users)),), n_users)
    return _hold_out(name, n_users, n_items, users, items, test_idx, valid_idx, rng=rng,
                     n_negatives=n_negatives, user_ids=user_ids)


def _hold_out(name, n_users, n_items, users, items, test_idx, valid_idx, *, rng, n_negatives,
              user_ids, notes=()):
    """The split whose test and validation rows are the interactions ``test_idx`` and
    ``valid_idx`` (one per user, sorted by user) and whose training rows are the rest; each
    held-out row gets ``n_negatives`` sampled items its user never interacted with (test rows
    first, then validation rows, from ``rng``)."""
    train = np.ones(len(users), dtype=bool)
    train[test_idx] = False
    train[valid_idx] = False
    test_neg = valid_neg = None
    if n_negatives:
        test_neg = sample_negatives(users[test_idx], users, items, n_items, n_negatives, rng=rng,
                                    user_ids=user_ids)
        valid_neg = sample_negatives(users[valid_idx], users, items, n_items, n_negatives, rng=rng,
                                     user_ids=user_ids)
    return Split(name=name, n_users=n_users, n_items=n_items,
                 train_users=users[train].astype(np.int32), train_items=items[train].astype(np.int32),
                 valid=_rows(users, items, valid_idx, valid_neg),
                 test=_rows(users, items, test_idx, test_neg), notes=list(notes))


def temporal(n_users, n_items, users, items, times, *, seed=2019, n_negatives=99,
             name="temporal", user_ids=None):
    """Per user: the last interaction by time is the test row, the one before it the validation
    row, the rest train (what a model trained on the past predicts of the future).

    ``times`` are each interaction's epoch seconds. Ties are broken by position: of two
    interactions at the same time, the later one in ``users``/``items`` (the file's order)
    counts as later. Users with fewer than 3 interactions keep everything in train (the
    returned split's ``notes`` say how many). Held-out rows get sampled negatives as in
    :func:`leave_one_out` (``seed`` only drives that sampling: the rows themselves are fixed).
    """
    users, items = _pairs(n_users, n_items, users, items)
    t = np.asarray(times, dtype=np.float64).ravel()
    if t.shape != users.shape:
        raise AmrliteError(f"times and users differ in length ({len(t)} vs {len(users)})")
    # latest first: time descending, then position descending (of a tie, the later row)
    test_idx, valid_idx, counts = _first_two_per_user(users, (-np.arange(len(users)), -t),
                                                      n_users)
    few = int(((counts > 0) & (counts < 3)).sum())
    notes = [f"split {name!r}: {few} user(s) with fewer than 3 interactions keep them all in "
             "training (no test or validation row)"] if few else []
    return _hold_out(name, n_users, n_items, users, items, test_idx, valid_idx,
                     rng=np.random.default_rng(seed), n_negatives=n_negatives, user_ids=user_ids,
                     notes=notes)


def no_split(n_users, n_items, users, items, *, name="none"):
    """Every interaction in training, nothing held out (``valid`` and ``test`` are ``None``): the
    production model, trained for a number of epochs chosen beforehand on a split."""
    users, items = _pairs(n_users, n_items, users, items)
    return Split(name=name, n_users=n_users, n_items=n_items, train_users=users.astype(np.int32),
                 train_items=items.astype(np.int32), valid=None, test=None)


def item_cold_start(n_users, n_items, users, items, *, seed=2019, n_negatives=99,
                    fractions=(0.6, 0.2, 0.2), name="cold", user_ids=None):
    """Items split at random into warm / valid-cold / test-cold; train = warm interactions only.

    Per user, one random interaction with a test-cold item is a test row and one with a
    valid-cold item a validation row (users without one get no row). Negatives come from the same
    cold set, items the user never interacted with.
    """
    users, items = _pairs(n_users, n_items, users, items)
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.shape != (3,) or (fr < 0).any() or abs(fr.sum() - 1.0) > 1e-6:
        raise option_error("fractions", f"need three non-negative shares summing to 1 "
                           f"(warm, valid-cold, test-cold), got {tuple(fractions)}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n_items)
    n_warm = int(round(fr[0] * n_items))
    n_valid = int(round(fr[1] * n_items))
    group = np.zeros(n_items, dtype=np.int8)
    valid_cold = perm[n_warm:n_warm + n_valid]
    test_cold = perm[n_warm + n_valid:]
    group[valid_cold] = 1
    group[test_cold] = 2
    g = group[items]
    test_idx = _first_per_user(rng, users, np.flatnonzero(g == 2))
    valid_idx = _first_per_user(rng, users, np.flatnonzero(g == 1))
    test_neg = valid_neg = None
    if n_negatives:
        test_neg = sample_negatives(users[test_idx], users, items, n_items, n_negatives,
                                    candidates=test_cold, rng=rng, label="test-cold items",
                                    user_ids=user_ids)
        valid_neg = sample_negatives(users[valid_idx], users, items, n_items, n_negatives,
                                     candidates=valid_cold, rng=rng, label="valid-cold items",
                                     user_ids=user_ids)
    train = g == 0
    return Split(name=name, n_users=n_users, n_items=n_items,
                 train_users=users[train].astype(np.int32), train_items=items[train].astype(np.int32),
                 valid=_rows(users, items, valid_idx, valid_neg),
                 test=_rows(users, items, test_idx, test_neg))


def sparsify(split, max_per_user, seed=2019, *, name=None):
    """A copy of ``split`` whose train keeps at most ``max_per_user`` random rows per user.

    Valid/test rows (and their negatives) are shared with ``split``. ``split-sparse3`` of ml100k is
    ``sparsify(loo, 3, seed=2019)`` in spirit.
    """
    k = int(max_per_user)
    if k < 1:
        raise option_error("max_per_user", f"must be at least 1, got {max_per_user}")
    rng = np.random.default_rng(seed)
    tu = np.asarray(split.train_users, dtype=np.int64)
    rank, _ = _rank_in_user(tu, (rng.random(len(tu)),), split.n_users)
    keep = rank < k
    return Split(name=name or f"{split.name}-sparse{k}", n_users=split.n_users,
                 n_items=split.n_items, train_users=split.train_users[keep],
                 train_items=split.train_items[keep], valid=split.valid, test=split.test)


def make_split(dataset: Dataset, name="loo", *, seed=2019, n_negatives=99) -> Split:
    """The split ``name`` generated from all the interactions of ``dataset``: ``"loo"``
    (leave-one-out), ``"temporal"`` (the last interactions by time held out; needs
    :attr:`Dataset.times`), ``"cold"`` (item cold start), ``"sparse<k>"`` (``loo`` with at most
    k training rows per user) or ``"none"`` (everything in training). The splitter of a
    synthetic data set, and of a loaded one for the names it has no ``split-<name>/`` folder
    for (:func:`amrlite.data.split_dataset`); ``dataset.split(name)`` reaches it. A generated
    split records its ``seed``."""
    check_negatives(n_negatives)
    split = _make_split(dataset, name, seed=seed, n_negatives=n_negatives)
    if name != "none":
        split.seed = seed
    return split


def check_negatives(n_negatives):
    """Refuse a number of sampled negatives per evaluation row below 0 (the parameter
    ``negatives``)."""
    if n_negatives is None or int(n_negatives) < 0:
        raise option_error("negatives", f"must be 0 (full ranking only) or more, got "
                           f"{n_negatives}")


def _make_split(ds, name, *, seed, n_negatives):
    if name == "loo":
        return _nonempty(leave_one_out(ds.n_users, ds.n_items, ds.users, ds.items, seed=seed,
                                       n_negatives=n_negatives, name=name,
                                       user_ids=ds.user_ids), ds,
                         "every user has fewer than 3 interactions (leave-one-out holds out one "
                         "test and one validation row and trains on the rest)")
    if name == "none":
        return no_split(ds.n_users, ds.n_items, ds.users, ds.items)
    if name == "temporal":
        if ds.times is None:
            if ds.meta.get("time_error"):
                raise AmrliteError(ds.meta["time_error"])
            raise option_error((), braced(f"split 'temporal' needs the time of every "
                               f"interaction, and {ds.source} has no time column ") + "(named "
                               "timestamp, time, ordered_at, created_at, date, datetime ..., or "
                               "given with {time_col})", names=("time_col",))
        return _nonempty(temporal(ds.n_users, ds.n_items, ds.users, ds.items, ds.times,
                                  seed=seed, n_negatives=n_negatives, name=name,
                                  user_ids=ds.user_ids), ds,
                         "every user has fewer than 3 interactions (the temporal split holds "
                         "out each user's last two and trains on the rest)")
    if name == "cold":
        return _nonempty(item_cold_start(ds.n_users, ds.n_items, ds.users, ds.items, seed=seed,
                                         n_negatives=n_negatives, name=name,
                                         user_ids=ds.user_ids), ds,
                         f"none of its {ds.n_items} items was drawn into the test-cold fifth "
                         "with an interaction")
    if name.startswith("sparse") and name[6:].isdigit() and int(name[6:]) > 0:
        return sparsify(ds.split("loo", seed=seed, n_negatives=n_negatives), int(name[6:]),
                        seed=seed, name=name)
    raise AmrliteError(f"data set '{ds.name}' ({ds.source}) has no split '{name}'; "
                       f"available: {', '.join(ds.split_names())}")


def _nonempty(split, ds, why):
    if not len(split.test) or not split.n_train:
        part = "test" if not len(split.test) else "training"
        raise AmrliteError(f"data set '{ds.name}' ({ds.source}, {ds.n_users} users, {ds.n_items} "
                           f"items, {ds.n_interactions} interactions): the generated split "
                           f"{split.name!r} has no {part} rows: {why}")
    return split

