"""The arithmetic of amrlite, one module per backend, mirroring each other name for name.

* :mod:`.reference` — NumPy, one mini-batch at a time, the derivations in its docstrings: the
  specification every other backend is tested against.
* :mod:`.cpu` — Numba: the same functions, fused and parallel.
* :mod:`.gpu` — CuPy: the same functions again, on an NVIDIA GPU.

Each backend module exposes ``NAME``, ``xp`` (its array module), ``to_device``/``to_host``,
``sample_epoch``, ``train_epoch``, ``train_batch``, ``batch_gradients``, ``content_gradient``,
``adversarial_perturbation`` and ``adagrad_update``; the training loop (:mod:`amrlite.train`)
talks to that protocol and never to a backend directly.
"""
from __future__ import annotations

import importlib

from ..errors import AmrliteError

BACKENDS = ("numpy", "numba", "cupy")
_MODULES = {"numpy": ".reference", "numba": ".cpu", "cupy": ".gpu"}


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def numba_available() -> bool:
    try:
        import numba  # noqa: F401
        importlib.import_module(".cpu", __name__)
        return True
    except ImportError:
        return False


def resolve_backend_name(name: str = "auto") -> str:
    """``auto`` → ``cupy`` where a CUDA GPU and CuPy are present, else ``numba``, else ``numpy``."""
    if name == "auto":
        if gpu_available():
            try:
                importlib.import_module(".gpu", __name__)
                return "cupy"
            except ImportError:
                pass
        return "numba" if numba_available() else "numpy"
    if name not in BACKENDS:
        raise AmrliteError(f"unknown backend {name!r}; choose auto, {', '.join(BACKENDS)}")
    return name


def get_backend(name: str = "auto"):
    """The backend module for ``name`` (``auto``, ``numpy``, ``numba`` or ``cupy``)."""
    name = resolve_backend_name(name)
    if name == "cupy" and not gpu_available():
        raise AmrliteError("backend 'cupy' needs CuPy and a CUDA GPU; none is usable here "
                           "(install amrlite[gpu] (CUDA 12) or amrlite[gpu13] (CUDA 13) on a machine with an NVIDIA GPU, or use "
                           "--backend numba)")
    try:
        return importlib.import_module(_MODULES[name], __name__)
    except ImportError as exc:
        raise AmrliteError(f"backend {name!r} is not available: {exc}") from None
