"""HR/NDCG against hand-computed cases; ties count against the positive."""
import numpy as np
import pytest

from amrlite.containers import EvalRows, Split
from amrlite.kernels.reference import full_ranks, sampled_ranks
from amrlite.metrics import metrics_from_ranks
from amrlite.evaluation import evaluate_factors


def test_metrics_from_ranks_by_hand():
    m = metrics_from_ranks([0, 4, 5, 12, 30])
    assert m["HR@5"] == pytest.approx(2 / 5)
    assert m["HR@10"] == pytest.approx(3 / 5)
    assert m["HR@20"] == pytest.approx(4 / 5)
    assert m["NDCG@5"] == pytest.approx((1 + 1 / np.log2(6)) / 5)
    assert m["NDCG@10"] == pytest.approx((1 + 1 / np.log2(6) + 1 / np.log2(7)) / 5)
    assert m["NDCG@20"] == pytest.approx((1 + 1 / np.log2(6) + 1 / np.log2(7) + 1 / np.log2(14)) / 5)


def test_sampled_rank_counts_ties_against_the_positive():
    # one user, 1-d factors: score = V[i]
    U = np.array([[1.0]])
    V = np.array([[3.0], [5.0], [3.0], [1.0], [2.0]])
    ranks = sampled_ranks(U, V, np.array([0, 0]), np.array([0, 1]),
                          np.array([[2, 3, 4], [0, 2, 3]]))
    assert ranks.tolist() == [1, 0]       # item 2 ties item 0 → counts against it


def test_full_rank_excludes_training_items_and_counts_ties():
    U = np.array([[1.0], [1.0]])
    V = np.array([[4.0], [9.0], [4.0], [1.0], [7.0]])
    indptr = np.array([0, 1, 2])
    indices = np.array([1, 4])            # user 0 trained on item 1, user 1 on item 4
    ranks = full_ranks(U, V, np.array([0, 1]), np.array([0, 2]), indptr, indices)
    # user 0: candidates {0,2,3,4}: 7 > 4, 4 ties → rank 2; user 1: {0,1,2,3}: 9, 4 tie → 2
    assert ranks.tolist() == [2, 2]


def test_warm_cold_split_of_results():
    U = np.eye(2)
    V = np.array([[1.0, 0], [0, 1.0], [0.5, 0.5], [0.2, 0.1]])
    rows = EvalRows(np.array([0, 1]), np.array([0, 3]), np.array([[1, 2], [0, 2]]))
    sp = Split("t", 2, 4, np.array([0, 1]), np.array([1, 0]), None, rows)
    # warm items: {0, 1}; row 0: warm item 0 (rank 0); row 1: cold item 3, 0.1 vs 0 and 0.5 (rank 1)
    res = evaluate_factors(U, V, sp, rows)
    assert res["n"] == {"all": 2, "warm": 1, "cold": 1}
    assert res["warm"]["HR@5"] == 1.0 and res["cold"]["NDCG@5"] == pytest.approx(1 / np.log2(3))
    assert res["all"]["HR@5"] == 1.0 and res["ranks"].tolist() == [0, 1]
