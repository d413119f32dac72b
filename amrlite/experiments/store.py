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
from ..metrics import METRIC_NAMES
from .config import SUMMARY


def write_json(path, obj):
    """Write ``obj`` as strict JSON (:mod:`amrlite.jsonio`: non-finite floats as ``null``, never
    NaN/Infinity), atomically (a temporary file, then a rename). Returns the path."""
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


def load_data(data):
    """A Dataset from a Dataset (returned as is), a folder path, or None (the synthetic set)."""
    from ..data import Dataset, load_dataset
    if isinstance(data, Dataset):
        return data
    return load_dataset(None if data is None else str(data))


class _Stages:
    """Stage results as JSON files in ``out_dir/stages`` and models in ``out_dir/models``.

    A result is stored with its ``key`` (a dict of everything it depends on: configuration,
    data fingerprint, split, backend, the keys of the models it used); :meth:`get` returns it
    only while the key is unchanged. ``trained``/``reused`` list the model stages of this run.

    ``tag`` is appended to every file name: seed index 0 of a multi-seed run has none (its
    files are those of the single-seed run, reused as they are), seed s > 0 has ``@seed<s>``.
    The seed is also in every key (through the models' configurations).
    """

    def __init__(self, out_dir, log, tag=""):
        self.tag = tag
        self.dir = Path(out_dir) / "stages"
        self.models = Path(out_dir) / "models"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.models.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.trained, self.reused = [], []

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
            self.log(message)
            result = self.put(name, key, compute())
        return result

    def path(self, name, ext="json"):
        """The stored file of stage ``name`` (``stages/<name><tag>.json``)."""
        return self.dir / f"{name}{self.tag}.{ext}"

    def model_path(self, name):
        return self.models / f"{name}{self.tag}.npz"
