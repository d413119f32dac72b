r"""Pixel-level attacks (the paper's Fig. 1): perturb the *pixels* of item images inside an L∞
ball, re-extract their features through the same CNN and the data set's normalisation, re-score.

Pixel space is the 224×224 RGB image in ``[0, 1]`` that enters the CNN (the poster after
``convert('RGB').resize((224, 224), BILINEAR) / 255``, :meth:`ImageEncoder.load_pixels`); the
perturbation ``δ_i`` of item i's image obeys ``‖δ_i‖∞ ≤ ε`` and ``x_i + δ_i ∈ [0, 1]``. PSNR is
measured on that image (peak 1). Pixels are not re-quantised to 8 bits.

The map of item i is ``x_i ↦ c_i(x_i) = N(f(x_i))`` (``f`` the CNN, ``N`` the normalisation of
the image block recorded in the model header: none, row-wise l2, or global max-abs with the
scale fixed at the clean data's maximum). Only the image block of a concatenated feature row
moves; the attacked feature row is ``c_i + (N(f(x_i + δ_i)) − N(f(x_i)))``, so ε = 0 changes
nothing exactly. Items without an image (a zero row, no ``images.csv`` entry) are not perturbed.

The gradient of the attacked loss L (the test-objective BPR loss of the chosen rows, as
``amrlite attack --objective test``) w.r.t. the pixels is ``J_i(x_i)ᵀ Γ_i`` with ``Γ_i = ∂L/∂c_i``
from amrlite's closed form (:class:`amrlite.attack._Attacker`, ``Γ = Ẽᵀṽ``) and ``J_i`` the
Jacobian of ``N∘f`` at ``x_i``: one vector-Jacobian product per image (torch autograd with
``Γ_i`` as ``grad_outputs``). It is the full gradient because L depends on ``x_i`` only through
``c_i`` (``docs/robustness.md``, "Pixel-level attacks").

FGSM (one step): ``δ = ε sign(∇)``. PGD (S > 1 steps): step ``2.5 ε / S`` along ``sign(∇)``,
projected to the ε-ball and ``[0, 1]``, Γ recomputed at each iterate; the most damaging iterate
(by NDCG@10 on the chosen rows, as the feature PGD does) is kept, the one-step point included.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

from ..attack import (_Attacker, _context, _drops, eps_key, parse_eps_list,
                      rank_change_summary)
from ..containers import EvalRows
from ..errors import AmrliteError
from ..jsonio import atomic_write
from ..textio import open_text

TARGETS = ("positive", "negatives")


# ---------------------------------------------------------------------------- inputs
def image_block(model):
    """``(start, stop, normalize, file)`` of the ``image`` modality in the model's features."""
    info = model.header.get("features") or []
    start = 0
    for m in info:
        if m["name"] == "image":
            return start, start + int(m["dim"]), m["normalize"], m.get("file")
        start += int(m["dim"])
    names = ", ".join(m["name"] for m in info) or "none"
    raise AmrliteError(f"the model was trained on the modalities {names}: no 'image' block whose "
                       "pixels could be attacked (fit it with --features image or image,text)")


def image_paths(folder):
    """``{item: path}`` from ``folder/images.csv`` (``item,path``, paths relative to it)."""
    folder = Path(folder)
    table = folder / "images.csv"
    if not table.is_file():
        raise AmrliteError(f"{table}: not found; a pixel attack needs the item images "
                           "(images.csv with columns item,path)")
    with open_text(table, newline="") as fh:
        return {int(r["item"]): folder / r["path"] for r in csv.DictReader(fh)}


def maxabs_scale(folder, file):
    """The global max |value| of the raw image features (the fixed scale of ``maxabs``)."""
    arr = np.load(Path(folder) / file, mmap_mode="r")
    return float(np.abs(arr).max())


def psnr(x, x0):
    """Per-image PSNR in dB of ``x`` against ``x0`` (peak 1; ∞ where identical)."""
    mse = ((x - x0) ** 2).flatten(1).mean(1).double().cpu().numpy()
    with np.errstate(divide="ignore"):
        return np.where(mse > 0, 10 * np.log10(1.0 / np.where(mse > 0, mse, 1)), np.inf)


def _dist(values):
    v = np.asarray(values, dtype=np.float64)
    fin = v[np.isfinite(v)]
    if not len(fin):
        return {"n": int(len(v)), "mean": None, "median": None, "min": None, "max": None}
    return {"n": int(len(v)), "mean": float(fin.mean()), "median": float(np.median(fin)),
            "min": float(fin.min()), "max": float(fin.max())}


