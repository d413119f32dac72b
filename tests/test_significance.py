"""Paired significance tests: known cases, degenerate differences, two real models."""
import warnings

import numpy as np
import pytest
from scipy import stats

import amrlite
from amrlite import Model
from amrlite.significance import compare, paired_tests


def test_known_case_matches_scipy():
    a = np.array([0.9, 0.8, 0.7, 1.0, 0.6, 0.95, 0.85, 0.75])
    b = np.array([0.5, 0.7, 0.7, 0.6, 0.5, 0.65, 0.8, 0.3])
    r = paired_tests(a, b)
    assert r["diff"] == pytest.approx(np.mean(a - b))
    assert r["p_t"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    # one zero difference dropped, 7 positive ones: exact two-sided p = 2 / 2**7
    assert r["n_nonzero"] == 7 and r["p_wilcoxon"] == pytest.approx(2 / 2 ** 7)
    assert r["p_t"] < 0.01


def test_degenerate_differences_give_clean_p_values():
    a = np.array([0.0, 1.0, 0.5, 0.25])
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # no scipy warning may leak
        same = paired_tests(a, a.copy())
        shifted = paired_tests(a + 1.0, a)       # exactly constant differences
    assert same["p_t"] == 1.0 and same["p_wilcoxon"] == 1.0 and same["diff"] == 0.0
    assert shifted["p_t"] == 0.0 and shifted["t"] == np.inf
    assert 0 < shifted["p_wilcoxon"] <= 0.125 + 1e-12


def test_compare_two_models_and_a_model_with_itself():
    ds = amrlite.load_dataset()
    kw = dict(backend="numpy", epochs=4, dim=16, batch_size=256, eval_every=0)
    vbpr = Model("vbpr", **kw).fit(ds)
    pop = Model("pop").fit(ds)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        self_cmp = compare(vbpr, vbpr, ds, "loo")
        res = compare(vbpr, pop, ds, "loo")
    assert self_cmp["NDCG@10"]["p_t"] == 1.0 and self_cmp["HR@10"]["p_wilcoxon"] == 1.0
    ev_a, ev_b = amrlite.evaluate(vbpr, ds), amrlite.evaluate(pop, ds)
    for m in ("NDCG@10", "HR@10"):
        assert res[m]["mean_a"] == pytest.approx(ev_a[m])
        assert res[m]["mean_b"] == pytest.approx(ev_b[m])
        assert res[m]["diff"] == pytest.approx(ev_a[m] - ev_b[m])
    assert res["n_users"] == res["n_rows"] == ds.n_users
    assert res["NDCG@10"]["diff"] > 0 and res["NDCG@10"]["p_t"] < 1e-3
