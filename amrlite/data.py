"""Loaders: the native folder format, the official AMR format and plain CSV/TSV + ``.npy``,
into the containers of :mod:`amrlite.containers`; split folders (:func:`load_split`,
:func:`save_split`). Every user error names the file, line and field. Split generation is in
:mod:`amrlite.splits`; :func:`split_dataset` is the splitter of every data set loaded here.
"""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np

from amrlite.containers import Dataset, EvalRows, Split
from amrlite.errors import AmrliteError, braced, input_error, option_error, quote
from amrlite.jsonio import atomic_write
from amrlite.modalities import NORMALIZE_OPTIONS, load_features  # noqa: F401  (re-exported)
from amrlite.modalities import (align_by_id, check_normalize, combine, load_modalities,
                              maxabs_scale, normalize_array)
from amrlite.rawdata import (TIME_COLUMNS, as_int_ids, earliest_times, index_interactions,
                             parse_times, read_id_list, read_raw, sniff_sep, warn_duplicates)
from amrlite.splits import check_negatives, make_split
from amrlite.synthetic import make_synthetic
from amrlite.textio import check_header, header_names, open_text, sniff

#: the largest id a native or official file may hold: its ids are int32 indices, and arrays are
#: sized by them (a raw interactions file has no such limit: its ids are mapped)
INDEX_MAX = 2**31 - 2


# --------------------------------------------------------------------------------------------
# Text tables of integer ids
# --------------------------------------------------------------------------------------------

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

    def __init__(self, path, names, cols, header_line, n_cols, times=None):
        self.path, self.names, self.cols = path, names, cols
        self.header_line, self.n_cols = header_line, n_cols
        self.times = times      # float64 epoch seconds of each row, from its time column

    def __len__(self):
        return len(next(iter(self.cols.values())))

    def line_of(self, row):
        """1-based line number (as in a text editor) of data row ``row``; only used on errors."""
        seen = -1
        with open_text(self.path) as fh:
            for no, line in enumerate(fh, start=1):
                if no <= self.header_line or not line.strip():
                    continue
                seen += 1
                if seen == row:
                    return no
        return None

    def error(self, row, field, problem, names=()):
        return input_error(self.path, problem, line=self.line_of(row), field=field, names=names)


def _read_table(path, columns=("user", "item"), *, sep=None, header="auto", fallback_names=None,
                time_names=()):
    """Read integer columns ``columns`` (by header name, else by position) from a text file.

    ``columns="all"`` reads every column (named by ``fallback_names(i)``). Fast path:
    ``np.loadtxt``; when it fails the file is re-scanned line by line to report the first bad line.
    Negative ids are errors. The first header column named in ``time_names`` gives the table's
    ``times`` (epoch seconds; :func:`amrlite.rawdata.parse_times`: numbers or ISO 8601), or
    none where a value of it is not a time.
    """
    path = Path(path)
    if not path.is_file():
        raise input_error(path, "file not found" if not path.exists() else "not a file")
    first, first_no = None, 0
    with open_text(path) as fh:
        for no, line in enumerate(fh, start=1):
            if line.strip():
                first, first_no = line.rstrip("\r\n"), no
                break
    if first is None:
        raise input_error(path, "file is empty (no data rows)")
    sep = sniff_sep(first) if sep is None else ("\t" if sep in ("\\t", "tab") else sep)
    head = _fields(first, sep)
    n_cols = len(head)
    has_header = (not all(_is_int(f) for f in head)) if header == "auto" else bool(header)
    if has_header:
        check_header(path, head, first_no)
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
    time_idx = next((lowered.index(c) for c in time_names if c in lowered), None) \
        if has_header else None
    cols = times = None
    try:
        compression, codec = sniff(path)
        with warnings.catch_warnings(), \
                (open_text(path) if compression else contextlib.nullcontext(path)) as source:
            warnings.simplefilter("ignore")
            # numpy reads an uncompressed file it opens itself about twice as fast as a stream
            arr = np.loadtxt(source, dtype=np.int64, delimiter=sep, skiprows=header_line,
                             ndmin=2, comments=None, encoding=codec)
        if arr.shape[0] and arr.shape[1] == n_cols:
            cols = {n: np.ascontiguousarray(arr[:, i]) for n, i in zip(names, idx)}
            times = None if time_idx is None else arr[:, time_idx].astype(np.float64)
        elif arr.shape[0] == 0:
            raise input_error(path, "no data rows after the header", line=header_line)
    except (ValueError, OverflowError, OSError) as exc:   # the exact scan reports the line
        if isinstance(exc, AmrliteError):
            raise
    if cols is None:           # not all integer (an ISO time column, or an error to report)
        cols, text_times = _scan_table(path, names, idx, sep, header_line, n_cols,
                                       head if has_header else None, time_idx)
        if text_times is not None:
            times = parse_times(text_times)[0]          # None where one is not a time
    table = _Table(path, names, cols, header_line, n_cols, times=times)
    for n in names:
        neg = np.flatnonzero(cols[n] < 0)
        if len(neg):
            raise table.error(neg[0], n, f"negative id {cols[n][neg[0]]}")
        over = np.flatnonzero(cols[n] > INDEX_MAX)
        if len(over):
            raise table.error(over[0], n, _beyond(cols[n][over[0]]), names=("path",))
    return table