# ---------------------------------------------------------------------------- the attacker
class PixelAttacker:
    """One model × split × set of rows: the images of the target items, their clean features,
    and the maps pixels → attacked feature matrix, loss, Γ, pixel gradient.

    ``rows``: the first ``rows`` test rows (None: all). ``target``: ``positive`` moves the rows'
    positives, ``negatives`` their sampled negatives (those that are not also a chosen row's
    positive). ``eval_rows`` overrides the rows (Fig. 1 uses one row with three negatives).
    """

    def __init__(self, model, dataset, split, *, encoder=None, rows=None, target="positive",
                 batch=16, eval_rows=None, items=None, seed=0):
        import torch
        from .image import ImageEncoder
        if target not in TARGETS:
            raise AmrliteError(f"--target {target!r}: choose positive or negatives")
        self.torch = torch
        self.model = model
        self.start, self.stop, self.normalize, file = image_block(model)
        sp, test, features = _context(model, dataset, split, "test")
        if eval_rows is None:
            if test.negatives is None:
                raise AmrliteError("the pixel attack needs sampled negatives (a split with "
                                   "test negatives)")
            n = len(test) if rows is None else min(int(rows), len(test))
            eval_rows = EvalRows(test.users[:n], test.items[:n], test.negatives[:n])
        self.rows = eval_rows
        self.att = _Attacker(model, sp, eval_rows, features, "test", seed, False)
        folder = getattr(dataset, "source", None)
        paths = image_paths(folder)
        if items is None:
            pos = np.unique(eval_rows.items)
            items = pos if target == "positive" else \
                np.setdiff1d(np.unique(eval_rows.negatives), pos)
        items = np.asarray(items, dtype=np.int64)
        has = np.array([int(i) in paths for i in items], dtype=bool)
        self.no_image = items[~has]
        self.items = items[has]
        self.target, self.batch = target, int(batch)
        self.encoder = encoder if encoder is not None else ImageEncoder()
        self.scale = maxabs_scale(folder, file) if self.normalize == "maxabs" else None
        self.x0 = self.encoder.load_pixels([paths[int(i)] for i in self.items])
        self.f0 = self.features(self.x0)
        self.shape = self.att.c.shape

    # ---- N ∘ f in torch
    def _norm(self, f):
        if self.normalize == "l2":
            n = f.norm(dim=1, keepdim=True)
            return f / self.torch.where(n > 0, n, self.torch.ones_like(n))
        if self.normalize == "maxabs":
            return f / self.scale if self.scale > 0 else f
        return f

    def mapped(self, x):
        """``N(f(x))`` (torch, differentiable)."""
        return self._norm(self.encoder.features_from_pixels(x))

    def features(self, x):
        """``N(f(x))`` as a float64 array, no gradients, in batches."""
        out = []
        with self.torch.no_grad():
            for s in range(0, len(x), self.batch):
                out.append(self.mapped(x[s:s + self.batch]).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.stop - self.start))

    def delta(self, feats):
        """The feature perturbation Δ (n_items × D) of the target images' features ``feats``."""
        d = np.zeros(self.shape)
        d[self.items, self.start:self.stop] = feats - self.f0
        return d

    def gamma(self, delta):
        """Loss at ``c + Δ`` and ``Γ_i`` (image block) of the target items."""
        loss, g = self.att.loss_and_gamma(delta)
        return loss, g[self.items, self.start:self.stop]

    def pixel_grad(self, x, gamma):
        """``J_i(x_i)ᵀ Γ_i`` per image: one vector-Jacobian product, batch by batch."""
        torch = self.torch
        out = torch.empty_like(x)
        for s in range(0, len(x), self.batch):
            xb = x[s:s + self.batch].detach().clone().requires_grad_(True)
            y = self.mapped(xb)
            go = torch.as_tensor(gamma[s:s + self.batch], dtype=y.dtype, device=y.device)
            (g,) = torch.autograd.grad(y, xb, grad_outputs=go)
            out[s:s + self.batch] = g.to(out.dtype).cpu()
        return out

    # ---- evaluation of one perturbed image set
    def evaluate(self, x):
        feats = self.features(x)
        d = self.delta(feats)
        ranks, m = self.att.ranks_and_metrics(d)
        return {"delta": d, "feats": feats, "ranks": ranks, "metrics": m}

    def project(self, x, eps):
        torch = self.torch
        return torch.clamp(torch.max(torch.min(x, self.x0 + eps), self.x0 - eps), 0.0, 1.0)


