"""Loaders: the native folder format, the official AMR format and plain CSV/TSV + ``.npy``,
into the containers of :mod:`amrlite.containers`; split folders (:func:`load_split`,
:func:`save_split`). Every user error names the file, line and field. Split generation is in
:mod:`amrlite.splits`.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from amrlite.containers import Dataset, EvalRows, Split
from amrlite.errors import AmrliteError, input_error
from amrlite.synthetic import make_synthetic

NORMALIZE_OPTIONS = ("none", "maxabs", "l2")


# --------------------------------------------------------------------------------------------
# Text tables of integer ids
# --------------------------------------------------------------------------------------------

def _sniff_sep(line):
    for sep in ("\t", ",", ";"):
        if sep in line:
            return sep
    return None   # runs of blanks


def _fields(line, sep):
    return [f.strip() for f in (line.split(sep) if sep is not None else line.split())]


def _is_int(text):
    try:
        int(text)
    except ValueError:
        return False
    return True


class _Table:
    """Integer columns read from a delimited text file, with a way back to line numbers."""

    def __init__(self, path, names, cols, header_line, n_cols):
        self.path, self.names, self.cols = path, names, cols
        self.header_line, self.n_cols = header_line, n_cols

    def __len__(self):
        return len(next(iter(self.cols.values())))

    def line_of(self, row):
        """1-based line number (as in a text editor) of data row ``row``; only used on errors."""
        seen = -1
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for no, line in enumerate(fh, start=1):
                if no <= self.header_line or not line.strip():
                    continue
                seen += 1
                if seen == row:
                    return no
        return None

    def error(self, row, field, problem):
        return input_error(self.path, problem, line=self.line_of(row), field=field)


def _read_table(path, columns=("user", "item"), *, sep=None, header="auto", fallback_names=None):
    """Read integer columns ``columns`` (by header name, else by position) from a text file.

    ``columns="all"`` reads every column (named by ``fallback_names(i)``). Fast path:
    ``np.loadtxt``; when it fails the file is re-scanned line by line to report the first bad line.
    Negative ids are errors.
    """
    path = Path(path)
    if not path.is_file():
        raise input_error(path, "file not found" if not path.exists() else "not a file")
    first, first_no = None, 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for no, line in enumerate(fh, start=1):
            if line.strip():
                first, first_no = line.rstrip("\r\n"), no
                break
    if first is None:
        raise input_error(path, "file is empty (no data rows)")
    sep = _sniff_sep(first) if sep is None else ("\t" if sep in ("\\t", "tab") else sep)
    head = _fields(first, sep)
    n_cols = len(head)
    has_header = (not all(_is_int(f) for f in head)) if header == "auto" else bool(header)
    lowered = [h.lower() for h in head]
    if columns == "all":
        idx = list(range(n_cols))
        names = [fallback_names(i) if fallback_names else f"column {i + 1}" for i in idx]
    else:
        if n_cols < len(columns):
            raise input_error(path, f"expected at least {len(columns)} columns "
                              f"({', '.join(columns)}), found {n_cols}", line=first_no)
        if has_header and all(c in lowered for c in columns):
            idx = [lowered.index(c) for c in columns]
        else:
            idx = list(range(len(columns)))
        names = list(columns)
    header_line = first_no if has_header else first_no - 1
    cols = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.loadtxt(path, dtype=np.int64, delimiter=sep, skiprows=header_line,
                             ndmin=2, comments=None, encoding="utf-8")
        if arr.shape[0] and arr.shape[1] == n_cols:
            cols = {n: np.ascontiguousarray(arr[:, i]) for n, i in zip(names, idx)}
        elif arr.shape[0] == 0:
            raise input_error(path, "no data rows after the header", line=header_line)
    except (ValueError, OverflowError) as exc:
        if isinstance(exc, AmrliteError):
            raise
    if cols is None:
        cols = _scan_table(path, names, idx, sep, header_line, n_cols, head if has_header else None)
    table = _Table(path, names, cols, header_line, n_cols)
    for n in names:
        neg = np.flatnonzero(cols[n] < 0)
        if len(neg):
            raise table.error(neg[0], n, f"negative id {cols[n][neg[0]]}")
    return table


def _scan_table(path, names, idx, sep, header_line, n_cols, head):
    """Slow, exact parse: reports the first bad line (column count, non-integer id)."""
    out = [[] for _ in names]
    expect = f"{n_cols} columns" + (f" ({','.join(head)})" if head else "")
    with open(path, encoding="utf-8", errors="replace") as fh:
        for no, line in enumerate(fh, start=1):
            if no <= header_line or not line.strip():
                continue
            parts = _fields(line.rstrip("\r\n"), sep)
            if len(parts) != n_cols:
                raise input_error(path, f"expected {expect}, found {len(parts)}", line=no)
            for k, (n, i) in enumerate(zip(names, idx)):
                try:
                    out[k].append(int(parts[i]))
                except ValueError:
                    raise input_error(path, f"not an integer: {parts[i]!r}", line=no,
                                      field=n) from None
    if not out[0]:
        raise input_error(path, "no data rows after the header", line=header_line or None)
    return {n: np.asarray(v, dtype=np.int64) for n, v in zip(names, out)}


def _count_rows(path):
    """Data rows of an optional side file (``users.csv``/``items.csv``): non-blank lines - header."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = [ln for ln in fh if ln.strip()]
    if not lines:
        return 0
    return len(lines) - (0 if all(_is_int(f) for f in _fields(lines[0], _sniff_sep(lines[0]))) else 1)


