"""``report.md``: :func:`make_report` turns the pipeline's summary into Markdown, one section
function per part (data and selection, Table 2 with warm/cold rows, paired significance,
Table 3 and the rank change, the sweeps, figures, timings, configuration), with the number and
table helpers they share."""
from __future__ import annotations

import math

import numpy as np

from .. import jsonio
from ..features.pixel_attack import eps_label
from .store import norm_compare

#: the columns of Table 2
TABLE2_COLUMNS = ("HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20")

FIGURE_TITLES = {"curves": "Fig. 3: training curves", "rank_change": "Fig. 5: rank change",
                 "sweep_eps": "Fig. 6: effect of ε", "sweep_lmd": "Fig. 7: effect of λ",
                 "sweep_heatmap": "ε × λ grid: test HR@10 gain over continued VBPR",
                 "attack": "Attack: NDCG@10 drop vs ε",
                 "pixel_attack": "Fig. 1: a pixel-level attack on one user's images"}

SWEEP_TITLES = {"grid": "Full ε × λ grid", "eps": "ε sweep (λ fixed)",
                "lmd": "λ sweep (ε fixed)"}


# ---------------------------------------------------------------------------- cells
def _fmt(x, nd=4):
    return "–" if x is None else f"{x:.{nd}f}"


def _p(p):
    return "–" if p is None or (isinstance(p, float) and math.isnan(p)) else f"{p:.2g}"


def _stars(p):
    if p is None or math.isnan(p):
        return ""
    return "**" if p < 0.01 else "*" if p < 0.05 else ""


def _row_label(n, r):
    if n == "vbpr":
        return "VBPR (pre-training)"
    if n == "vbpr_cont":
        return "VBPR (continued)"
    return r["label"]


def _pct(a, b):
    return "–" if a is None or not b else f"{100 * (a - b) / b:+.1f}%"


def _drop(robust):
    return f"{100 * robust['drop']:.1f}%" if robust.get("drop") is not None else "–"


def _delta_hr(run, base_test):
    """Test HR@10 of ``run`` minus the baseline's, with the paired t-test's marks."""
    vs = (run.get("vs_cont") or {}).get("HR@10") or {}
    return f"{run['test']['HR@10'] - base_test['HR@10']:+.4f}{_stars(vs.get('t_p'))}"


# ---------------------------------------------------------------------------- sections
def _header(summary):
    d, cfg = summary["data"], summary["config"]
    return [
        f"# amrlite experiment: {d.get('name')} / split {d['split']}", "",
        f"amrlite {summary['version']}, backend {summary['backend_used']} "
        f"(asked: {summary['backend']}); data `{d.get('source')}`"
        + (" (synthetic)" if d.get("synthetic") else "")
        + f", fingerprint `{d['fingerprint']}`.",
        f"{d['n_users']} users, {d['n_items']} items ({d['warm_items']} in training), "
        f"{d['n_train']} training rows, {d['n_valid']} validation and {d['n_test']} test "
        f"rows ({d['cold_test_rows']} test rows with an item never seen in training), "
        f"{d['n_features']}-d features.",
        f"Model selection: **{cfg['select']}** "
        + ("(the last epoch's parameters)" if cfg["select"] == "final" else
           "(the epoch with the best validation NDCG@10)")
        + f"; VBPR pre-training from {cfg['vbpr_init']}. Trained this run: "
        + (", ".join(summary["trained"]) or "nothing")
        + "; reused: " + (", ".join(summary["reused"]) or "nothing") + "."]