def perturb(pa, eps, steps, grad0=None):
    """The perturbed images of one attack at ``eps`` (FGSM for ``steps`` = 1, else PGD), its
    evaluation, and the number of image-steps (forward+backward) it cost.

    ``grad0``: the pixel gradient at the clean images (shared by every ε and by the first PGD
    step)."""
    if grad0 is None:
        grad0 = pa.pixel_grad(pa.x0, pa.gamma(None)[1])
    sign0 = grad0.sign()
    x = pa.project(pa.x0 + eps * sign0, eps)
    best, best_ev = x, pa.evaluate(x)
    if steps == 1 or eps == 0:
        return best, best_ev
    alpha = 2.5 * eps / steps
    x, sign = pa.x0, sign0
    best_ndcg = best_ev["metrics"]["NDCG@10"]
    for t in range(steps):
        x = pa.project(x + alpha * sign, eps)
        ev = pa.evaluate(x)
        if ev["metrics"]["NDCG@10"] < best_ndcg:
            best, best_ev, best_ndcg = x, ev, ev["metrics"]["NDCG@10"]
        if t + 1 < steps:
            sign = pa.pixel_grad(x, pa.gamma(ev["delta"])[1]).sign()
    return best, best_ev


def random_sign(pa, eps, seed=0):
    """Random ±ε pixel noise (the same ball), for comparison."""
    torch = pa.torch
    gen = torch.Generator().manual_seed(int(seed))
    s = torch.randint(0, 2, pa.x0.shape, generator=gen).to(pa.x0.dtype) * 2 - 1
    return pa.project(pa.x0 + eps * s, eps)


def attack_images(model, dataset, split, eps_list=(0.007,), *, steps=1, rows=None,
                  target="positive", encoder=None, batch=16, seed=0, attacker=None, log=None):
    """Metrics of ``model`` with the pixels of the target items' images attacked at each ε.

    Returns the schema of :func:`amrlite.attack.attack` (``clean``, ``eps`` → metrics with
    ``drop``; ``kind``, ``objective``, ``steps``, ``model``, ``split``, ``on``, ``protocol``),
    each ε entry adding ``attacked_loss``, ``feature_distance`` (‖Δc_i‖₂ of the attacked items'
    image block: n, mean, median, min, max), ``psnr`` (dB, same summary) and ``rank_change``
    (of the rows' positives, :func:`amrlite.attack.rank_change_summary`); top level also
    ``target``, ``rows``, ``n_images``, ``no_image`` (target items without an image: not
    perturbed), ``normalize``, ``image_block``, ``pixel_space``, ``seconds``,
    ``seconds_per_image_step`` (one forward + backward of one image).
    """
    eps_list = parse_eps_list(eps_list) if isinstance(eps_list, str) else \
        [float(e) for e in eps_list]
    if int(steps) != steps or steps < 1:
        raise AmrliteError(f"--steps {steps!r}: must be an integer ≥ 1")
    t0 = time.perf_counter()
    pa = attacker or PixelAttacker(model, dataset, split, encoder=encoder, rows=rows,
                                   target=target, batch=batch, seed=seed)
    clean_ranks, clean = pa.att.ranks_and_metrics(None)
    clean_loss = pa.att.loss_and_gamma(None, want_gamma=False)[0]
    out = {"clean": clean, "eps": {}, "kind": "pixel-fgsm" if steps == 1 else "pixel-pgd",
           "objective": "test", "steps": int(steps), "repeats": 1, "model": model.spec.label,
           "split": pa.att.sp.name, "on": "test",
           "protocol": f"sampled-{pa.rows.negatives.shape[1]}", "affected": True,
           "target": pa.target, "rows": int(len(pa.rows)), "n_images": int(len(pa.items)),
           "no_image": [int(i) for i in pa.no_image], "normalize": pa.normalize,
           "image_block": [pa.start, pa.stop], "clean_loss": clean_loss,
           "pixel_space": "224x224 RGB in [0, 1] (resized bilinear, /255), L-inf ball, "
                          "clipped to [0, 1], not re-quantised"}
    tg = time.perf_counter()
    grad0 = pa.pixel_grad(pa.x0, pa.gamma(None)[1]) if any(e > 0 for e in eps_list) else None
    step_secs = (time.perf_counter() - tg) / max(1, len(pa.items))
    for e in eps_list:
        if e == 0:
            m = dict(clean, attacked_loss=clean_loss, drop=_drops(clean, clean),
                     feature_distance=_dist(np.zeros(len(pa.items))),
                     psnr=_dist(np.full(len(pa.items), np.inf)),
                     rank_change=rank_change_summary(np.zeros(len(clean_ranks), int), 0.0,
                                                     out["kind"]))
            out["eps"][eps_key(e)] = m
            continue
        x, ev = perturb(pa, e, steps, grad0)
        m = dict(ev["metrics"])
        m["attacked_loss"] = pa.att.loss_and_gamma(ev["delta"], want_gamma=False)[0]
        m["drop"] = _drops(clean, m)
        dist = np.sqrt(((ev["feats"] - pa.f0) ** 2).sum(1))
        m["feature_distance"] = _dist(dist)
        m["psnr"] = _dist(psnr(x, pa.x0))
        m["linf"] = float((x - pa.x0).abs().max()) if len(pa.items) else 0.0
        diff = clean_ranks.astype(np.int64) - ev["ranks"].astype(np.int64)
        m["rank_change"] = rank_change_summary(diff, e, out["kind"])
        out["eps"][eps_key(e)] = m
        if log:
            log(f"[pixel attack] {model.spec.label} ε {e:.4g} {steps} step(s): NDCG@10 "
                f"{clean['NDCG@10']:.4f} → {m['NDCG@10']:.4f}, ‖Δc‖ median "
                f"{m['feature_distance']['median']:.3g}, PSNR {m['psnr']['median']:.1f} dB")
    out["seconds"] = round(time.perf_counter() - t0, 2)
    out["seconds_per_image_step"] = round(step_secs, 4)
    return out


