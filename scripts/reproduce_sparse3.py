"""Reproduce the sparse-data result of AMR on ml100k split-sparse3 (docs/experiments.md).

Chain (the PyTorch reference protocol): VBPR from scratch (300 epochs, lr 0.05, β 1e-3), then
from that checkpoint 200 epochs (lr 0.01) of continued VBPR or of AMR (λ = 1, ε in a list).
Both model selections are run: ``final`` (last epoch, no validation) and ``valid`` (best
validation NDCG@10, checked every epoch). Paired tests of AMR vs continued VBPR on the 943 test
users: ``amrlite.significance.compare`` when present, else scipy's paired t-test / Wilcoxon.

    python scripts/reproduce_sparse3.py --data /work/shared/data/ml100k --cache /tmp/repro
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy import stats

import amrlite
from amrlite import Model, evaluate
from amrlite.metrics import per_row_gains
from amrlite.recommender import evaluate_with_ranks


def compare(a, b, ds, sp):
    try:
        from amrlite.significance import compare as real
        res = real(a, b, ds, sp, on="test")
        return ({m: dict(v, t_p=v.get("t_p", v.get("p_t")),
                         wilcoxon_p=v.get("wilcoxon_p", v.get("p_wilcoxon")))
                 for m, v in res.items() if isinstance(v, dict)}, "amrlite.significance.compare")
    except ImportError:
        pass
    ra = evaluate_with_ranks(a, ds, sp, on="test")["ranks"]
    rb = evaluate_with_ranks(b, ds, sp, on="test")["ranks"]
    out = {}
    for k, m in enumerate(("HR@10", "NDCG@10")):
        x, y = per_row_gains(ra)[k], per_row_gains(rb)[k]
        d = x - y
        out[m] = {"mean_a": x.mean(), "mean_b": y.mean(), "diff": d.mean(),
                  "t_p": float(stats.ttest_rel(x, y).pvalue),
                  "wilcoxon_p": float(stats.wilcoxon(d[d != 0]).pvalue)}
    return out, "scipy.stats (ttest_rel, wilcoxon)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/shared/data/ml100k")
    ap.add_argument("--split", default="sparse3")
    ap.add_argument("--cache", default="/tmp/repro")
    ap.add_argument("--eps", default="0.1,0.2,0.5,1")
    ap.add_argument("--select", default="final,valid")
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--out", default=None, help="JSON of every number printed")
    a = ap.parse_args()
    ds = amrlite.load_dataset(a.data)
    sp = ds.split(a.split)
    cache = Path(a.cache)
    cache.mkdir(parents=True, exist_ok=True)
    common = dict(backend=a.backend, reg=1e-3, dim=64, batch_size=512)
    results = {}

    def get(name, kind, ev, init=None, **hp):
        path = cache / f"{name}.npz"
        if path.is_file():
            return Model.load(path)
        t = time.time()
        m = Model(kind, eval_every=ev, **common, **hp).fit(ds, split=sp, init=init)
        m.save(path)
        print(f"  trained {name} in {time.time() - t:.0f}s", flush=True)
        return m

    for select in a.select.split(","):
        tag = {"final": "final", "valid": "bestvalid"}[select]
        ev = 0 if select == "final" else 1
        v0 = get(f"vbpr300-{tag}", "vbpr", ev, epochs=300, lr=0.05)
        vc = get(f"vbprcont-{tag}", "vbpr", ev, init=v0, epochs=200, lr=0.01)
        rows = {"VBPR (300 ep)": v0, "VBPR continued": vc}
        for e in a.eps.split(","):
            rows[f"AMR ε={float(e):g}"] = get(f"amr-eps{float(e)}-{tag}", "amr", ev, init=v0,
                                              epochs=200, lr=0.01, eps=float(e), lmd=1.0)
        print(f"\n### selection: {select}\n")
        print("| model | HR@10 | NDCG@10 | warm HR@10 | cold HR@10 | vs cont. HR@10 | "
              "t-test p (HR@10) | Wilcoxon p (HR@10) | t-test p (NDCG@10) | Wilcoxon p (NDCG@10) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        res = {}
        for label, m in rows.items():
            t = evaluate(m, ds, sp)
            r = {"HR@10": t["HR@10"], "NDCG@10": t["NDCG@10"], "warm_HR@10": t["warm"]["HR@10"],
                 "cold_HR@10": t["cold"]["HR@10"], "best_epoch": m.history.best_epoch}
            cells = ["", "", "", "", ""]
            if label.startswith("AMR"):
                c, how = compare(m, vc, ds, sp)
                r["tests"] = c
                r["tests_by"] = how
                cells = [f"{100 * (t['HR@10'] / vc_hr - 1):+.1f}%",
                         f"{c['HR@10']['t_p']:.2g}", f"{c['HR@10']['wilcoxon_p']:.2g}",
                         f"{c['NDCG@10']['t_p']:.2g}", f"{c['NDCG@10']['wilcoxon_p']:.2g}"]
            else:
                vc_hr = evaluate(vc, ds, sp)["HR@10"]
            res[label] = r
            print(f"| {label} | {t['HR@10']:.4f} | {t['NDCG@10']:.4f} | {t['warm']['HR@10']:.4f} | "
                  f"{t['cold']['HR@10']:.4f} | " + " | ".join(cells) + " |")
        results[select] = res
    if a.out:
        Path(a.out).write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
