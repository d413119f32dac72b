"""Item content features: one or several *modalities*, each checked, normalised and aligned to
the data set's items, then concatenated into the one matrix the models read.

A dataset folder may hold ``features.npy`` (the default modality) and any number of
``features-<name>.npy`` with the same rows (``f_<name>.npy`` in the official AMR layout). A
``features=`` value is a comma-separated list of modality names and/or paths (a value ending in
``.npy``/``.npz`` or containing a ``/`` is a path). An ``.npz`` carries its own id index (arrays
``ids`` and ``features``), so its rows are matched to items by id; a ``.npy`` is positional (row i
= item index i) unless an ``items`` file lists the id of each of its rows.

One ``E`` over the concatenation is one projection block per modality; each modality is normalised
by its own choice before the concatenation (``normalize="l2"`` for all, or
``"image=l2,text=none"``). A zero row means "this item has no content of this modality" (legal;
counted in :attr:`Modality.zero_rows`).
"""
from __future__ import annotations

import errno
import json
import mmap
import os
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amrlite.errors import AmrliteError, braced, input_error, option_error

NORMALIZE_OPTIONS = ("none", "maxabs", "l2")


# --------------------------------------------------------------------------------------------
# Memory: features are read a block of rows at a time; derived matrices live in scratch maps
# --------------------------------------------------------------------------------------------

#: a derived feature matrix (normalised, aligned by id, modalities side by side) of at least
#: this many bytes is built in a memory-mapped scratch file rather than in process memory
SCRATCH_BYTES = 64 << 20
#: the environment variable naming the folder of those scratch files (default: the system's
#: temporary folder, :func:`tempfile.gettempdir`)
SCRATCH_ENV = "AMRLITE_SCRATCH"


#: values of one block of feature rows in a pass over the features (64 MB in float64)
ROW_BLOCK_VALUES = 1 << 23


