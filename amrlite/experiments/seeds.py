r"""Statistics over seeds: mean ± t-based 95% confidence interval (:func:`mean_ci`), the two
tests of a model A against a model B run with the same seeds (:func:`across_seed_test`,
:func:`pooled_user_test`), Holm's correction for the number of comparisons (:func:`holm`),
and the aggregation of per-seed pipeline results (:func:`aggregate_experiment`,
:func:`aggregate_sweep`).

**Across seeds.** With S seeds, A and B each give one mean metric per seed; seed s of A and of
B share the data, the split and (for AMR vs continued VBPR) the VBPR checkpoint, so the
S differences are paired: a paired t-test on them (``scipy.stats.ttest_rel``, S − 1 degrees of
freedom). It asks whether the gain would hold for a *new seed* (a new checkpoint), but with
S = 5 it has little power.

**Pooled per user.** Every seed evaluates the same users on the same test rows. For user u,
``d_u = mean_s (gain_A(u, s) − gain_B(u, s))`` is the user's gain averaged over seeds, and the
d_u are tested with the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, zero differences
dropped; the paired t-test on the same d_u is reported too). Why not a stratified (by seed)
signed-rank test, van Elteren style, summing per-seed statistics as if independent: the strata
share their users, a user who gains under one seed tends to gain under the others, so the
per-seed statistics are positively correlated and the variance of their sum is
underestimated (anti-conservative p). Averaging within user first keeps users as the
independent units and uses every seed. In a balanced design (every user in every seed, as
here) the t-test on the d_u is the test of the fixed effect "model" in the mixed model
``gain ~ model + (1 + model | user)``; like it, it generalises to new *users* for these
seeds, not to new seeds (that is the across-seed test's job).

**Holm.** Within a table (a family), the m p-values sorted ascending p₍₁₎ ≤ … ≤ p₍ₘ₎ are
adjusted to ``max_{j ≤ i} min(1, (m − j + 1) p₍ⱼ₎)``; a test is significant at α when its
adjusted p < α. It controls the family-wise error rate under any dependence between the tests
(the grid's settings share a baseline, so they are dependent), which Benjamini–Hochberg does
not without extra assumptions.
"""
from __future__ import annotations

import math

import numpy as np

from ..attack import eps_entry
from ..metrics import per_row_gains
from ..recommender import evaluate_with_ranks
from ..significance import paired_tests, per_user_means
from .config import SUMMARY


def mean_ci(values, level=0.95):
    """``{"mean", "half", "lo", "hi", "sd", "n", "values"}`` of ``values`` (None ignored):
    the t-based interval ``mean ± t_{(1+level)/2, n−1} · sd / √n``; ``half``/``lo``/``hi``
    are None with fewer than two values."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(vals)
    out = {"mean": float(np.mean(vals)) if n else None, "half": None, "lo": None, "hi": None,
           "sd": None, "n": n, "values": [None if v is None else float(v) for v in values]}
    if n >= 2:
        from scipy import stats     # here, not at import (as in amrlite.significance)
        sd = float(np.std(vals, ddof=1))
        half = float(stats.t.ppf((1 + level) / 2, n - 1) * sd / math.sqrt(n))
        out.update(sd=sd, half=half, lo=out["mean"] - half, hi=out["mean"] + half)
    return out


def holm(pvalues):
    """Holm-adjusted p-values, in the input order (None stays None and does not count)."""
    idx = [k for k, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    out = [None] * len(pvalues)
    m = len(idx)
    running = 0.0
    for rank, k in enumerate(sorted(idx, key=lambda k: pvalues[k])):
        running = max(running, min(1.0, (m - rank) * pvalues[k]))
        out[k] = running
    return out


def _paired(a, b):
    return paired_tests(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))


def across_seed_test(means_a, means_b):
    """Paired t-test on the per-seed means (one pair per seed): ``{"diff", "p", "n"}``;
    p is None with fewer than two seeds."""
    if len(means_a) < 2:
        return {"diff": float(np.mean(np.subtract(means_a, means_b))), "p": None,
                "n": len(means_a)}
    r = _paired(means_a, means_b)
    return {"diff": r["diff"], "p": r["p_t"], "n": r["n"]}


def pooled_user_test(per_seed_a, per_seed_b):
    """Wilcoxon signed-rank (and paired t-test) on the per-user gains averaged over seeds.

    ``per_seed_a[s][u]``: model A's per-user metric in seed s (users in the same order in
    every seed). Returns ``{"diff", "p" (Wilcoxon), "p_t", "n_users", "n_seeds"}``."""
    a = np.mean(np.asarray(per_seed_a, dtype=np.float64), axis=0)
    b = np.mean(np.asarray(per_seed_b, dtype=np.float64), axis=0)
    r = _paired(a, b)
    return {"diff": r["diff"], "p": r["p_wilcoxon"], "p_t": r["p_t"], "n_users": r["n"],
            "n_seeds": len(per_seed_a)}


def per_user_gains(model, ds, sp, on="test"):
    """Per-user HR@10 and NDCG@10 on ``on`` rows (users ascending), as lists."""
    rows = getattr(sp, on)
    hr, ndcg = per_row_gains(np.asarray(evaluate_with_ranks(model, ds, sp, on=on)["ranks"]), 10)
    return {m: per_user_means(rows.users, g).tolist()
            for m, g in (("HR@10", hr), ("NDCG@10", ndcg))}


def _compare(a_means, b_means, a_users, b_users):
    """Both tests of A vs B for one metric, with the per-seed differences' mean ± CI."""
    out = {"delta": mean_ci(np.subtract(a_means, b_means)),
           "across": across_seed_test(a_means, b_means)}
    out["pooled"] = pooled_user_test(a_users, b_users) if a_users and b_users else None
    return out


