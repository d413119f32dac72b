"""The paper's figures with matplotlib (the optional extra ``plots``; Agg backend, no display).

Every function writes one PNG and returns its path:

* :func:`training_curves` — Fig. 3: test HR@10 / NDCG@10 of continued VBPR and AMR per
  evaluation, MF-BPR as a horizontal line;
* :func:`rank_change_plot` — Fig. 5: box + violin of the per-row rank change under attack;
* :func:`sweep_plot` — Figs. 6/7: validation and test NDCG@10 / test HR@10 against ε or λ;
* :func:`attack_plot` — NDCG@10 relative drop against ε, VBPR vs AMR, adversarial vs random.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    try:
        import matplotlib
    except ImportError:  # pragma: no cover
        from .errors import AmrliteError
        raise AmrliteError("plots need matplotlib: pip install 'amrlite[plots]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path


def training_curves(vbpr_curve, amr_curve, path, *, mf_line=None, metrics=("HR@10", "NDCG@10")):
    """Fig. 3. ``*_curve = {"epoch": [...], "test": [{metric: v}], "valid": [...]}``."""
    plt = _plt()
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
    return _save(fig, path)


def rank_change_plot(deltas, path, *, eps=None):
    """Fig. 5. ``deltas``: ``{label: per-row rank_before − rank_after}``."""
    plt = _plt()
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
    return _save(fig, path)


def sweep_plot(runs, axis, path):
    """Figs. 6/7: metrics of sweep ``runs`` against ``axis`` (``"eps"`` or ``"lmd"``)."""
    plt = _plt()
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
    return _save(fig, path)


def attack_plot(results, path, *, metric="NDCG@10"):
    """Relative drop of ``metric`` against ε. ``results``: ``{"model/kind/objective": attack()}``.

    One colour per attack (kind and objective), solid lines for AMR, dashed for VBPR, so each
    attack's two curves sit side by side."""
    plt = _plt()
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
    return _save(fig, path)
