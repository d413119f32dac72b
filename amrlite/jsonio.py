"""Strict JSON, and the one way amrlite writes a file (:func:`atomic_write`).

Every file the library writes (models, splits, features, stage results, reports, figures) goes
through :func:`atomic_write`: the bytes go to a temporary file of this process in the target's
folder (``.NAME.<pid>.<random>.tmp``), are flushed and ``fsync``-ed, and the temporary file is
renamed over the target (``os.replace``, atomic on POSIX and Windows). Readers and concurrent
writers therefore see the old file or one complete new file, never a mixture or a torn file; an
exception (``KeyboardInterrupt`` included) leaves the old file as it was and no temporary file
behind. A read-only target, or a read-only folder, is refused with one line. Epoch logs
(``--log``, one JSON line per epoch) are appended, not replaced, and are the one exception.

JSON: Python's :mod:`json` writes ``NaN`` and ``Infinity`` by default, which ``jq``, JavaScript
and most JSON parsers reject. Here every non-finite float becomes ``null``, NumPy scalars and
arrays become plain numbers and lists, and ``allow_nan=False`` guards the rest.

>>> dumps({"HR@10": float("nan"), "n": 3})
'{"HR@10": null, "n": 3}'
"""
from __future__ import annotations

import json
import math
import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import AmrliteError


def clean(obj):
    """``obj`` with NaN/±inf replaced by ``None`` and NumPy values by Python ones (recursively)."""
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, str) else k: clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps(obj, **kwargs) -> str:
    """``json.dumps`` of :func:`clean` ``(obj)`` with ``allow_nan=False``: always valid JSON."""
    return json.dumps(clean(obj), allow_nan=False, **kwargs)


def writable(path) -> bool:
    """``path`` may be written: permitted, and not marked read-only (no write bit at all). The
    second test matters for root, to whom ``os.access`` grants a read-only file or folder."""
    path = Path(path)
    return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)


def check_writable(path) -> Path:
    """Refuse (one line, :class:`AmrliteError`) to write ``path`` when it is a folder, a
    read-only file, or lies in a read-only folder (the nearest existing one is checked, before
    any missing folder is made). Returns ``path`` as a :class:`~pathlib.Path`."""
    path = Path(path)
    if path.is_dir():
        raise AmrliteError(f"{path}: is a folder; expected a file name")
    if path.exists() and not writable(path):
        raise AmrliteError(f"{path}: is read-only; refusing to replace it (make it writable, "
                           "or write elsewhere)")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise AmrliteError(f"{path}: cannot be written: {folder} is not a folder")
    if not writable(folder):
        raise AmrliteError(f"{folder}: is read-only; cannot write {path.name} there (write "
                           "elsewhere)")
    return path


@contextmanager
def atomic_write(path, *, mode="wb", encoding="utf-8", newline=None):
    """``with atomic_write(path) as fh: ...`` — write ``path`` all at once or not at all.

    ``fh`` is a new temporary file ``.NAME.<pid>.<random hex>.tmp`` in the target's folder
    (opened with ``mode`` ``"wb"``, or ``"w"`` for text in ``encoding`` with ``newline``).
    When the block ends normally the file is flushed, ``fsync``-ed and renamed over ``path``
    (keeping an existing target's permission bits); when it raises anything, ``KeyboardInterrupt``
    included, the temporary file is removed and ``path`` is untouched. Missing parent folders
    are made. Refused with one line (:class:`AmrliteError`, before anything is written): a
    read-only target or folder (see :func:`check_writable`). Two processes writing the same
    path at once each rename a complete file of their own: the last rename wins, whole.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    path = check_writable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o666)
    except OSError as exc:
        raise AmrliteError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, mode, **({"encoding": encoding, "newline": newline}
                                    if mode == "w" else {})) as fh:
            yield fh
            fh.flush()
            _os_step(path, os.fsync, fh.fileno())
        if path.exists():
            _os_step(path, os.chmod, tmp, stat.S_IMODE(path.stat().st_mode))
        _os_step(path, os.replace, tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _os_step(path, step, *args):
    """``step(*args)``; an OSError as one line naming ``path`` (a full disk, a lost mount)."""
    try:
        step(*args)
    except OSError as exc:
        raise AmrliteError(f"{path}: cannot write ({exc.strerror or exc})") from None


def write_bytes(path, blob) -> Path:
    """Write ``blob`` to ``path`` with :func:`atomic_write`. Returns the path."""
    with atomic_write(path) as fh:
        fh.write(blob)
    return Path(path)


def write_text(path, text) -> Path:
    """Write ``text`` (UTF-8) to ``path`` with :func:`atomic_write`. Returns the path."""
    with atomic_write(path, mode="w") as fh:
        fh.write(text)
    return Path(path)


def read_json(path):
    """The JSON in ``path``, or None when it is missing, torn or not JSON (then: recompute).
    A NaN/Infinity written by an older, lenient writer reads as None, as :func:`write_json`
    would have written it."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(), parse_constant=lambda _: None)
    except (json.JSONDecodeError, OSError):
        return None


def write_json(path, obj, *, indent=2) -> Path:
    """Write ``obj`` as strict JSON to ``path`` with :func:`atomic_write`."""
    return write_text(path, dumps(obj, indent=indent) + "\n")
