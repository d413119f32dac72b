"""The embedded default data set: small, made in memory in milliseconds, content matters.

Items have latent "visual" vectors ``z_i ~ N(0, I)``; their features are a random linear view of
them plus as much noise (``c_i = A z_i + eps``, ``eps ~ N(0, noise² I)``, the signal's variance is
about 1 per dimension; rows L2-normalised, float32), so a model that reads the features can
recover part of what users like, even for items it never saw in training. Users have latent
preferences ``p_u``; each user picks 5-8 items without replacement with probability
``∝ exp(tau * p_u·z_i / sqrt(n_latent) + pop_i)`` (Gumbel top-k).

The defaults are the regime the paper shows AMR for (its Pinterest set, and ml100k's split-sparse3
here): few interactions per user (3-6 in training once a test and a validation row are held out),
content that carries signal plus noise (signal-to-noise about 1), a share of cold items. They were
chosen for that story and then run once, not tuned until AMR won: see the README for what
``amrlite fit`` prints on them. (Before issue 10 the default was 600 users with 15-40
interactions each and noise 0.1, a dense regime in which AMR trailed VBPR.)

The preset split ``"loo"`` holds one test and one validation row per user. A share
``cold_share`` of items are *cold*: they never occur in training, only as held-out rows, and about
``cold_share`` of the users have a cold test row (likewise for validation rows), so a pure-ID model
is blind on those rows while a content-aware model is not.
"""
from __future__ import annotations

import numpy as np

from amrlite.containers import Dataset, EvalRows, Split
from amrlite.errors import AmrliteError
from amrlite.negatives import sample_negatives
from amrlite.splits import make_split


def _top(keys, k):
    """Per row, the column indices of the ``k`` largest keys, largest first (what a full stable
    argsort of ``-keys`` gives in its first ``k`` columns; the keys are continuous, so no ties)."""
    k = min(k, keys.shape[1])
    part = np.argpartition(-keys, k - 1, axis=1)[:, :k] if k < keys.shape[1] else \
        np.broadcast_to(np.arange(keys.shape[1]), keys.shape).copy()
    sub = np.take_along_axis(-keys, part, axis=1)
    return np.take_along_axis(part, np.argsort(sub, axis=1, kind="stable"), axis=1)


