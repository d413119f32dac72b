"""The arithmetic of amrlite: one module per backend, each providing the protocol of
:mod:`.protocol` name for name with the same signatures.

* :mod:`.reference` — ``numpy``: one mini-batch at a time, the derivations in its docstrings;
  the specification every other backend is tested against.
* :mod:`.cpu` — ``numba``: the same functions, fused and parallel (kernels in ``cpu_*.py``).
* :mod:`.gpu` — ``cupy``: the same functions on an NVIDIA GPU (:mod:`.fused`, :mod:`.cuda_src`).
* :mod:`.numpy_arraylevel` — ``numpy-arraylevel``: the GPU backend's array-level code
  (:mod:`.arraylevel`) run on NumPy, so the CPU test suite checks it against the reference.

This package is a leaf: it imports nothing from :mod:`amrlite`. Bad input raises plain
:class:`ValueError`; the library turns it into its own error type.
"""
from __future__ import annotations

import importlib

#: the backends a user chooses between (``numpy-arraylevel`` is for tests and benchmarks)
BACKENDS = ("numpy", "numba", "cupy")
_MODULES = {"numpy": ".reference", "numba": ".cpu", "cupy": ".gpu",
            "numpy-arraylevel": ".numpy_arraylevel"}


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _importable(name) -> bool:
    try:
        importlib.import_module(_MODULES[name], __name__)
        return True
    except ImportError:
        return False


def resolve_backend_name(name: str = "auto") -> str:
    """``auto`` → ``cupy`` where a CUDA GPU and CuPy are present, else ``numba``, else
    ``numpy``; any other name is checked and returned."""
    if name == "auto":
        if gpu_available() and _importable("cupy"):
            return "cupy"
        return "numba" if _importable("numba") else "numpy"
    if name not in _MODULES:
        raise ValueError(f"unknown backend {name!r}; choose auto, {', '.join(BACKENDS)}")
    return name


def get_backend(name: str = "auto"):
    """The backend module for ``name`` (``auto``, ``numpy``, ``numba``, ``cupy``)."""
    name = resolve_backend_name(name)
    if name == "cupy" and not gpu_available():
        raise ValueError("backend 'cupy' needs CuPy and a CUDA GPU; none is usable here "
                         "(install amrlite[gpu] (CUDA 12) or amrlite[gpu13] (CUDA 13) on a "
                         "machine with an NVIDIA GPU, or use --backend numba)")
    try:
        return importlib.import_module(_MODULES[name], __name__)
    except ImportError as exc:
        raise ValueError(f"backend {name!r} is not available: {exc}") from None
