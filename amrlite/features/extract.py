"""Resumable extraction of item features from a data set folder (``amrlite features image|text``).

Both extractors write, beside ``out`` (``features-<name>.npy``, float32, row *i* = item *i*):

* ``features-<name>.json`` — the recipe (model, weights, preprocessing/template, dtype), the
  package versions and the device. Writing over features whose recipe differs is refused
  unless ``overwrite`` (one data set never mixes two recipes under one name);
* ``features-<name>.report.json`` — the items that got a zero row (item, path, reason) and, for
  images, the files that were converted to RGB (CMYK, grayscale, palette, alpha).

Completed batches go to ``features-<name>.npy.partial/`` (one ``.npz`` per batch, each written
atomically); a killed run, started again with the same inputs and recipe, loads them and
computes only the rest. The folder is removed once the output is complete.
"""
from __future__ import annotations

import csv
import hashlib
import json
import shutil
import warnings
from pathlib import Path

import numpy as np

from ..errors import AmrliteError, input_error
from ..experiments.store import read_json
from ..jsonio import atomic_write, check_writable, writable, write_json
from ..textio import check_header, open_text
from ..train import _Progress

#: Recorded in a recipe record but not compared: package versions, device, input files.
UNCOMPARED = ("versions", "device", "inputs")


class Progress:
    """Items done, on click's progress bar (stderr), updated once per batch."""

    def __init__(self, total, label, enabled):
        self.total, self.done = total, 0
        self._bar = _Progress(total, label, enabled)

    def update(self, n):
        self.done += n
        if self._bar.bar is not None:
            self._bar.info = f"{self.done}/{self.total}"
            self._bar.bar.update(n)

    def close(self):
        self._bar.close()


def _comparable(recipe):
    return json.dumps({k: v for k, v in recipe.items() if k not in UNCOMPARED}, sort_keys=True)


def sidecars(out):
    """``(recipe JSON, report JSON, partial folder)`` of the feature file ``out``."""
    out = Path(out)
    stem = out.name[:-4] if out.name.endswith(".npy") else out.name
    return (out.with_name(stem + ".json"), out.with_name(stem + ".report.json"),
            out.with_name(out.name + ".partial"))


def output_path(data_dir, out, default_name):
    """``out``, or ``data_dir/default_name``; a clear error when the folder is not writable."""
    if out is None:
        data_dir = Path(data_dir)
        if not writable(data_dir):
            raise AmrliteError(f"--data {data_dir} is read-only: give --out FILE for the "
                               f"features, e.g. --out ./{default_name}")
        out = data_dir / default_name
    out = Path(out)
    if out.suffix != ".npy":
        raise AmrliteError(f"--out {out}: expected a .npy file name")
    if out.is_dir():
        raise AmrliteError(f"--out {out}: is a folder; expected a .npy file name")
    check_writable(out)                        # before creating any missing folder
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def check_recipe(out, recipe, overwrite):
    """Refuse to replace features of another recipe (or of an unknown one) unless overwrite."""
    meta, _, partial = sidecars(out)
    if overwrite:
        return
    old = read_json(meta)
    if old is not None:
        if _comparable(old) != _comparable(recipe):
            keys = sorted(k for k in set(old) | set(recipe) if k not in UNCOMPARED
                          and old.get(k) != recipe.get(k))
            raise AmrliteError(f"{meta}: the features there were made with another recipe "
                               f"(differs in {', '.join(keys)}); refusing to mix recipes in one "
                               "data set: use another --out, or --overwrite to replace them")
    elif out.exists() and not _partial_matches(partial, recipe):
        raise AmrliteError(f"{out} exists and has no recipe record ({meta.name}); --overwrite "
                           "to replace it, or another --out")


def _partial_matches(partial, recipe):
    run = read_json(partial / "run.json")
    return run is not None and run.get("recipe") == _comparable(recipe)


def _key(recipe, keys, batch, n_rows):
    text = json.dumps([_comparable(recipe), list(keys), batch, n_rows])
    return hashlib.sha256(text.encode()).hexdigest()


def _save_batch(path, rows, notes):
    with atomic_write(path) as fh:
        np.savez(fh, rows=rows, notes=np.array(json.dumps(notes)))


