"""Interaction logs as people have them: raw user/item ids (strings, or integers with gaps),
named columns, ratings; mapped to the contiguous indices the models use.

* Columns are found by name (``user,item``, ``user_id,item_id``, ``userId,movieId``,
  ``reviewerID,asin``, ``customer,sku`` ..., case-insensitive) or given (a name or a 1-based
  column number); without a header the first two columns are user and item.
* Ids are mapped to ``0..n-1`` in first-seen (default) or sorted order. Integer ids that are
  already exactly ``0..n-1`` are used as they are (no map). Any other ids, gapped integers
  included, are mapped like strings, so no array is ever sized by the largest raw id and no
  phantom item (an id that never occurs) can be drawn as a negative.
* ``min_rating`` keeps rows with rating >= R; duplicates (user, item) are dropped; ``k_core``
  keeps users and items with at least N interactions, iterated to a fixed point.
* A time column (``timestamp``, ``ordered_at``, ``created_at``, ``date`` ... or ``time_col``)
  gives each interaction its time (:func:`parse_times`: epoch seconds or ISO 8601, in UTC); a
  repeated (user, item) pair keeps its earliest time. Columns no role uses are named in a note.
"""
from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from amrlite.errors import braced, input_error, option_error, quote
from amrlite.modalities import check_distinct_ids
from amrlite.textio import check_header, header_names, open_text

USER_COLUMNS = ("user", "user_id", "userid", "reviewerid", "customer", "customer_id",
                "customerid", "uid", "visitorid", "member_id", "client_id", "u")
ITEM_COLUMNS = ("item", "item_id", "itemid", "movieid", "movie_id", "asin", "sku", "product",
                "product_id", "productid", "iid", "business_id", "book_id", "isbn", "track_id",
                "article_id", "i")
RATING_COLUMNS = ("rating", "ratings", "score", "stars", "overall", "rate")
TIME_COLUMNS = ("timestamp", "time", "ts", "unixreviewtime", "datetime", "date", "ordered_at",
                "created_at")
_KNOWN = {"user": USER_COLUMNS, "item": ITEM_COLUMNS, "rating": RATING_COLUMNS,
          "time": TIME_COLUMNS}
ID_ORDERS = ("first", "sorted")


def sniff_sep(line):
    """The separator of a delimited text line: the first of tab, comma, semicolon it holds;
    None (runs of blanks) when it holds none."""
    for sep in ("\t", ",", ";"):
        if sep in line:
            return sep
    return None   # runs of blanks


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass
class RawTable:
    """String columns of an interactions file by role (``user``, ``item``, ``rating``, ``time``)
    and the 1-based line number of every data row (for error messages)."""

    path: Path
    columns: dict
    lines: np.ndarray
    header: list | None
    names: dict = field(default_factory=dict)   # role -> column name as written in the file
    notes: list = field(default_factory=list)
    unused: list = field(default_factory=list)  # names of the columns no role reads
    given: tuple = ()                           # the roles whose column was named by the caller

    def error(self, row, role, problem, names=()):
        return input_error(self.path, problem, line=int(self.lines[row]),
                           field=self.names.get(role, role), names=names)


def _rows(path, sep):
    with open_text(path, newline="") as fh:
        if sep is None:
            for no, line in enumerate(fh, start=1):
                parts = line.split()
                if parts:
                    yield no, parts
        else:
            reader = csv.reader(fh, delimiter=sep)
            for row in reader:
                parts = [f.strip() for f in row]
                if any(parts):
                    yield reader.line_num, parts