def _beyond(value):
    """The problem of an id beyond the index range; names the parameter ``path``."""
    return braced(f"id {value} is beyond the index range 0..{INDEX_MAX} of this layout (its ids "
                  "are 0-based indices that size the arrays); give the interactions file "
                  "itself (") + "{path} FILE.csv) to map raw ids"


def _scan_table(path, names, idx, sep, header_line, n_cols, head, time_idx=None):
    """Slow, exact parse: reports the first bad line (column count, non-integer id). Returns
    the integer columns and the text of column ``time_idx`` (None without one)."""
    out = [[] for _ in names]
    times = []
    expect = f"{n_cols} columns" + (f" ({header_names(head, ',')})" if head else "")
    with open_text(path) as fh:
        for no, line in enumerate(fh, start=1):
            if no <= header_line or not line.strip():
                continue
            parts = _fields(line.rstrip("\r\n"), sep)
            if len(parts) != n_cols:
                raise input_error(path, f"expected {expect}, found {len(parts)}", line=no)
            for k, (n, i) in enumerate(zip(names, idx)):
                try:
                    v = int(parts[i])
                except ValueError:
                    raise input_error(path, f"not an integer: {quote(parts[i])}", line=no,
                                      field=n) from None
                if v > INDEX_MAX:
                    raise input_error(path, _beyond(v), line=no, field=n, names=("path",))
                if v < 0:
                    raise input_error(path, f"negative id {v}", line=no, field=n)
                out[k].append(v)
            if time_idx is not None:
                times.append(parts[time_idx])
    if not out[0]:
        raise input_error(path, "no data rows after the header", line=header_line or None)
    return ({n: np.asarray(v, dtype=np.int64) for n, v in zip(names, out)},
            None if time_idx is None else times)


def _count_rows(path):
    """Data rows of an optional side file (``users.csv``/``items.csv``): non-blank lines - header."""
    with open_text(path) as fh:
        lines = [ln for ln in fh if ln.strip()]
    if not lines:
        return 0
    return len(lines) - (0 if all(_is_int(f) for f in _fields(lines[0], sniff_sep(lines[0]))) else 1)


# --------------------------------------------------------------------------------------------
# Data sets
# --------------------------------------------------------------------------------------------

def _dedupe(path, users, items, n_items, times=None):
    """Each (user, item) pair once, at its first row; its time (``times``) is the earliest of
    its rows' times."""
    key = users * np.int64(max(n_items, 1)) + items
    _, first, pair = np.unique(key, return_index=True, return_inverse=True)
    n_dup = len(key) - len(first)
    if n_dup:
        warn_duplicates(path, n_dup, len(first))
        first.sort()
        users, items = users[first], items[first]
        if times is not None:
            times = earliest_times(pair.ravel(), times, len(first))[pair.ravel()[first]]
    return users.astype(np.int32), items.astype(np.int32), times


def _check_items(table, field, values, n_rows, feat_path):
    over = np.flatnonzero(values >= n_rows)
    if len(over):
        raise table.error(over[0], field, f"item {values[over[0]]} but {Path(feat_path).name} "
                          f"has {n_rows} rows")