def _row_blocks(n_rows, n_cols):
    step = max(1, ROW_BLOCK_VALUES // max(1, n_cols))
    for s in range(0, n_rows, step):
        yield s, min(n_rows, s + step)


def derived_array(shape, dtype):
    """A zero-filled array for a feature matrix derived from the files (normalised, aligned by
    id, several modalities side by side): in memory when smaller than :data:`SCRATCH_BYTES`,
    else a memory map of a scratch file in ``$AMRLITE_SCRATCH`` (default: the temporary
    folder). The OS writes a map's pages back and drops them under memory pressure, so a
    derived matrix never needs its size in RAM, as features memory-mapped from their own file
    do not. The file's name is removed at once where the OS allows it (the map keeps the file
    until the array is freed; nothing is left behind by an interrupted run)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes < SCRATCH_BYTES:
        return np.zeros(shape, dtype=dtype)
    folder = os.environ.get(SCRATCH_ENV) or tempfile.gettempdir()
    try:
        fd, name = tempfile.mkstemp(prefix="amrlite-features-", suffix=".bin", dir=folder)
    except OSError as exc:
        raise AmrliteError(f"{folder}: cannot create a scratch file for the derived features "
                           f"({exc.strerror or exc}); set {SCRATCH_ENV} to a writable folder "
                           "with room for them") from None
    try:
        try:
            _reserve(fd, nbytes)
        except OSError as exc:
            size = f"{nbytes / 2**30:.2f} GB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MB"
            raise AmrliteError(f"{folder}: no room for a {size} scratch file of derived "
                               f"features ({exc.strerror or exc}); set {SCRATCH_ENV} to a "
                               "folder with room for them") from None
        return np.memmap(name, dtype=dtype, mode="r+", shape=tuple(shape))
    finally:
        os.close(fd)
        try:
            os.unlink(name)
        except OSError:                           # where an open file cannot be removed
            pass


def _reserve(fd, nbytes):
    """Make the open file ``fd`` ``nbytes`` of zeros, its disk space allocated up front where
    the OS can (``posix_fallocate``): a full disk is then an ``OSError`` here, not a crash
    (SIGBUS) when a page of the map is first written."""
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, 0, nbytes)
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
    os.ftruncate(fd, nbytes)                      # a sparse file: space taken as it is written


def _mapping(arr):
    """``(mmap, offset of arr's first byte in it)`` when ``arr`` views a shared memory map
    (``np.memmap`` modes r, r+, w+), else None."""
    top = arr
    while isinstance(top, np.ndarray) and not isinstance(top.base, mmap.mmap):
        top = top.base
    if not isinstance(top, np.memmap) or top.mode == "c":
        return None
    mm = top.base
    return mm, arr.__array_interface__["data"][0] - np.frombuffer(mm, np.uint8).ctypes.data


def release_rows(arr, start, stop):
    """Let the OS take rows ``start:stop`` of a memory-mapped, C-ordered ``arr`` out of this
    process's resident memory (``madvise(MADV_DONTNEED)``; a shared map's pages stay in the
    page cache, unchanged, and a later read maps them back). A pass that reads every row once
    (checks, scales, normalisation, alignment) releases each block after use, so it holds one
    block of the file, not the whole. No-op for an in-memory array or where the OS has no
    ``madvise``."""
    found = _mapping(arr) if hasattr(mmap, "MADV_DONTNEED") and arr.flags.c_contiguous else None
    if found is None or stop <= start:
        return
    mm, offset = found
    row = arr.strides[0]
    page = mmap.PAGESIZE
    lo = -(-(offset + start * row) // page) * page            # whole pages inside the rows
    hi = (offset + stop * row) // page * page
    if hi > lo:
        mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


# --------------------------------------------------------------------------------------------
# One array: read, check, normalise
# --------------------------------------------------------------------------------------------


def check_normalize(normalize):
    if normalize not in NORMALIZE_OPTIONS:
        raise option_error("normalize", f"must be one of {', '.join(NORMALIZE_OPTIONS)}, "
                           f"got {normalize!r}")
    return normalize


def _check_array(arr, path):
    if arr.ndim != 2:
        raise input_error(path, f"features must be 2-D [n_items, D], got shape {arr.shape}")
    if arr.dtype.kind != "f":
        raise input_error(path, f"features must be float32 or float64, got {arr.dtype}")
    for s, e in _row_blocks(*arr.shape):
        bad = ~np.isfinite(arr[s:e])
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise input_error(path, f"row {s + r} (item {s + r}) has a non-finite value "
                              f"({arr[s + r, c]}) in column {c}")
        release_rows(arr, s, e)


def maxabs_scale(arr):
    """The divisor of ``normalize="maxabs"``: the largest |value| of ``arr`` (0.0 when empty),
    read a block of rows at a time."""
    out = 0.0
    for s, e in _row_blocks(*arr.shape):
        out = max(out, float(np.abs(arr[s:e]).max(initial=0.0)))
        release_rows(arr, s, e)
    return out


def normalize_array(arr, normalize, *, scale=None):
    """``arr`` scaled by ``normalize`` (a new float32/float64 array, a :func:`derived_array`;
    ``"none"``: ``arr`` itself), computed a block of rows at a time.

    ``"maxabs"`` divides by ``scale`` — default :func:`maxabs_scale` ``(arr)``; give the
    recorded one to put new rows on the scale of a data set (a scale of 0 leaves rows as they
    are). ``"l2"`` is row by row, so a row comes out the same in any array."""
    if check_normalize(normalize) == "none":
        return arr
    out_dtype = np.float64 if arr.dtype == np.float64 else np.float32
    out = derived_array(arr.shape, out_dtype)
    m = (maxabs_scale(arr) if scale is None else float(scale)) if normalize == "maxabs" else None
    for s, e in _row_blocks(*arr.shape):
        if normalize == "maxabs":
            out[s:e] = arr[s:e] / m if m > 0 else arr[s:e]
        else:
            block = np.asarray(arr[s:e], dtype=np.float64)
            norms = np.sqrt(np.einsum("ij,ij->i", block, block))
            norms[norms == 0] = 1.0
            out[s:e] = block / norms[:, None]
        release_rows(arr, s, e)
        release_rows(out, s, e)
    return out


def load_features(path, *, normalize="none"):
    """Item features ``[n_items, D]`` from a ``.npy`` file, memory-mapped (read-only).

    ``normalize``: ``"none"`` (the memory map itself), ``"maxabs"`` (divide by the global max
    |value|, as the official AMR code does) or ``"l2"`` (each row to unit length; all-zero rows stay
    zero). Normalised copies are float32 unless the file is float64.
    """
    check_normalize(normalize)
    path = Path(path)
    if not path.is_file():
        raise input_error(path, "features file not found" if not path.exists() else "not a file")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:   # not a .npy, truncated, object array, .npz ...
        raise input_error(path, f"cannot read as a NumPy .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray):
        raise input_error(path, "expected a single .npy array, got an archive (an .npz with "
                          "arrays 'ids' and 'features' is read when its name ends in .npz)")
    _check_array(arr, path)
    return normalize_array(arr, normalize)


def load_indexed_features(path, *, normalize="none"):
    """``(ids, features)`` from an ``.npz`` holding arrays ``ids`` (one raw item id per row,
    integers or strings, distinct) and ``features`` (2-D float)."""
    check_normalize(normalize)
    path = Path(path)
    if not path.is_file():
        raise input_error(path, "features file not found" if not path.exists() else "not a file")
    try:
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
            if not {"ids", "features"} <= names:
                raise input_error(path, "an .npz features file needs arrays 'ids' and 'features'"
                                  f", found {', '.join(sorted(names)) or 'none'}")
            ids = z["ids"]
            arr = _stored_member_map(path, "features.npy")
            arr = z["features"] if arr is None else arr
    except AmrliteError:
        raise
    except Exception as exc:
        raise input_error(path, f"cannot read as a NumPy .npz archive ({exc})") from None
    if ids.ndim != 1 or ids.dtype.kind not in "iuUS":
        raise input_error(path, f"'ids' must be a 1-D integer or string array, got "
                          f"{ids.dtype} {ids.shape}", field="ids")
    _check_array(arr, path)
    if len(ids) != arr.shape[0]:
        raise input_error(path, f"{len(ids)} ids but {arr.shape[0]} feature rows", field="ids")
    ids = ids.astype(str) if ids.dtype.kind == "S" else ids
    check_distinct_ids(ids, path, "ids")
    return ids, normalize_array(arr, normalize)


def _stored_member_map(path, member):
    """A read-only memory map of the ``.npy`` ``member`` of the ``.npz`` at ``path`` where the
    archive stores it uncompressed (``np.savez``, as ``amrlite features`` writes), so its rows
    are read from the file like a ``.npy``'s; None where it is compressed. The member's data
    start after the zip entry's local header (30 bytes, its name and its extra field) and the
    ``.npy`` header."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        if local[:4] != b"PK\x03\x04":
            return None
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(fh)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(fh)
        offset = fh.tell()
    if dtype.hasobject or not shape or 0 in shape:
        return None
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                     order="F" if fortran else "C")