def read_raw(path, *, sep=None, user_col=None, item_col=None, rating_col=None,
             time_col=None) -> RawTable:
    """Read the user, item (and rating, time) columns of a delimited text file as strings."""
    path = Path(path)
    if not path.is_file():
        raise input_error(path, "file not found" if not path.exists() else "not a file")
    given = {"user": user_col, "item": item_col, "rating": rating_col, "time": time_col}
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path, given)
    if sep is None:
        with open_text(path) as fh:
            first = next((ln for ln in fh if ln.strip()), None)
        if first is None:
            raise input_error(path, "file is empty (no data rows)")
        sep = sniff_sep(first)
    elif sep in ("\\t", "tab"):
        sep = "\t"
    rows = _rows(path, sep)
    first = next(rows, None)
    if first is None:
        raise input_error(path, "file is empty (no data rows)")
    first_no, head = first
    named = any(v is not None and not str(v).isdigit() for v in given.values())
    has_header = named or not all(_is_number(f) for f in head)
    if has_header:
        check_header(path, head, first_no)
    n_cols = len(head)
    lowered = [h.lower() for h in head]
    idx, notes = {}, []
    for role, spec in given.items():
        if spec is not None:
            s = str(spec).strip()
            if s.isdigit():
                k = int(s) - 1
                if not 0 <= k < n_cols:
                    raise input_error(path, f"column {s} does not exist ({n_cols} columns)",
                                      line=first_no, field=f"{role}-col")
            elif s.lower() in lowered:
                k = lowered.index(s.lower())
            else:
                raise input_error(path, f"no column {quote(s)} in the header ({header_names(head)})",
                                  line=first_no, field=f"{role}-col")
            idx[role] = k
        elif has_header:
            k = next((lowered.index(c) for c in _KNOWN[role] if c in lowered), None)
            if k is not None:
                idx[role] = k
    if n_cols < 2:
        raise input_error(path, f"expected at least 2 columns (user, item), found {n_cols}",
                          line=first_no)
    if "user" not in idx or "item" not in idx:
        rest = [k for k in range(n_cols) if k not in idx.values()]
        for role in ("user", "item"):
            if role not in idx:
                idx[role] = rest.pop(0)
        if has_header:
            notes.append(f"{path.name}: header ({header_names(head)}) names no known user/item "
                         f"columns; using columns {idx['user'] + 1} and {idx['item'] + 1} as user "
                         "and item (name the right ones with the user and item column "
                         "options)")
    if idx["user"] == idx["item"]:
        raise input_error(path, "user and item are the same column", line=first_no)
    names = {r: (head[k] if has_header else f"column {k + 1}") for r, k in idx.items()}
    roles = list(idx)
    cols = {r: [] for r in roles}
    lines = []
    data = rows if has_header else _chain(first, rows)
    expect = f"{n_cols} columns" + (f" ({header_names(head, ',')})" if has_header else "")
    for no, parts in data:
        if len(parts) != n_cols:
            raise input_error(path, f"expected {expect}, found {len(parts)}", line=no)
        for r in roles:
            v = parts[idx[r]]
            if not v and r in ("user", "item"):
                raise input_error(path, "empty id", line=no, field=names[r])
            cols[r].append(v)
        lines.append(no)
    if not lines:
        raise input_error(path, "no data rows after the header", line=first_no)
    return RawTable(path=path, columns={r: np.asarray(v) for r, v in cols.items()},
                    lines=np.asarray(lines, dtype=np.int64), header=head if has_header else None,
                    names=names, notes=notes, unused=_unused(head, idx, has_header),
                    given=tuple(r for r, v in given.items() if v is not None))


def _unused(head, idx, has_header=True):
    """The names of the columns of ``head`` that no role of ``idx`` reads."""
    taken = set(idx.values())
    return [(h if has_header else f"column {k + 1}") for k, h in enumerate(head)
            if k not in taken]