def _check_contiguous(table, field, values, n_known, side, present=None, strict=True,
                      keyed=None):
    """Native contract: every index 0..max is a real user/item — it has an interaction, or a row
    in ``side`` (``users.csv``/``items.csv``: rows 0..n_known-1) or the features. A gap is a
    phantom (for items: one that could be drawn as an evaluation negative). ``keyed``
    (``{file: ids}`` of the ``.npz`` features) names the file where the largest id is one of
    those."""
    keyed = keyed or {}
    if keyed:
        present = np.concatenate([values if present is None else present, *keyed.values()])
    u = np.unique(values if present is None else present)
    u = u[u >= n_known]
    if not len(u) or u[-1] - n_known + 1 == len(u):
        return
    gap = int(n_known + np.flatnonzero(u != n_known + np.arange(len(u)))[0])
    n_gaps = int(u[-1] - n_known + 1 - len(u))
    at = np.flatnonzero(values == u[-1])
    row = int(at[0]) if len(at) else int(np.argmax(values))
    if not strict and n_gaps <= len(u):
        # the official layout has always allowed gaps (the Pinterest pos.txt has 1,180 items that
        # occur only in the held-out rows it was published without): a warning, unless most
        # indices would be phantoms (then an id is surely not an index: sizing by it would fail)
        warnings.warn(f"{table.path}: {n_gaps} {field} indices below the largest ({u[-1]}) occur "
                      f"in no file of the folder; they count as {field}s (e.g. as sampled "
                      "negatives of a generated split)", stacklevel=3)
        return
    problem = (f"{field} {u[-1]}, but index {gap} (and {n_gaps - 1} more below {u[-1]}) has "
               "no interaction"
               + (", no feature row" if field == "item" and side != "feature" else "")
               + f" and no {side} row: these ids must be 0-based and contiguous (a "
               f"phantom {field} would count as a real one"
               + (", e.g. as an evaluation negative" if field == "item" else "")
               + "); give the interactions file itself ({path} FILE.csv) to map raw ids")
    source = next((f for f, ids in keyed.items() if not len(at) and u[-1] in ids), None)
    if source is not None:
        raise input_error(source, problem, field="ids", names=("path",))
    raise table.error(row, field, problem, names=("path",))


def load_dataset(path=None, *, features=None, normalize="none", sep=None, name=None,
                 user_col=None, item_col=None, rating_col=None, time_col=None, min_rating=None,
                 k_core=None, id_order="first", items=None, missing_features="error") -> Dataset:
    """Load a data set.

    * ``path=None``: the embedded synthetic data set (:func:`amrlite.synthetic.make_synthetic`).
    * a folder with ``interactions.csv``: the native layout (0-based contiguous ids; optional
      ``features.npy`` and ``features-<name>.npy``, ``users.csv``, ``items.csv``,
      ``split-<name>/`` folders).
    * a folder with ``pos.txt``: the official AMR layout (optional ``neg.txt`` -> preset split
      ``"official"``, then the default; optional ``f_<name>.npy`` features).
    * an interactions CSV/TSV with raw ids (strings, or integers with gaps: mapped to indices,
      see :mod:`amrlite.rawdata`); ``user_col``/``item_col``/``rating_col``/``time_col`` name
      the columns where the header does not.

    ``features``: modality names of the folder (``"image"``, ``"image,text"``) and/or paths
    (``.npy`` positional, ``.npz`` with ``ids`` and ``features``); ``items``: a file listing the
    raw item id of every ``.npy`` feature row; ``missing_features="zero"`` gives items without a
    feature row a zero row instead of an error. ``normalize``: ``"none"``, ``"maxabs"``, ``"l2"``
    or per modality ``"image=l2,text=none"``. ``min_rating``/``k_core`` filter a raw
    interactions file. ``id_order``: ``"first"`` (first-seen) or ``"sorted"``. ``sep`` forces
    the column separator (default: sniffed from the first line).

    The items are the *catalogue*: the items of the interactions plus every item with a
    feature row (an id of an ``.npz`` or of ``items``, a row of a positional ``.npy``). An item
    without interactions (a new product) is kept: it gets no ID embedding in training (it is
    not a training item) and is scored by its features alone; the load's :attr:`Dataset.notes`
    count them. Raw ids are indexed log items first (in ``id_order``), then the catalogue-only
    items in the order the feature files list them (sorted with ``id_order="sorted"``); an item
    whose interactions ``min_rating``/``k_core`` removed is dropped, feature row or not.
    Every input problem raises :class:`AmrliteError` naming file, line and field.
    """
    given = dict(features=features, normalize=normalize, sep=sep, user_col=user_col,
                 item_col=item_col, rating_col=rating_col, time_col=time_col,
                 min_rating=min_rating, k_core=k_core, id_order=id_order, items=items,
                 missing_features=missing_features)
    defaults = dict(normalize="none", id_order="first", missing_features="error")
    ds = _load_any(path, features, normalize, sep, name, user_col, item_col, rating_col,
                   time_col, min_rating, k_core, id_order, items, missing_features)
    ds.options = {k: (str(v) if isinstance(v, Path) else v) for k, v in given.items()
                  if v is not None and v != defaults.get(k)}
    return ds


