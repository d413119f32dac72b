"""Writes the saved-model fixtures of tests/test_saved_models.py with an *earlier* amrlite.

Run once with the amrlite of commit 69b50ed (before the architecture redesign) on the path:

    git worktree add /tmp/old 69b50ed && mkdir -p /tmp/oldpkg && cp -r /tmp/old/amrlite \
        /tmp/oldpkg/ && cp -r /tmp/old/kernels /tmp/oldpkg/amrlite/kernels
    PYTHONPATH=/tmp/oldpkg python tests/data/make_saved_models.py tests/data

It trains a few small models on a small synthetic data set (stored alongside, so that the test
does not depend on today's generator) and records, with that version, each model's test metrics
and the scores of some pairs. The test loads the models with today's code and checks both.
"""
import json
import sys
from pathlib import Path

import numpy as np

import amrlite
from amrlite.synthetic import make_synthetic

out = Path(sys.argv[1])
ds = make_synthetic(n_users=80, n_items=120, n_features=12, n_latent=4, seed=3, min_per_user=5,
                    max_per_user=12, n_negatives=20)
sp = ds.split("loo")
np.savez(out / "saved-models-data.npz", users=ds.users, items=ds.items, features=ds.features,
         train_users=sp.train_users, train_items=sp.train_items, valid_users=sp.valid.users,
         valid_items=sp.valid.items, valid_negatives=sp.valid.negatives,
         test_users=sp.test.users, test_items=sp.test.items, test_negatives=sp.test.negatives)
rng = np.random.default_rng(0)
pairs_u, pairs_i = rng.integers(0, ds.n_users, 50), rng.integers(0, ds.n_items, 50)
expected = {"version": amrlite.__version__, "pairs_users": pairs_u.tolist(),
            "pairs_items": pairs_i.tolist(), "models": {}}
runs = [("pop", "eq4", {}), ("mf", "eq4", {}), ("eals", "eq4", {"reg": 1.0}),
        ("vbpr", "hm", {}), ("amr", "eq4", {"eps": 0.5})]
for kind, form, extra in runs:
    m = amrlite.Model(kind, form=form, backend="numpy", dim=8, epochs=3, batch_size=64,
                      eval_every=0, **extra)
    m.fit(sp, features=ds.features)
    name = f"saved-{kind}-{form}.npz"
    m.save(out / name)
    metrics = amrlite.evaluate(m, sp, features=ds.features)
    expected["models"][name] = {
        "scores": np.asarray(m.score(pairs_u, pairs_i), dtype=np.float64).tolist(),
        "test": {k: metrics[k] for k in ("HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10",
                                         "NDCG@20")}}
(out / "saved-models-expected.json").write_text(json.dumps(expected, indent=1) + "\n")
print("wrote", sorted(p.name for p in out.glob("saved-*")))
