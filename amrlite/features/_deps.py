"""Lazy imports of the optional extras, with a one-line error naming the extra to install."""
from __future__ import annotations

import hashlib
import importlib
from importlib import metadata

from ..errors import AmrliteError


def require(module, extra):
    """Import ``module`` or raise ``AmrliteError('... install amrlite[extra]')``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise AmrliteError(f"amrlite features needs the optional package {exc.name or module!r}: "
                           f"install amrlite[{extra}] (pip install -e \".[{extra}]\")") from None


def versions(*distributions):
    """``{distribution: version}`` of the installed packages a recipe depends on."""
    out = {}
    for name in distributions:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def pick_device(torch, device=None):
    """``device`` as given, else CUDA when torch sees one, else CPU."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def torch_dtype(torch, dtype):
    """``torch.float32``/``torch.float64`` from a torch dtype or a name ("float32", "float64")."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        if dtype not in ("float32", "float64"):
            raise AmrliteError(f"dtype {dtype!r}: expected float32 or float64")
        return getattr(torch, dtype)
    if dtype not in (torch.float32, torch.float64):
        raise AmrliteError(f"dtype {dtype}: expected torch.float32 or torch.float64")
    return dtype


def file_sha256(path):
    """The sha256 of a (weights) file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