def make_synthetic(n_users=1000, n_items=1000, n_features=64, n_latent=8, seed=0, cold_share=0.2,
                   *, min_per_user=5, max_per_user=8, tau=2.0, pop_scale=0.5, noise=1.0,
                   n_negatives=99) -> Dataset:
    """Build the synthetic data set (``synthetic=True``, ``name="synthetic"``) with preset ``"loo"``.

    ``meta`` holds the ground truth: ``user_latent`` ``[n_users, n_latent]``, ``item_latent``
    ``[n_items, n_latent]``, ``popularity`` ``[n_items]`` and ``cold_items`` (sorted ids).
    """
    if not 0.0 <= cold_share < 1.0:
        raise AmrliteError(f"option 'cold_share': must be in [0, 1), got {cold_share}")
    if not 3 <= min_per_user <= max_per_user:
        raise AmrliteError("options 'min_per_user'/'max_per_user': need 3 <= min <= max, got "
                           f"{min_per_user}, {max_per_user}")
    rng = np.random.default_rng(seed)
    n_cold = int(round(cold_share * n_items))
    n_warm = n_items - n_cold
    if n_warm < max_per_user or (n_cold and n_cold < 2):
        raise AmrliteError(f"synthetic data: {n_items} items are too few for {max_per_user} "
                           f"interactions per user and a {cold_share} cold share")

    z = rng.standard_normal((n_items, n_latent))
    a = rng.standard_normal((n_features, n_latent)) / np.sqrt(n_latent)
    feats = z @ a.T + noise * rng.standard_normal((n_items, n_features))
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    p = rng.standard_normal((n_users, n_latent))
    pop = pop_scale * rng.standard_normal(n_items)
    logits = tau * (p @ z.T) / np.sqrt(n_latent) + pop
    keys = logits + rng.gumbel(size=logits.shape)        # top-k of these = sampling w/o replacement

    cold = np.sort(rng.permutation(n_items)[:n_cold])
    is_cold = np.zeros(n_items, dtype=bool)
    is_cold[cold] = True
    k = rng.integers(min_per_user, max_per_user + 1, size=n_users)
    cold_test = (rng.random(n_users) < cold_share) if n_cold else np.zeros(n_users, dtype=bool)
    cold_valid = (rng.random(n_users) < cold_share) if n_cold else np.zeros(n_users, dtype=bool)

    # warm interactions: each user's k_u best warm keys
    warm_keys = np.where(is_cold[None, :], -np.inf, keys)
    order = _top(warm_keys, max_per_user)
    rank_mask = np.arange(order.shape[1])[None, :] < (k - cold_test - cold_valid)[:, None]
    wu, wr = np.nonzero(rank_mask)
    wi = order[wu, wr]
    # cold interactions: the best cold keys (a draw among cold items) for the users that get one
    cu = np.array([], dtype=np.int64)
    ci = np.array([], dtype=np.int64)
    if n_cold:
        corder = cold[_top(keys[:, cold], 2)]
        n_c = cold_test.astype(int) + cold_valid.astype(int)
        cu, cr = np.nonzero(np.arange(2)[None, :] < n_c[:, None])
        ci = corder[cu, cr]

    # held-out rows: cold rows first where the user has them, else random warm interactions
    test_item = np.empty(n_users, dtype=np.int64)
    valid_item = np.empty(n_users, dtype=np.int64)
    shuffled = np.argsort(rng.random(wu.shape) + wu, kind="stable")   # random order within user
    wu_s, wi_s = wu[shuffled], wi[shuffled]
    starts = np.searchsorted(wu_s, np.arange(n_users))
    ccount = np.zeros(n_users, dtype=np.int64)
    cstart = np.searchsorted(cu, np.arange(n_users))
    train_mask = np.ones(len(wu_s), dtype=bool)
    for u in range(n_users):       # ~600 users: a per-user loop is cheap
        w = starts[u]
        c = cstart[u]
        if cold_test[u]:
            test_item[u] = ci[c + ccount[u]]
            ccount[u] += 1
        else:
            test_item[u] = wi_s[w]
            train_mask[w] = False
            w += 1
        if cold_valid[u]:
            valid_item[u] = ci[c + ccount[u]]
            ccount[u] += 1
        else:
            valid_item[u] = wi_s[w]
            train_mask[w] = False
    train_u, train_i = wu_s[train_mask], wi_s[train_mask]
    ou = np.arange(n_users)

    users = np.concatenate([train_u, ou, ou])
    items = np.concatenate([train_i, valid_item, test_item])
    srt = np.argsort(users, kind="stable")
    users, items = users[srt].astype(np.int32), items[srt].astype(np.int32)

    test_neg = valid_neg = None
    if n_negatives:
        # a cold held-out item is ranked among cold items (as in an item-cold-start split), so
        # that the ranking asks whether content alone finds it; warm rows among all items
        def negatives(row_is_cold):
            out = sample_negatives(ou, users, items, n_items, n_negatives, rng=rng)
            if row_is_cold.any():
                out[row_is_cold] = sample_negatives(ou[row_is_cold], users, items, n_items,
                                                    n_negatives, candidates=cold, rng=rng)
            return out
        test_neg = negatives(cold_test)
        valid_neg = negatives(cold_valid)
    split = Split(name="loo", n_users=n_users, n_items=n_items,
                  train_users=train_u.astype(np.int32), train_items=train_i.astype(np.int32),
                  valid=EvalRows(ou.astype(np.int32), valid_item.astype(np.int32), valid_neg),
                  test=EvalRows(ou.astype(np.int32), test_item.astype(np.int32), test_neg))
    return Dataset(name="synthetic", n_users=n_users, n_items=n_items, users=users, items=items,
                   features=feats.astype(np.float32), source="synthetic", synthetic=True,
                   preset_splits={"loo": split}, splitter=make_split,
                   meta={"user_latent": p, "item_latent": z, "popularity": pop,
                         "cold_items": cold, "seed": seed})
