"""What the commands print and record: fixed-width tables of results and the JSON records of
``--metrics-out``, built from the dicts the library returns (no computation here)."""
from __future__ import annotations

from .metrics import METRIC_NAMES
from .version import __version__


def results_table(metrics, title):
    """A small fixed-width table: rows all/warm/cold, columns the metrics of
    :data:`amrlite.metrics.METRIC_NAMES` (a part without rows is left out)."""
    cols = list(METRIC_NAMES)
    lines = [title, f"{'items':<6} {'n':>5}  " + "  ".join(f"{c:>7}" for c in cols)]
    for part in ("all", "warm", "cold"):
        m = metrics if part == "all" else metrics.get(part, {})
        n = metrics.get("n", {}).get(part, 0)
        if not n:
            continue
        lines.append(f"{part:<6} {n:>5}  " + "  ".join(f"{m[c]:>7.4f}" for c in cols))
    return "\n".join(lines)


def comparison_table(stage_metrics):
    """The models of a chain side by side (test HR@10 / NDCG@10, all and cold items), and what
    the comparison says about AMR against VBPR — whichever way it comes out.
    ``stage_metrics``: ``(model, metrics)`` pairs."""
    parts = [p for p in ("all", "cold") if all(m["n"].get(p) for _, m in stage_metrics)]
    head = f"{'model':<8}" + "".join(f" {p + ' HR@10':>12} {p + ' NDCG@10':>13}" for p in parts)
    lines = ["side by side (test):", head]
    for model, m in stage_metrics:
        cells = "".join(f" {(m if p == 'all' else m[p])['HR@10']:>12.4f}"
                        f" {(m if p == 'all' else m[p])['NDCG@10']:>13.4f}" for p in parts)
        lines.append(f"{model.spec.label:<8}{cells}")
    by = {model.kind: m for model, m in stage_metrics}
    if "amr" in by and "vbpr" in by:
        d = by["amr"]["NDCG@10"] - by["vbpr"]["NDCG@10"]
        verdict = "above" if d > 0 else "below" if d < 0 else "level with"
        lines.append(f"AMR is {verdict} VBPR here (NDCG@10 {d:+.4f}; one run, one seed)")
    return "\n".join(lines)


def metrics_record(metrics, **about):
    """The metrics of :func:`amrlite.recommender.evaluate` as a record: the flat metrics, the
    warm/cold parts, row counts and protocol, then ``about`` (model, split, backend ...)."""
    record = {k: metrics[k] for k in METRIC_NAMES}
    record.update({"warm": metrics["warm"], "cold": metrics["cold"], "n": metrics["n"],
                   "protocol": metrics["protocol"]})
    record.update(about)
    return record


def _run_facts(model, ds, sp):
    """What a ``fit`` record says of the run besides metrics: model, split, data, backend,
    epoch seconds, configuration, version."""
    return {"model": model.kind, "form": model.spec.form, "split": sp.name,
            "dataset": ds.source, "synthetic": ds.synthetic, "backend": model.backend_used,
            "epoch_seconds": [round(s, 6) for s in model.history.epoch_seconds],
            "config": model.config.to_dict(), "version": __version__,
            "features": ds.feature_info, "filters": ds.filters}


def fit_record(model, ds, sp, metrics):
    """``fit --metrics-out``: test metrics, the run (:func:`_run_facts`), the best validation
    epoch and the number of sampled negatives."""
    return metrics_record(
        metrics, **_run_facts(model, ds, sp), best_epoch=model.history.best_epoch,
        best_valid=model.history.best_metrics, n_negatives=model.header.get("n_negatives"))


def untested_record(model, ds, sp):
    """``fit --split none --metrics-out``: nothing held out, so no metrics (``evaluated``
    false); the run (:func:`_run_facts`), its training rows and epochs."""
    return {**_run_facts(model, ds, sp), "evaluated": False, "n_train": sp.n_train,
            "epochs": len(model.history.losses)}


def attack_table(res, title):
    """ε, then HR@10 and NDCG@10 with their relative drops, then the other metrics
    (``res``: :func:`amrlite.attack.attack`'s or the pixel attack's result)."""
    cols = ["HR@10", "NDCG@10"]
    rest = [c for c in METRIC_NAMES if c not in cols]
    head = (f"{'eps':>7}  " + "  ".join(f"{c:>8} {'drop':>7}" for c in cols) + "  "
            + "  ".join(f"{c:>7}" for c in rest))
    lines = [title, head]

    def row(label, m):
        cells = []
        for c in cols:
            d = m.get("drop", {}).get(c, 0.0)
            cells.append(f"{m[c]:>8.4f} {'' if d is None else format(d, '>7.1%'):>7}")
        return (f"{label:>7}  " + "  ".join(cells) + "  "
                + "  ".join(f"{m[c]:>7.4f}" for c in rest))
    lines.append(row("clean", res["clean"]))
    for key, m in res["eps"].items():
        lines.append(row(f"{float(key):g}", m))
    return "\n".join(lines)


def flip_line(flip):
    """The smallest ε that flips a positive out of the top list (quartiles), or None."""
    if flip["median"] is None:
        return None
    return (f"smallest ε that can push the positive out of the top {flip['top_n']}: median "
            f"{flip['median']:.4g} (quartiles {flip['q1']:.4g}, {flip['q3']:.4g}); already out "
            f"at ε=0: {flip['share_already_out']:.1%}")


