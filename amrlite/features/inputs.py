"""Item inputs keyed by raw id: a folder of photos named by item id, an images table, an item
table (no torch needed).

* :func:`scan_photos` — ``{id: path}`` of a photo folder: the file stem is the item id
  (``photos/SKU-8F3A2B.jpg``); :data:`PHOTO_SUFFIXES`, case-insensitive; nested folders are
  searched; two files with one stem are an error naming both; hidden files are skipped.
* :func:`read_keyed_table` — the rows of a CSV keyed by an id column (given, or the first of
  :data:`ID_COLUMNS` in the header), ids as written (any type), each checked to be non-empty and
  distinct.
* :func:`read_images_table` — ``{id: path}`` of an images table (id and path columns, given or
  recognised by name; a relative path is relative to the table's folder).
* :func:`read_item_rows` — the rows of a native table keyed by item index (``items.csv``).
* :func:`photo_index` — the photos of a features recipe's ``inputs`` (what
  ``amrlite features image`` read), for a pixel attack run later.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import AmrliteError, braced, input_error, option_error
from ..rawdata import ITEM_COLUMNS, as_int_ids
from ..textio import check_header, open_text

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
#: Item id columns recognised by name (case-insensitive), in order of preference.
ID_COLUMNS = tuple(dict.fromkeys(("item", "item_id", "id", *ITEM_COLUMNS)))
#: Image path columns recognised by name.
PATH_COLUMNS = ("path", "file", "filename", "file_name", "image", "image_path", "photo",
                "photo_path", "picture", "img")


def scan_photos(folder):
    """``{id: path}`` of the photos under ``folder`` (sorted by path; the stem is the id)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise option_error("photos", "not a folder" if folder.exists() else "no such folder",
                           folder)
    found = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).parts
        if p.suffix.lower() not in PHOTO_SUFFIXES or any(s.startswith(".") for s in rel) \
                or not p.is_file():
            continue
        if p.stem in found:
            raise option_error("photos", f"two photos for item {p.stem!r}: {found[p.stem]} and "
                               f"{p} (one file per item id)", folder)
        found[p.stem] = p
    if not found:
        raise option_error("photos", "no photos in it or its subfolders (looked for "
                           f"{', '.join(s[1:] for s in PHOTO_SUFFIXES)})", folder)
    return found


def _column(path, header, given, known, what, param):
    """The header name of column ``given`` (case-insensitive), else the first ``known`` one;
    ``param``: the parameter that gave ``given`` (named in an error)."""
    lowered = [h.lower() for h in header]
    if given is not None:
        if str(given).lower() not in lowered:
            raise input_error(path, f"field '{{{param}}}': " + braced(
                f"no column {given!r} in the header ({', '.join(header)})"), line=1,
                names=(param,))
        return header[lowered.index(str(given).lower())]
    k = next((lowered.index(c) for c in known if c in lowered), None)
    if k is None:
        raise input_error(path, braced(f"no {what} column in the header ({', '.join(header)}); ")
                          + f"name it with {{{param}}}", line=1, names=(param,))
    return header[k]


def read_item_titles(path, title_col="title", item_col=None):
    """``{raw item id: title}`` from a products table with a header (``--titles products.csv
    --title-col title``): the id column is ``item_col``, else the first recognised id column
    (``item``, ``sku``, ``product_id`` ...); ids distinct and non-empty; titles stripped."""
    _, rows = read_keyed_table(path, (title_col,), item_col, param="titles")
    return {key: (row[title_col] or "").strip() for _, key, row in rows}


def read_keyed_table(path, columns=(), item_col=None, param="items_csv"):
    """``(id column, [(line, id, row), ...])`` of the CSV ``path``: ``row`` is the dict of the
    line; ``columns`` must exist; ids are distinct, non-empty strings as written. ``param``:
    the parameter that gave ``path`` (named in an error)."""
    path = Path(path)
    if not path.is_file():
        raise option_error(param, "not a file" if path.exists() else "no such file", path)
    with open_text(path, newline="") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        if not header:
            raise input_error(path, "empty file (no header)")
        check_header(path, header)
        id_col = _column(path, header, item_col, ID_COLUMNS, "item id", "item_col")
        missing = [c for c in columns if c not in header]
        if missing:
            raise input_error(path, f"no column {', '.join(map(repr, missing))} in the header "
                              f"(columns: {', '.join(header)})", line=1)
        rows, first = [], {}
        for line, row in enumerate(reader, start=2):
            key = (row.get(id_col) or "").strip()
            if not key:
                raise input_error(path, "empty item id", line=line, field=id_col)
            if key in first:
                raise input_error(path, f"item {key!r} listed twice (lines {first[key]} and "
                                  f"{line})", line=line, field=id_col)
            first[key] = line
            rows.append((line, key, row))
    if not rows:
        raise input_error(path, "no data rows after the header", line=1)
    return id_col, rows


def read_images_table(path, item_col=None, path_col=None):
    """``({id: path or None}, id column, path column)`` of an images table; an empty path cell
    is an item without an image (None)."""
    path = Path(path)
    id_col, rows = read_keyed_table(path, (), item_col, param="images_csv")
    header = list(rows[0][2])
    p_col = _column(path, header, path_col, PATH_COLUMNS, "image path", "path_col")
    if p_col == id_col:
        raise input_error(path, f"the item id and the image path are the same column {p_col!r}",
                          line=1)
    out = {}
    for _, key, row in rows:
        cell = (row.get(p_col) or "").strip()
        p = Path(cell)
        out[key] = None if not cell else p if p.is_absolute() else path.parent / p
    return out, id_col, p_col


def id_array(keys):
    """Raw ids as an array: int64 when every one is a plain integer, else unicode."""
    arr = np.asarray([str(k) for k in keys])
    ints = as_int_ids(arr) if len(arr) else None
    return arr if ints is None else ints


def read_item_rows(path, required):
    """The rows of a native table keyed by item *index* (``items.csv``, an images table of a
    native data set): ``[(line, item, row dict), ...]``, with the ``required`` columns
    checked in the header and every ``item`` a non-negative integer (else one error naming
    the file, line and field)."""
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


def photo_index(inputs):
    """``({id: path or None}, where)`` of the photos a features recipe's ``inputs`` name:
    ``{"photos": DIR}`` or ``{"images": CSV, "item_col": ..., "path_col": ...}``."""
    if inputs.get("photos"):
        return scan_photos(inputs["photos"]), f"the photo folder {inputs['photos']}"
    if inputs.get("images"):
        paths, _, _ = read_images_table(inputs["images"], inputs.get("item_col"),
                                        inputs.get("path_col"))
        return paths, f"the images table {inputs['images']}"
    raise AmrliteError("the features recipe names no photo folder or images table")


__all__ = ["ID_COLUMNS", "PATH_COLUMNS", "PHOTO_SUFFIXES", "id_array", "photo_index",
           "read_images_table", "read_keyed_table", "scan_photos"]