def _table2(res, sig):
    cols = TABLE2_COLUMNS
    L = ["", "## Table 2: top-K recommendation (test)", "",
         "| model | init | epochs | lr | " + " | ".join(cols) + " |",
         "|---|---|---|---|" + "---|" * len(cols)]
    for n, r in res.items():
        c = r.get("config", {})
        cells = []
        for m in cols:
            v = _fmt(r["test"][m])
            if n == "amr" and "vbpr_cont" in sig and m in sig["vbpr_cont"]:
                v += _stars(sig["vbpr_cont"][m].get("t_p"))
            cells.append(v)
        ep = c.get("epochs", "–") if r["kind"] != "pop" else "–"
        lr = c.get("lr", "–") if r["kind"] != "pop" else "–"
        L.append(f"| {_row_label(n, r)} | {r.get('init') or '–'} | {ep} | {lr} | "
                 + " | ".join(cells) + " |")
    if "amr" in res and "vbpr_cont" in res:
        a, v = res["amr"]["test"], res["vbpr_cont"]["test"]
        L.append("| AMR vs continued VBPR | | | | " + " | ".join(
            f"{100 * (a[m] - v[m]) / v[m]:+.1f}%" if v[m] else "–" for m in cols) + " |")
    amr_cfg = res.get("amr", {}).get("config", {})
    if amr_cfg:
        L += ["", f"AMR: ε = {amr_cfg.get('eps')}, λ = {amr_cfg.get('lmd')}. Marks on AMR: "
                  "paired t-test of per-user gains vs continued VBPR, * p < 0.05, ** p < 0.01 "
                  "(only HR@10 and NDCG@10 are tested)."]
    if "amr" in res:
        L += _warm_cold(res)
    return L


def _warm_cold(res):
    L = ["", "Warm / cold test items (HR@10, NDCG@10):", "",
         "| model | warm HR@10 | warm NDCG@10 | cold HR@10 | cold NDCG@10 | valid NDCG@10 | "
         "best valid epoch | seconds |",
         "|---|---|---|---|---|---|---|---|"]
    for n, r in res.items():
        t = r["test"]
        w, cd = t.get("warm", {}), t.get("cold", {})
        L.append(f"| {_row_label(n, r)} | {_fmt(w.get('HR@10'))} | {_fmt(w.get('NDCG@10'))} | "
                 f"{_fmt(cd.get('HR@10'))} | {_fmt(cd.get('NDCG@10'))} | "
                 f"{_fmt(r.get('valid', {}).get('NDCG@10'))} | {r.get('best_epoch') or '–'} | "
                 f"{r.get('seconds', 0):.1f} |")
    return L


def _section(title, computed, module):
    """A section's heading, and a line saying it is missing when the ``module`` stage did not
    run (it runs on AMR, which is trained when the data set has item features)."""
    return ["", f"## {title}", ""] + (
        [] if computed else [f"Not computed (no AMR model to run amrlite.{module} on)."])


def _significance(res, sig):
    L = _section("Paired significance (AMR vs each model, test rows)", sig, "significance")
    if not sig:
        return L
    L += ["| AMR vs | metric | mean AMR | mean other | diff | t-test p | Wilcoxon p |",
          "|---|---|---|---|---|---|---|"]
    for n, t in sig.items():
        for m, s in t.items():
            L.append(f"| {_row_label(n, res[n])} | {m} | {_fmt(s.get('mean_a'))} | "
                     f"{_fmt(s.get('mean_b'))} | {s.get('diff') or 0:+.4f} | "
                     f"{_p(s.get('t_p'))} | {_p(s.get('wilcoxon_p'))} |")
    return L


def _table3(res, attacks):
    L = _section("Table 3: robustness to perturbations of the item features (test)", attacks,
                 "attack")
    if not attacks:
        return L
    eps_cols = None
    rows = []
    for key, r in attacks["results"].items():
        n, kind, objective = key.split("/")
        eps_cols = eps_cols or list(r["eps"].keys())
        cells = []
        for e in eps_cols:
            x = r["eps"].get(e, {})
            drop = x.get("drop", {}).get("NDCG@10")
            cells.append(f"{_fmt(x.get('NDCG@10'))} ({100 * drop:+.1f}%)" if drop is not None
                         else _fmt(x.get("NDCG@10")))
        rows.append(f"| {_row_label(n, res[n])} | {kind} | {objective} | "
                    f"{_fmt(r['clean'].get('NDCG@10'))} | " + " | ".join(cells) + " |")
    L.append("| model | attack | objective | clean NDCG@10 | " + " | ".join(
        f"ε={e}" for e in eps_cols) + " |")
    L.append("|---|---|---|---|" + "---|" * len(eps_cols))
    return L + rows + ["", "Cells: NDCG@10 under attack (relative drop vs clean)."]


