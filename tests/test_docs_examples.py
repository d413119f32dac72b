"""Every runnable example of the README and of the documentation, executed (mktestdocs).

A page's bash fences run in order as one ``bash -eu`` script, then its python fences in order as
one script (one namespace, so a later block sees what an earlier one defined). Both run in the
same fresh temporary folder that has the shared data beside it (``../shared`` as seen from the
repository root) and the repository's ``scripts/`` in it, with this interpreter's ``amrlite`` first on ``PATH``. Fences marked
``console`` (commands shown, not run: installs, hour-long reproductions) or ``text`` (output,
formulas) are never run. See docs/contributing.md.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

mktestdocs = pytest.importorskip("mktestdocs", reason="the docs runner needs the test extra")
check_md_file, grab_code_blocks = mktestdocs.check_md_file, mktestdocs.grab_code_blocks

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
LANGS = ("bash", "python")   # a page's commands first (they may make files), then its Python

# Pages whose examples wait for commands that are being built: the lead removes an entry when
# the commands it names have landed, and the page then runs like every other.
PENDING: dict[str, str] = {}
# Pages of other owners whose synopsis blocks are still fenced as runnable code (they use
# placeholders such as DIR or undefined names): to be fenced as console/text by their owners.
UNCONVERTED = {
    "data-format.md": "its API sketch reads files that are not there (reviews.csv, data/pinterest)",
}


def uses_shared_data(text):
    """Whether a runnable block of the page reads the shared data (prose may mention it)."""
    return any("../shared" in block for lang in LANGS for block in grab_code_blocks(text, lang=lang))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A scratch folder laid out like the repository root: ``../shared`` resolves there too,
    and so does ``scripts/`` (a page may run ``python scripts/make_shop.py``)."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "scripts").symlink_to(ROOT / "scripts", target_is_directory=True)
    if SHARED.is_dir():
        (tmp_path / "shared").symlink_to(SHARED, target_is_directory=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return work


RUNNABLE = [page for page in PAGES
            if any(grab_code_blocks(page.read_text(encoding="utf-8"), lang=lang) for lang in LANGS)]


@pytest.mark.parametrize("page", RUNNABLE, ids=[str(p.relative_to(ROOT)) for p in RUNNABLE])
def test_examples_run(page, workdir):
    text = page.read_text(encoding="utf-8")
    for table in (PENDING, UNCONVERTED):
        if page.name in table:
            pytest.skip(table[page.name])
    if uses_shared_data(text) and not SHARED.is_dir():
        pytest.skip(f"the examples read the shared data, not found at {SHARED}")
    for lang in LANGS:
        if grab_code_blocks(text, lang=lang):
            check_md_file(page, memory=True, lang=lang)


def test_every_fence_says_what_it_is():
    """Every fence names its language, so that whether it runs (python, bash) or not (console,
    text) is a visible choice of its author, never an accident."""
    bare = []
    for page in PAGES:
        if page.name in UNCONVERTED:
            continue
        inside = False
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            stripped = line.strip()
            if stripped.startswith("```"):
                if not inside and stripped == "```":
                    bare.append(f"{page.relative_to(ROOT)}:{n}")
                inside = not inside
    assert not bare, f"fences without a language: {bare}"


def test_readme_is_short_and_its_results_are_the_stored_ones():
    """The README stays a front page (at most 200 lines), and every number of its results
    table is in the report it links to (the table cannot drift from the stored results)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    section = readme.split("## Results", 1)[1].split("\n## ", 1)[0]
    reports = re.findall(r"\]\((docs/results/[^)]+/report\.md)\)", section)
    assert reports, "the results section links no stored report"
    stored = "".join((ROOT / r).read_text(encoding="utf-8") for r in reports)
    numbers = re.findall(r"\d+\.\d+ ± \d+\.\d+%?", section)
    assert len(numbers) >= 10
    missing = [x for x in numbers if x not in stored]
    assert not missing, f"README numbers not in {reports}: {missing}"