def _load_any(path, features, normalize, sep, name, user_col, item_col, rating_col, time_col,
              min_rating, k_core, id_order, items, missing_features):
    if path is None:
        if features is not None:
            raise option_error("features", "needs a data path (the synthetic data set "
                               "brings its own features)")
        ds = make_synthetic()
        scale = maxabs_scale(ds.features) if check_normalize(normalize) == "maxabs" else None
        ds.features = normalize_array(ds.features, normalize, scale=scale)
        ds.feature_info = [{"name": "default", "dim": ds.n_features, "file": "synthetic",
                            "normalize": normalize, "zero_rows": 0, "missing": 0,
                            **({} if scale is None else {"scale": scale})}]
        if name:
            ds.name = name
        return ds
    path = Path(path)
    if not path.exists():
        raise input_error(path, "no such file or folder")
    raw_opts = dict(user_col=user_col, item_col=item_col, rating_col=rating_col,
                    time_col=time_col, min_rating=min_rating, k_core=k_core, items=items)
    if path.is_dir():
        layout = "native" if (path / "interactions.csv").is_file() else \
            "official" if (path / "pos.txt").is_file() else None
        if layout is None:
            raise input_error(path, "folder has neither interactions.csv (native layout) nor "
                              "pos.txt (official AMR layout)")
        given = [k for k, v in raw_opts.items() if v is not None]
        if given:
            raise option_error(given[0], braced(f"applies to an interactions file with raw "
                               f"ids; {path} is a {layout} folder, whose ids are 0-based indices "
                               "(give the file itself, e.g. ") + "{path} " + braced(
                               f"{path}/{'interactions.csv' if layout == 'native' else 'pos.txt'}"
                               ) + ")", names=("path",))
        if layout == "native":
            return _load_native(path, features, normalize, sep, name)
        return _load_official(path, features, normalize, name)
    return _load_plain(path, features, normalize, sep, name, id_order=id_order,
                       missing=missing_features, **raw_opts)


def _features_for(mods):
    feats = combine(mods)
    return feats, [m.info() for m in mods]


def _load_native(folder, features, normalize, sep, name):
    table = _read_table(folder / "interactions.csv", sep=sep, time_names=TIME_COLUMNS)
    users, items = table.cols["user"], table.cols["item"]
    mods = load_modalities(features, normalize, folder=folder, layout="native")
    positional = [m for m in mods if m.ids is None]
    n_items_csv = _count_rows(folder / "items.csv") if (folder / "items.csv").is_file() else 0
    keyed = _keyed_indices(mods)           # an .npz's rows are items too (the catalogue)
    if positional:
        n_items = int(positional[0].array.shape[0])
        _check_items(table, "item", items, n_items, positional[0].file)
    else:
        _check_contiguous(table, "item", items, n_items_csv, "items.csv", keyed=keyed)
        n_items = max([int(items.max()) + 1, n_items_csv,
                       *(int(ids.max(initial=-1)) + 1 for ids in keyed.values())])
    for m in mods:
        if m.ids is not None:
            align_by_id(m, np.arange(n_items))
    feats, info = _features_for(mods)
    n_users_csv = _count_rows(folder / "users.csv") if (folder / "users.csv").is_file() else 0
    _check_contiguous(table, "user", users, n_users_csv, "users.csv")
    n_users = max(int(users.max()) + 1, n_users_csv)
    users, items, times = _dedupe(table.path, users, items, n_items, table.times)
    split_dirs = {d.name[len("split-"):]: d for d in sorted(folder.glob("split-*")) if d.is_dir()}
    return Dataset(name=name or folder.name, n_users=n_users, n_items=n_items, users=users,
                   items=items, features=feats, source=str(folder), split_dirs=split_dirs,
                   feature_info=info, notes=_catalogue_notes(n_items, items, feats),
                   times=times, splitter=split_dataset)