def pixel_table(res, eps_label):
    """Per pixel radius: feature distance, PSNR, rank change and the share of rows made worse
    (``res``: :func:`amrlite.features.pixel_attack.attack_images`' result)."""
    def num(v, fmt):
        return "-" if v is None else format(v, fmt)
    lines = [f"{'eps':>9} {'|dc| median':>12} {'|dc| max':>9} {'PSNR dB':>8} "
             f"{'rank change':>12} {'worse':>6}"]
    for key, m in res["eps"].items():
        fd, ps, rc = m["feature_distance"], m["psnr"], m["rank_change"]
        lines.append(f"{eps_label(float(key)):>9} {num(fd['median'], '12.4f')} "
                     f"{num(fd['max'], '9.4f')} {num(ps['median'], '8.1f')} "
                     f"{num(rc['mean'], '+12.2f')} {num(rc['share_worse'], '6.0%')}")
    lines.append(f"cost: {res['seconds_per_image_step']:.3f} s per image per gradient step "
                 f"({res['seconds']:.1f}s in all)")
    return "\n".join(lines)


def compare_table(res, split, on, path_a, path_b):
    """The paired tests of :func:`amrlite.significance.compare` (NDCG@10, HR@10)."""
    lines = [f"A = {res['a']} ({path_a}), B = {res['b']} ({path_b}); split {split!r} "
             f"({on}), {res['n_users']} users, {res['n_rows']} rows",
             f"{'metric':<8} {'mean A':>8} {'mean B':>8} {'A - B':>8} {'p (t)':>10} "
             f"{'p (Wilcoxon)':>13}"]
    for m in ("NDCG@10", "HR@10"):
        r = res[m]
        lines.append(f"{m:<8} {r['mean_a']:>8.4f} {r['mean_b']:>8.4f} {r['diff']:>+8.4f} "
                     f"{r['p_t']:>10.3g} {r['p_wilcoxon']:>13.3g}")
    return "\n".join(lines)


def sweep_table(res, seeds, out_dir):
    """Every (ε, λ) setting of :func:`amrlite.experiments.sweep` (mean ± 95% CI with several
    seeds), then the best one and how many settings were reused."""
    lines = [f"{'eps':>8} {'lmd':>8} {'valid NDCG@10':>14} {'test HR@10':>11} "
             f"{'test NDCG@10':>13}" + (f"   (mean ± 95% CI over {seeds} seeds)"
                                        if seeds > 1 else "")]
    for r in res["runs"]:
        if seeds > 1:
            a = res["aggregate"][r["name"]]
            cells = [a["valid"]["NDCG@10"], a["test"]["HR@10"], a["test"]["NDCG@10"]]
            lines.append(f"{r['eps']:>8g} {r['lmd']:>8g} " + " ".join(
                "–" if c["mean"] is None else f"{c['mean']:.4f} ± {c['half']:.4f}"
                for c in cells))
            continue
        v = r.get("valid", {}).get("NDCG@10", float("nan"))
        lines.append(f"{r['eps']:>8g} {r['lmd']:>8g} {v:>14.4f} {r['test']['HR@10']:>11.4f} "
                     f"{r['test']['NDCG@10']:>13.4f}")
    b = res["best"]
    lines.append(f"best by {res['selected_by']}: eps {b['eps']:g}, lmd {b['lmd']:g} "
                 f"(test HR@10 {b['test']['HR@10']:.4f}, NDCG@10 {b['test']['NDCG@10']:.4f}); "
                 f"{len(res['skipped'])} setting(s) reused from {out_dir}")
    return "\n".join(lines)


def experiment_lines(summary, seeds):
    """Each model's test HR@10 / NDCG@10 of :func:`amrlite.experiments.run_experiment`'s
    summary (mean ± 95% CI with several seeds)."""
    if summary.get("multi"):
        return [f"{n:<10} test HR@10 {m['HR@10']['mean']:.4f} ± {m['HR@10']['half']:.4f}"
                f"  NDCG@10 {m['NDCG@10']['mean']:.4f} ± {m['NDCG@10']['half']:.4f}"
                f"  ({seeds} seeds, 95% CI)" for n, m in summary["multi"]["models"].items()]
    return [f"{n:<10} test HR@10 {r['test']['HR@10']:.4f}  NDCG@10 {r['test']['NDCG@10']:.4f}"
            for n, r in summary["results"].items()]


def gradcheck_line(kind, form, errors, tolerance):
    """One model's relative gradient errors, block by block, ``ok`` or ``FAIL``."""
    cells = "  ".join(f"{name}={err:.1e}" for name, err in errors.items())
    flag = "ok" if max(errors.values()) < tolerance else "FAIL"
    return f"  {kind:<5} {form:<4} {flag:<4} {cells}"


def top_list_table(items, scores, titles=()):
    """One user's top list: rank, item, score and (where known) title."""
    width = max([6] + [len(str(i)) for i in items])
    titles = list(titles) or [""] * len(items)
    return "\n".join(f"{rank:>3}  item {item!s:>{width}}  score {score: .4f}"
                     + (f"  {name}" if name else "")
                     for rank, (item, score, name) in enumerate(zip(items, scores, titles), 1))