def _read_parquet(path, given):
    """The same columns from a Parquet file (needs the optional ``pyarrow``); "lines" are the
    1-based row numbers."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise input_error(path, "reading Parquet needs pyarrow: pip install 'amrlite[parquet]' "
                          "(or save the table as CSV)") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise input_error(path, f"cannot read as Parquet ({exc})") from None
    head = list(table.column_names)
    lowered = [h.lower() for h in head]
    idx = {}
    for role, spec in given.items():
        if spec is not None:
            s = str(spec).strip()
            k = int(s) - 1 if s.isdigit() else lowered.index(s.lower()) \
                if s.lower() in lowered else None
            if k is None or not 0 <= k < len(head):
                raise input_error(path, f"no column {quote(s)} ({header_names(head)})", field=f"{role}-col")
            idx[role] = k
        else:
            k = next((lowered.index(c) for c in _KNOWN[role] if c in lowered), None)
            if k is not None:
                idx[role] = k
    for role in ("user", "item"):
        if role not in idx:
            raise input_error(path, f"no {role} column among {header_names(head)}; name it with "
                              f"--{role}-col", field=role)
    if not table.num_rows:
        raise input_error(path, "no data rows")
    cols, names = {}, {}
    for role, k in idx.items():
        vals = table.column(k).to_pylist()
        if any(v is None for v in vals):
            r = next(i for i, v in enumerate(vals) if v is None)
            raise input_error(path, "missing value", line=r + 1, field=head[k])
        cols[role] = np.asarray([str(v) for v in vals])
        names[role] = head[k]
    return RawTable(path=path, columns=cols, lines=np.arange(1, table.num_rows + 1),
                    header=head, names=names, unused=_unused(head, idx),
                    given=tuple(r for r, v in given.items() if v is not None))


def _chain(first, rest):
    yield first
    yield from rest


def as_int_ids(values):
    """``values`` (strings) as int64 when every one is a plain integer (``"7"``, not ``"007"``)."""
    try:
        ints = values.astype(np.int64)
    except (ValueError, OverflowError):
        return None
    if not np.array_equal(ints.astype(str), values):
        return None
    return ints


@dataclass
class Indexed:
    """Interactions in index form, with the raw ids of every index (``None``: index = id)."""

    users: np.ndarray           # int32
    items: np.ndarray           # int32
    user_ids: np.ndarray | None
    item_ids: np.ndarray | None
    filters: dict
    notes: list
    times: np.ndarray | None = None   # float64 epoch seconds of each interaction
    time_error: str | None = None     # why the time column could not be read as times


def _float_column(table, role):
    vals = table.columns[role]
    try:
        out = vals.astype(np.float64)
    except ValueError:
        out = None
    if out is None or not np.isfinite(out).all():
        bad = next(k for k, v in enumerate(vals.tolist())
                   if not _is_number(v) or not np.isfinite(float(v)))
        raise table.error(bad, role, f"not a number: {quote(vals[bad])}")
    return out


def _time_value(text):
    """Epoch seconds of one time value, or ``None`` when it is not one."""
    try:
        value = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    return value if np.isfinite(value) else None


def parse_times(values):
    """``(times, bad)``: float64 epoch seconds (UTC) of each string of ``values`` and ``None``,
    or ``(None, k)`` with ``k`` the first value that is not a time.

    A number is epoch seconds (``1709280000``, ``1709280000.5``); anything else must be an ISO
    8601 date or date-time (``2024-03-01``, ``2024-03-01T10:00:00``, ``2024-03-01 10:00:00``,
    with ``Z`` or an offset such as ``+02:00``, which is honoured:
    ``2024-03-01T10:00:00+02:00`` is ``2024-03-01T08:00:00Z``). A time without a zone is taken
    as UTC. Each distinct value is parsed once.
    """
    values = np.asarray(values)
    try:
        out = values.astype(np.float64)
        if np.isfinite(out).all():
            return out, None
    except ValueError:
        pass
    uniq, inverse = np.unique(values, return_inverse=True)
    parsed = np.array([np.nan if (t := _time_value(v)) is None else t for v in uniq.tolist()],
                      dtype=np.float64)
    out = parsed[inverse.ravel()]
    bad = np.flatnonzero(np.isnan(out))
    return (None, int(bad[0])) if len(bad) else (out, None)


def _read_times(table, rows, pair_rows, n_pairs):
    """``(times, error)`` of the kept ``rows``: each row's time, the earliest time of its
    (user, item) pair (``pair_rows``: the pair index of each row of ``table`` that passed the
    rating filter, ``-1`` elsewhere). A value that is not a time is an error when the caller
    named the column, else a note (the times stay unknown, and only a temporal split needs
    them)."""
    if "time" not in table.columns:
        return None, None
    times, bad = parse_times(table.columns["time"])
    if bad is not None:
        err = table.error(bad, "time", f"not a time: {str(table.columns['time'][bad])!r} "
                          "(epoch seconds or ISO 8601, e.g. 2024-03-01T10:00:00+02:00)")
        if "time" in table.given:
            raise err
        return None, str(err)
    valid = pair_rows >= 0
    return earliest_times(pair_rows[valid], times[valid], n_pairs)[pair_rows[rows]], None


def earliest_times(pairs, times, n_pairs):
    """The earliest of ``times`` per pair index (``pairs``: each time's pair, ``0..n_pairs-1``;
    ``inf`` for a pair without a time): a repeated interaction is dated by its first row."""
    out = np.full(n_pairs, np.inf)
    np.minimum.at(out, pairs, times)
    return out


def warn_duplicates(path, n_dup, n_unique):
    """The warning that ``n_dup`` repeated (user, item) rows of ``path`` were dropped."""
    warnings.warn(f"{path}: dropped {n_dup} duplicate (user, item) interaction(s); "
                  f"{n_unique} unique remain", stacklevel=4)


def _map(raw, codes_kept, uniq_keys, order, what, path):
    """Indices 0..n-1 for the kept rows' codes, and the raw id of each index (or None)."""
    present, first = np.unique(codes_kept, return_index=True)
    if order == "first":
        present = present[np.argsort(first, kind="stable")]
    new = np.empty(len(uniq_keys), dtype=np.int64)
    new[present] = np.arange(len(present))
    ids = uniq_keys[present]
    note = None
    if ids.dtype.kind in "iu":
        srt = np.sort(ids)
        if srt[0] == 0 and srt[-1] == len(srt) - 1:      # already 0..n-1: the ids are indices
            return uniq_keys[codes_kept].astype(np.int32), None, None
        note = (f"{path.name}: the {what} ids are integers but not 0..n-1 contiguous "
                f"({len(ids)} distinct, {srt[0]}..{srt[-1]}): mapped to indices 0..{len(ids) - 1} "
                f"in {'first-seen' if order == 'first' else 'sorted'} order, like string ids")
    else:
        note = (f"{path.name}: {len(ids)} string {what} ids mapped to indices 0..{len(ids) - 1} "
                f"in {'first-seen' if order == 'first' else 'sorted'} order")
    return new[codes_kept].astype(np.int32), ids, note


