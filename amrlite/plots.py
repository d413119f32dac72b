"""The paper's figures with matplotlib (the optional extra ``plots``; Agg backend, no display).

Every function writes one PNG and returns its path:

* :func:`training_curves` — Fig. 3: test HR@10 / NDCG@10 of continued VBPR and AMR per
  evaluation, MF-BPR as a horizontal line;
* :func:`rank_change_plot` — Fig. 5: box + violin of the per-row rank change under attack;
* :func:`sweep_plot` — Figs. 6/7: validation and test NDCG@10 / test HR@10 against ε or λ;
* :func:`attack_plot` — NDCG@10 relative drop against ε, VBPR vs AMR, adversarial vs random;
* :func:`sweep_grid_plot` — Figs. 6/7 over an ε × λ grid: one line per value of the other axis;
* :func:`sweep_heatmap` — the grid's test HR@10 gain over continued VBPR, significance marks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import AmrliteError
from .jsonio import atomic_write


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend (the ``plots`` extra; without it one
    :class:`~amrlite.errors.AmrliteError` naming the extra)."""
    try:
        import matplotlib
    except ImportError:  # pragma: no cover
        raise AmrliteError("plots need matplotlib: pip install 'amrlite[plots]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path):
    """Save ``fig`` to ``path`` atomically (the format from its suffix), close it; the path."""
    path = Path(path)
    fig.tight_layout()
    with atomic_write(path) as fh:
        fig.savefig(fh, dpi=110, format=path.suffix[1:] or "png")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path


def training_curves(vbpr_curve, amr_curve, path, *, mf_line=None, metrics=("HR@10", "NDCG@10")):
    """Fig. 3. ``*_curve = {"epoch": [...], "test": [{metric: v}], "valid": [...]}``."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6))
    axes = np.atleast_1d(axes)
    for ax, m in zip(axes, metrics):
        for curve, label, style in ((vbpr_curve, "VBPR (continued)", "o-"),
                                    (amr_curve, "AMR", "s-")):
            if curve and curve.get("epoch"):
                ax.plot(curve["epoch"], [t[m] for t in curve["test"]], style, ms=3, label=label)
        if mf_line and m in mf_line:
            ax.axhline(mf_line[m], color="grey", ls="--", label="MF-BPR")
        ax.set_xlabel("epoch (after the VBPR checkpoint)")
        ax.set_ylabel(f"test {m}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Training curves (Fig. 3)")
    return save_figure(fig, path)


def rank_change_plot(deltas, path, *, eps=None):
    """Fig. 5. ``deltas``: ``{label: per-row rank_before − rank_after}``."""
    plt = pyplot()
    labels = list(deltas)
    data = [np.asarray(deltas[k], dtype=float) for k in labels]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    pos = np.arange(1, len(data) + 1)
    nonconst = [k for k, d in enumerate(data) if len(d) and np.ptp(d) > 0]
    if nonconst:
        parts = ax.violinplot([data[k] for k in nonconst], positions=pos[nonconst],
                              showextrema=False)
        for body in parts["bodies"]:
            body.set_alpha(0.35)
    ax.boxplot(data, positions=pos, widths=0.15, showfliers=False)
    ax.set_xticks(pos)
    ax.set_xticklabels(labels)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel("rank before − rank after")
    ax.set_title("Rank change under adversarial perturbation"
                 + (f" (ε = {eps:g})" if eps is not None else ""))
    ax.grid(alpha=0.3, axis="y")
    return save_figure(fig, path)


def sweep_plot(runs, axis, path):
    """Figs. 6/7: metrics of sweep ``runs`` against ``axis`` (``"eps"`` or ``"lmd"``)."""
    plt = pyplot()
    runs = sorted(runs, key=lambda r: r[axis])
    x = [r[axis] for r in runs]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(x, [r["test"]["NDCG@10"] for r in runs], "o-", label="test NDCG@10")
    ax.plot(x, [r["test"]["HR@10"] for r in runs], "s-", label="test HR@10")
    if all("valid" in r for r in runs):
        ax.plot(x, [r["valid"]["NDCG@10"] for r in runs], "^--", label="valid NDCG@10")
    if len(x) > 1 and min(x) > 0 and max(x) / min(x) >= 20:
        ax.set_xscale("log")
    ax.set_xlabel("ε" if axis == "eps" else "λ")
    ax.set_ylabel("metric")
    fixed = "λ" if axis == "eps" else "ε"
    other = runs[0]["lmd" if axis == "eps" else "eps"] if runs else None
    ax.set_title(f"Effect of {'ε' if axis == 'eps' else 'λ'}"
                 + (f" ({fixed} = {other:g})" if other is not None else ""))
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def attack_plot(results, path, *, metric="NDCG@10"):
    """Relative drop of ``metric`` against ε. ``results``: ``{"model/kind/objective": attack()}``.

    One colour per attack (kind and objective), solid lines for AMR, dashed for VBPR, so each
    attack's two curves sit side by side."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    attacks = sorted({tuple(k.split("/")[1:]) for k in results})
    colours = {a: plt.cm.tab10(n % 10) for n, a in enumerate(attacks)}
    for key, r in results.items():
        model, kind, objective = key.split("/")
        eps = sorted(r["eps"], key=float)
        drops = [100 * (r["eps"][e].get("drop", {}).get(metric) if
                        r["eps"][e].get("drop", {}).get(metric) is not None else np.nan)
                 for e in eps]
        name = "AMR" if model == "amr" else "VBPR"
        label = f"{name}: {kind}" + ("" if objective in ("–", "-") else f" ({objective})")
        ax.plot([float(e) for e in eps], drops, "o-" if model == "amr" else "s--",
                color=colours[(kind, objective)], label=label, markersize=4)
    ax.set_xscale("log")
    ax.set_xlabel("ε (log scale)")
    ax.set_ylabel(f"{metric} drop (%)")
    ax.set_title("Robustness to feature perturbations (solid: AMR, dashed: VBPR)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return save_figure(fig, path)


def _stars(p):
    if p is None or not np.isfinite(p):
        return ""
    return "**" if p < 0.01 else "*" if p < 0.05 else ""


def sweep_grid_plot(runs, axis, path, *, metrics=("HR@10", "NDCG@10"), baseline=None):
    """Figs. 6/7 over a grid: test ``metrics`` against ``axis`` (``"eps"`` or ``"lmd"``), one
    line per value of the other parameter; ``baseline`` (test metrics of continued VBPR) as a
    dashed horizontal line. Works for one line too (a one-axis sweep)."""
    plt = pyplot()
    other = "lmd" if axis == "eps" else "eps"
    sym = {"eps": "ε", "lmd": "λ"}
    groups = {}
    for r in runs:
        groups.setdefault(r[other], []).append(r)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.9))
    axes = np.atleast_1d(axes)
    xs = sorted({r[axis] for r in runs})
    cmap = plt.cm.viridis
    for ax, m in zip(axes, metrics):
        for n, (val, rs) in enumerate(sorted(groups.items())):
            rs = sorted(rs, key=lambda r: r[axis])
            ax.plot([r[axis] for r in rs], [r["test"][m] for r in rs], "o-", ms=4,
                    color=cmap(n / max(1, len(groups) - 1)), label=f"{sym[other]} = {val:g}")
        if baseline and m in baseline:
            ax.axhline(baseline[m], color="grey", ls="--", label="VBPR (continued)")
        if len(xs) > 1 and min(xs) > 0 and max(xs) / min(xs) >= 20:
            ax.set_xscale("log")
        ax.set_xlabel(sym[axis])
        ax.set_ylabel(f"test {m}")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(f"Effect of {sym[axis]} (Fig. {6 if axis == 'eps' else 7}), "
                 f"one line per {sym[other]}")
    return save_figure(fig, path)