def _load_batch(path, n, dim):
    try:
        with np.load(path) as z:
            rows, notes = z["rows"], json.loads(str(z["notes"]))
    except Exception:        # a torn file (cannot happen with the rename, but never trust it)
        return None
    return (rows, notes) if rows.shape == (n, dim) else None


def run_batches(out, recipe, keys, dim, batch, compute, *, progress, label):
    """Rows ``0..len(keys)`` of ``out`` in batches: ``compute(start, stop)`` returns the float32
    rows and the notes of that batch; completed batches are kept in the partial folder and
    reused by a rerun with the same ``keys``/recipe/batch. Returns ``(array, notes)``."""
    _, _, partial = sidecars(out)
    n = len(keys)
    key = _key(recipe, keys, batch, n)
    run = read_json(partial / "run.json")
    if run is not None and run.get("key") != key:
        warnings.warn(f"{partial}: a partial run of other inputs or another recipe; starting over")
    if (run is None or run.get("key") != key) and partial.exists():
        shutil.rmtree(partial)                 # batches of an unknown run are never reused
        run = None
    partial.mkdir(parents=True, exist_ok=True)
    if run is None:
        write_json(partial / "run.json", {"key": key, "recipe": _comparable(recipe),
                                          "n": n, "batch": batch})
    arr = np.zeros((n, dim), np.float32)
    notes = []
    bar = Progress(n, label, progress)
    try:
        for start in range(0, n, batch):
            stop = min(start + batch, n)
            path = partial / f"batch-{start:08d}.npz"
            got = _load_batch(path, stop - start, dim) if path.is_file() else None
            if got is None:
                rows, batch_notes = compute(start, stop)
                rows = np.asarray(rows, dtype=np.float32)
                if not np.isfinite(rows).all():
                    raise AmrliteError(f"{label}: non-finite features in rows {start}..{stop - 1}")
                _save_batch(path, rows, batch_notes)
                got = rows, batch_notes
            arr[start:stop] = got[0]
            notes += got[1]
            bar.update(stop - start)
    finally:
        bar.close()
    return arr, notes


def finish(out, arr, recipe, report):
    """Write the features, the report and the recipe record (each atomically; the recipe last,
    as the record of a complete output), then drop the partial folder."""
    meta, report_path, partial = sidecars(out)
    with atomic_write(out) as fh:
        np.save(fh, np.ascontiguousarray(arr, dtype=np.float32))
    write_json(report_path, report)
    write_json(meta, recipe)
    shutil.rmtree(partial, ignore_errors=True)


def _read_csv(path, required):
    path = Path(path)
    if not path.is_file():
        raise AmrliteError(f"{path}: no such file")
    with open_text(path, newline="") as fh:
        reader = csv.DictReader(fh)
        check_header(path, reader.fieldnames or [], 1)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise input_error(path, f"no column {', '.join(map(repr, missing))} in the header "
                              f"(columns: {', '.join(reader.fieldnames or [])})", line=1)
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                item = int(row["item"])
            except (TypeError, ValueError):
                raise input_error(path, f"not an item index: {row['item']!r}", line=line,
                                  field="item") from None
            if item < 0:
                raise input_error(path, f"negative item index {item}", line=line, field="item")
            rows.append((line, item, row))
    return rows


def _n_items(data_dir, at_least):
    """Items of the data set: rows of ``items.csv`` when there is one, else ``at_least``."""
    items = Path(data_dir) / "items.csv"
    if items.is_file():
        return max(at_least, max((i for _, i, _ in _read_csv(items, ("item",))), default=-1) + 1)
    return at_least


