"""The backend protocol (kernels/protocol.py) and the layering it stands for, checked on the
source: every backend module has every protocol name with the protocol's signature; kernels/
imports nothing from amrlite; the library never probes a backend; no import cycles."""
import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

from amrlite.kernels import protocol

ROOT = Path(__file__).resolve().parents[1]
NAMES = protocol.TRAINING_NAMES + protocol.CHECKING_NAMES
MODULES = {"numpy": "amrlite.kernels.reference", "numba": "amrlite.kernels.cpu",
           "numpy-arraylevel": "amrlite.kernels.numpy_arraylevel", "cupy": "amrlite.kernels.gpu"}


def _cupy_imports():
    try:
        import cupy  # noqa: F401
        return True
    except Exception:
        return False


def _module(backend):
    if backend == "cupy" and not _cupy_imports():
        pytest.skip("CuPy does not import here")
    return importlib.import_module(MODULES[backend])


def _protocol_method(name):
    for cls in (protocol.TrainingBackend, protocol.CheckingBackend):
        if name in cls.__dict__:
            return cls.__dict__[name]
    raise KeyError(name)


def _without_self(fn):
    sig = inspect.signature(fn)
    return sig.replace(parameters=list(sig.parameters.values())[1:])


def _shape(sig):
    """Names, kinds and defaults, in order (annotations are documentation, not interface)."""
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


def test_protocol_name_lists_are_the_protocol_classes():
    declared = [n for cls in (protocol.TrainingBackend, protocol.CheckingBackend)
                for n in list(cls.__annotations__) + [k for k, v in cls.__dict__.items()
                                                        if inspect.isfunction(v)]
                if not n.startswith("_")]
    assert sorted(set(declared)) == sorted(NAMES)
    assert len(NAMES) == len(set(NAMES))


@pytest.mark.parametrize("backend", list(MODULES))
@pytest.mark.parametrize("name", NAMES)
def test_backend_module_provides_the_protocol(backend, name):
    """The name exists, NAME is the backend's name, and a function's signature (names, order,
    kinds, defaults) is the protocol method's without ``self``."""
    mod = _module(backend)
    assert hasattr(mod, name), f"{MODULES[backend]} lacks {name}"
    if name == "NAME":
        assert mod.NAME == backend
        return
    fn = getattr(mod, name)
    assert callable(fn)
    want = _without_self(_protocol_method(name))
    assert _shape(inspect.signature(fn)) == _shape(want), \
        f"{MODULES[backend]}.{name}{inspect.signature(fn)} != protocol {want}"


@pytest.mark.parametrize("backend", list(MODULES))
def test_get_backend_returns_the_module(backend):
    from amrlite.kernels import get_backend, gpu_available
    if backend == "cupy" and not (gpu_available() and _cupy_imports()):
        pytest.skip("needs CuPy and a CUDA GPU")
    assert get_backend(backend) is _module(backend)


# ----------------------------------------------------------------------------------------------
# layering, on the source
# ----------------------------------------------------------------------------------------------

def _sources(folder):
    return sorted((ROOT / folder).glob("*.py"))


def _hits(pattern, folder):
    rx = re.compile(pattern)
    return [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
            for path in _sources(folder)
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if rx.search(line)]


def test_kernels_import_nothing_from_amrlite():
    assert _sources("kernels")
    assert _hits(r"^\s*(from\s+amrlite\b|import\s+amrlite\b|from\s+\.\.)", "kernels") == []


def test_library_never_probes_a_backend():
    assert _hits(r"hasattr\(\s*backend|\.NAME\s*[=!]=", "amrlite") == []


# ----------------------------------------------------------------------------------------------
# import graph
# ----------------------------------------------------------------------------------------------

def _module_files():
    """``{dotted name: path}`` for amrlite/*.py and kernels/*.py (kernels/ is amrlite.kernels)."""
    files = {}
    for folder, package in (("amrlite", "amrlite"), ("kernels", "amrlite.kernels")):
        for path in _sources(folder):
            files[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return files


def import_graph(files):
    """``{module: {(imported module, line)}}`` from every import statement, top level and inside
    functions. ``from X import n`` is an edge to ``X.n`` where that is a module, else to ``X``;
    relative imports resolve against the importing module's package."""
    graph = {}
    for mod, path in files.items():
        package = mod if path.stem == "__init__" else mod.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - node.level + 1]
                    base = ".".join(base + ([node.module] if node.module else []))
                else:
                    base = node.module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base
                           for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in files and "." in t:    # import amrlite.kernels.cpu.x → module
                    t = t.rpartition(".")[0]
                if t in files and t != mod:
                    edges.add((t, node.lineno))
        graph[mod] = edges
    return graph


def find_cycle(graph):
    """One cycle as ``[(module, line of its import of the next), ...]``, or None."""
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        for t, line in sorted(graph[m]):
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


def _describe(cycle, files):
    return " -> ".join(f"{m} ({files[m].relative_to(ROOT)}:{line})" if line else m
                       for m, line in cycle)


def test_import_graph_finds_a_planted_cycle():
    graph = {"a": {("b", 1)}, "b": {("c", 2)}, "c": {("a", 3)}, "d": set()}
    assert [m for m, _ in find_cycle(graph)] == ["a", "b", "c", "a"]
    assert find_cycle({"a": {("b", 1)}, "b": set()}) is None


def test_modules_import_each_other_without_cycles():
    """Between the modules (amrlite/*.py but the package's __init__, kernels/*.py), top-level and
    function-level imports alike."""
    files = _module_files()
    graph = import_graph(files)
    assert graph["amrlite.recommender"] and graph["amrlite.kernels.gpu"]     # it sees imports
    modules = {m: {(t, n) for t, n in e if t != "amrlite"} for m, e in graph.items()
               if m != "amrlite"}
    cycle = find_cycle(modules)
    assert cycle is None, "import cycle: " + _describe(cycle, files)


def test_package_init_is_not_imported_back():
    """With the package ``amrlite`` (its __init__) as a node too: no module imports the package
    that imports it."""
    files = _module_files()
    cycle = find_cycle(import_graph(files))
    assert cycle is None, "import cycle: " + _describe(cycle, files)