def sweep_heatmap(runs, path, *, metric="HR@10", baseline=None):
    """The ε × λ grid as a heatmap of the test ``metric`` gain over continued VBPR (``baseline``
    test metrics; the run's ``vs_cont`` diff when present), cells marked * / ** where the paired
    t-test against continued VBPR gives p < 0.05 / 0.01."""
    plt = pyplot()
    eps = sorted({r["eps"] for r in runs})
    lmd = sorted({r["lmd"] for r in runs})
    grid = np.full((len(eps), len(lmd)), np.nan)
    marks = [["" for _ in lmd] for _ in eps]
    for r in runs:
        i, j = eps.index(r["eps"]), lmd.index(r["lmd"])
        vs = (r.get("vs_cont") or {}).get(metric)
        if baseline and metric in baseline:
            grid[i, j] = r["test"][metric] - baseline[metric]
        elif vs:
            grid[i, j] = vs.get("diff", np.nan)
        else:
            grid[i, j] = r["test"][metric]
        if vs:
            marks[i][j] = _stars(vs.get("t_p"))
    gain = bool(baseline) or any(r.get("vs_cont") for r in runs)
    fig, ax = plt.subplots(figsize=(1.3 * len(lmd) + 2.5, 0.55 * len(eps) + 2))
    finite = grid[np.isfinite(grid)]
    lim = float(np.max(np.abs(finite))) if finite.size else 0.0
    lim = lim or 1e-9
    if gain:
        im = ax.imshow(grid, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    else:
        im = ax.imshow(grid, cmap="viridis", aspect="auto")
    for i in range(len(eps)):
        for j in range(len(lmd)):
            if np.isfinite(grid[i, j]):
                dark = gain and abs(grid[i, j]) > 0.6 * lim
                ax.text(j, i, f"{grid[i, j]:+.3f}{marks[i][j]}" if gain else f"{grid[i, j]:.3f}",
                        ha="center", va="center", fontsize=8,
                        color="white" if dark else "black")
    ax.set_xticks(range(len(lmd)))
    ax.set_xticklabels([f"{v:g}" for v in lmd])
    ax.set_yticks(range(len(eps)))
    ax.set_yticklabels([f"{v:g}" for v in eps])
    ax.set_xlabel("λ")
    ax.set_ylabel("ε")
    fig.colorbar(im, ax=ax, label=f"Δ test {metric} vs continued VBPR" if gain
                 else f"test {metric}")
    ax.set_title(f"AMR − continued VBPR, test {metric}\n(* p < 0.05, ** p < 0.01, paired t-test)"
                 if gain else f"test {metric}", fontsize=9)
    return save_figure(fig, path)