def _keyed_indices(mods):
    """``{file: ids}`` of the ``.npz`` modalities of a dataset folder, whose ids are item
    indices (non-negative integers, int64)."""
    out = {}
    for m in (m for m in mods if m.ids is not None):
        ids = m.ids.astype(np.int64) if m.ids.dtype.kind in "iu" else as_int_ids(m.ids)
        if ids is None or not ((ids >= 0) & (ids <= INDEX_MAX)).all():
            bad = next(str(x) for x in m.ids.tolist() if as_int_ids(np.asarray([str(x)])) is None
                       or not 0 <= int(x) <= INDEX_MAX)
            raise input_error(m.file, f"id {bad!r} is not an item index (an .npz in a dataset "
                              "folder is keyed by 0-based item index); give the interactions "
                              "file itself ({path} FILE.csv) to map raw ids", field="ids",
                              names=("path",))
        out[m.file] = ids
    return out


def _catalogue_notes(n_items, items, feats, held_out=None):
    """The load's note on the items with a feature row and no interaction (``items``, plus the
    ``held_out`` positives of a preset split): they are scored by their features alone."""
    if feats is None:
        return []
    seen = np.zeros(n_items, dtype=bool)
    seen[items] = True
    if held_out is not None:
        seen[held_out] = True
    n = int(n_items - seen.sum())
    if not n:
        return []
    return ["1 catalogue item has no interactions: scored by its features alone" if n == 1 else
            f"{n} catalogue items have no interactions: scored by their features alone"]


def _load_official(folder, features, normalize, name):
    table = _read_table(folder / "pos.txt", header=False)
    users, items = table.cols["user"], table.cols["item"]
    mods = load_modalities(features, normalize, folder=folder, layout="official")
    neg = None
    if (folder / "neg.txt").is_file():
        neg = _read_table(folder / "neg.txt", "all", header=False,
                          fallback_names=lambda i: "positive" if i == 0 else f"negative {i}")
    _check_contiguous(table, "user", users, 0, "users", strict=False)
    n_users = int(users.max()) + 1
    n_items = int(items.max()) + 1
    keyed = _keyed_indices(mods)
    if not any(m.ids is None for m in mods):       # no positional rows: every item must occur
        present = items if neg is None else np.concatenate([items, *neg.cols.values()])
        _check_contiguous(table, "item", items, 0, "feature", present=present, strict=False,
                          keyed=keyed)
        n_items = max([n_items, *(int(ids.max(initial=-1)) + 1 for ids in keyed.values())])
    if neg is not None:
        if len(neg) != n_users:
            raise input_error(neg.path, f"{len(neg)} rows, but pos.txt has {n_users} users "
                              f"(ids 0..{n_users - 1}): line u of neg.txt is user u's test row")
        n_items = max(n_items, max(int(c.max()) for c in neg.cols.values()) + 1)
    positional = [m for m in mods if m.ids is None]
    if positional:
        n_rows, fpath = int(positional[0].array.shape[0]), positional[0].file
        _check_items(table, "item", items, n_rows, fpath)
        if neg is not None:
            for f, c in neg.cols.items():
                _check_items(neg, f, c, n_rows, fpath)
        n_items = n_rows
    for m in mods:
        if m.ids is not None:
            align_by_id(m, np.arange(n_items))
    feats, info = _features_for(mods)
    users, items, _ = _dedupe(table.path, users, items, n_items)
    ds = Dataset(name=name or folder.name, n_users=n_users, n_items=n_items, users=users,
                 items=items, features=feats, source=str(folder), feature_info=info,
                 splitter=split_dataset, notes=_catalogue_notes(n_items, items, feats,
                                        None if neg is None else neg.cols["positive"]))
    if neg is not None:
        mat = np.stack(list(neg.cols.values()), axis=1)
        test = EvalRows(users=np.arange(len(mat), dtype=np.int32), items=mat[:, 0].astype(np.int32),
                        negatives=mat[:, 1:].astype(np.int32) if mat.shape[1] > 1 else None)
        split = Split(name="official", n_users=n_users, n_items=n_items, train_users=users,
                      train_items=items, valid=None, test=test)
        check_eval_rows(neg.path, test, split, row_line=neg.line_of)
        ds.preset_splits["official"] = split
        ds.default_split = "official"
    return ds


