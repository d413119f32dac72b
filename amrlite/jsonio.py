"""Strict JSON: the one way amrlite writes JSON (metrics files, epoch logs, model headers).

Python's :mod:`json` writes ``NaN`` and ``Infinity`` by default, which ``jq``, JavaScript and most
JSON parsers reject. Here every non-finite float becomes ``null``, NumPy scalars and arrays become
plain numbers and lists, and ``allow_nan=False`` guards the rest.

>>> dumps({"HR@10": float("nan"), "n": 3})
'{"HR@10": null, "n": 3}'
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np


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


def write_json(path, obj, *, indent=2) -> Path:
    """Write ``obj`` as strict JSON to ``path`` (parent folders made; a temporary file of this
    process, then a rename: concurrent writers never see a torn file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(dumps(obj, indent=indent) + "\n")
    tmp.replace(path)
    return path
