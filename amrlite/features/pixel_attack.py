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
nothing exactly. Items without a readable photo (no entry, a missing or undecodable file) are
not perturbed, and counted.

The photos are found by raw item id (:func:`find_photos`): a photo folder or images table given
by the caller, else the inputs recorded in the recipe of the image features the model was
trained with (``features-image.json`` beside ``features-image.npz``/``.npy``), else a native
folder's ``images.csv``.

The gradient of the attacked loss L (the test-objective BPR loss of the chosen rows, as
``amrlite attack --objective test``) w.r.t. the pixels is ``J_i(x_i)ᵀ Γ_i`` with ``Γ_i = ∂L/∂c_i``
from amrlite's closed form (:class:`amrlite.attack.Attacker`, ``Γ = Ẽᵀṽ``) and ``J_i`` the
Jacobian of ``N∘f`` at ``x_i``: one vector-Jacobian product per image (torch autograd with
``Γ_i`` as ``grad_outputs``). It is the full gradient because L depends on ``x_i`` only through
``c_i`` (``docs/robustness.md``, "Pixel-level attacks").

FGSM (one step): ``δ = ε sign(∇)``. PGD (S > 1 steps): step ``2.5 ε / S`` along ``sign(∇)``,
projected to the ε-ball and ``[0, 1]``, Γ recomputed at each iterate; the most damaging iterate
(by NDCG@10 on the chosen rows, as the feature PGD does) is kept, the one-step point included.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..attack import (Attacker, attack_context, eps_key, parse_eps_list, rank_change_summary,
                      relative_drops)
from ..containers import EvalRows
from ..errors import AmrliteError, braced, option_error
from ..jsonio import read_json
from .. import modalities
from ..modalities import load_features, load_indexed_features, resolve_features
from ..models import factors
from ..plots import pyplot, save_figure
from ..recommender import check_same_features
from ._deps import require
from .extract import sidecars
from .image import SIZE, ImageEncoder, ImageReadError, open_image
from .inputs import photo_index, read_images_table, scan_photos

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
    raise option_error((), f"the model was trained on the modalities {braced(names)}: no 'image' "
                       "block whose pixels could be attacked (fit it with {features} image or "
                       "image,text)", names=("features",))


def _layout(source):
    src = Path(source)
    if src.is_dir():
        return src, "native" if (src / "interactions.csv").is_file() else "official"
    return None, "plain"


def image_features_file(model, dataset):
    """The file of the image features the model was trained with (None when not found): the
    ``features`` load option recorded in the model (or the data set's), resolved like
    ``load_dataset`` does; a relative path is also tried against the data's folder."""
    info = next((m for m in model.header.get("features") or [] if m["name"] == "image"), None)
    source = getattr(dataset, "source", None)
    if info is None or not source or getattr(dataset, "synthetic", False):
        return None
    folder, layout = _layout(source)
    base = Path(source) if folder is not None else Path(source).parent
    candidates = [Path(info["path"])] if info.get("path") else []
    for options in (model.header.get("load_options") or {}, getattr(dataset, "options", {})):
        spec = options.get("features")
        if spec is None:
            continue
        try:
            entries = resolve_features(spec, folder, layout)
        except AmrliteError:
            continue
        candidates += [p for name, p in entries if name == "image"]
        candidates += [base / p for name, p in entries if name == "image" and not p.is_absolute()]
    candidates.append(base / info["file"])
    return next((p for p in candidates if p.is_file()), None)


def find_photos(model, dataset, *, images=None, photos=None, item_col=None, path_col=None):
    """``({item index: path}, where)``: the photos of the data set's items, by raw id.

    From ``photos`` (a folder, stem = id) or ``images`` (a table) when given; else from the
    inputs of the recipe of the model's image features (what ``amrlite features image`` read);
    else from a native folder's ``images.csv``. Photos of ids the data set does not have are
    ignored."""
    if photos is not None and images is not None:
        raise option_error(("photos", "images"), "give one of them")
    if photos is not None:
        found, where = scan_photos(photos), f"the photo folder {photos}"
    elif images is not None:
        found = read_images_table(images, item_col, path_col)[0]
        where = f"the images table {images}"
    else:
        found = where = None
        feats = image_features_file(model, dataset)
        recipe = read_json(sidecars(feats)[0]) if feats is not None else None
        inputs = (recipe or {}).get("inputs") or {}
        if any(inputs.get(k) and Path(inputs[k]).exists() for k in ("photos", "images")):
            found, where = photo_index(inputs)
        else:
            folder = _layout(dataset.source)[0] if getattr(dataset, "source", None) else None
            table = folder / "images.csv" if folder is not None else None
            if table is not None and table.is_file():
                found, where = read_images_table(table)[0], f"the images table {table}"
        if found is None:
            what = (f"the recipe {sidecars(feats)[0]} of the model's image features names none"
                    if recipe else "no recipe (features-image.json) beside the model's image "
                    f"features {feats or '(not found)'} says where they are")
            raise option_error((), braced(f"a pixel attack needs the item photos: {what}; ")
                               + "give {photos} DIR (photos named by item id) or {images} CSV",
                               names=("photos", "images"))
    ids = getattr(dataset, "item_ids", None)
    index = ({str(i): i for i in range(dataset.n_items)} if ids is None else
             {str(x): k for k, x in enumerate(ids.tolist())})
    return {index[k]: Path(p) for k, p in found.items() if k in index and p is not None}, where


