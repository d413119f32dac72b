"""The layers of amrlite, checked on the source (the AST of every module, subpackages included,
imports inside functions included):

* imports point down :data:`LAYERS` (a module may import its own layer or lower ones);
* the import graph has no circle;
* no module imports another module's private names (``_name``; a private *module* such as
  ``features/_deps.py`` only from its own package), nor reads one through a module alias;
* no module assigns another module's attribute at import (no monkeypatching);
* click is imported by ``amrlite/cli.py`` only;
* no function-level import of an amrlite module (the lazy imports left are optional extras).

Each rule is also run on a small planted tree that breaks it, so the checks are seen to fail.
"""
import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The layers, lowest first. A name stands for that module and every module below it
#: (``amrlite.features`` is the subpackage); ``amrlite`` itself (the package's __init__, the
#: public surface that imports the API) is the top with the CLI.
LAYERS = (
    ("kernels", ("amrlite.kernels",)),
    ("foundations", ("amrlite.version", "amrlite.errors", "amrlite.jsonio", "amrlite.textio",
                     "amrlite.containers", "amrlite.progress", "amrlite.metrics")),
    ("data", ("amrlite.rawdata", "amrlite.modalities", "amrlite.negatives", "amrlite.splits",
              "amrlite.synthetic", "amrlite.data")),
    ("training", ("amrlite.backends", "amrlite.models", "amrlite.train", "amrlite.eals",
                  "amrlite.evaluation")),
    ("api", ("amrlite.recommender",)),
    ("analyses", ("amrlite.attack", "amrlite.significance", "amrlite.gradcheck",
                  "amrlite.plots", "amrlite.reports", "amrlite.lists")),
    ("features", ("amrlite.features",)),
    ("experiments", ("amrlite.experiments",)),
    ("commands", ("amrlite.commands",)),
    ("cli", ("amrlite.cli", "amrlite")),
)

#: where the packages' sources are (kernels/ ships as amrlite.kernels)
PACKAGES = (("amrlite", "amrlite"), ("kernels", "amrlite.kernels"))


def module_files(root=ROOT, packages=PACKAGES):
    """``{dotted module name: path}`` of every ``.py`` under the package folders."""
    files = {}
    for folder, package in packages:
        for path in sorted((Path(root) / folder).rglob("*.py")):
            parts = [package, *path.relative_to(Path(root) / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    return files


@dataclass(frozen=True)
class Import:
    """One imported module (or name of a module) of one import statement."""
    importer: str
    target: str            # the amrlite module it reaches
    line: int
    names: tuple           # the names taken from ``target`` (``from target import names``)
    in_function: bool      # inside a def (or a class body), not at module level

    def where(self, files):
        path = files[self.importer]
        return f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name}:{self.line}"


def _package_of(mod, path):
    return mod if path.name == "__init__.py" else mod.rpartition(".")[0]


def _statements(tree):
    """``(node, in_function)`` for every import statement and module-level statement."""
    def walk(node, nested):
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                 ast.ClassDef, ast.Lambda))
            yield child, nested
            yield from walk(child, inner)
    yield from walk(tree, False)


def _resolve(mod, path, node, files):
    """``[(target module, names taken from it), ...]`` of an import statement (amrlite
    modules only; other packages are not edges)."""
    out = []
    if isinstance(node, ast.Import):
        for a in node.names:
            t = a.name
            while t not in files and "." in t:
                t = t.rpartition(".")[0]
            if t in files:
                out.append((t, ()))
        return out
    if node.level:
        base = _package_of(mod, path).split(".")
        base = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    while base and base not in files and "." in base:
        base = base.rpartition(".")[0]
    if base not in files:
        return out
    taken = []
    for a in node.names:
        sub = f"{base}.{a.name}"
        if sub in files:
            out.append((sub, ()))              # from package import module
        else:
            taken.append(a.name)
    if taken:
        out.append((base, tuple(taken)))
    return out