def _load_plain(path, features, normalize, sep, name, *, user_col, item_col, rating_col,
                time_col, min_rating, k_core, items, id_order, missing):
    table = read_raw(path, sep=sep, user_col=user_col, item_col=item_col,
                     rating_col=rating_col, time_col=time_col)
    row_ids = read_id_list(items, item_col) if items is not None else None
    mods = load_modalities(features, normalize, layout="plain", row_ids=row_ids)
    if items is not None and not mods:
        raise option_error("items", "lists the item id of every feature row, so it needs "
                           "{features}", names=("features",))
    by_id = [m for m in mods if m.ids is not None]
    if by_id and len(by_id) != len(mods):
        pos = next(m for m in mods if m.ids is None)
        raise input_error(pos.file, braced(f"positional (row i = item i), while "
                          f"{by_id[0].file.name} is aligned by id; ") + "give {items} with the "
                          "id of every row of the .npy, or an .npz for every modality",
                          names=("items",))
    n_pos = int(mods[0].array.shape[0]) if mods and not by_id else None
    if n_pos is not None and len({m.array.shape[0] for m in mods}) > 1:
        combine(mods)                   # raises: rows differ
    idx = index_interactions(table, min_rating=min_rating, k_core=k_core, id_order=id_order,
                             positional_items=n_pos,
                             positional_file=mods[0].file if n_pos is not None else None)
    item_ids = idx.item_ids
    if by_id:
        ids = _with_catalogue(idx, mods, table.columns["item"], id_order)
        for m in mods:
            align_by_id(m, ids, missing=missing)
        item_ids = id_map(ids)
    feats, info = _features_for(mods)
    n_items = n_pos if n_pos is not None else int(feats.shape[0]) if feats is not None else \
        (len(idx.item_ids) if idx.item_ids is not None else int(idx.items.max()) + 1)
    n_users = len(idx.user_ids) if idx.user_ids is not None else int(idx.users.max()) + 1
    notes = list(idx.notes) + _catalogue_notes(n_items, idx.items, feats)
    if "min_rating" in idx.filters or "k_core" in idx.filters:
        f = idx.filters
        notes.append(f"{path.name}: {f['rows']} rows"
                     + (f", {f['after_min_rating']} with rating >= {f['min_rating']:g}"
                        if "min_rating" in f else "")
                     + f", {f['unique']} unique (user, item)"
                     + (f", {f['after_k_core']} in the {f['k_core']}-core ({f['k_core_rounds']} "
                        "rounds)" if "k_core" in f else "")
                     + f": {n_users} users, {n_items} items")
    return Dataset(name=name or path.stem, n_users=n_users, n_items=n_items, users=idx.users,
                   items=idx.items, features=feats, source=str(path), user_ids=idx.user_ids,
                   item_ids=item_ids, feature_info=info, filters=idx.filters, notes=notes,
                   times=idx.times, meta={"time_error": idx.time_error} if idx.time_error else {},
                   splitter=split_dataset)


def _with_catalogue(idx, mods, raw_items, id_order):
    """The raw ids of the items of a data set read from a log and id-keyed features: the log's
    items (``idx.item_ids``, or ``0..n-1`` where they are the indices, in index order), then the
    *catalogue-only* items — ids of a feature row that never occur in the log (``raw_items``,
    its item column) — in the order the feature files first list them (modality by modality,
    row by row), or sorted with ``id_order="sorted"``. An item the log has but whose rows
    ``min_rating``/``k_core`` removed stays removed. Integer ids stay integers (int64)."""
    log = idx.item_ids if idx.item_ids is not None else np.arange(int(idx.items.max()) + 1)
    keys = np.concatenate([np.asarray(m.ids).astype(str) for m in mods])
    _, first = np.unique(keys, return_index=True)
    keys = keys[np.sort(first)]
    new = keys[~np.isin(keys, raw_items)]
    return append_ids(log, new, sort=id_order == "sorted") if len(new) else log


def append_ids(ids, new, *, sort=False):
    """Raw ids ``ids`` followed by ``new`` (``sort``: sorted first, numerically where they are
    integers): int64 where every id is an integer, else all strings."""
    new = np.asarray([str(x) for x in np.asarray(new).tolist()])
    ints = as_int_ids(new) if np.asarray(ids).dtype.kind in "iu" else None
    if ints is not None:
        return np.concatenate([np.asarray(ids, dtype=np.int64), np.sort(ints) if sort else ints])
    return np.concatenate([np.asarray(ids).astype(str), np.sort(new) if sort else new])


