"""MkDocs build hooks: result tables generated from the stored result files.

A page asks for a table with an HTML comment (invisible on GitHub and in the site)::

    <!-- generated-table
    kind: report                   # a table of an experiment's report.md
    run: sparse3-seeds5            # docs/results/<run>/
    section: "Table 2"             # the heading the table follows (a prefix of it)
    table: 0                       # which table under that heading (default: the first)
    rows: [MF-BPR, AMR]            # optional: keep these rows (first cells), in this order;
                                   # "AMR | adversarial | test" matches the first three cells
    columns: [model, HR@10]        # optional: keep these columns, in this order
    -->

``kind: compare`` puts several runs side by side (``runs: {label: run}``, ``models``, ``metrics``;
cells ``HR@10 / NDCG@10`` of each run's Table 2); ``kind: attacks`` does the same for the
NDCG@10 drops of Table 3 (cells ``ε 0.05 / 0.1 / 0.2``); ``kind: summary`` reads
``summary.json``; ``kind: scaling`` a run of the scaling benchmark (``run: scale-idle``,
``sizes: ["1"]``, ``stages``, ``columns``; ``bench/results/<run>.json``, published with its
table and plot under ``results/scaling/``). The
table replaces the comment at build time, followed by a line naming its source. A run, section,
row or column that does not exist stops the build (the site is built with ``--strict``), so a
table can never silently show numbers that are not in the stored results.

Pages written elsewhere that are not in this checkout yet are added as short stubs (``STUBS``),
so that the navigation and the links to them hold before and after they arrive.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml
from mkdocs.structure.files import File

MARK = re.compile(r"<!--\s*generated-table\s*\n(.*?)-->", re.S)

STUBS = {
    "scaling.md": "# Scaling benchmark\n\nThe scaling benchmark (`bench/scale.py`: every stage "
                  "from 1/8 of the paper's Amazon size to ten times it) is described here once "
                  "its results are in `bench/results/`. See [Backends and speed](backends.md).\n",
}


class TableError(Exception):
    """A generated-table comment that names something the result files do not have."""


#: the scaling benchmark's runs (``bench/scale.py``), published under results/scaling/
BENCH_RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def on_files(files, config):
    for name, text in STUBS.items():
        if files.get_file_from_path(name) is None:
            files.append(File.generated(config, name, content=text))
    for path in sorted(BENCH_RESULTS.glob("scale-*.*")):
        files.append(File.generated(config, f"results/scaling/{path.name}",
                                    abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    docs = Path(config["docs_dir"])
    here = (docs / page.file.src_uri).parent

    def replace(match):
        spec = yaml.safe_load(match.group(1)) or {}
        kind = spec.pop("kind", "report")
        try:
            make = GENERATORS[kind]
        except KeyError:
            raise TableError(f"{page.file.src_uri}: unknown generated-table kind {kind!r}") from None
        table, sources = make(docs, **spec)
        links = ", ".join(f"[{s}]({os.path.relpath(docs / 'results' / s, here)})" for s in sources)
        return f"{table}\n\n*Generated from {links} when this site is built.*\n"

    return MARK.sub(replace, markdown)


# ------------------------------------------------------------------------------ the generators
def read_table(lines, start):
    """The markdown table that begins at or after line ``start``: ``(header, rows, end)``."""
    k = start
    while k < len(lines) and not lines[k].startswith("|"):
        k += 1
    rows = []
    while k < len(lines) and lines[k].startswith("|"):
        rows.append([c.strip() for c in lines[k].strip().strip("|").split("|")])
        k += 1
    if not rows:
        return None, [], k
    return rows[0], [r for r in rows[2:]], k


def section_tables(docs, run, section):
    path = docs / "results" / run / "report.md"
    if not path.is_file():
        raise TableError(f"no stored report {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    starts = [k for k, line in enumerate(lines)
              if line.lstrip("#").strip().startswith(section) and line.startswith("#")]
    if not starts:
        raise TableError(f"{path}: no section starting with {section!r}")
    level = len(lines[starts[0]]) - len(lines[starts[0]].lstrip("#"))
    end = next((k for k in range(starts[0] + 1, len(lines))
                if lines[k].startswith("#") and
                len(lines[k]) - len(lines[k].lstrip("#")) <= level), len(lines))
    tables, k = [], starts[0] + 1
    while k < end:
        header, rows, k = read_table(lines[:end], k)
        if header:
            tables.append((header, rows))
    if not tables:
        raise TableError(f"{path}: section {section!r} has no table")
    return path, tables


def render(header, rows):
    """A markdown table; the significance marks ``*``/``**`` are escaped so that two of them in
    one row cannot turn into bold."""
    def line(cells):
        return "| " + " | ".join(c.replace("*", "\\*") for c in cells) + " |"
    return "\n".join([line(header), "|" + "---|" * len(header)] + [line(r) for r in rows])


def select(path, header, rows, wanted_rows=None, columns=None):
    if wanted_rows is not None:
        rows = [find_row(path, rows, str(w)) for w in wanted_rows]
    if columns is not None:
        missing = [c for c in columns if c not in header]
        if missing:
            raise TableError(f"{path}: no column {missing[0]!r} (columns: {', '.join(header)})")
        index = [header.index(c) for c in columns]
        header, rows = columns, [[r[i] for i in index] for r in rows]
    return header, rows


def find_row(path, rows, wanted):
    """The one row whose first cells are ``wanted`` (``"AMR"``, or ``"AMR | adversarial | test"``
    where the first cell alone is not unique)."""
    key = [part.strip() for part in wanted.split("|")]
    hits = [r for r in rows if r[:len(key)] == key]
    if len(hits) != 1:
        raise TableError(f"{path}: {len(hits)} rows start with {wanted!r}, not one")
    return hits[0]


def report(docs, run, section, table=0, rows=None, columns=None):
    path, tables = section_tables(docs, run, section)
    if table >= len(tables):
        raise TableError(f"{path}: section {section!r} has {len(tables)} table(s), not {table + 1}")
    header, body = select(path, *tables[table], rows, columns)
    return render(header, body), [f"{run}/report.md"]


def compare(docs, runs, models, metrics=("HR@10", "NDCG@10"), section="Table 2", label="run"):
    header = [label] + list(models)
    body = []
    for name, run in runs.items():
        path, tables = section_tables(docs, run, section)
        h, rows = select(path, *tables[0], models, list(metrics))
        body.append([name] + [" / ".join(r) for r in rows])
    return render(header, body), [f"{run}/report.md" for run in runs.values()]


def summary(docs, run, models=None, metrics=("HR@10", "NDCG@10", "HR@20", "NDCG@20")):
    path = docs / "results" / run / "summary.json"
    if not path.is_file():
        raise TableError(f"no stored summary {path}")
    results = json.loads(path.read_text(encoding="utf-8"))["results"]
    names = models or list(results)
    header = ["model"] + list(metrics) + ["warm HR@10", "cold HR@10", "seconds"]
    body = []
    for name in names:
        if name not in results:
            raise TableError(f"{path}: no model {name!r} (models: {', '.join(results)})")
        r = results[name]
        test = r["test"]
        cell = [f"{test[m]:.4f}" for m in metrics]
        cell += [("–" if test[p]["HR@10"] is None else f"{test[p]['HR@10']:.4f}")
                 for p in ("warm", "cold")]
        body.append([r.get("label", name)] + cell + [f"{r['seconds']:.1f}"])
    return render(header, body), [f"{run}/summary.json"]


def drop_of(cell):
    """The relative drop of a Table 3 cell: ``0.0460 (+40.3%)`` (one run) → ``40.3%``;
    ``38.9 ± 0.9%`` (mean ± CI over seeds) stays as it is."""
    inside = re.search(r"\(([^)]*%)\)", cell)
    return inside.group(1).lstrip("+") if inside else cell


def attacks(docs, runs, models=("VBPR (continued)", "AMR"), eps=("ε=0.05", "ε=0.1", "ε=0.2"),
            kinds=(("adversarial", "test"), ("adversarial", "train"), ("random", "–")),
            label="features"):
    """NDCG@10 drops of Table 3, one row per run and model, one column per attack kind, the
    cell the drops at the ``eps`` columns joined by `` / ``."""
    names = {("adversarial", "test"): "adversarial, test objective",
             ("adversarial", "train"): "adversarial, train objective",
             ("pgd", "test"): "PGD, test objective", ("random", "–"): "random direction",
             ("certified", "–"): "certified worst case"}
    header = [label, "model"] + [names.get(tuple(k), " ".join(k)) for k in kinds]
    body = []
    for name, run in runs.items():
        path, tables = section_tables(docs, run, "Table 3")
        head, rows = tables[0]
        index = [head.index(e) for e in eps]
        for model in models:
            cells = []
            for kind in kinds:
                row = find_row(path, rows, " | ".join([model, *kind]))
                cells.append(" / ".join(drop_of(row[k]) for k in index))
            body.append([name, model] + cells)
    return render(header, body), [f"{run}/report.md" for run in runs.values()]


def scaling(docs, run, sizes=("1",), stages=None, columns=None):
    """Rows of a scaling run (``bench/results/<run>.json``) as ``bench/scale.py`` tabulates
    them: ``sizes`` and ``stages`` in this order (default: every stage), ``columns`` kept."""
    import importlib.util
    path = BENCH_RESULTS / f"{run}.json"
    if not path.is_file():
        raise TableError(f"no scaling run {path}")
    spec = importlib.util.spec_from_file_location("bench_scale", BENCH_RESULTS.parent / "scale.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = json.loads(path.read_text(encoding="utf-8"))["sizes"]
    try:
        text = bench.table(results, sizes=[str(s) for s in sizes], stages=stages)
    except KeyError as exc:
        raise TableError(f"{path}: no size or stage {exc.args[0]!r}") from None
    header, rows, _ = read_table(text.splitlines(), 0)
    header, rows = select(path, header, rows, None, columns)
    return render(header, rows), [f"scaling/{run}.json"]


GENERATORS = {"report": report, "compare": compare, "summary": summary, "attacks": attacks,
              "scaling": scaling}
