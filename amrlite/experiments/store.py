"""Where the experiment's results live: strict, atomic JSON files (:func:`write_json`,
:func:`read_json`), the keys that tell whether a stored result still holds (configuration, data
fingerprint, checkpoint: :func:`config_key`), and the stage store :class:`_Stages`
(``out_dir/stages/<stage>.json`` and ``out_dir/models/<stage>.npz``). Also the stored forms of
an evaluation (:func:`metrics_summary`) and of a paired test (:func:`norm_compare`), and the
loading of the data set argument (:func:`load_data`)."""
from __future__ import annotations

import json
from pathlib import Path

from .. import jsonio
from ..jsonio import write_bytes  # noqa: F401  (re-exported: the stage store's atomic write)
from ..errors import AmrliteError
from ..metrics import METRIC_NAMES
from .config import SUMMARY


def write_json(path, obj):
    """Write ``obj`` as strict JSON (:mod:`amrlite.jsonio`: non-finite floats as ``null``, never
    NaN/Infinity), atomically (:func:`amrlite.jsonio.atomic_write`). Returns the path."""
    return jsonio.write_json(path, obj, indent=1)


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


def config_key(d):
    """A canonical text of ``d`` (sorted keys), to compare configurations."""
    return jsonio.dumps(d, sort_keys=True)


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
    from ..data import Dataset, load_dataset
    if isinstance(data, Dataset):
        if features is not None or normalize != "none":
            raise AmrliteError("features/normalize apply to a data folder; the Dataset given "
                               "already holds its features")
        return data
    return load_dataset(None if data is None else str(data), features=features,
                        normalize=normalize)


class NotStored(Exception):
    """A load-only store (``_Stages(load_only=True)``) was asked to compute a stage: the stage
    is not stored under its current key. Not an :class:`AmrliteError`, so that no stage takes
    it for a skip."""


class _Stages:
    """Stage results as JSON files in ``out_dir/stages`` and models in ``out_dir/models``.

    A result is stored with its ``key`` (a dict of everything it depends on: configuration,
    data fingerprint, split, backend, the keys of the models it used); :meth:`get` returns it
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