def scan(files):
    """Every import of an amrlite module by an amrlite module, and the parsed trees."""
    imports, trees = [], {}
    for mod, path in files.items():
        tree = trees[mod] = ast.parse(path.read_text(encoding="utf-8"))
        for node, in_function in _statements(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target, names in _resolve(mod, path, node, files):
                    if target != mod:
                        imports.append(Import(mod, target, node.lineno, names, in_function))
    return imports, trees


def layer_of(mod):
    """Index in :data:`LAYERS` of the longest name that is ``mod`` or a package above it."""
    best = None
    for k, (_, names) in enumerate(LAYERS):
        for n in names:
            if (mod == n or (mod.startswith(n + ".") and n != "amrlite")) and \
                    (best is None or len(n) > best[1]):
                best = (k, len(n))
    return None if best is None else best[0]


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


# ---------------------------------------------------------------------------- the checks
def upward_imports(files, imports):
    return [f"{i.where(files)}: {i.importer} ({LAYERS[layer_of(i.importer)][0]}) imports "
            f"{i.target} ({LAYERS[layer_of(i.target)][0]}), a higher layer"
            for i in imports if layer_of(i.target) > layer_of(i.importer)]


def unplaced_modules(files):
    return [m for m in files if layer_of(m) is None]


def find_cycle(graph):
    """One circle of ``{module: {(imported, line), ...}}`` as ``[(module, line), ...]``."""
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        for t, line in sorted(graph.get(m, ())):
            stack.append((m, line))
            if state.get(t) == "open":
                start = next(k for k, (n, _) in enumerate(stack) if n == t)
                return stack[start:] + [(t, None)]
            if t not in state:
                found = visit(t)
                if found:
                    return found
            stack.pop()
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def import_cycle(files, imports):
    graph = {m: set() for m in files}
    for i in imports:
        graph[i.importer].add((i.target, i.line))
    cycle = find_cycle(graph)
    return [] if cycle is None else [" -> ".join(f"{m}:{line}" if line else m
                                                 for m, line in cycle)]


def private_imports(files, imports, trees):
    """``from X import _name``; a private module outside its package; ``alias._name`` where
    ``alias`` is an imported amrlite module."""
    bad = [f"{i.where(files)}: {i.importer} imports {i.target}.{n}"
           for i in imports for n in i.names if _private(n)]
    for i in imports:
        last = i.target.rpartition(".")[2]
        if _private(last) and _package_of(i.importer, files[i.importer]) != \
                i.target.rpartition(".")[0]:
            bad.append(f"{i.where(files)}: {i.importer} imports the private module {i.target}")
    for mod, tree in trees.items():
        aliases = {}
        for node, _ in _statements(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for a in node.names:
                    for target, names in _resolve(mod, files[mod], _single(node, a), files):
                        if not names and target != mod and (a.asname or "." not in a.name):
                            aliases[a.asname or a.name] = target
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and _private(node.attr)):
                bad.append(f"{files[mod].name}:{node.lineno}: {mod} reads "
                           f"{aliases[node.value.id]}.{node.attr}")
    return bad


def _single(node, alias):
    """The import statement ``node`` reduced to its one name ``alias``."""
    if isinstance(node, ast.Import):
        return ast.Import(names=[alias])
    return ast.ImportFrom(module=node.module, names=[alias], level=node.level)


def foreign_assignments(files, trees):
    """Module-level ``name.attr = ...`` (or ``setattr(name, ...)``) where ``name`` was imported:
    another module's attribute changed at import."""
    bad = []
    for mod, tree in trees.items():
        imported = set()
        for node, nested in _statements(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not nested:
                imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
        for node, nested in _statements(tree):
            if nested:
                continue
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("setattr", "delattr") and node.args):
                targets = [ast.Attribute(value=node.args[0], attr="?")]
            for t in targets:
                root = t
                while isinstance(root, (ast.Attribute, ast.Subscript)):
                    root = root.value
                if t is not root and isinstance(root, ast.Name) and root.id in imported:
                    bad.append(f"{files[mod].name}:{node.lineno}: {mod} assigns "
                               f"{root.id}.{getattr(t, 'attr', '[...]')} at import")
    return bad


def click_outside_cli(files, trees, cli="amrlite.cli"):
    bad = []
    for mod, tree in trees.items():
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and
                     not node.level else [])
            if mod != cli and any(n.split(".")[0] == "click" for n in names):
                bad.append(f"{files[mod].name}:{node.lineno}: {mod} imports click")
    return bad


def function_level_imports(files, imports):
    return [f"{i.where(files)}: {i.importer} imports {i.target} inside a function"
            for i in imports if i.in_function]


# ---------------------------------------------------------------------------- on amrlite
@pytest.fixture(scope="module")
def tree():
    files = module_files()
    imports, trees = scan(files)
    return files, imports, trees