def check_distinct_ids(ids, path, field, lines=None):
    keys = np.asarray([str(x) for x in ids.tolist()])
    uniq, first, counts = np.unique(keys, return_index=True, return_counts=True)
    if (counts > 1).any():
        k = int(np.flatnonzero(counts > 1)[0])
        dup_rows = np.flatnonzero(keys == uniq[k])
        where = lines[dup_rows[1]] if lines is not None else None
        row = "" if lines is not None else f" (rows {dup_rows[0]} and {dup_rows[1]})"
        raise input_error(path, f"id {str(uniq[k])!r} occurs twice{row}; every feature row needs its "
                          "own item id", line=where, field=field)


# --------------------------------------------------------------------------------------------
# Modalities: which files, how normalised, how aligned
# --------------------------------------------------------------------------------------------

@dataclass
class Modality:
    """One modality as loaded: ``array`` ``[rows, dim]`` and, for an id-indexed file, ``ids``."""

    name: str
    file: Path
    normalize: str
    array: np.ndarray
    ids: np.ndarray | None = None
    zero_rows: int = 0
    missing: int = 0
    #: ``normalize="maxabs"``: the divisor applied (new rows of this modality reuse it)
    scale: float | None = None
    #: the comparable part of the file's recipe record (:func:`read_recipe`), if it has one
    recipe: dict | None = None

    @property
    def dim(self):
        return int(self.array.shape[1])

    def info(self):
        out = {"name": self.name, "dim": self.dim, "file": self.file.name,
               "normalize": self.normalize, "zero_rows": int(self.zero_rows),
               "missing": int(self.missing)}
        if self.scale is not None:
            out["scale"] = self.scale
        if self.recipe is not None:
            out["recipe"] = self.recipe
        return out


