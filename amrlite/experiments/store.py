"""Where the experiment's results live: strict, atomic JSON files (:func:`write_json`,
:func:`read_json`), the content keys that tell whether a stored result still holds
(:func:`content_key` of :func:`data_key` — interactions, features, split and negatives, amrlite
version —, the checkpoint's :func:`model_digest` and the configuration), and the stage store
:class:`Stages`
(``out_dir/stages/<stage>.json`` and ``out_dir/models/<stage>.npz``). Also the stored forms of
an evaluation (:func:`metrics_summary`) and of a paired test (:func:`norm_compare`), and the
loading of the data set argument (:func:`load_data`), what a worker needs to load it again
(:func:`data_ref`) and a sweep's checkpoint (:func:`checkpoint_path`)."""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

from .. import jsonio, kernels
from ..containers import Dataset
from ..data import load_dataset
from ..errors import AmrliteError, option_error
from ..jsonio import read_json, write_bytes  # noqa: F401  (re-exported: the stage store's I/O)
from ..metrics import METRIC_NAMES
from ..recommender import Model
from ..version import __version__
from .config import SUMMARY


def write_json(path, obj):
    """Write ``obj`` as strict JSON (:mod:`amrlite.jsonio`: non-finite floats as ``null``, never
    NaN/Infinity), atomically (:func:`amrlite.jsonio.atomic_write`). Returns the path."""
    return jsonio.write_json(path, obj, indent=1)


def config_key(d):
    """A canonical text of ``d`` (sorted keys), to compare configurations."""
    return jsonio.dumps(d, sort_keys=True)


def content_key(parts):
    """The content hash of a result: sha256 (hex) of the canonical JSON of ``parts``, the dict
    of everything that determines it (:func:`data_key`, checkpoints' :func:`model_digest`,
    configuration). Two results share a key only when all of that is equal."""
    return hashlib.sha256(config_key(parts).encode()).hexdigest()