# --------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------

def _row_blocks(n_rows, n_cols, budget=8_000_000):
    step = max(1, budget // max(1, n_cols))
    for s in range(0, n_rows, step):
        yield s, min(n_rows, s + step)


def load_features(path, *, normalize="none"):
    """Item features ``[n_items, D]`` from a ``.npy`` file, memory-mapped (read-only).

    ``normalize``: ``"none"`` (the memory map itself), ``"maxabs"`` (divide by the global max
    |value|, as the official AMR code does) or ``"l2"`` (each row to unit length; all-zero rows stay
    zero). Normalised copies are float32 unless the file is float64.
    """
    if normalize not in NORMALIZE_OPTIONS:
        raise AmrliteError(f"option 'normalize': must be one of {', '.join(NORMALIZE_OPTIONS)}, "
                           f"got {normalize!r}")
    path = Path(path)
    if not path.is_file():
        raise input_error(path, "features file not found" if not path.exists() else "not a file")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:   # not a .npy, truncated, object array, .npz ...
        raise input_error(path, f"cannot read as a NumPy .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray):
        raise input_error(path, "expected a single .npy array, got an archive")
    if arr.ndim != 2:
        raise input_error(path, f"features must be 2-D [n_items, D], got shape {arr.shape}")
    if arr.dtype.kind != "f":
        raise input_error(path, f"features must be float32 or float64, got {arr.dtype}")
    for s, e in _row_blocks(*arr.shape):
        bad = ~np.isfinite(arr[s:e])
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise input_error(path, f"row {s + r} (item {s + r}) has a non-finite value "
                              f"({arr[s + r, c]}) in column {c}")
    if normalize == "none":
        return arr
    out_dtype = np.float64 if arr.dtype == np.float64 else np.float32
    out = np.empty(arr.shape, dtype=out_dtype)
    if normalize == "maxabs":
        m = max((float(np.abs(arr[s:e]).max(initial=0.0)) for s, e in _row_blocks(*arr.shape)),
                default=0.0)
        for s, e in _row_blocks(*arr.shape):
            out[s:e] = arr[s:e] / m if m > 0 else arr[s:e]
    else:
        for s, e in _row_blocks(*arr.shape):
            block = arr[s:e].astype(np.float64)
            norms = np.sqrt(np.einsum("ij,ij->i", block, block))
            norms[norms == 0] = 1.0
            out[s:e] = block / norms[:, None]
    return out


# --------------------------------------------------------------------------------------------
# Data sets
# --------------------------------------------------------------------------------------------

def _dedupe(path, users, items, n_items):
    key = users * np.int64(max(n_items, 1)) + items
    _, first = np.unique(key, return_index=True)
    n_dup = len(key) - len(first)
    if n_dup:
        warnings.warn(f"{path}: dropped {n_dup} duplicate (user, item) interaction(s); "
                      f"{len(first)} unique remain", stacklevel=3)
        first.sort()
        users, items = users[first], items[first]
    return users.astype(np.int32), items.astype(np.int32)


def _check_items(table, field, values, n_rows, feat_path):
    over = np.flatnonzero(values >= n_rows)
    if len(over):
        raise table.error(over[0], field, f"item {values[over[0]]} but {Path(feat_path).name} "
                          f"has {n_rows} rows")


def load_dataset(path=None, *, features=None, normalize="none", sep=None, name=None) -> Dataset:
    """Load a data set.

    * ``path=None``: the embedded synthetic data set (:func:`amrlite.synthetic.make_synthetic`).
    * a folder with ``interactions.csv``: the native layout (optional ``features.npy``,
      ``users.csv``, ``items.csv``, ``split-<name>/`` folders).
    * a folder with ``pos.txt``: the official AMR layout (optional ``neg.txt`` -> preset split
      ``"official"``; optional ``f_<name>.npy`` features, pick one with ``features="<name>"``).
    * a CSV/TSV file of ``user,item[,...]`` rows (header optional), with ``features=`` a ``.npy``.

    ``features`` overrides the folder's features file; ``normalize`` is ``"none"``, ``"maxabs"``
    or ``"l2"``; ``sep`` forces the column separator (default: sniffed from the first line).
    Every input problem raises :class:`AmrliteError` naming file, line and field.
    """
    if normalize not in NORMALIZE_OPTIONS:
        raise AmrliteError(f"option 'normalize': must be one of {', '.join(NORMALIZE_OPTIONS)}, "
                           f"got {normalize!r}")
    if path is None:
        if features is not None:
            raise AmrliteError("option 'features': needs a data path (the synthetic data set "
                               "brings its own features)")
        ds = make_synthetic()
        if normalize != "none":
            ds.features = _normalize_array(ds.features, normalize)
        if name:
            ds.name = name
        return ds
    path = Path(path)
    if not path.exists():
        raise input_error(path, "no such file or folder")
    if path.is_dir():
        if (path / "interactions.csv").is_file():
            return _load_native(path, features, normalize, sep, name)
        if (path / "pos.txt").is_file():
            return _load_official(path, features, normalize, name)
        raise input_error(path, "folder has neither interactions.csv (native layout) nor pos.txt "
                          "(official AMR layout)")
    return _load_plain(path, features, normalize, sep, name)


def _normalize_array(arr, normalize):
    if normalize == "none":
        return arr
    out_dtype = np.float64 if arr.dtype == np.float64 else np.float32
    a = arr.astype(np.float64)
    if normalize == "maxabs":
        m = np.abs(a).max(initial=0.0)
        return (a / m if m > 0 else a).astype(out_dtype)
    norms = np.linalg.norm(a, axis=1)
    norms[norms == 0] = 1.0
    return (a / norms[:, None]).astype(out_dtype)


def _load_native(folder, features, normalize, sep, name):
    table = _read_table(folder / "interactions.csv", sep=sep)
    users, items = table.cols["user"], table.cols["item"]
    feat_path = Path(features) if features is not None else folder / "features.npy"
    feats = load_features(feat_path, normalize=normalize) \
        if (features is not None or feat_path.is_file()) else None
    if feats is not None:
        _check_items(table, "item", items, feats.shape[0], feat_path)
        n_items = int(feats.shape[0])
    else:
        n_items = int(items.max()) + 1
        if (folder / "items.csv").is_file():
            n_items = max(n_items, _count_rows(folder / "items.csv"))
    n_users = int(users.max()) + 1
    if (folder / "users.csv").is_file():
        n_users = max(n_users, _count_rows(folder / "users.csv"))
    users, items = _dedupe(table.path, users, items, n_items)
    split_dirs = {d.name[len("split-"):]: d for d in sorted(folder.glob("split-*")) if d.is_dir()}
    return Dataset(name=name or folder.name, n_users=n_users, n_items=n_items, users=users,
                   items=items, features=feats, source=str(folder), split_dirs=split_dirs)


def _load_official(folder, features, normalize, name):
    table = _read_table(folder / "pos.txt", header=False)
    users, items = table.cols["user"], table.cols["item"]
    if features is not None and Path(features).suffix == ".npy":
        feat_path = Path(features)
    elif features is not None:
        feat_path = folder / f"f_{features}.npy"
    else:
        found = sorted(folder.glob("f_*.npy"))
        if len(found) > 1:
            raise input_error(folder, "several feature files (" + ", ".join(f.name for f in found)
                              + "); choose one with features='<name>'", field="features")
        feat_path = found[0] if found else None
    feats = load_features(feat_path, normalize=normalize) if feat_path is not None else None
    neg = None
    if (folder / "neg.txt").is_file():
        neg = _read_table(folder / "neg.txt", "all", header=False,
                          fallback_names=lambda i: "positive" if i == 0 else f"negative {i}")
    n_users = int(users.max()) + 1
    n_items = int(items.max()) + 1
    if neg is not None:
        n_users = max(n_users, len(neg))
        n_items = max(n_items, max(int(c.max()) for c in neg.cols.values()) + 1)
    if feats is not None:
        _check_items(table, "item", items, feats.shape[0], feat_path)
        if neg is not None:
            for f, c in neg.cols.items():
                _check_items(neg, f, c, feats.shape[0], feat_path)
        n_items = int(feats.shape[0])
    users, items = _dedupe(table.path, users, items, n_items)
    ds = Dataset(name=name or folder.name, n_users=n_users, n_items=n_items, users=users,
                 items=items, features=feats, source=str(folder))
    if neg is not None:
        mat = np.stack(list(neg.cols.values()), axis=1)
        test = EvalRows(users=np.arange(len(mat), dtype=np.int32), items=mat[:, 0].astype(np.int32),
                        negatives=mat[:, 1:].astype(np.int32) if mat.shape[1] > 1 else None)
        ds.preset_splits["official"] = Split(name="official", n_users=n_users, n_items=n_items,
                                             train_users=users, train_items=items, valid=None,
                                             test=test)
    return ds


def _load_plain(path, features, normalize, sep, name):
    table = _read_table(path, sep=sep)
    users, items = table.cols["user"], table.cols["item"]
    feats = load_features(features, normalize=normalize) if features is not None else None
    if feats is not None:
        _check_items(table, "item", items, feats.shape[0], features)
        n_items = int(feats.shape[0])
    else:
        n_items = int(items.max()) + 1
    n_users = int(users.max()) + 1
    users, items = _dedupe(table.path, users, items, n_items)
    return Dataset(name=name or path.stem, n_users=n_users, n_items=n_items, users=users,
                   items=items, features=feats, source=str(path))


# --------------------------------------------------------------------------------------------
# Split folders
# --------------------------------------------------------------------------------------------

def _load_rows(path, n_users, n_items):
    table = _read_table(path)
    u, i = table.cols["user"], table.cols["item"]
    for field_, vals, n, what in (("user", u, n_users, "users"), ("item", i, n_items, "items")):
        over = np.flatnonzero(vals >= n)
        if len(over):
            raise table.error(over[0], field_, f"unknown {field_} {vals[over[0]]} "
                              f"(the data set has {n} {what}, ids 0..{n - 1})")
    return u.astype(np.int32), i.astype(np.int32)


def _load_negatives(path, csv_path, n_rows, n_items):
    try:
        neg = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise input_error(path, f"cannot read as a NumPy .npy array ({exc})") from None
    if neg.dtype.kind not in "iu":
        raise input_error(path, f"negatives must be an integer array, got {neg.dtype}")
    if neg.ndim != 2:
        raise input_error(path, f"negatives must be 2-D [rows, N], got shape {neg.shape}")
    if neg.shape[0] != n_rows:
        raise input_error(path, f"{neg.shape[0]} rows but {Path(csv_path).name} has {n_rows} rows")
    bad = np.flatnonzero(((neg < 0) | (neg >= n_items)).any(axis=1))
    if len(bad):
        r = bad[0]
        v = neg[r][(neg[r] < 0) | (neg[r] >= n_items)][0]
        raise input_error(path, f"row {r}: item {v} is not an item of the data set "
                          f"(ids 0..{n_items - 1})")
    return neg.astype(np.int32)


def load_split(folder, n_users, n_items, *, name=None) -> Split:
    """Read a native split folder: ``train.csv``, ``test.csv``, optional ``valid.csv`` and
    ``test_negatives.npy`` / ``valid_negatives.npy`` (integer, row r = CSV data row r)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise input_error(folder, "split folder not found")
    tu, ti = _load_rows(folder / "train.csv", n_users, n_items)
    parts = {}
    for part in ("valid", "test"):
        csv = folder / f"{part}.csv"
        npy = folder / f"{part}_negatives.npy"
        if part == "valid" and not csv.exists():
            if npy.exists():
                raise input_error(npy, "valid_negatives.npy without valid.csv")
            parts[part] = None
            continue
        u, i = _load_rows(csv, n_users, n_items)
        negs = _load_negatives(npy, csv, len(u), n_items) if npy.exists() else None
        parts[part] = EvalRows(users=u, items=i, negatives=negs)
    nm = name or (folder.name[len("split-"):] if folder.name.startswith("split-") else folder.name)
    return Split(name=nm, n_users=n_users, n_items=n_items, train_users=tu, train_items=ti,
                 valid=parts["valid"], test=parts["test"])


_SPLIT_FILES = ("train.csv", "valid.csv", "test.csv", "valid_negatives.npy", "test_negatives.npy")


def save_split(split: Split, folder, *, overwrite=False) -> Path:
    """Write ``split`` in the native split layout (readable by :func:`load_split`).

    Refuses to write into a folder that already holds split files unless ``overwrite=True`` (then
    stale files of parts the split lacks are removed).
    """
    folder = Path(folder)
    existing = [f for f in _SPLIT_FILES if (folder / f).exists()]
    if existing and not overwrite:
        raise input_error(folder, f"already holds a split ({', '.join(existing)}); "
                          "pass overwrite=True to replace it")
    folder.mkdir(parents=True, exist_ok=True)
    for f in existing:
        (folder / f).unlink()

    def write(part, u, i):
        np.savetxt(folder / f"{part}.csv", np.column_stack([u, i]), fmt="%d", delimiter=",",
                   header="user,item", comments="")

    write("train", split.train_users, split.train_items)
    for part, rows in (("valid", split.valid), ("test", split.test)):
        if rows is None:
            continue
        write(part, rows.users, rows.items)
        if rows.negatives is not None:
            np.save(folder / f"{part}_negatives.npy", np.asarray(rows.negatives, dtype=np.int32))
    return folder