# ---------------------------------------------------------------------------- Fig. 1
def _pick_row(models, dataset, split, paths, n_neg=3):
    """The first test row whose positive and ``n_neg`` of its negatives have images and whose
    positive every model ranks in its top 10 (else: the first row with images)."""
    sp = dataset.split(split) if isinstance(split, str) else split
    test = sp.test
    ranks = [m_att.ranks_and_metrics(None)[0] for m_att in
             (_Attacker(m, sp, test, dataset.features, "test", 0, False) for m in models)]
    fallback = None
    for r in range(len(test)):
        if int(test.items[r]) not in paths:
            continue
        negs = [int(j) for j in test.negatives[r] if int(j) in paths][:n_neg]
        if len(negs) < n_neg:
            continue
        if fallback is None:
            fallback = (r, negs)
        if all(rk[r] < 10 for rk in ranks):
            return r, negs
    return fallback


def figure1(models, dataset, split, out_path, *, eps=8 / 255, steps=1, encoder=None,
            labels=None):
    """The paper's Fig. 1: one user, its positive and three negatives, each image before and
    after the pixel attack on that user's BPR loss, with the scores, for each model. Returns
    ``(path, info)``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ..models import factors
    labels = labels or [m.spec.label for m in models]
    paths = image_paths(dataset.source)
    sp = dataset.split(split) if isinstance(split, str) else split
    r, negs = _pick_row(models, dataset, sp, paths)
    u, i = int(sp.test.users[r]), int(sp.test.items[r])
    items = np.array([i] + negs)
    row = EvalRows(np.array([u], np.int32), np.array([i], np.int32), np.array([negs], np.int32))
    info = {"user": u, "row": r, "items": items.tolist(), "eps": eps, "steps": steps, "models": {}}
    fig, axes = plt.subplots(2 * len(models), len(items), figsize=(2.3 * len(items),
                                                                    2.9 * 2 * len(models)))
    for k, (model, label) in enumerate(zip(models, labels)):
        pa = PixelAttacker(model, dataset, sp, encoder=encoder, eval_rows=row, items=items)
        encoder = pa.encoder
        x, ev = perturb(pa, eps, steps)

        def scores(delta):
            feats = pa.att.features if delta is None else pa.att.features + delta
            U, V = factors(model.spec, model.params, feats, pa.att.id_items)
            return [float(U[u] @ V[j]) for j in items]
        before, after = scores(None), scores(ev["delta"])
        p = psnr(x, pa.x0)
        info["models"][label] = {"before": before, "after": after, "psnr": p.tolist()}
        for c in range(len(items)):
            role = "positive" if c == 0 else f"negative {c}"
            for half, (img, sc) in enumerate(((pa.x0[c], before[c]), (x[c], after[c]))):
                ax = axes[2 * k + half, c]
                ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
                ax.set_xticks([]), ax.set_yticks([])
                tag = "clean" if half == 0 else f"attacked ({p[c]:.0f} dB)"
                ax.set_title(f"{label}: {role}\n{tag}\nscore {sc:+.3f}", fontsize=8)
    fig.suptitle(f"Pixel attack on user {u}'s BPR loss (L∞ ε = {eps:.4g} = {eps * 255:.3g}/255, "
                 f"{'FGSM' if steps == 1 else f'PGD {steps} steps'})", fontsize=9)
    fig.tight_layout()
    out_path = Path(out_path)
    with atomic_write(out_path) as fh:
        fig.savefig(fh, dpi=110, format=out_path.suffix[1:] or "png")
    plt.close(fig)
    return out_path, info


def eps_label(e):
    """``0.0039 → "1/255"`` where ε is a whole number of 255ths, else ``"0.007"``."""
    e = float(e)
    k = e * 255
    return f"{round(k)}/255" if abs(k - round(k)) < 1e-9 and k > 0 else f"{float(e):g}"


__all__ = ["PixelAttacker", "TARGETS", "attack_images", "eps_label", "figure1", "image_block",
           "image_paths", "perturb", "psnr", "random_sign"]