def id_map(ids):
    """``ids`` as a data set or model keeps them: ``None`` where they are the indices 0..n-1."""
    index = ids.dtype.kind in "iu" and np.array_equal(ids, np.arange(len(ids)))
    return None if index else ids


# --------------------------------------------------------------------------------------------
# Evaluation rows: integrity
# --------------------------------------------------------------------------------------------

def check_eval_rows(path, rows: EvalRows, split: Split, *, row_line=None):
    """Refuse negatives that would make a metric silently wrong: the row's own positive, a
    training positive of the user, the same item twice in a row, an item out of range.

    ``path`` names the file in the message; ``row_line(r)`` (optional) turns a row into a line.
    """
    neg = rows.negatives
    if neg is None or not len(neg):
        return

    def fail(r, problem):
        line = row_line(r) if row_line else None
        where = "" if line else f"row {r}: "
        raise input_error(path, where + problem, line=line)

    bad = np.flatnonzero(((neg < 0) | (neg >= split.n_items)).any(axis=1))
    if len(bad):
        r = int(bad[0])
        v = neg[r][(neg[r] < 0) | (neg[r] >= split.n_items)][0]
        fail(r, f"item {v} is not an item of the data set (ids 0..{split.n_items - 1})")
    hit = np.flatnonzero((neg == rows.items[:, None]).any(axis=1))
    if len(hit):
        r = int(hit[0])
        fail(r, f"negative item {rows.items[r]} is the row's own positive "
                f"({len(hit)} row(s) affected)")
    srt = np.sort(neg, axis=1)
    dup = np.flatnonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1))
    if len(dup):
        r = int(dup[0])
        v = srt[r, 1:][srt[r, 1:] == srt[r, :-1]][0]
        fail(r, f"item {v} occurs twice among the negatives ({len(dup)} row(s) affected)")
    indptr, indices = split.train_csr
    n = max(split.n_items, 1)
    keys = np.repeat(np.arange(split.n_users, dtype=np.int64), np.diff(indptr)) * n + indices
    q = rows.users.astype(np.int64)[:, None] * n + neg
    pos = np.searchsorted(keys, q)
    seen = (pos < len(keys)) & (keys[np.minimum(pos, max(len(keys) - 1, 0))] == q) \
        if len(keys) else np.zeros(q.shape, dtype=bool)
    bad = np.flatnonzero(seen.any(axis=1))
    if len(bad):
        r = int(bad[0])
        v = neg[r][seen[r]][0]
        fail(r, f"negative item {v} is a training positive of user {rows.users[r]} "
                f"({len(bad)} row(s) affected)")


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
    split = Split(name=nm, n_users=n_users, n_items=n_items, train_users=tu, train_items=ti,
                  valid=parts["valid"], test=parts["test"])
    for part in ("valid", "test"):
        if parts[part] is not None:
            check_eval_rows(folder / f"{part}_negatives.npy", parts[part], split)
    return split


def split_dataset(dataset, name, *, seed=2019, n_negatives=99) -> Split:
    """The splitter of a loaded data set (:attr:`Dataset.splitter`): its folder
    ``split-<name>/`` next to the interactions (:func:`load_split`) when it has one, else the
    split :func:`amrlite.splits.make_split` generates."""
    check_negatives(n_negatives)
    if name in dataset.split_dirs:
        return load_split(dataset.split_dirs[name], dataset.n_users, dataset.n_items, name=name)
    return make_split(dataset, name, seed=seed, n_negatives=n_negatives)


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
        with atomic_write(folder / f"{part}.csv") as fh:
            np.savetxt(fh, np.column_stack([u, i]), fmt="%d", delimiter=",", header="user,item",
                       comments="")

    write("train", split.train_users, split.train_items)
    for part, rows in (("valid", split.valid), ("test", split.test)):
        if rows is None:
            continue
        write(part, rows.users, rows.items)
        if rows.negatives is not None:
            with atomic_write(folder / f"{part}_negatives.npy") as fh:
                np.save(fh, np.asarray(rows.negatives, dtype=np.int32))
    return folder