def array_digest(*arrays):
    """sha256 (hex) of arrays' dtypes, shapes and bytes (None counts as absent)."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none;")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


#: ``{(path, inode, mtime_ns, size): digest}``: a model file read once per process, however
#: many stages (and the load-only probe of a chain) ask for its content (a model saved again
#: is a new file, by rename: a new inode, whatever the clock's resolution)
_DIGESTS = {}


def model_digest(path):
    """The content of the saved model ``path``: sha256 of its arrays (parameters, Adagrad
    accumulators, factors, training rows; not the JSON header, which records where and how it
    was trained), by name. A checkpoint retrained in place changes it, a copy or a re-save of
    the same model does not."""
    path = Path(path).resolve()
    st = path.stat()
    memo = (str(path), st.st_ino, st.st_mtime_ns, st.st_size)
    if memo not in _DIGESTS:
        with np.load(path, allow_pickle=False) as z:
            h = hashlib.sha256()
            for n in sorted(n for n in z.files if n != "header"):
                h.update(n.encode() + b"=" + array_digest(z[n]).encode())
        _DIGESTS[memo] = h.hexdigest()
    return _DIGESTS[memo]


def split_digest(sp):
    """The content of a split: its training pairs and every held-out row with its sampled
    negatives (so the split's name, seed and negatives count are all in it)."""
    parts = [np.array([sp.n_users, sp.n_items]), sp.train_users, sp.train_items]
    for rows in (sp.valid, sp.test):
        parts += [None, None, None] if rows is None else [rows.users, rows.items, rows.negatives]
    return array_digest(*parts)


def modality_key(ds):
    """``["image:1280:l2", ...]``: which feature modalities, of which dimension, normalised how
    (in concatenation order); part of every stage key, so image and text runs never mix."""
    return [f"{m['name']}:{m['dim']}:{m['normalize']}"
            for m in (getattr(ds, "feature_info", None) or [])]


@functools.lru_cache(maxsize=1)
def kernels_digest():
    """The kernels' version: sha256 of the source files of :mod:`amrlite.kernels` (names and
    bytes), so that results of other kernel code are never taken for this code's, whatever the
    version number says."""
    root = Path(kernels.__file__).parent
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in
                       (".py", ".cu", ".cuh", ".c", ".h")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def data_key(ds, sp):
    """What a result takes from its data and code: the interactions' fingerprint, the feature
    matrix's content (after normalisation) and its modalities, the split's name and content
    (negatives included), the amrlite version and the kernels' code (:func:`kernels_digest`)."""
    return {"data": ds.fingerprint(), "features": array_digest(ds.features),
            "modalities": modality_key(ds), "split": sp.name, "split_content": split_digest(sp),
            "version": __version__, "kernels": kernels_digest()}


def changed_parts(old, new, prefix=""):
    """The dotted names of the entries of two key dicts that differ, nested dicts descended
    (``["data.features", "config.epochs"]``): to say why a stored result is stale."""
    old = old if isinstance(old, dict) else {}
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if config_key(a) == config_key(b):
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += changed_parts(a, b, f"{prefix}{k}.")
        else:
            out.append(prefix + k)
    return out


def metrics_summary(flat):
    """The nine headline metrics of an :func:`amrlite.evaluate` result, plus warm/cold HR/NDCG@10."""
    out = {k: float(flat[k]) for k in METRIC_NAMES}
    for part in ("warm", "cold"):
        if flat.get("n", {}).get(part):
            out[part] = {k: float(flat[part][k]) for k in SUMMARY}
    return out


def norm_compare(res):
    """``significance.compare`` output as ``{metric: {mean_a, mean_b, diff, t_p, wilcoxon_p}}``
    (accepts the ``p_t``/``p_wilcoxon`` spelling and drops non-metric entries)."""
    out = {}
    for m, v in res.items():
        if not isinstance(v, dict):
            continue
        out[m] = dict(v, t_p=v.get("t_p", v.get("p_t")),
                      wilcoxon_p=v.get("wilcoxon_p", v.get("p_wilcoxon")))
    return out


def load_data(data, features=None, normalize="none"):
    """A Dataset from a Dataset (returned as is), a folder path, or None (the synthetic set).

    ``features``/``normalize``: the modalities of a folder and their normalisation, as
    :func:`amrlite.data.load_dataset` takes them (``"image"``, ``"image,text"``; ``"l2"`` or
    ``"image=l2,text=none"``); a Dataset given as is must not come with them."""
    if isinstance(data, Dataset):
        if features is not None or normalize != "none":
            raise AmrliteError("features/normalize apply to a data folder; the Dataset given "
                               "already holds its features")
        return data
    return load_dataset(None if data is None else str(data), features=features,
                        normalize=normalize)


def data_ref(ds):
    """What a worker process needs to rebuild ``ds``: its path, or the (picklable) object
    (also when it was loaded with options, e.g. ``features="image"``, that the path alone does
    not carry). :func:`load_data` turns it back into the Dataset."""
    src = getattr(ds, "source", None)
    if (src and not getattr(ds, "synthetic", False) and Path(src).exists()
            and not getattr(ds, "options", None)):
        return str(src)
    return ds


def checkpoint_path(init, out_dir):
    """The resolved path (text) of the checkpoint ``init`` of a sweep: a saved VBPR or AMR
    model's file, checked; a :class:`~amrlite.recommender.Model` is saved to
    ``out_dir/init.npz`` first."""
    if isinstance(init, Model):
        init_path = out_dir / "init.npz"
        init.save(init_path)
    else:
        init_path = Path(init)
        if not init_path.is_file():
            raise option_error("init", "no such model file", init)
        init_kind = Model.load(init_path).kind
        if init_kind not in ("vbpr", "amr"):
            raise option_error("init", f"a {init_kind} model; AMR sweeps start from a VBPR "
                               "(or AMR) checkpoint", init)
    return str(init_path.resolve())


class NotStored(Exception):
    """A load-only store (``Stages(load_only=True)``) was asked to compute a stage: the stage
    is not stored under its current key. Not an :class:`AmrliteError`, so that no stage takes
    it for a skip."""


class Stages:
    """Stage results as JSON files in ``out_dir/stages`` and models in ``out_dir/models``.

    A result is stored with its ``key`` (a dict of everything it depends on: configuration,
    data key, backend, the keys and contents of the models it used); :meth:`get` returns it
    only while the key is unchanged. ``trained``/``reused`` list the model stages of this run.

    ``tag`` is appended to every file name: seed index 0 of a multi-seed run has none (its
    files are those of the single-seed run, reused as they are), seed s > 0 has ``@seed<s>``.
    The seed is also in every key (through the models' configurations).

    ``load_only``: a stage that is not stored raises :class:`NotStored` instead of being
    computed (to ask whether a seed's chain is complete without running it).
    """

    def __init__(self, out_dir, log, tag="", load_only=False):
        self.tag, self.load_only = tag, load_only
        self.root = Path(out_dir)
        self.dir = self.root / "stages"
        self.models = self.root / "models"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.models.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.trained, self.reused = [], []

    def computing(self, name):
        """Called before stage ``name`` is computed: a load-only store raises
        :class:`NotStored`."""
        if self.load_only:
            raise NotStored(name)

    def get(self, name, key):
        """The stored result of stage ``name`` if it was computed under ``key``, else None."""
        old = read_json(self.path(name))
        if old is not None and old.get("key") == key:
            return old
        return None

    def put(self, name, key, result):
        """Store ``result`` of stage ``name`` under ``key``; returns it with its key."""
        result = dict(result, key=key)
        write_json(self.path(name), result)
        return result

    def cached(self, name, key, compute, message):
        """The stored result of ``name`` under ``key``, or (logging ``message``) ``compute()``
        stored under it."""
        result = self.get(name, key)
        if result is None:
            self.computing(name)
            self.log(message)
            result = self.put(name, key, compute())
        return result

    def path(self, name, ext="json"):
        """The stored file of stage ``name`` (``stages/<name><tag>.json``)."""
        return self.dir / f"{name}{self.tag}.{ext}"

    def model_path(self, name):
        return self.models / f"{name}{self.tag}.npz"

    def files(self, names):
        """The stored files of the stages ``names`` (JSON and model, where they exist) as
        ``{path relative to out_dir: bytes}``: what travels to and from a worker that has no
        access to ``out_dir``."""
        paths = [p for n in names for p in (self.path(n), self.model_path(n)) if p.is_file()]
        return {p.relative_to(self.root).as_posix(): p.read_bytes() for p in paths}

    def restore(self, files):
        """Write ``files`` (as :meth:`files` gives them) into this store, each atomically."""
        for rel, blob in files.items():
            path = self.root / rel
            if path.parent not in (self.dir, self.models):
                raise AmrliteError(f"{rel}: not a stage file")
            write_bytes(path, blob)
