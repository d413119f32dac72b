"""The figures of a multi-seed run, with the seeds' spread drawn: Fig. 3 with 95% CI bands,
Figs. 6/7 and the attack-drop plot with 95% CI error bars (mean over seeds). Uses the
library's matplotlib set-up (:mod:`amrlite.plots`: Agg, atomic PNG writes)."""
from __future__ import annotations

import numpy as np

from ..plots import pyplot, save_figure
from .seeds import mean_ci


def _band(ax, x, series, label, **kw):
    """Mean line and 95% CI band of ``series`` (one list per seed, same length)."""
    cis = [mean_ci(col) for col in zip(*series)]
    m = np.array([c["mean"] for c in cis], dtype=float)
    h = np.array([c["half"] or 0.0 for c in cis], dtype=float)
    (line,) = ax.plot(x, m, label=label, **kw)
    ax.fill_between(x, m - h, m + h, alpha=0.2, color=line.get_color())


def curves_band(per_seed, path, metrics=("HR@10", "NDCG@10")):
    """Fig. 3 over seeds: test metric of continued VBPR and AMR per evaluation, 95% CI band."""
    curves = [p.get("curves") or {} for p in per_seed]
    if not all(c.get("vbpr_cont") and c.get("amr") for c in curves):
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6))
    for ax, m in zip(np.atleast_1d(axes), metrics):
        for name, label in (("vbpr_cont", "VBPR (continued)"), ("amr", "AMR")):
            x = curves[0][name]["epoch"]
            _band(ax, x, [[t[m] for t in c[name]["test"]] for c in curves], label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"test {m}")
        ax.legend()
    fig.suptitle(f"Fig. 3: training curves, mean and 95% CI over {len(per_seed)} seeds")
    return save_figure(fig, path)


def sweep_errorbars(axis_rows, axis, path, baseline=None, metric="HR@10"):
    """Fig. 6 (``axis="eps"``) or 7 (``"lmd"``): mean test metric ± 95% CI against ε (λ), one
    line per value of the other parameter; continued VBPR as a band."""
    other = "lmd" if axis == "eps" else "eps"
    groups = {}
    for r in axis_rows:
        groups.setdefault(r[other], []).append(r)
    if not any(len({r[axis] for r in g}) > 1 for g in groups.values()):
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for v, rows in sorted(groups.items()):
        rows = sorted(rows, key=lambda r: r[axis])
        ax.errorbar([r[axis] for r in rows], [r["test"][metric]["mean"] for r in rows],
                    yerr=[r["test"][metric]["half"] or 0.0 for r in rows], capsize=3,
                    marker="o", label=f"{'λ' if other == 'lmd' else 'ε'} = {v:g}")
    if baseline:
        b = baseline["test"][metric]
        ax.axhline(b["mean"], color="grey", ls="--", label="VBPR (continued)")
        if b.get("half"):
            ax.axhspan(b["mean"] - b["half"], b["mean"] + b["half"], color="grey", alpha=0.15)
    ax.set_xscale("log")
    ax.set_xlabel("ε" if axis == "eps" else "λ")
    ax.set_ylabel(f"test {metric}")
    ax.legend(fontsize=7)
    ax.set_title(f"Fig. {6 if axis == 'eps' else 7}: mean ± 95% CI over seeds")
    return save_figure(fig, path)


def attack_errorbars(attacks, labels, path):
    """NDCG@10 relative drop against ε, mean ± 95% CI over seeds, one line per model/attack."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, r in attacks.items():
        n, kind, objective = key.split("/")
        eps = sorted(r["drop"], key=float)
        ax.errorbar([float(e) for e in eps], [100 * (r["drop"][e]["mean"] or 0) for e in eps],
                    yerr=[100 * (r["drop"][e]["half"] or 0) for e in eps], capsize=3,
                    marker="o", label=f"{labels.get(n, n)} {kind} {objective}")
    ax.set_xscale("log")
    ax.set_xlabel("attack ε")
    ax.set_ylabel("NDCG@10 drop (%)")
    ax.legend(fontsize=6)
    ax.set_title("Attack: mean ± 95% CI over seeds")
    return save_figure(fig, path)


def seed_figures(multi, per_seed, out_dir):
    """Every multi-seed figure into ``out_dir``; returns ``{key: file name}``."""
    figures = {"curves": curves_band(per_seed, out_dir / "fig3_training_curves.png")}
    sw = multi.get("sweeps")
    if sw:
        axes = sw["axes"]
        for axis in ("eps", "lmd"):
            rows = axes["grid"]["runs"] if "grid" in axes else (axes.get(axis) or {}).get("runs")
            if rows:
                figures[f"sweep_{axis}"] = sweep_errorbars(
                    rows, axis, out_dir / f"fig{6 if axis == 'eps' else 7}_sweep_{axis}.png",
                    baseline=sw["baseline"])
    if multi.get("attacks"):
        figures["attack"] = attack_errorbars(multi["attacks"], multi["labels"],
                                             out_dir / "attack_drop.png")
    return {k: v.name for k, v in figures.items() if v}