def _rank_change(res, rank_change):
    if not rank_change:
        return []
    L = ["", f"Rank change under the adversarial attack at ε = {rank_change['eps']} "
             "(rank before − rank after; negative = the positive fell):", ""]
    for n, v in rank_change["models"].items():
        dlt = np.asarray(v["delta"], dtype=float)
        L.append(f"* {_row_label(n, res[n])}: mean {dlt.mean():+.2f}, median "
                 f"{np.median(dlt):+.1f}, share of rows that fell {np.mean(dlt < 0):.3f}")
    return L


def _pixel_attack(res, pixel):
    """The pixel-level attack table: NDCG@10 (drop), ‖Δc‖ and PSNR per ε, FGSM and PGD."""
    if not pixel:
        return []
    L = ["", "## Pixel-level attack on the item images (Fig. 1)", ""]
    first = next(iter(pixel["results"].values()))
    eps_cols = list(first["eps"].keys())
    L += [f"Test-objective attack on the {first['target']} images of the first "
          f"{first['rows']} test rows ({first['n_images']} images; {len(first['no_image'])} "
          "target items without an image are not perturbed); pixel space: "
          f"{first['pixel_space']}. Cells: NDCG@10 (relative drop); ‖Δc‖: median feature-space "
          "distance the pixel ε produced (the feature-level ε of Table 3 is this L2 radius); "
          "PSNR: median, dB.", "",
          "| model | attack | clean HR@10 | clean NDCG@10 | " + " | ".join(
              f"ε={eps_label(e)}" for e in eps_cols) + " |",
          "|---|---|---|---|" + "---|" * len(eps_cols)]
    for key, r in pixel["results"].items():
        n, steps = key.split("/")
        kind = "FGSM" if int(steps) == 1 else f"PGD-{steps}"
        cells = []
        for e in eps_cols:
            x = r["eps"][e]
            d = x["drop"]["NDCG@10"]
            fd, ps = x["feature_distance"]["median"], x["psnr"]["median"]
            cells.append(f"{_fmt(x['NDCG@10'])} ({'–' if d is None else f'{100 * d:+.1f}%'}); "
                         f"‖Δc‖ {_fmt(fd, 3)}; {'∞' if ps is None else f'{ps:.1f}'} dB")
        L.append(f"| {_row_label(n, res[n])} | {kind} | {_fmt(r['clean']['HR@10'])} | "
                 f"{_fmt(r['clean']['NDCG@10'])} | " + " | ".join(cells) + " |")
    secs = [r.get("seconds_per_image_step") for r in pixel["results"].values()]
    L += ["", f"Cost: {max(s for s in secs if s is not None):.2f} s per image per gradient "
          "step (forward + backward through the CNN) on this machine."]
    return L


def _sweep_notes(base, cfg):
    bt, br = base.get("test") or {}, base.get("robust") or {}
    eps_a = br.get("eps", cfg["sweep"].get("attack_eps", 0.1))
    return [f"Every setting is AMR trained from the same VBPR checkpoint as Table 2's AMR, "
            f"compared with continued VBPR (test HR@10 {_fmt(bt.get('HR@10'))}, NDCG@10 "
            f"{_fmt(bt.get('NDCG@10'))}"
            + (f", NDCG@10 drop {100 * br['drop']:.1f}% under the adversarial test-objective "
               f"attack at ε = {eps_a:g}" if br.get("drop") is not None else "") + ").",
            "Δ HR@10: test HR@10 of the setting minus continued VBPR's; p: paired t-test and "
            "Wilcoxon signed-rank of the per-user HR@10 differences (test rows; * p < 0.05, "
            "** p < 0.01, no correction for the number of settings). NDCG@10 cost: the "
            "setting's test NDCG@10 relative to continued VBPR (negative = clean accuracy "
            "lost). Robust drop: relative NDCG@10 drop under the adversarial (FGM, test "
            f"objective) attack at ε = {eps_a:g} (lower is more robust).", ""]


