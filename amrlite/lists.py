"""Recommendation lists as files: CSV, JSON lines or Parquet, streamed chunk by chunk
(:meth:`amrlite.recommender.Model.recommend_many`), written atomically.

CSV and Parquet have the columns ``user,rank,item,score[,title],source`` (one row per
recommended item); JSON lines one object per user (``user``, ``source``, ``items``, ``scores``
[, ``titles``]). Scores are written so that they read back to the same value.
"""
from __future__ import annotations

import contextlib
import csv
import sys
import time
from pathlib import Path

import numpy as np

from .errors import option_error
from .jsonio import atomic_write, dumps
from .progress import Progress
from .textio import open_text

#: the output formats of :func:`write_lists`
FORMATS = ("csv", "jsonl", "parquet")
#: Parquet column types (ids as text, whatever the model's id type)
PARQUET_TYPES = {"user": "string", "rank": "int32", "item": "string", "score": "float64",
                 "title": "string", "source": "string"}


def score_text(scores):
    """Scores as text that reads back to the same value: 9 significant digits for float32.

    >>> score_text(np.array([0.1, 1/3], dtype=np.float32))
    ['0.100000001', '0.333333343']
    """
    if scores.dtype == np.float32:
        return np.char.mod("%.9g", scores).tolist()
    return [repr(v) for v in scores.tolist()]


class ListWriter:
    """Writes :class:`~amrlite.recommender.Recommendations` chunks to the open file ``fh`` as
    ``fmt`` (one of :data:`FORMATS`); ``titles``: item id (text) -> title, adds a title column.
    Call :meth:`close` at the end (Parquet's footer)."""

    def __init__(self, fmt, fh, titles=None):
        self.fmt, self.fh, self.titles = fmt, fh, titles
        self.columns = ["user", "rank", "item", "score"] + (["title"] if titles is not None
                                                            else []) + ["source"]
        self.parquet = None
        if fmt == "csv":
            self.csv = csv.writer(fh, lineterminator="\n")
            self.csv.writerow(self.columns)

    def _table(self, chunk):
        keep = chunk.item_index >= 0
        counts = keep.sum(axis=1)
        cols = {"user": np.repeat(chunk.users, counts).tolist(),
                "rank": (np.nonzero(keep)[1] + 1).tolist(),
                "item": chunk.items[keep].tolist(),
                "score": chunk.scores[keep]}
        if self.titles is not None:
            cols["title"] = [self.titles.get(str(i), "") for i in cols["item"]]
        cols["source"] = np.repeat(chunk.source, counts).tolist()
        return cols

    def write(self, chunk):
        """Append the lists of ``chunk``'s users."""
        if self.fmt == "jsonl":
            return self._write_json(chunk)
        cols = self._table(chunk)
        if self.fmt == "csv":
            cols["score"] = score_text(cols["score"])
            self.csv.writerows(zip(*(cols[c] for c in self.columns)))
            return None
        return self._write_parquet(cols)

    def _write_json(self, chunk):
        for r, k in enumerate(chunk.counts.tolist()):
            items = chunk.items[r, :k].tolist()
            obj = {"user": chunk.users[r], "source": str(chunk.source[r]),
                   "items": items, "scores": [float(t) for t in score_text(chunk.scores[r, :k])]}
            if self.titles is not None:
                obj["titles"] = [self.titles.get(str(i), "") for i in items]
            self.fh.write(dumps(obj) + "\n")

    def _write_parquet(self, cols):
        import pyarrow as pa
        import pyarrow.parquet as pq
        cols.update(user=[str(v) for v in cols["user"]], item=[str(v) for v in cols["item"]],
                    score=cols["score"].astype(np.float64))
        table = pa.table({c: pa.array(cols[c], type=getattr(pa, PARQUET_TYPES[c])())
                          for c in self.columns})
        if self.parquet is None:
            self.parquet = pq.ParquetWriter(self.fh, table.schema)
        self.parquet.write_table(table)

    def close(self):
        """Finish the file (an empty Parquet file is still a valid one)."""
        if self.fmt == "parquet" and self.parquet is None:
            self._write_parquet({c: [] for c in self.columns} | {"score": np.zeros(0)})
        if self.parquet is not None:
            self.parquet.close()


def write_lists(chunks, fmt="csv", out=None, titles=None, *, n_users=0, progress=False,
                what="top lists"):
    """Stream ``chunks`` to ``out`` (:func:`amrlite.jsonio.atomic_write`: complete or not at
    all, also on Ctrl-C) or standard output, with a progress bar over ``n_users`` on a
    terminal. Returns the summary line (users, how many by the model and how many unknown,
    ``what``, seconds)."""
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise option_error("fmt", "needs pyarrow (pip install 'amrlite[parquet]')",
                               "parquet") from None
    t0 = time.perf_counter()
    done = popular = 0
    target = (atomic_write(out, mode="wb" if fmt == "parquet" else "w", newline="")
              if out is not None else contextlib.nullcontext(sys.stdout))
    # a bar on a terminal only: the summary line below is returned either way
    with Progress(n_users, "recommend", enabled=progress and sys.stderr.isatty(),
                  unit="user") as bar, target as fh:
        writer = ListWriter(fmt, fh, titles)
        for chunk in chunks:
            writer.write(chunk)
            done += len(chunk)
            popular += int((chunk.source == "popular").sum())
            bar.update(len(chunk))
        writer.close()
    return (f"recommend: {done} users ({done - popular} by the model, {popular} unknown: "
            f"most popular), {what}, {time.perf_counter() - t0:.1f}s"
            + (f" → {out}" if out else ""))


def folder_titles(folder):
    """The ``title`` column of a native data folder's ``items.csv`` (row i = item i), or None."""
    path = Path(folder) / "items.csv" if folder and Path(folder).is_dir() else None
    if path is None or not path.is_file():
        return None
    with open_text(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "title" not in rows[0]:
        return None
    return [r["title"] for r in rows]