def item_label(dataset, i):
    """The raw id of item index ``i`` (the index itself for data without raw ids)."""
    ids = getattr(dataset, "item_ids", None)
    return int(i) if ids is None else ids[int(i)].item()


def user_label(dataset, u):
    ids = getattr(dataset, "user_ids", None)
    return int(u) if ids is None else ids[int(u)].item()


def maxabs_scale(path):
    """The global max |value| of the raw image features (the fixed scale of ``maxabs``)."""
    if path is None:
        raise AmrliteError("maxabs-normalised image features: their file was not found, so "
                           "the fixed scale is unknown")
    path = Path(path)
    raw = load_indexed_features(path)[1] if path.suffix == ".npz" else load_features(path)
    return modalities.maxabs_scale(raw)                    # a block of rows at a time


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
    ``paths``: ``{item index: photo}`` (default: :func:`find_photos`). Target items without a
    readable photo are not perturbed: ``no_image`` (indices), ``unreadable`` (item by raw id,
    path, reason).
    """

    def __init__(self, model, dataset, split, *, encoder=None, rows=None, target="positive",
                 batch=16, eval_rows=None, items=None, seed=0, paths=None):
        import torch
        if target not in TARGETS:
            raise option_error("target", "choose positive or negatives", repr(target))
        self.torch = torch
        self.start, self.stop, self.normalize, _ = image_block(model)
        check_same_features(model, dataset)
        model, sp, test, features = attack_context(model, dataset, split, "test")
        self.model = model
        if eval_rows is None:
            if test.negatives is None:
                raise AmrliteError("the pixel attack needs sampled negatives (a split with "
                                   "test negatives)")
            n = len(test) if rows is None else min(int(rows), len(test))
            eval_rows = EvalRows(test.users[:n], test.items[:n], test.negatives[:n])
        self.rows = eval_rows
        self.att = Attacker(model, sp, eval_rows, features, "test", seed, False)
        if paths is None:
            paths = find_photos(model, dataset)[0]
        if items is None:
            pos = np.unique(eval_rows.items)
            items = pos if target == "positive" else \
                np.setdiff1d(np.unique(eval_rows.negatives), pos)
        items = np.asarray(items, dtype=np.int64)
        pixels, ok, self.unreadable = [], [], []
        for i in items.tolist():
            if i not in paths:
                continue
            try:
                pixels.append(open_image(paths[i])[0])
                ok.append(i)
            except ImageReadError as exc:
                self.unreadable.append({"item": item_label(dataset, i), "path": str(paths[i]),
                                        "reason": str(exc)})
        self.items = np.asarray(ok, dtype=np.int64)
        self.no_image = items[~np.isin(items, self.items)]
        self.paths = {i: paths[i] for i in ok}
        self.target, self.batch = target, int(batch)
        self.encoder = encoder if encoder is not None else ImageEncoder()
        self.scale = (maxabs_scale(image_features_file(model, dataset))
                      if self.normalize == "maxabs" else None)
        self.x0 = self.encoder.pixels_from_arrays(
            np.stack(pixels) if pixels else np.zeros((0, SIZE, SIZE, 3), np.uint8))
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


def check_eps(eps_list, low_open=False):
    """ε in pixel units: within [0, 1] (``low_open``: (0, 1], as the CLI asks)."""
    for e in eps_list:
        if not (0 < e <= 1 if low_open else 0 <= e <= 1):
            raise option_error("eps", "a pixel radius must lie in "
                               f"{'(0, 1]' if low_open else '[0, 1]'} (pixel values are in "
                               "[0, 1]: 1/255 = 0.0039 is one grey level)", f"{e:g}")
    return eps_list


def attack_images(model, dataset, split, eps_list=(0.007,), *, steps=1, rows=None,
                  target="positive", encoder=None, batch=16, seed=0, attacker=None, log=None,
                  paths=None):
    """Metrics of ``model`` with the pixels of the target items' images attacked at each ε.

    Returns the schema of :func:`amrlite.attack.attack` (``clean``, ``eps`` → metrics with
    ``drop``; ``kind``, ``objective``, ``steps``, ``model``, ``split``, ``on``, ``protocol``),
    each ε entry adding ``attacked_loss``, ``feature_distance`` (‖Δc_i‖₂ of the attacked items'
    image block: n, mean, median, min, max), ``psnr`` (dB, same summary) and ``rank_change``
    (of the rows' positives, :func:`amrlite.attack.rank_change_summary`); top level also
    ``target``, ``rows``, ``n_images``, ``no_image`` (target items without a readable photo, by
    raw id: not perturbed), ``n_no_image``, ``unreadable`` (those whose file is missing or
    undecodable: item, path, reason), ``normalize``, ``image_block``, ``pixel_space``,
    ``seconds``, ``seconds_per_image_step`` (one forward + backward of one image).
    ``paths``: ``{item index: photo}`` (default: :func:`find_photos`).
    """
    eps_list = check_eps(parse_eps_list(eps_list) if isinstance(eps_list, str) else
                         [float(e) for e in eps_list])
    if int(steps) != steps or steps < 1:
        raise option_error("steps", "must be an integer ≥ 1", repr(steps))
    t0 = time.perf_counter()
    pa = attacker or PixelAttacker(model, dataset, split, encoder=encoder, rows=rows,
                                   target=target, batch=batch, seed=seed, paths=paths)
    clean_ranks, clean = pa.att.ranks_and_metrics(None)
    clean_loss = pa.att.loss_and_gamma(None, want_gamma=False)[0]
    out = {"clean": clean, "eps": {}, "kind": "pixel-fgsm" if steps == 1 else "pixel-pgd",
           "objective": "test", "steps": int(steps), "repeats": 1, "model": model.spec.label,
           "split": pa.att.sp.name, "on": "test",
           "protocol": f"sampled-{pa.rows.negatives.shape[1]}", "affected": True,
           "target": pa.target, "rows": int(len(pa.rows)), "n_images": int(len(pa.items)),
           "no_image": [item_label(dataset, i) for i in pa.no_image],
           "n_no_image": int(len(pa.no_image)), "unreadable": pa.unreadable,
           "normalize": pa.normalize,
           "image_block": [pa.start, pa.stop], "clean_loss": clean_loss,
           "pixel_space": "224x224 RGB in [0, 1] (resized bilinear, /255), L-inf ball, "
                          "clipped to [0, 1], not re-quantised"}
    tg = time.perf_counter()
    grad0 = pa.pixel_grad(pa.x0, pa.gamma(None)[1]) if any(e > 0 for e in eps_list) else None
    step_secs = (time.perf_counter() - tg) / max(1, len(pa.items))
    for e in eps_list:
        if e == 0:
            m = dict(clean, attacked_loss=clean_loss, drop=relative_drops(clean, clean),
                     feature_distance=_dist(np.zeros(len(pa.items))),
                     psnr=_dist(np.full(len(pa.items), np.inf)),
                     rank_change=rank_change_summary(np.zeros(len(clean_ranks), int), 0.0,
                                                     out["kind"]))
            out["eps"][eps_key(e)] = m
            continue
        x, ev = perturb(pa, e, steps, grad0)
        m = dict(ev["metrics"])
        m["attacked_loss"] = pa.att.loss_and_gamma(ev["delta"], want_gamma=False)[0]
        m["drop"] = relative_drops(clean, m)
        dist = np.sqrt(((ev["feats"] - pa.f0) ** 2).sum(1))
        m["feature_distance"] = _dist(dist)
        m["psnr"] = _dist(psnr(x, pa.x0))
        m["linf"] = float((x - pa.x0).abs().max()) if len(pa.items) else 0.0
        diff = clean_ranks.astype(np.int64) - ev["ranks"].astype(np.int64)
        m["rank_change"] = rank_change_summary(diff, e, out["kind"])
        out["eps"][eps_key(e)] = m
        if log and len(pa.items):
            log(f"[pixel attack] {model.spec.label} ε {e:.4g} {steps} step(s): NDCG@10 "
                f"{clean['NDCG@10']:.4f} → {m['NDCG@10']:.4f}, ‖Δc‖ median "
                f"{m['feature_distance']['median']:.3g}, PSNR {m['psnr']['median']:.1f} dB")
    out["seconds"] = round(time.perf_counter() - t0, 2)
    out["seconds_per_image_step"] = round(step_secs, 4)
    return out


# ---------------------------------------------------------------------------- Fig. 1
def _pick_row(test, ranks, paths, n_neg=3):
    """The first row of ``test`` whose positive and ``n_neg`` of its negatives have images and
    whose positive every model ranks in its top 10 (``ranks``: each model's clean ranks of the
    rows; else: the first row with images)."""
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
    if fallback is None:
        raise AmrliteError(f"the Fig.-1 picture needs a test row whose positive and {n_neg} "
                           "negatives all have a readable photo; there is none")
    return fallback


def _decodes(path):
    try:
        open_image(path)
    except ImageReadError:
        return False
    return True


def _photo_size(path):
    """``(width, height)`` of the photo at ``path`` (read from its header)."""
    with require("PIL.Image", "images").open(path) as img:
        return img.size


def _caption(dataset, item, titles, width=24):
    """``SKU-8F3A2B`` and, where ``titles`` has it, its title (cut to ``width`` characters)."""
    label = str(item_label(dataset, item))
    title = (titles or {}).get(label)
    if title:
        label += "\n" + (title if len(title) <= width else title[:width - 1] + "…")
    return label


def figure1(models, dataset, split, out_path, *, eps=8 / 255, steps=1, encoder=None,
            labels=None, paths=None, titles=None):
    """The paper's Fig. 1: one user, its positive and three negatives, each image before and
    after the pixel attack on that user's BPR loss, with the scores, for each model. The user
    and items are named by raw id (and by title where ``titles``, ``{raw id: title}``, has
    one); each photo keeps its aspect ratio (the 224×224 pixel space is shown at the photo's
    own proportions). ``paths``: ``{item index: photo}`` (default: :func:`find_photos`).
    Returns ``(path, info)``."""
    plt = pyplot()
    labels = labels or [m.spec.label for m in models]
    if paths is None:
        paths = find_photos(models[0], dataset)[0]
    sp = dataset.split(split) if isinstance(split, str) else split
    ranks = [Attacker(m, sp, sp.test, dataset.features, "test", 0, False).ranks_and_metrics(
        None)[0] for m in models]                         # once, not once per unreadable photo
    candidates = dict(paths)
    while True:                     # a row whose four photos decode (an unreadable one is left)
        r, negs = _pick_row(sp.test, ranks, candidates)
        u, i = int(sp.test.users[r]), int(sp.test.items[r])
        bad = [j for j in [i] + negs if not _decodes(candidates[j])]
        if not bad:
            break
        for j in bad:
            del candidates[j]
    items = np.array([i] + negs)
    sizes = [_photo_size(candidates[int(j)]) for j in items]
    row = EvalRows(np.array([u], np.int32), np.array([i], np.int32), np.array([negs], np.int32))
    info = {"user": user_label(dataset, u), "row": r,
            "items": [item_label(dataset, j) for j in items], "eps": eps, "steps": steps,
            "models": {}}
    fig, axes = plt.subplots(2 * len(models), len(items), figsize=(2.3 * len(items),
                                                                    3.4 * 2 * len(models)),
                             squeeze=False)
    for k, (model, label) in enumerate(zip(models, labels)):
        pa = PixelAttacker(model, dataset, sp, encoder=encoder, eval_rows=row, items=items,
                           paths=candidates)
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
            w, h = sizes[c]
            for half, (img, sc) in enumerate(((pa.x0[c], before[c]), (x[c], after[c]))):
                ax = axes[2 * k + half, c]
                ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy(), extent=(0, w, h, 0),
                          aspect="equal", interpolation="bilinear")
                ax.set_xticks([]), ax.set_yticks([])
                tag = "clean" if half == 0 else f"attacked ({p[c]:.0f} dB)"
                ax.set_title(f"{label}: {role}\n{_caption(dataset, items[c], titles)}\n{tag}, "
                             f"score {sc:+.3f}", fontsize=7)
        if k == 0:          # what was drawn: the captions and each photo's shown proportions
            info["captions"] = [axes[0, c].get_title() for c in range(len(items))]
            info["shown"] = [tuple(round(abs(v)) for v in axes[0, c].images[0].get_extent()[1:3])
                             for c in range(len(items))]
    fig.suptitle(f"Pixel attack on user {info['user']}'s BPR loss (L∞ ε = {eps:.4g} = "
                 f"{eps * 255:.3g}/255, {'FGSM' if steps == 1 else f'PGD {steps} steps'})",
                 fontsize=9)
    return save_figure(fig, out_path), info


def eps_label(e):
    """``0.0039 → "1/255"`` where ε is a whole number of 255ths, else ``"0.007"``."""
    e = float(e)
    k = e * 255
    return f"{round(k)}/255" if abs(k - round(k)) < 1e-9 and k > 0 else f"{float(e):g}"


__all__ = ["PixelAttacker", "TARGETS", "attack_images", "check_eps",
           "eps_label", "figure1", "find_photos", "image_block", "image_features_file",
           "item_label", "perturb", "psnr", "random_sign", "user_label"]