def index_interactions(table: RawTable, *, min_rating=None, k_core=None, id_order="first",
                       positional_items=None, positional_file=None) -> Indexed:
    """Filter (``min_rating``, duplicates, ``k_core``) and index the rows of ``table``.

    ``positional_items=N``: the item ids are row numbers of a positional features file of ``N``
    rows (item index = id, no map); otherwise items are mapped like users.
    """
    if id_order not in ID_ORDERS:
        raise option_error("id_order", f"must be first or sorted, got {id_order!r}")
    path = table.path
    keys, codes = {}, {}
    for role in ("user", "item"):
        vals = table.columns[role]
        ints = as_int_ids(vals)
        keys[role], codes[role] = np.unique(vals if ints is None else ints, return_inverse=True)
        codes[role] = codes[role].ravel()
    n_rows = len(table.lines)
    keep = np.ones(n_rows, dtype=bool)
    filters = {"rows": int(n_rows)}
    if min_rating is not None:
        if "rating" not in table.columns:
            raise input_error(path, "{min_rating} needs a rating column (named rating, score, "
                              "stars, overall ..., or given with {rating_col})", field="rating",
                              names=("min_rating", "rating_col"))
        keep &= _float_column(table, "rating") >= float(min_rating)
        filters.update(min_rating=float(min_rating), after_min_rating=int(keep.sum()))
    pair = codes["user"].astype(np.int64) * max(len(keys["item"]), 1) + codes["item"]
    rows = np.flatnonzero(keep)
    _, first, pair_of = np.unique(pair[rows], return_index=True, return_inverse=True)
    pair_rows = np.full(n_rows, -1, dtype=np.int64)
    pair_rows[rows] = pair_of.ravel()
    n_pairs = len(first)
    n_dup = len(rows) - len(first)
    if n_dup:
        warn_duplicates(path, n_dup, len(first))
        keep[:] = False
        keep[rows[first]] = True
    filters["unique"] = int(keep.sum())
    if k_core is not None:
        n = int(k_core)
        if n < 1:
            raise option_error("k_core", f"must be at least 1, got {k_core}")
        rounds = 0
        while True:
            uc = np.bincount(codes["user"][keep], minlength=len(keys["user"]))
            ic = np.bincount(codes["item"][keep], minlength=len(keys["item"]))
            drop = keep & ((uc[codes["user"]] < n) | (ic[codes["item"]] < n))
            if not drop.any():
                break
            keep &= ~drop
            rounds += 1
        filters.update(k_core=n, k_core_rounds=rounds, after_k_core=int(keep.sum()))
    if not keep.any():
        raise input_error(path, "no interactions left after "
                          + " and ".join(f"--{k.replace('_', '-')} {filters[k]:g}"
                                         for k in ("min_rating", "k_core") if k in filters))
    rows = np.flatnonzero(keep)
    notes = list(table.notes)
    unused = table.unused + ([table.names["rating"]] if "rating" in table.columns
                             and min_rating is None else [])
    if unused:
        notes.append(f"{path.name}: ignored columns: {', '.join(unused)}")
    times, time_error = _read_times(table, rows, pair_rows, n_pairs)
    if time_error:
        notes.append(f"{time_error}: the column is not read as times (a temporal split needs "
                     "them)")
    users, user_ids, note = _map(table.columns["user"], codes["user"][rows], keys["user"],
                                 id_order, "user", path)
    if note:
        notes.append(note)
    if positional_items is not None:
        raw = table.columns["item"][rows]
        ints = as_int_ids(raw)
        if ints is None:
            bad = next(k for k, v in enumerate(raw.tolist()) if as_int_ids(np.asarray([v])) is None)
            raise table.error(rows[bad], "item", braced(
                f"item id {quote(raw[bad])} is not an integer row number of "
                f"{Path(positional_file).name} (positional: row i = item i); ") + "give an .npz "
                "with ids and features, or {items} with the id of every feature row",
                names=("items",))
        neg = np.flatnonzero(ints < 0)
        if len(neg):
            raise table.error(rows[neg[0]], "item", f"negative id {ints[neg[0]]}")
        over = np.flatnonzero(ints >= positional_items)
        if len(over):
            raise table.error(rows[over[0]], "item", f"item {ints[over[0]]} but "
                              f"{Path(positional_file).name} has {positional_items} rows")
        items, item_ids = ints.astype(np.int32), None
    else:
        items, item_ids, note = _map(table.columns["item"], codes["item"][rows], keys["item"],
                                     id_order, "item", path)
        if note:
            notes.append(note)
    filters.update(users=int(users.max()) + 1 if user_ids is None else len(user_ids),
                   items=None if item_ids is None and positional_items is not None else
                   (int(items.max()) + 1 if item_ids is None else len(item_ids)),
                   interactions=int(len(rows)))
    return Indexed(users=users, items=items, user_ids=user_ids, item_ids=item_ids,
                   filters=filters, notes=notes, times=times, time_error=time_error)


