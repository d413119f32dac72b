"""The backend protocol (kernels/protocol.py) and the layering it stands for, checked on the
source: every backend module has every protocol name with the protocol's signature; kernels/
imports nothing from amrlite; the library never probes a backend. The layers of the whole
import graph (no circle, no upward or private import) are checked by tests/test_layers.py."""
import importlib
import inspect
from pathlib import Path

import pytest

from amrlite.kernels import protocol
from helpers import source_hits

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

def test_kernels_import_nothing_from_amrlite():
    assert list((ROOT / "kernels").rglob("*.py"))
    assert source_hits(r"^\s*(from\s+amrlite\b|import\s+amrlite\b|from\s+\.\.)", "kernels") == []


def test_library_never_probes_a_backend():
    assert source_hits(r"hasattr\(\s*backend|\.NAME\s*[=!]=", "amrlite") == []