def _holm_family(entries):
    """Add ``p_holm`` to each entry's ``across`` and ``pooled`` test, Holm within the family."""
    for test in ("across", "pooled"):
        tests = [e[test] for e in entries if e.get(test)]
        for t, ph in zip(tests, holm([t.get("p") for t in tests])):
            t["p_holm"] = ph
    return entries


def _drop(attack_result, eps):
    x = eps_entry(attack_result["eps"], eps) or {}
    return (x.get("drop") or {}).get("NDCG@10")


def aggregate_experiment(per_seed, table_models, columns):
    """The multi-seed summary of the pipeline.

    ``per_seed``: one dict per seed with ``seed``, ``results`` (model → stage result),
    ``per_user`` (model → per-user gains), ``attacks`` (or None), ``sweeps`` (or None),
    ``sweep_base`` and ``sweep_per_user`` (setting name → per-user gains, plus
    ``"__baseline__"``). Returns ``{"seeds", "models", "vs_amr", "attacks", "sweeps"}``."""
    seeds = [p["seed"] for p in per_seed]
    models = {}
    for n in table_models:
        models[n] = {m: mean_ci([p["results"][n]["test"][m] for p in per_seed])
                     for m in columns}
        for part in ("warm", "cold"):
            if all(part in p["results"][n]["test"] for p in per_seed):
                models[n][part] = {m: mean_ci([p["results"][n]["test"][part][m]
                                               for p in per_seed]) for m in SUMMARY}
    vs_amr = {}
    if "amr" in table_models:
        for n in table_models:
            if n == "amr":
                continue
            vs_amr[n] = {}
            for m in SUMMARY:
                users = [p.get("per_user") or {} for p in per_seed]
                ok = all("amr" in u and n in u for u in users)
                vs_amr[n][m] = _compare(
                    [p["results"]["amr"]["test"][m] for p in per_seed],
                    [p["results"][n]["test"][m] for p in per_seed],
                    [u["amr"][m] for u in users] if ok else None,
                    [u[n][m] for u in users] if ok else None)
        _holm_family([e for t in vs_amr.values() for e in t.values()])
    attacks = None
    if all(p.get("attacks") for p in per_seed):
        attacks = {}
        for key, r0 in per_seed[0]["attacks"]["results"].items():
            attacks[key] = {"clean": mean_ci([p["attacks"]["results"][key]["clean"]["NDCG@10"]
                                              for p in per_seed]),
                            "drop": {e: mean_ci([_drop(p["attacks"]["results"][key], e)
                                                 for p in per_seed]) for e in r0["eps"]}}
    return {"seeds": seeds, "models": models, "vs_amr": vs_amr, "attacks": attacks,
            "sweeps": _aggregate_pipeline_sweeps(per_seed)}


def _aggregate_pipeline_sweeps(per_seed):
    """Per sweep axis and setting: metrics, Δ vs continued VBPR with both tests (Holm within
    the axis), the robust drop, all over seeds."""
    if not all(p.get("sweeps") for p in per_seed):
        return None
    out = {}
    base_test = [p["sweep_base"]["test"] for p in per_seed]
    base_drop = [(p["sweep_base"].get("robust") or {}).get("drop") for p in per_seed]
    base_users = [(p.get("sweep_per_user") or {}).get("__baseline__") for p in per_seed]
    for axis, sw0 in per_seed[0]["sweeps"].items():
        rows = []
        for r0 in sw0["runs"]:
            runs = [next(r for r in p["sweeps"][axis]["runs"] if r["name"] == r0["name"])
                    for p in per_seed]
            users = [(p.get("sweep_per_user") or {}).get(r0["name"]) for p in per_seed]
            ok = all(users) and all(base_users)
            row = {"name": r0["name"], "eps": r0["eps"], "lmd": r0["lmd"],
                   "test": {m: mean_ci([r["test"][m] for r in runs]) for m in SUMMARY},
                   "valid": {m: mean_ci([(r.get("valid") or {}).get(m) for r in runs])
                             for m in SUMMARY},
                   "cold_HR@10": mean_ci([(r["test"].get("cold") or {}).get("HR@10")
                                          for r in runs]),
                   "drop": mean_ci([(r.get("robust") or {}).get("drop") for r in runs]),
                   "vs_cont": _compare([r["test"]["HR@10"] for r in runs],
                                       [b["HR@10"] for b in base_test],
                                       [u["HR@10"] for u in users] if ok else None,
                                       [u["HR@10"] for u in base_users] if ok else None)}
            rows.append(row)
        _holm_family([r["vs_cont"] for r in rows])
        key = "valid" if all(r["valid"]["NDCG@10"]["n"] for r in rows) else "test"
        best = max(rows, key=lambda r: r[key]["NDCG@10"]["mean"])
        out[axis] = {"runs": rows, "best": {"eps": best["eps"], "lmd": best["lmd"]},
                     "selected_by": f"mean {key} NDCG@10"}
    return {"axes": out, "baseline": {
        "test": {m: mean_ci([b[m] for b in base_test]) for m in SUMMARY},
        "cold_HR@10": mean_ci([(b.get("cold") or {}).get("HR@10") for b in base_test]),
        "drop": mean_ci(base_drop)}}


def aggregate_sweep(results):
    """Per setting of a multi-seed ``sweep``: mean ± CI of the validation and test metrics."""
    agg = {}
    for r0 in results[0]["runs"]:
        runs = [next(r for r in res["runs"] if r["name"] == r0["name"]) for res in results]
        agg[r0["name"]] = {"eps": r0["eps"], "lmd": r0["lmd"]} | {
            part: {m: mean_ci([(r.get(part) or {}).get(m) for r in runs]) for m in SUMMARY}
            for part in ("valid", "test")}
    return agg