def _grid_matrix(runs, base):
    """A compact ε × λ matrix of Δ HR@10 with significance marks."""
    bt = (base or {}).get("test") or {}
    eps = sorted({r["eps"] for r in runs})
    lmd = sorted({r["lmd"] for r in runs})
    cell = {(r["eps"], r["lmd"]): r for r in runs}
    out = ["Δ test HR@10 vs continued VBPR (rows ε, columns λ; marks: paired t-test):", "",
           "| ε ↓ / λ → | " + " | ".join(f"{v:g}" for v in lmd) + " |",
           "|---|" + "---|" * len(lmd)]
    for e in eps:
        cells = []
        for l in lmd:
            r = cell.get((e, l))
            cells.append("–" if r is None or bt.get("HR@10") is None else _delta_hr(r, bt))
        out.append(f"| {e:g} | " + " | ".join(cells) + " |")
    return out + [""]


def _sweep_table(runs, base):
    bt, br = (base or {}).get("test") or {}, (base or {}).get("robust") or {}
    out = ["| ε | λ | valid NDCG@10 | test HR@10 | Δ HR@10 vs continued VBPR | p (t-test) | "
           "p (Wilcoxon) | test NDCG@10 | NDCG@10 cost vs continued VBPR | robust drop "
           "(NDCG@10) | seconds |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    if bt:
        out.append(f"| VBPR (continued) | – | – | {_fmt(bt.get('HR@10'))} | – | – | – | "
                   f"{_fmt(bt.get('NDCG@10'))} | – | {_drop(br)} | – |")
    for r in runs:
        vs = (r.get("vs_cont") or {}).get("HR@10") or {}
        d = _delta_hr(r, bt) if bt.get("HR@10") is not None else "–"
        out.append(f"| {r['eps']:g} | {r['lmd']:g} | "
                   f"{_fmt(r.get('valid', {}).get('NDCG@10'))} | {_fmt(r['test']['HR@10'])} | "
                   f"{d} | {_p(vs.get('t_p'))} | {_p(vs.get('wilcoxon_p'))} | "
                   f"{_fmt(r['test']['NDCG@10'])} | "
                   f"{_pct(r['test']['NDCG@10'], bt.get('NDCG@10'))} | "
                   f"{_drop(r.get('robust') or {})} | {r.get('seconds', 0):.1f} |")
    return out


def _sweeps(summary):
    L = ["", "## Sweeps over ε and λ (Figs. 6, 7)", ""]
    if not summary.get("sweeps"):
        return L + ["Not run."]
    base = summary.get("sweep_baseline") or {}
    L += _sweep_notes(base, summary["config"])
    for axis, sw in summary["sweeps"].items():
        L += [f"### {SWEEP_TITLES.get(axis, axis)}", "",
              f"Selected by {sw['selected_by']}: best ε = {sw['best']['eps']}, "
              f"λ = {sw['best']['lmd']}.", ""]
        if axis == "grid":
            L += _grid_matrix(sw["runs"], base)
        L += _sweep_table(sw["runs"], base)
        L.append("")
    return L


def _figures(figures):
    L = ["", "## Figures", ""]
    for k, f in figures.items():
        L.append(f"* [{FIGURE_TITLES.get(k, k)}]({f})")
        L.append(f"  ![{FIGURE_TITLES.get(k, k)}]({f})")
    return L + ([] if figures else ["None."])


def _where(summary):
    """Where each seed's chain ran this time (one engine task per seed)."""
    chains = summary.get("chains") or []
    L = ["", "## Where the chains ran", "",
         f"Each seed's chain (models, significance, attacks) is one task on the "
         f"`{summary.get('engine', 'local')}` engine, and so is each sweep setting of each seed."]
    if not chains:
        return L + ["Every chain was stored before: none ran this time."]
    L += [""]
    for c in chains:
        L.append(f"* seed {c['seed']}: host `{c['host']}`, pid {c['pid']}"
                 + (f", Ray task `{c['ray_task']}`" if c.get("ray_task") else "")
                 + f", backend {c['backend_used']}; trained "
                 f"{', '.join(c['trained']) or 'nothing'} ({c['seconds']}s)")
    return L


def _closing(summary):
    """Figures, timings, where the chains ran and the configuration: the end of every
    report."""
    return (_figures(summary.get("figures", {}))
            + ["", "## Timings (seconds)", "",
               ", ".join(f"{k} {v}" for k, v in summary["timings"].items())]
            + _where(summary)
            + ["", "## Configuration", "", "```json",
               jsonio.dumps(summary["config"], indent=1), "```", ""])


def make_report(summary, attacks=None, rank_change=None, pixel_attack=None):
    """The Markdown report of a :func:`~amrlite.experiments.run_experiment` run.

    Parameters
    ----------
    summary : dict
        The summary returned by ``run_experiment`` (``data``, ``config``, ``results``,
        ``significance``, ``sweeps``, ``sweep_baseline``, ``figures``, ``timings``,
        ``trained``, ``reused``, ...).
    attacks : dict, optional
        The attacks stage's result (``{"results": {"model/kind/objective": ...}}``), for
        Table 3.
    rank_change : dict, optional
        The rank-change stage's result (``{"eps": ε, "models": {name: {"delta": [...]}}}``).
    pixel_attack : dict, optional
        The pixel-attack stage's result (``{"results": {"model/steps": attack_images(...)}}``).

    Returns
    -------
    str
        ``report.md``'s text: configuration, Table 2, significance, Table 3, sweeps, figures,
        timings and the configuration as JSON.
    """
    res = summary["results"]
    sig = {n: norm_compare(t) for n, t in
           ((summary.get("significance") or {}).get("tests", {}) or {}).items()}
    L = _header(summary)
    L += _table2(res, sig)
    L += _significance(res, sig)
    L += _table3(res, attacks)
    L += _rank_change(res, rank_change)
    L += _pixel_attack(res, pixel_attack)
    L += _sweeps(summary)
    return "\n".join(L + _closing(summary))


# ---------------------------------------------------------------------------- several seeds
def _ci(s, nd=4, sign=""):
    """``mean ± half`` of a :func:`~amrlite.experiments.seeds.mean_ci` dict (``sign="+"``:
    the mean with its sign, for differences)."""
    if not s or s.get("mean") is None:
        return "–"
    return f"{s['mean']:{sign}.{nd}f}" + (f" ± {s['half']:.{nd}f}" if s.get("half") is not None
                                          else "")


def _ci_pct(s):
    if not s or s.get("mean") is None:
        return "–"
    return f"{100 * s['mean']:.1f}" + (f" ± {100 * s['half']:.1f}%" if s.get("half") is not None
                                       else "%")


def _seed_marks(cmp):
    """``*``/``**``: pooled per-user test significant at 0.05/0.01 after Holm; ``†``: the
    across-seed t-test significant at 0.05 after Holm."""
    pooled = ((cmp or {}).get("pooled") or {}).get("p_holm")
    across = ((cmp or {}).get("across") or {}).get("p_holm")
    return (_stars(pooled) if pooled is not None else "") + (
        "†" if across is not None and across < 0.05 else "")


def _seed_test_cells(cmp):
    a, p = cmp.get("across") or {}, cmp.get("pooled") or {}
    return (f"{_p(a.get('p'))} ({_p(a.get('p_holm'))}) | {_p(p.get('p'))} "
            f"({_p(p.get('p_holm'))}) | {_p(p.get('p_t'))}")


SEED_NOTES = [
    "Intervals: mean ± half-width of the t-based 95% confidence interval over seeds "
    "(t_{0.975, S−1} · sd / √S). Each seed reruns the whole chain MF-BPR → VBPR → continued "
    "VBPR / AMR, so the VBPR checkpoint varies too.",
    "Tests of A vs B, each with Holm's correction within its table (p in brackets): "
    "**across seeds**, a paired t-test on the S per-seed means (does the gain hold for a new "
    "seed?); **pooled per user**, the Wilcoxon signed-rank test on each user's gain averaged "
    "over the S seeds (users are the independent units: a stratified-by-seed test would count "
    "every user S times as if independent; the paired t-test on the same user means, equal to "
    "the mixed model gain ~ model + (1 + model | user) in this balanced design, is given too). "
    "Marks: * / ** pooled test Holm-p < 0.05 / 0.01, † across-seed test Holm-p < 0.05.", ""]


def _seeds_table2(multi):
    cols = TABLE2_COLUMNS
    labels, vs = multi["labels"], multi.get("vs_amr") or {}
    L = ["", f"## Table 2: top-K recommendation (test), mean ± 95% CI over "
             f"{len(multi['seeds'])} seeds", "", "| model | " + " | ".join(cols) + " |",
         "|---|" + "---|" * len(cols)]
    for n, m in multi["models"].items():
        cells = [_ci(m[c]) + (_seed_marks(vs["vbpr_cont"].get(c)) if n == "amr" and
                              "vbpr_cont" in vs and c in vs["vbpr_cont"] else "")
                 for c in cols]
        L.append(f"| {_row_label(n, {'label': labels[n]})} | " + " | ".join(cells) + " |")
    L += ["", "Per seed (test HR@10 / NDCG@10; seeds " + ", ".join(map(str, multi["seeds"]))
          + "):", "", "| model | " + " | ".join(f"seed {s}" for s in multi["seeds"])
          + " | warm HR@10 | cold HR@10 |", "|---|" + "---|" * (len(multi["seeds"]) + 2)]
    for n, m in multi["models"].items():
        per = [f"{h:.4f} / {g:.4f}" for h, g in zip(m["HR@10"]["values"],
                                                     m["NDCG@10"]["values"])]
        L.append(f"| {_row_label(n, {'label': labels[n]})} | " + " | ".join(per)
                 + f" | {_ci((m.get('warm') or {}).get('HR@10'))} | "
                 f"{_ci((m.get('cold') or {}).get('HR@10'))} |")
    if vs:
        L += ["", "AMR vs each model (Δ = AMR − model, per seed, mean ± CI):", "",
              "| AMR vs | metric | Δ | across-seed t-test p (Holm) | pooled per-user Wilcoxon "
              "p (Holm) | pooled per-user t-test p |", "|---|---|---|---|---|---|"]
        for n, t in vs.items():
            for metric, cmp in t.items():
                L.append(f"| {_row_label(n, {'label': labels[n]})} | {metric} | "
                         f"{_ci(cmp['delta'], 4, '+')} | {_seed_test_cells(cmp)} |")
    return L


def _seeds_table3(multi):
    att = multi.get("attacks")
    L = _section("Table 3: NDCG@10 relative drop under attack (test), mean ± 95% CI over "
                 "seeds", att, "attack")
    if not att:
        return L
    eps = list(next(iter(att.values()))["drop"])
    L += ["| model | attack | objective | clean NDCG@10 | " + " | ".join(f"ε={e}" for e in eps)
          + " |", "|---|---|---|---|" + "---|" * len(eps)]
    for key, r in att.items():
        n, kind, objective = key.split("/")
        L.append(f"| {_row_label(n, {'label': multi['labels'][n]})} | {kind} | {objective} | "
                 f"{_ci(r['clean'])} | " + " | ".join(_ci_pct(r["drop"][e]) for e in eps) + " |")
    L += ["", "Per seed (drop at each ε, one value per seed):", ""]
    for key, r in att.items():
        L.append(f"* {key}: " + "; ".join(
            f"ε {e}: " + ", ".join("–" if v is None else f"{100 * v:.1f}%"
                                   for v in r["drop"][e]["values"]) for e in eps))
    return L


def _seeds_grid(rows):
    eps = sorted({r["eps"] for r in rows})
    lmd = sorted({r["lmd"] for r in rows})
    cell = {(r["eps"], r["lmd"]): r for r in rows}
    out = ["Δ test HR@10 vs continued VBPR, mean ± CI over seeds (rows ε, columns λ; marks as "
           "above, Holm over the grid's settings):", "",
           "| ε ↓ / λ → | " + " | ".join(f"{v:g}" for v in lmd) + " |",
           "|---|" + "---|" * len(lmd)]
    for e in eps:
        out.append(f"| {e:g} | " + " | ".join(
            "–" if (e, l) not in cell else
            _ci(cell[(e, l)]["vs_cont"]["delta"], 3, "+") + _seed_marks(cell[(e, l)]["vs_cont"])
            for l in lmd) + " |")
    return out + [""]


def _seeds_sweeps(multi, cfg):
    sw = multi.get("sweeps")
    L = ["", "## Sweeps over ε and λ (Figs. 6, 7), mean ± 95% CI over seeds", ""]
    if not sw:
        return L + ["Not run."]
    base = sw["baseline"]
    eps_a = cfg["sweep"].get("attack_eps", 0.1)
    L += [f"Each setting is AMR from each seed's VBPR checkpoint, compared with that seed's "
          f"continued VBPR (test HR@10 {_ci(base['test']['HR@10'])}, NDCG@10 "
          f"{_ci(base['test']['NDCG@10'])}, cold-item HR@10 {_ci(base['cold_HR@10'])}, NDCG@10 "
          f"drop {_ci_pct(base['drop'])} under the adversarial test-objective attack at "
          f"ε = {eps_a:g}).", ""]
    for axis, a in sw["axes"].items():
        L += [f"### {SWEEP_TITLES.get(axis, axis)}", "",
              f"Selected by {a['selected_by']}: ε = {a['best']['eps']}, λ = "
              f"{a['best']['lmd']}.", ""]
        if axis == "grid":
            L += _seeds_grid(a["runs"])
        L += ["| ε | λ | test HR@10 | Δ HR@10 | across-seed p (Holm) | pooled Wilcoxon p "
              "(Holm) | pooled t p | test NDCG@10 | cold HR@10 | robust drop (NDCG@10) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
        for r in a["runs"]:
            L.append(f"| {r['eps']:g} | {r['lmd']:g} | {_ci(r['test']['HR@10'])} | "
                     f"{_ci(r['vs_cont']['delta'], 4, '+')}{_seed_marks(r['vs_cont'])} | "
                     f"{_seed_test_cells(r['vs_cont'])} | {_ci(r['test']['NDCG@10'])} | "
                     f"{_ci(r['cold_HR@10'], 3)} | {_ci_pct(r['drop'])} |")
        L.append("")
    return L


def make_seeds_report(summary):
    """The Markdown report of a multi-seed :func:`~amrlite.experiments.run_experiment` run
    (``summary["multi"]``): Table 2 and Table 3 as mean ± 95% CI with the per-seed values,
    AMR vs each model by the across-seed and pooled per-user tests (Holm), the sweeps with
    intervals and tests, figures, timings and the configuration."""
    multi = summary["multi"]
    L = _header(summary)
    L[0] += f" ({len(multi['seeds'])} seeds)"
    L += ["", f"Seeds: {', '.join(map(str, multi['seeds']))} (seed index 0 is the "
              f"configuration's seed; the others derive from it). Chain and sweep tasks ran "
              f"on the `{summary.get('engine', 'local')}` engine.", ""] + SEED_NOTES
    L += _seeds_table2(multi)
    L += _seeds_table3(multi)
    L += _seeds_sweeps(multi, summary["config"])
    return "\n".join(L + _closing(summary))
