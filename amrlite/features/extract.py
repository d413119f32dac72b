"""Resumable extraction of item features (``amrlite features image|text``).

Two layouts of the output ``out``:

* **by index** (a native data folder whose tables hold item indices): ``features-<name>.npy``,
  float32, row *i* = item *i*;
* **by raw id** (a photo folder, or tables keyed by ids of any type): ``features-<name>.npz``
  with arrays ``ids`` (int64 when every id is a plain integer, else unicode) and ``features``
  (float32, row *k* = item ``ids[k]``), what ``load_dataset(features=...)`` aligns by id.

Both extractors write, beside ``out``:

* ``features-<name>.json`` — the recipe (model, weights, preprocessing/template, dtype), the
  package versions, the device and the inputs (absolute paths of the photo folder or tables,
  and their id/path columns: a pixel attack finds the photos through them). Writing over
  features whose recipe differs is refused unless ``overwrite`` (one data set never mixes two
  recipes under one name);
* ``features-<name>.report.json`` — the items (by raw id, or index) that got a zero row (item,
  path, reason) and, for
  images, the files that were converted to RGB (CMYK, grayscale, palette, alpha).

Completed batches go to ``<out>.partial/`` (one ``.npz`` per batch, each written
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

from ..errors import AmrliteError, braced, input_error, option_error
from ..jsonio import atomic_write, check_writable, read_json, writable, write_json
from ..progress import Progress
from ..rawdata import as_int_ids, read_id_list
from .image import ImageEncoder, ImageReadError, open_image
from .inputs import id_array, read_images_table, read_item_rows, scan_photos
from .text import TextEncoder, default_template, item_texts, item_texts_by_id

#: Recorded in a recipe record but not compared: package versions, device, input files.
UNCOMPARED = ("versions", "device", "inputs")


def _comparable(recipe):
    return json.dumps({k: v for k, v in recipe.items() if k not in UNCOMPARED}, sort_keys=True)


def sidecars(out):
    """``(recipe JSON, report JSON, partial folder)`` of the feature file ``out``."""
    out = Path(out)
    stem = out.name[:-4] if out.name.endswith((".npy", ".npz")) else out.name
    return (out.with_name(stem + ".json"), out.with_name(stem + ".report.json"),
            out.with_name(out.name + ".partial"))


#: the parameters that messages of feature extraction refer to as ``{name}``
PARAMS = ("out", "overwrite", "strict", "data_dir", "photos", "images_csv", "items_csv")


def output_path(data_dir, out, default_name, where="{data_dir}"):
    """``out``, or ``data_dir/default_name`` (``where`` names the folder in messages, a problem
    text of :func:`~amrlite.errors.option_error` naming a parameter as ``{name}``); a clear
    error when the folder is not writable. The suffix is that of ``default_name``: ``.npy``
    (by index) or ``.npz`` (by raw id)."""
    suffix = Path(default_name).suffix
    if out is None:
        data_dir = Path(data_dir)
        if not writable(data_dir):
            raise option_error((), f"{where} {braced(data_dir)} is read-only: give {{out}} FILE "
                               f"for the features, e.g. {{out}} ./{braced(default_name)}",
                               names=PARAMS)
        out = data_dir / default_name
    out = Path(out)
    if out.suffix != suffix:
        why = ("features by item index (a native data folder)" if suffix == ".npy" else
               "features keyed by raw item id (arrays ids and features)")
        raise option_error("out", f"expected a {suffix} file name ({why})", out)
    if out.is_dir():
        raise option_error("out", f"is a folder; expected a {suffix} file name", out)
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
            raise option_error((), braced(f"{meta}: the features there were made with another "
                               f"recipe (differs in {', '.join(keys)}); ") + "refusing to mix "
                               "recipes in one data set: use another {out}, or {overwrite} to "
                               "replace them", names=PARAMS)
    elif out.exists() and not _partial_matches(partial, recipe):
        raise option_error((), braced(f"{out} exists and has no recipe record ({meta.name}); ")
                           + "{overwrite} to replace it, or another {out}", names=PARAMS)


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
    bar = Progress(n, label, enabled=progress, unit="item")
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


def finish(out, arr, recipe, report, ids=None):
    """Write the features (``.npy``; with ``ids``: an ``.npz`` of ``ids`` and ``features``), the
    report and the recipe record (each atomically; the recipe last, as the record of a complete
    output), then drop the partial folder."""
    meta, report_path, partial = sidecars(out)
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    with atomic_write(out) as fh:
        if ids is None:
            np.save(fh, arr)
        else:
            np.savez(fh, ids=ids, features=arr)
    write_json(report_path, report)
    write_json(meta, recipe)
    shutil.rmtree(partial, ignore_errors=True)


def _n_items(data_dir, at_least):
    """Items of the data set: rows of ``items.csv`` when there is one, else ``at_least``."""
    items = Path(data_dir) / "items.csv"
    if items.is_file():
        return max(at_least, max((i for _, i, _ in read_item_rows(items, ("item",))), default=-1) + 1)
    return at_least


# ---------------------------------------------------------------------------- by index or id
def _indexed_table(path):
    """The table has an ``item`` column of integers only: a native table of item indices."""
    path = Path(path)
    if not path.is_file():
        return True                         # the native reader says what is missing
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if "item" not in (reader.fieldnames or []):
            return False
        return as_int_ids(np.asarray([(r["item"] or "").strip() for r in reader])) is not None


def _by_id_folder(data_dir, source, flag):
    """The default output folder of features by id (the data folder, else the folder holding
    ``source``) and how messages name it."""
    if data_dir is not None:
        return Path(data_dir), "{data_dir}"
    return Path(source).absolute().parent, f"{{{flag}}} {braced(source)}: its folder"


def _catalogue(items, item_col, keys):
    """``keys`` preceded by the ids of the ``items`` file not among them (their rows: zero)."""
    listed = [str(x) for x in read_id_list(items, item_col).tolist()]
    have = set(listed)
    return listed + [k for k in keys if k not in have]


def _absolute(path):
    return str(Path(path).resolve())


# ---------------------------------------------------------------------------- images
def extract_image_features(data_dir=None, images_csv=None, out=None, model="efficientnet-lite0",
                           batch=64, strict=False, progress=False, overwrite=False, device=None,
                           encoder=None, *, photos=None, items=None, item_col=None,
                           path_col=None):
    """Image features of every item (see the module docstring). Returns the output path.

    * ``photos``: a folder of photos named by item id (:func:`~.inputs.scan_photos`) → an
      ``.npz`` keyed by id (default ``<photos>/../features-image.npz``, or in ``data_dir``);
    * ``images_csv``: an images table. A native data folder's table (``data_dir/images.csv``
      by default: ``item,path`` with integer item indices) gives the ``.npy`` by index
      (``data_dir/features-image.npy``; the item count is that of ``items.csv`` where there is
      one); a table keyed by raw ids (``item_col``/``path_col``, or recognised column names;
      any id that is not an integer, or ``out`` ending in ``.npz``) gives the ``.npz`` by id.
      A relative image path is relative to the table's folder.
    * ``items``: a catalogue file (ids in its ``item_col`` or recognised id column): every item
      it lists gets a row, a zero row where it has no photo.

    An item without an image, or whose file is missing or undecodable, gets a zero row and a
    line in the report — or, with ``strict``, an :class:`AmrliteError` naming the file.
    """
    if batch < 1:
        raise option_error("batch", "expected a positive integer", batch)
    if photos is not None and images_csv is not None:
        raise option_error(("photos", "images_csv"), "give one of them")
    if photos is not None and path_col is not None:
        raise option_error("path_col", "names the path column of an {images_csv} table, not "
                           "of {photos}", "", names=PARAMS)
    if photos is None and images_csv is None and data_dir is None:
        raise option_error((), "give {photos} DIR (photos named by item id), {images_csv} CSV "
                           "or {data_dir} DIR (a data folder with images.csv)", names=PARAMS)
    if photos is None:
        csv_path = Path(images_csv or "images.csv")
        if data_dir is not None and not csv_path.is_absolute():
            csv_path = Path(data_dir) / csv_path
    by_id = (photos is not None or data_dir is None or item_col is not None
             or path_col is not None or items is not None
             or (out is not None and Path(out).suffix == ".npz")
             or not _indexed_table(csv_path))
    if by_id:
        if photos is not None:
            found = scan_photos(photos)
            keys = sorted(found)
            folder, where = _by_id_folder(data_dir, photos, "photos")
            inputs = {"photos": _absolute(photos)}
            unlisted = empty = f"no photo in {Path(photos).name}/"
        else:
            found, id_col, p_col = read_images_table(csv_path, item_col, path_col)
            keys = list(found)
            folder, where = _by_id_folder(data_dir, csv_path, "images_csv")
            inputs = {"images": _absolute(csv_path), "item_col": id_col, "path_col": p_col}
            unlisted, empty = f"no image in {csv_path.name}", f"empty path in {csv_path.name}"
        if items is not None:
            keys = _catalogue(items, item_col, keys)
            inputs["items"] = _absolute(items)
        ids = id_array(keys)
        labels = ids.tolist()
        paths = [found.get(k) for k in keys]
        out = output_path(folder, out, "features-image.npz", where)
        batch_keys = [f"{k}:{p or ''}" for k, p in zip(keys, paths)]
        reasons = [unlisted if k not in found else empty for k in keys]
    else:
        by_index, listed = {}, {}
        for line, item, row in read_item_rows(csv_path, ("item", "path")):
            if item in by_index:
                raise input_error(csv_path, f"item {item} listed twice", line=line, field="item")
            p = Path(row["path"])
            by_index[item] = p if p.is_absolute() else csv_path.parent / p
            listed[item] = row["path"]
        n = _n_items(data_dir, max(by_index, default=-1) + 1)
        ids, labels = None, list(range(n))
        paths = [by_index.get(i) for i in labels]
        inputs = {"images": _absolute(csv_path), "item_col": "item", "path_col": "path"}
        out = output_path(data_dir, out, "features-image.npy")
        batch_keys = [f"{i}:{listed.get(i, '')}" for i in labels]
        reasons = [f"no image in {csv_path.name}"] * n
    enc = encoder if encoder is not None else ImageEncoder(model, device=device)
    recipe = {**enc.recipe, "inputs": inputs, "device": str(enc.device)}
    check_recipe(out, recipe, overwrite)
    no_image = [k for k, p in enumerate(paths) if p is None]
    if strict and no_image:
        k = no_image[0]
        raise option_error((), braced(f"item {labels[k]}: {reasons[k]} (") + "{strict}; "
                           f"{len(no_image)} item(s) without an image)", names=PARAMS)
    compute = _image_batches(enc, labels, paths, reasons, strict)
    arr, notes = run_batches(out, recipe, batch_keys, enc.dim, batch, compute,
                             progress=progress, label="image features")
    zero = [x for x in notes if "reason" in x]
    report = {"features": out.name, "n_items": len(labels), "n_images": len(labels) - len(zero),
              "n_zero_rows": len(zero), "zero_rows": zero,
              "converted": [x for x in notes if "converted_from" in x]}
    finish(out, arr, recipe, report, ids)
    return out


def _image_batches(enc, labels, paths, reasons, strict):
    """``compute(start, stop)`` of :func:`run_batches`: the CNN rows of items ``start..stop``
    (a zero row, and a note naming the item by ``labels``, where there is no readable image)."""

    def compute(start, stop):
        notes, pixels, rows_ok = [], [], []
        for k in range(start, stop):
            if paths[k] is None:
                notes.append({"item": labels[k], "path": None, "reason": reasons[k]})
                continue
            try:
                rgb, mode = open_image(paths[k])
            except ImageReadError as exc:
                if strict:
                    raise option_error((), braced(exc) + " ({strict})", names=PARAMS) from None
                notes.append({"item": labels[k], "path": str(paths[k]), "reason": str(exc)})
                continue
            if mode != "RGB":
                notes.append({"item": labels[k], "path": str(paths[k]), "converted_from": mode})
            pixels.append(rgb)
            rows_ok.append(k - start)
        rows = np.zeros((stop - start, enc.dim), np.float32)
        if pixels:
            torch = enc._torch
            with torch.no_grad():
                feats = enc.features_from_pixels(enc.pixels_from_arrays(np.stack(pixels)))
            rows[rows_ok] = feats.cpu().numpy()
        return rows, notes
    return compute


# ---------------------------------------------------------------------------- text
def extract_text_features(data_dir=None, items_csv=None, out=None, model="all-MiniLM-L6-v2",
                          columns=("title", "genres"), template=None, batch=128, progress=False,
                          overwrite=False, device=None, encoder=None, *, item_col=None):
    """Text features of every item: the text of :func:`amrlite.features.text.item_texts`
    (``columns`` of ``items_csv`` through ``template``) embedded by
    :class:`amrlite.features.text.TextEncoder`. A native folder's ``items.csv`` (integer
    ``item`` 0..n-1) gives the ``.npy`` by index; a table keyed by raw ids (``item_col`` or a
    recognised id column: ``sku``, ``item_id``, ``asin`` ...; no ``data_dir``; or ``out``
    ending in ``.npz``) gives the ``.npz`` by id. Returns the output path."""
    if batch < 1:
        raise option_error("batch", "expected a positive integer", batch)
    if items_csv is None and data_dir is None:
        raise option_error((), "give {items_csv} CSV (one row per item) or {data_dir} DIR (a "
                           "data folder with items.csv)", names=PARAMS)
    csv_path = Path(items_csv or "items.csv")
    if data_dir is not None and not csv_path.is_absolute():
        csv_path = Path(data_dir) / csv_path
    columns = tuple(columns)
    template = template if template is not None else default_template(columns)
    by_id = (data_dir is None or item_col is not None
             or (out is not None and Path(out).suffix == ".npz") or not _indexed_table(csv_path))
    inputs = {"items": _absolute(csv_path)}
    if by_id:
        keys, texts, inputs["item_col"] = item_texts_by_id(csv_path, columns, template, item_col)
        ids = id_array(keys)
        folder, where = _by_id_folder(data_dir, csv_path, "items_csv")
        out = output_path(folder, out, "features-text.npz", where)
    else:
        texts, ids = item_texts(csv_path, columns, template), None
        out = output_path(data_dir, out, "features-text.npy")
    enc = encoder if encoder is not None else TextEncoder(model, device=device)
    recipe = {**enc.recipe, "columns": list(columns), "template": template,
              "inputs": inputs, "device": str(enc.device)}
    check_recipe(out, recipe, overwrite)

    def compute(start, stop):
        return enc.encode(texts[start:stop], batch=batch), []

    batch_keys = texts if ids is None else [f"{k}:{t}" for k, t in zip(ids.tolist(), texts)]
    arr, _ = run_batches(out, recipe, batch_keys, enc.dim, batch, compute, progress=progress,
                         label="text features")
    finish(out, arr, recipe, {"features": out.name, "n_items": len(texts), "n_zero_rows": 0,
                              "zero_rows": []}, ids)
    return out
