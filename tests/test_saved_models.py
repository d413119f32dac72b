"""Models saved by an earlier amrlite (before the architecture redesign, commit 69b50ed) load
and score identically today: the same scores bit for bit, the same test metrics. The fixtures
and the small data set they were trained on are in tests/data/ (made by
tests/data/make_saved_models.py with that version)."""
import json
from pathlib import Path

import numpy as np
import pytest

import amrlite
from amrlite.containers import EvalRows, Split

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "saved-models-expected.json").read_text())


def _split():
    z = np.load(DATA / "saved-models-data.npz")
    rows = {part: EvalRows(z[f"{part}_users"], z[f"{part}_items"], z[f"{part}_negatives"])
            for part in ("valid", "test")}
    n_users, n_items = int(z["users"].max()) + 1, z["features"].shape[0]
    return Split("loo", n_users, n_items, z["train_users"], z["train_items"], rows["valid"],
                 rows["test"]), z["features"]


@pytest.mark.parametrize("name", sorted(EXPECTED["models"]))
def test_model_saved_before_the_redesign_scores_identically(name):
    split, features = _split()
    model = amrlite.Model.load(DATA / name)
    want = EXPECTED["models"][name]
    scores = model.score(EXPECTED["pairs_users"], EXPECTED["pairs_items"])
    np.testing.assert_array_equal(np.asarray(scores, dtype=np.float64), want["scores"])
    metrics = amrlite.evaluate(model, split, features=features)
    assert {k: metrics[k] for k in want["test"]} == want["test"]