#: keys of a recipe record that say where and with what a file was made, not what it holds:
#: recorded, never compared (``amrlite features`` writes the record)
RECIPE_NOT_COMPARED = ("versions", "device", "inputs")


def read_recipe(path):
    """The comparable recipe of the features file ``path``: its ``.json`` sidecar (the record
    ``amrlite features`` writes beside ``features-<name>.npy``/``.npz``) without
    :data:`RECIPE_NOT_COMPARED`; ``None`` when there is no sidecar."""
    meta = Path(path).with_suffix(".json")
    if not meta.is_file():
        return None
    try:
        record = json.loads(meta.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise input_error(meta, f"not a readable recipe record ({exc})") from None
    if not isinstance(record, dict):
        raise input_error(meta, "a recipe record must be a JSON object")
    return {k: v for k, v in sorted(record.items()) if k not in RECIPE_NOT_COMPARED}


def is_path(value) -> bool:
    """A ``features`` value that names a file rather than a modality."""
    if isinstance(value, Path):
        return True
    v = str(value)
    return v.endswith((".npy", ".npz")) or "/" in v or "\\" in v


def _modality_name(path):
    stem = Path(path).stem
    for prefix in ("features-", "f_"):
        if stem.startswith(prefix) and len(stem) > len(prefix):
            return stem[len(prefix):]
    return "default" if stem == "features" else stem


def available_modalities(folder, layout):
    """``{name: path}`` of the feature files of a dataset folder."""
    folder = Path(folder)
    out = {}
    if layout == "native":
        if (folder / "features.npy").is_file():
            out["default"] = folder / "features.npy"
        for f in sorted(folder.glob("features-*.np[yz]")):
            out.setdefault(_modality_name(f), f)
        if "default" in out and "text" not in out:
            out["text"] = out["default"]   # the native convention (ml100k): features.npy is text
    elif layout == "official":
        for f in sorted(folder.glob("f_*.np[yz]")):
            out.setdefault(_modality_name(f), f)
    return out


def resolve_features(spec, folder=None, layout="plain"):
    """``[(name, path), ...]`` for a ``features`` value (``None``: the folder's default)."""
    found = available_modalities(folder, layout) if folder is not None else {}
    if spec is None:
        if layout == "native":
            return [("default", found["default"])] if "default" in found else []
        if layout == "official":
            names = sorted({p.name: n for n, p in found.items()}.items())
            if len(names) > 1:
                raise input_error(folder, "several feature files (" + ", ".join(f for f, _ in names)
                                  + "); choose one with features='<name>'", field="features")
            return [(names[0][1], found[names[0][1]])] if names else []
        return []
    parts = [spec] if isinstance(spec, Path) else [p.strip() for p in str(spec).split(",")]
    if not parts or any(not p for p in parts if not isinstance(p, Path)):
        raise option_error("features", f"empty modality name in {str(spec)!r}")
    out = []
    for p in parts:
        if is_path(p):
            out.append((_modality_name(p), Path(p)))
            continue
        if folder is None:
            raise option_error("features", f"{p!r} is a modality name, which needs a dataset "
                               "folder; give a features file path (.npy or .npz)")
        if p not in found:
            have = ", ".join(f"{n} ({f.name})" for n, f in found.items()) or "none"
            raise input_error(folder, f"no feature modality {p!r} (no features-{p}.npy"
                              + (f" or f_{p}.npy" if layout == "official" else "")
                              + f"); available: {have}", field="features")
        out.append((p, found[p]))
    names = [n for n, _ in out]
    dup = [n for n in names if names.count(n) > 1]
    if dup:
        raise option_error("features", f"modality {dup[0]!r} is given twice")
    return out


def parse_normalize(normalize, names):
    """``{name: option}`` from ``"l2"`` (every modality) or ``"image=l2,text=none"``."""
    if isinstance(normalize, dict):
        spec = dict(normalize)
        default = spec.pop("*", "none")
    elif "=" in str(normalize):
        spec, default = {}, "none"
        for item in str(normalize).split(","):
            key, _, val = item.partition("=")
            key, val = key.strip(), val.strip()
            if not key or not val:
                raise option_error("normalize", f"expected NAME=OPTION, got {item!r}")
            spec[key] = val
    else:
        return {n: check_normalize(normalize) for n in names}
    unknown = [k for k in spec if k not in names]
    if unknown:
        raise option_error("normalize", f"no modality {unknown[0]!r} among the chosen "
                           f"features ({', '.join(names) or 'none'})")
    return {n: check_normalize(spec.get(n, default)) for n in names}


def load_modalities(spec, normalize="none", *, folder=None, layout="plain", row_ids=None):
    """Load the modalities ``spec`` names: a list of :class:`Modality`.

    ``row_ids`` (raw ids, one per row, from an ``items`` file) gives the id of each row of every
    ``.npy`` modality; without it a ``.npy`` is positional. An ``.npz`` brings its own ``ids``.
    """
    entries = resolve_features(spec, folder, layout)
    norm = parse_normalize(normalize, [n for n, _ in entries])
    out = []
    for name, path in entries:
        if path.suffix == ".npz":
            ids, raw = load_indexed_features(path)
        else:
            raw, ids = load_features(path), row_ids
            if ids is not None and len(ids) != raw.shape[0]:
                raise input_error(path, f"{raw.shape[0]} feature rows but the items file lists "
                                  f"{len(ids)} item ids (one per feature row)")
        scale = maxabs_scale(raw) if norm[name] == "maxabs" else None
        out.append(Modality(name=name, file=path, normalize=norm[name], ids=ids, scale=scale,
                            array=normalize_array(raw, norm[name], scale=scale),
                            recipe=read_recipe(path)))
    return out


def align_by_id(mod: Modality, item_ids, missing="error"):
    """Rows of ``mod`` reordered to ``item_ids`` (raw ids of the data set's items, in index order).

    An item without a row is an error (``missing="error"``) or gets a zero row (``"zero"``,
    counted in ``mod.missing``). Rows of items absent from the data set are dropped.
    """
    if missing not in ("error", "zero"):
        raise option_error("missing_features", f"must be error or zero, got {missing!r}")
    keys = np.asarray([str(x) for x in mod.ids.tolist()])
    want = np.asarray([str(x) for x in np.asarray(item_ids).tolist()])
    order = np.argsort(keys, kind="stable")
    pos = np.searchsorted(keys[order], want)
    pos_c = np.minimum(pos, max(len(keys) - 1, 0))
    hit = (pos < len(keys)) & (keys[order][pos_c] == want) if len(keys) else \
        np.zeros(len(want), dtype=bool)
    n_miss = int((~hit).sum())
    if n_miss and missing == "error":
        first = want[~hit][0]
        raise input_error(mod.file, braced(f"no feature row for item {str(first)!r} ({n_miss} of "
                          f"{len(want)} items of the data set have none); ") + "add them, or "
                          "pass {missing_features} zero to give them a zero content row",
                          field=mod.name, names=("missing_features",))
    arr = derived_array((len(want), mod.dim), mod.array.dtype)
    dest, src = np.flatnonzero(hit), order[pos_c[hit]]
    for s, e in _row_blocks(len(dest), mod.dim):          # a block of rows at a time
        arr[dest[s:e]] = mod.array[src[s:e]]
    mod.array, mod.ids, mod.missing = arr, None, n_miss
    return mod


def combine(mods):
    """The concatenated feature matrix (a single modality: its array as it is) and each
    modality's zero-row count filled in."""
    if not mods:
        return None
    for m in mods:
        zero = 0
        for s, e in _row_blocks(*m.array.shape):
            zero += int((~np.asarray(m.array[s:e]).any(axis=1)).sum())
            release_rows(m.array, s, e)
        m.zero_rows = zero - m.missing      # the missing items' zero rows are counted apart
    rows = {m.array.shape[0] for m in mods}
    if len(rows) > 1:
        raise input_error(mods[1].file, f"{mods[1].array.shape[0]} rows but "
                          f"{mods[0].file.name} has {mods[0].array.shape[0]}: every modality needs "
                          "one row per item")
    return _concatenate([m.array for m in mods])


def _concatenate(arrays):
    """Modality arrays side by side (float32 unless all are float64; a :func:`derived_array`
    filled a block of rows at a time); one array as it is."""
    if len(arrays) == 1:
        return arrays[0]
    dtype = np.float64 if all(a.dtype == np.float64 for a in arrays) else np.float32
    n_rows = arrays[0].shape[0]
    out = derived_array((n_rows, sum(a.shape[1] for a in arrays)), dtype)
    for s, e in _row_blocks(*out.shape):
        start = 0
        for a in arrays:
            out[s:e, start:start + a.shape[1]] = a[s:e]
            release_rows(a, s, e)
            start += a.shape[1]
        release_rows(out, s, e)
    return out


def describe(info):
    """One line per data set: ``image 1280-d (l2; 15 zero rows), text 384-d``."""
    parts = []
    for m in info:
        extra = [m["normalize"]] if m["normalize"] != "none" else []
        if m.get("zero_rows"):
            extra.append(f"{m['zero_rows']} all-zero rows = items without {m['name']} content")
        if m.get("missing"):
            extra.append(f"{m['missing']} items missing from {m['file']}, given zero rows")
        parts.append(f"{m['name']} {m['dim']}-d from {m['file']}"
                     + (f" ({'; '.join(extra)})" if extra else ""))
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# New items of a trained model: the same checks and the recorded normalisation
# --------------------------------------------------------------------------------------------

def load_new_items(spec):
    """``(ids, features, recipes)`` of new items from ``spec``: one ``.npz`` (``ids`` and
    ``features``) per modality, comma-separated in the model's modality order, every file
    listing the same items (aligned by id to the first). ``features`` are the raw rows,
    concatenated and not normalised; ``recipes`` one :func:`read_recipe` per file."""
    mods = load_modalities(spec, "none", layout="plain")
    if not mods:
        raise option_error("features", "no features file given")
    for m in mods:
        if m.ids is None:
            raise input_error(m.file, "new items need their ids: give an .npz with arrays "
                              "'ids' and 'features'")
    ids = mods[0].ids
    for m in mods[1:]:
        if len(m.ids) != len(ids):
            raise input_error(m.file, f"{len(m.ids)} items but {mods[0].file.name} has "
                              f"{len(ids)}: every file needs a row for each new item")
        align_by_id(m, ids)
    return ids, combine(mods), [m.recipe for m in mods]


def normalize_like(info, raw, *, source="features"):
    """Raw item rows ``raw`` ``[n, D]`` (modalities concatenated in ``info``'s order) put
    through the normalisation a data set recorded in ``info`` (its ``feature_info``: each
    modality's ``dim``, ``normalize`` and, for maxabs, ``scale``) and concatenated as
    :func:`combine` does: a row comes out as it would have in that data set. ``info`` empty:
    ``raw`` as it is. ``source`` names the rows in messages."""
    raw = np.asarray(raw)
    if raw.ndim != 2 or raw.dtype.kind != "f":
        raise AmrliteError(f"{source}: new item features must be a 2-D float array, got "
                           f"{raw.dtype} {raw.shape}")
    _check_array(raw, source)
    if not info:
        return raw
    want = sum(int(m["dim"]) for m in info)
    if raw.shape[1] != want:
        raise AmrliteError(f"{source}: {raw.shape[1]} feature columns, but the model's features "
                           f"have {want} ({describe(info)})")
    parts, start = [], 0
    for m in info:
        block = raw[:, start:start + int(m["dim"])]
        start += int(m["dim"])
        norm = m.get("normalize", "none")
        if norm == "maxabs" and m.get("scale") is None:
            raise AmrliteError(f"{source}: the model records no maxabs scale for its "
                               f"{m['name']} features (trained by an older amrlite); retrain it "
                               "to add items")
        parts.append(normalize_array(np.ascontiguousarray(block), norm, scale=m.get("scale")))
    return _concatenate(parts)
