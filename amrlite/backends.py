"""The library's door to :mod:`amrlite.kernels`: a backend module by name, with the kernels'
plain :class:`ValueError` turned into :class:`~amrlite.errors.AmrliteError` (a one-line user
error)."""
from __future__ import annotations

from . import kernels
from .errors import AmrliteError

BACKENDS = kernels.BACKENDS


def get_backend(name="auto"):
    """The backend module (:mod:`amrlite.kernels.protocol`) for ``auto``, ``numpy``, ``numba``
    or ``cupy``."""
    try:
        return kernels.get_backend(name)
    except ValueError as exc:
        raise AmrliteError(str(exc)) from None


def resolve_backend_name(name="auto"):
    """What ``auto`` means here (``cupy``, ``numba`` or ``numpy``); other names are checked."""
    try:
        return kernels.resolve_backend_name(name)
    except ValueError as exc:
        raise AmrliteError(str(exc)) from None