# ---------------------------------------------------------------------------- images
def extract_image_features(data_dir, images_csv="images.csv", out=None, model="efficientnet-lite0",
                           batch=64, strict=False, progress=False, overwrite=False, device=None,
                           encoder=None):
    """Image features of every item of ``data_dir`` (see the module docstring).

    ``images_csv`` (``item,path``; a relative path is relative to the CSV's folder) lists the
    images; an item without a row, or whose file is missing or undecodable, gets a zero row and
    a line in the report — or, with ``strict``, an :class:`AmrliteError` naming the file.
    Returns the output path.
    """
    from .image import ImageEncoder, ImageReadError, open_image
    data_dir = Path(data_dir)
    csv_path = Path(images_csv) if Path(images_csv).is_absolute() else data_dir / images_csv
    paths, listed = {}, {}
    for line, item, row in _read_csv(csv_path, ("item", "path")):
        if item in paths:
            raise input_error(csv_path, f"item {item} listed twice", line=line, field="item")
        p = Path(row["path"])
        paths[item] = p if p.is_absolute() else csv_path.parent / p
        listed[item] = row["path"]
    n = _n_items(data_dir, max(paths, default=-1) + 1)
    if batch < 1:
        raise AmrliteError(f"--batch {batch}: expected a positive integer")
    out = output_path(data_dir, out, "features-image.npy")
    enc = encoder if encoder is not None else ImageEncoder(model, device=device)
    recipe = {**enc.recipe, "inputs": {"images": str(csv_path)}, "device": str(enc.device)}
    check_recipe(out, recipe, overwrite)
    no_image = [i for i in range(n) if i not in paths]
    if strict and no_image:
        raise AmrliteError(f"{csv_path}: item {no_image[0]} has no image (--strict; "
                           f"{len(no_image)} item(s) without one)")
    keys = [f"{i}:{listed.get(i, '')}" for i in range(n)]

    def compute(start, stop):
        notes, pixels, rows_ok = [], [], []
        for item in range(start, stop):
            if item not in paths:
                notes.append({"item": item, "path": None, "reason": "no image in "
                              f"{csv_path.name}"})
                continue
            try:
                rgb, mode = open_image(paths[item])
            except ImageReadError as exc:
                if strict:
                    raise AmrliteError(f"{exc} (--strict)") from None
                notes.append({"item": item, "path": str(paths[item]), "reason": str(exc)})
                continue
            if mode != "RGB":
                notes.append({"item": item, "path": str(paths[item]), "converted_from": mode})
            pixels.append(rgb)
            rows_ok.append(item - start)
        rows = np.zeros((stop - start, enc.dim), np.float32)
        if pixels:
            torch = enc._torch
            with torch.no_grad():
                feats = enc.features_from_pixels(enc.pixels_from_arrays(np.stack(pixels)))
            rows[rows_ok] = feats.cpu().numpy()
        return rows, notes

    arr, notes = run_batches(out, recipe, keys, enc.dim, batch, compute, progress=progress,
                             label="image features")
    zero = [x for x in notes if "reason" in x]
    report = {"features": out.name, "n_items": n, "n_images": n - len(zero),
              "n_zero_rows": len(zero), "zero_rows": zero,
              "converted": [x for x in notes if "converted_from" in x]}
    finish(out, arr, recipe, report)
    return out


# ---------------------------------------------------------------------------- text
def extract_text_features(data_dir, items_csv="items.csv", out=None, model="all-MiniLM-L6-v2",
                          columns=("title", "genres"), template=None, batch=128, progress=False,
                          overwrite=False, device=None, encoder=None):
    """Text features of every item of ``data_dir``: the text of
    :func:`amrlite.features.text.item_texts` (``columns`` of ``items_csv`` through
    ``template``) embedded by :class:`amrlite.features.text.TextEncoder`. Returns the output
    path."""
    from .text import TextEncoder, default_template, item_texts
    data_dir = Path(data_dir)
    csv_path = Path(items_csv) if Path(items_csv).is_absolute() else data_dir / items_csv
    columns = tuple(columns)
    template = template if template is not None else default_template(columns)
    texts = item_texts(csv_path, columns, template)
    if batch < 1:
        raise AmrliteError(f"--batch {batch}: expected a positive integer")
    out = output_path(data_dir, out, "features-text.npy")
    enc = encoder if encoder is not None else TextEncoder(model, device=device)
    recipe = {**enc.recipe, "columns": list(columns), "template": template,
              "inputs": {"items": str(csv_path)}, "device": str(enc.device)}
    check_recipe(out, recipe, overwrite)

    def compute(start, stop):
        return enc.encode(texts[start:stop], batch=batch), []

    arr, _ = run_batches(out, recipe, texts, enc.dim, batch, compute, progress=progress,
                         label="text features")
    finish(out, arr, recipe, {"features": out.name, "n_items": len(texts), "n_zero_rows": 0,
                              "zero_rows": []})
    return out