def test_it_sees_the_modules_and_their_imports(tree):
    files, imports, _ = tree
    assert {"amrlite.cli", "amrlite.experiments.pipeline", "amrlite.features.extract",
            "amrlite.kernels.gpu", "amrlite.recommender"} <= set(files)
    edges = {(i.importer, i.target) for i in imports}
    assert ("amrlite.recommender", "amrlite.train") in edges
    assert ("amrlite.experiments.pipeline", "amrlite.features.pixel_attack") in edges
    assert ("amrlite.kernels.cpu", "amrlite.kernels.cpu_bpr") in edges


def test_every_module_has_a_layer(tree):
    assert unplaced_modules(tree[0]) == []


def test_imports_point_down(tree):
    files, imports, _ = tree
    assert upward_imports(files, imports) == []


def test_no_import_circle(tree):
    files, imports, _ = tree
    assert import_cycle(files, imports) == []


def test_no_private_name_of_another_module(tree):
    files, imports, trees = tree
    assert private_imports(files, imports, trees) == []


def test_no_module_patches_another_at_import(tree):
    files, _, trees = tree
    assert foreign_assignments(files, trees) == []


def test_click_only_in_the_cli(tree):
    files, _, trees = tree
    assert click_outside_cli(files, trees) == []


def test_no_function_level_import_of_amrlite(tree):
    files, imports, trees = tree
    assert function_level_imports(files, imports) == []


# ---------------------------------------------------------------------------- planted trees
def _plant(tmp_path, sources):
    """A package ``amrlite`` under ``tmp_path`` with ``{relative path: source}``."""
    for rel, text in sources.items():
        p = tmp_path / "amrlite" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (tmp_path / "kernels").mkdir(exist_ok=True)
    (tmp_path / "kernels" / "__init__.py").write_text("")
    files = module_files(tmp_path)
    return (files, *scan(files))


CLEAN = {"__init__.py": "", "errors.py": "class AmrliteError(Exception):\n    pass\n",
         "containers.py": "from .errors import AmrliteError\n",
         "features/__init__.py": "", "features/_deps.py": "def require(): pass\n",
         "features/image.py": "from ._deps import require\n",
         "recommender.py": "from .containers import AmrliteError\n"}


def test_the_checks_pass_a_clean_tree(tmp_path):
    files, imports, trees = _plant(tmp_path, CLEAN)
    assert upward_imports(files, imports) == []
    assert import_cycle(files, imports) == []
    assert private_imports(files, imports, trees) == []
    assert foreign_assignments(files, trees) == []
    assert function_level_imports(files, imports) == []


def test_a_planted_circle_fails(tmp_path):
    files, imports, _ = _plant(tmp_path, dict(
        CLEAN, **{"containers.py": "def f():\n    from . import errors\n",
                  "errors.py": "from .containers import f\n"}))
    assert import_cycle(files, imports) == ["amrlite.containers:2 -> amrlite.errors:1 -> "
                                            "amrlite.containers"]


def test_a_planted_upward_import_fails(tmp_path):
    files, imports, _ = _plant(tmp_path, dict(
        CLEAN, **{"containers.py": "def f():\n    from .recommender import Model\n"}))
    bad = upward_imports(files, imports)
    assert len(bad) == 1 and "amrlite.containers (foundations) imports amrlite.recommender" \
        in bad[0]
    assert len(function_level_imports(files, imports)) == 1


def test_a_planted_private_import_fails(tmp_path):
    files, imports, trees = _plant(tmp_path, dict(
        CLEAN, **{"recommender.py": "from .containers import _helper\n"
                                    "from . import errors\nx = errors._secret\n",
                  "containers.py": "from .features._deps import require\n"}))
    bad = private_imports(files, imports, trees)
    assert len(bad) == 3, bad
    assert any("imports amrlite.containers._helper" in b for b in bad)
    assert any("the private module amrlite.features._deps" in b for b in bad)
    assert any("reads amrlite.errors._secret" in b for b in bad)


def test_a_planted_monkeypatch_and_click_fail(tmp_path):
    files, _, trees = _plant(tmp_path, dict(
        CLEAN, **{"recommender.py": "import click\nfrom .containers import Dataset\n"
                                    "Dataset.splitter = staticmethod(len)\n"}))
    assert foreign_assignments(files, trees) == \
        ["recommender.py:3: amrlite.recommender assigns Dataset.splitter at import"]
    assert click_outside_cli(files, trees) == ["recommender.py:1: amrlite.recommender imports "
                                               "click"]