def read_id_list(path, column=None, *, role="item"):
    """Raw ids, one per data row, of an items file (its ``column``, or the column named ``item``,
    ``item_id``, ``id``, ``asin`` ..., else the first): the id of each feature row, every one
    distinct. ``role="user"``: a users file (columns ``user``, ``customer_id`` ...; repeats
    allowed)."""
    vals = _read_id_column(Path(path), column, role)
    ints = as_int_ids(vals)
    return vals if ints is None else ints


def _read_id_column(path, column=None, role="item"):
    if not path.is_file():
        raise input_error(path, f"{role}s file not found" if not path.exists() else "not a file")
    with open_text(path) as fh:
        first = next((ln for ln in fh if ln.strip()), None)
    if first is None:
        raise input_error(path, "file is empty (no data rows)")
    sep = sniff_sep(first)
    rows = _rows(path, sep)
    no, head = next(rows)
    lowered = [h.lower() for h in head]
    known = (role, f"{role}_id", f"{role}id", "id", *_KNOWN[role])
    if column is not None:
        if str(column).lower() not in lowered:
            raise input_error(path, f"no column {quote(column)} in the header ({header_names(head)})",
                              line=no, field=f"{role}-col")
        k, has_header = lowered.index(str(column).lower()), True
    else:
        k = next((lowered.index(c) for c in known if c in lowered), None)
        has_header = k is not None or len(head) > 1 and not _is_number(head[0])
        k = 0 if k is None else k
    if has_header:
        check_header(path, head, no)
    vals, lines = [], []
    for n, parts in (rows if has_header else _chain((no, head), rows)):
        if k >= len(parts) or not parts[k]:
            raise input_error(path, "missing id", line=n, field=head[k] if has_header else None)
        vals.append(parts[k])
        lines.append(n)
    if not vals:
        raise input_error(path, "no data rows after the header", line=no)
    arr = np.asarray(vals)
    if role == "item":
        check_distinct_ids(arr, path, head[k] if has_header else None, lines=lines)
    return arr
