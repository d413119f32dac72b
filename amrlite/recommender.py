"""The Python API: a model object with ``fit``, ``score``, ``recommend``, ``save``/``load``, and
``evaluate``. The CLI (:mod:`amrlite.cli`) is a thin layer over this module.

>>> import amrlite
>>> data = amrlite.load_dataset()                       # the embedded synthetic set
>>> mf = amrlite.Model("mf", epochs=5).fit(data)
>>> amr = amrlite.Model("amr", epochs=5).fit(data, init=mf)
>>> amrlite.evaluate(amr, data)["NDCG@10"]             # doctest: +SKIP
"""
from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np

from . import __version__
from .errors import AmrliteError
from .kernels import get_backend
from .metrics import METRIC_NAMES, full_ranks, metrics_from_ranks, sampled_ranks
from .models import ModelSpec, carry_over, factors, init_params
from .train import History, TrainConfig, train_bpr


def _as_split(data, split):
    """Accept a Split, or a Dataset plus a split (name or Split)."""
    from .data import Split
    if isinstance(data, Split):
        return data
    if isinstance(split, Split):
        return split
    return data.split(split)


class Model:
    """A recommender: POP, MF-BPR, DUIF, VBPR or AMR (``kind``), in the Eq. 4 or He & McAuley
    ``form``, with the hyper-parameters of :class:`amrlite.train.TrainConfig` as keywords.

    After ``fit``: ``params`` (host NumPy arrays by block name), ``history``, and the item-side
    scoring matrix used by ``score``/``recommend`` (so a loaded model needs no data set).
    """

    def __init__(self, kind="amr", *, form="eq4", backend="auto", **hyper):
        self.spec = ModelSpec(kind, form)
        self.config = TrainConfig(**hyper).validate()
        self.backend_name = backend
        self.params: dict = {}
        self.accum: dict = {}
        self.history = History()
        self.header: dict = {}
        self._U = self._V = None
        self._seen = None       # training CSR (indptr, indices) for recommend()
        self.warm = None
        self.popularity = None

    @property
    def kind(self):
        return self.spec.kind

    # ------------------------------------------------------------------ training
    def fit(self, data, *, split="loo", features=None, init=None, progress=False, log_file=None,
            evaluate_on="valid"):
        """Train on ``data`` (a Dataset and a ``split`` name, or a Split).

        ``init``: a fitted Model (or a path to a saved one) whose matching blocks start this one
        (the MF-BPR → VBPR → AMR chain). Validation runs every ``eval_every`` epochs when the
        split has a validation set; the best parameters by validation NDCG@10 are kept.
        """
        sp = _as_split(data, split)
        if features is None:
            features = getattr(data, "features", None)
        self._dataset_info(data, sp)
        cfg = self.config
        backend = get_backend(self.backend_name)
        self._backend = backend
        self.backend_used = backend.NAME
        self.warm = sp.warm_items.copy()
        self.popularity = np.bincount(sp.train_items, minlength=sp.n_items).astype(np.float64)
        self._seen = sp.train_csr
        if self.spec.kind == "pop":
            self.history = History()
            self._features = None
            self._refresh_factors(None)
            return self
        n_features = 0 if features is None else features.shape[1]
        dtype = np.dtype(cfg.dtype)
        self.params = init_params(self.spec, sp.n_users, sp.n_items, cfg.dim, n_features,
                                  seed=cfg.seed, std=cfg.init_std, dtype=dtype)
        if init is not None:
            init = Model.load(init) if isinstance(init, (str, Path)) else init
            carried = carry_over(self.params, init.params, self.spec)
            if not carried:
                raise AmrliteError(f"--init: the {init.spec.label} model shares no parameter block "
                                   f"of matching shape with {self.spec.label} (dim {cfg.dim})")
            self.header["init"] = {"kind": init.kind, "blocks": carried}
        self.accum = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._features = features
        if self.spec.kind == "eals":
            from .eals import train_eals  # noqa: WPS433 (optional module, experiments issue)
            best, self.history = train_eals(self, sp, backend, progress=progress)
        else:
            valid_fn = None
            if evaluate_on and getattr(sp, evaluate_on, None) is not None and cfg.eval_every:
                rows = getattr(sp, evaluate_on)

                def valid_fn(params):
                    return self._evaluate_rows(params, features, sp, rows)["all"]
            best, self.history = train_bpr(self.spec, self.params, self.accum, sp, features, cfg,
                                           backend, evaluate=valid_fn, progress=progress,
                                           log_file=log_file)
        self.params = best
        self._refresh_factors(features)
        return self

    def _dataset_info(self, data, sp):
        fp = data.fingerprint() if hasattr(data, "fingerprint") else None
        self.header.update({
            "dataset": getattr(data, "source", None), "dataset_name": getattr(data, "name", None),
            "synthetic": bool(getattr(data, "synthetic", False)), "fingerprint": fp,
            "split": sp.name, "n_users": int(sp.n_users), "n_items": int(sp.n_items),
        })

    def _refresh_factors(self, features):
        self._U, self._V = factors(self.spec, self.params, features, self.warm,
                                   popularity=self.popularity)

    # ------------------------------------------------------------------ scoring
    def _evaluate_rows(self, params, features, sp, rows, full_ranking=False):
        U, V = factors(self.spec, params, features, sp.warm_items, popularity=self.popularity)
        return evaluate_factors(U, V, sp, rows, full_ranking=full_ranking,
                                backend=getattr(self, "_backend", None))

    def score(self, users, items):
        """Scores ``x_ui`` for the pairs ``(users[k], items[k])`` (broadcasting like NumPy)."""
        users, items = np.asarray(users), np.asarray(items)
        V = self._V[items]
        if self._U is None:
            return V[..., 0]
        return np.einsum("...f,...f->...", self._U[users], V)

    def recommend(self, user, n=10, *, exclude_seen=True):
        """The ``n`` best items for ``user``: ``(items, scores)``, best first."""
        n_users = self.header.get("n_users", 0)
        if not 0 <= int(user) < n_users:
            raise AmrliteError(f"--user {user}: no such user (the model knows users 0..{n_users - 1})")
        scores = (self._V[:, 0] if self._U is None else self._V @ self._U[user]).astype(np.float64)
        if exclude_seen and self._seen is not None:
            indptr, indices = self._seen
            scores[indices[indptr[user]:indptr[user + 1]]] = -np.inf
        n = min(n, int(np.isfinite(scores).sum()))
        top = np.argpartition(-scores, n - 1)[:n] if n > 0 else np.zeros(0, dtype=np.int64)
        top = top[np.lexsort((top, -scores[top]))]
        return top, scores[top]

    # ------------------------------------------------------------------ persistence
    def save(self, path):
        """Write an ``.npz``: every parameter block and Adagrad accumulator, the scoring factors,
        the training CSR (for ``recommend``) and a JSON header (kind, form, hyper-parameters,
        data fingerprint, amrlite version). Written to a temporary file, then renamed."""
        path = Path(path)
        header = {"format": "amrlite-model", "version": __version__, "kind": self.spec.kind,
                  "form": self.spec.form, "config": self.config.to_dict(),
                  "backend": getattr(self, "backend_used", None), **self.header}
        arrays = {f"param_{k}": v for k, v in self.params.items()}
        arrays.update({f"accum_{k}": v for k, v in self.accum.items()})
        if self._U is not None:
            arrays["factor_U"] = self._U
        arrays["factor_V"] = self._V
        arrays["warm"] = self.warm
        arrays["popularity"] = self.popularity
        arrays["seen_indptr"], arrays["seen_indices"] = self._seen
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save`; it scores exactly as the saved one did."""
        path = Path(path)
        if not path.exists():
            raise AmrliteError(f"{path}: no such model file")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise AmrliteError(f"{path}: not an amrlite model file ({exc})") from None
        if "header" not in arrays:
            raise AmrliteError(f"{path}: not an amrlite model file (no header)")
        header = json.loads(arrays.pop("header").tobytes().decode())
        model = cls(header["kind"], form=header.get("form", "eq4"),
                    backend=header.get("backend") or "auto",
                    **TrainConfig.from_dict(header.get("config", {})).to_dict())
        model.header = {k: v for k, v in header.items()
                        if k not in ("format", "kind", "form", "config")}
        model.params = {k[6:]: v for k, v in arrays.items() if k.startswith("param_")}
        model.accum = {k[6:]: v for k, v in arrays.items() if k.startswith("accum_")}
        model._U = arrays.get("factor_U")
        model._V = arrays["factor_V"]
        model.warm = arrays["warm"]
        model.popularity = arrays["popularity"]
        model._seen = (arrays["seen_indptr"], arrays["seen_indices"])
        model.backend_used = header.get("backend")
        return model

    def __repr__(self):
        return f"Model({self.spec.kind!r}, form={self.spec.form!r}, dim={self.config.dim})"


# ---------------------------------------------------------------------- evaluation
def evaluate_factors(U, V, sp, rows, *, full_ranking=False, backend=None):
    """Metrics of the factorised scorer ``U[u]·V[i]`` on ``rows``, split into all / warm / cold
    test items. Returns ``{"all": {...}, "warm": {...}, "cold": {...}, "n": {...}, "ranks": r}``.

    The ranks are counted by ``backend``'s ``sampled_ranks``/``full_ranks`` kernels where it has
    them (Numba: parallel over users; CuPy: on the device), else by :mod:`amrlite.metrics`; every
    one returns the same host integer ranks.
    """
    ranker = backend if U is not None and hasattr(backend, "sampled_ranks") else None
    if ranker is not None and ranker.xp is not np:
        U, V = ranker.to_device(np.ascontiguousarray(U)), ranker.to_device(np.ascontiguousarray(V))
    if full_ranking or rows.negatives is None:
        indptr, indices = sp.train_csr
        rank = ranker.full_ranks if ranker is not None else full_ranks
        ranks = rank(U, V, rows.users, rows.items, indptr, indices)
    else:
        rank = ranker.sampled_ranks if ranker is not None else sampled_ranks
        ranks = rank(U, V, rows.users, rows.items, rows.negatives)
    ranks = np.asarray(ranks)
    warm = sp.warm_items[rows.items]
    out = {"all": metrics_from_ranks(ranks), "warm": metrics_from_ranks(ranks[warm]),
           "cold": metrics_from_ranks(ranks[~warm]),
           "n": {"all": int(len(ranks)), "warm": int(warm.sum()), "cold": int((~warm).sum())},
           "ranks": ranks}
    return out


def evaluate_with_ranks(model, data, split="loo", *, on="test", full_ranking=False,
                        features=None, backend="numpy"):
    """Score ``model`` on ``data``'s ``on`` rows; returns :func:`evaluate_factors`' dict (with
    the per-row ``"ranks"``, for significance tests and attacks)."""
    sp = _as_split(data, split)
    rows = getattr(sp, on)
    if rows is None:
        raise AmrliteError(f"split {sp.name!r} has no {on} rows")
    fp = data.fingerprint() if hasattr(data, "fingerprint") else None
    saved_fp = model.header.get("fingerprint")
    if fp and saved_fp and fp != saved_fp:
        raise AmrliteError(f"the model was trained on another data set (fingerprint {saved_fp}, "
                           f"data {fp})")
    if (model.header.get("n_items") not in (None, sp.n_items)
            or model.header.get("n_users") not in (None, sp.n_users)):
        raise AmrliteError(f"the model knows {model.header.get('n_users')} users × "
                           f"{model.header.get('n_items')} items; the data has "
                           f"{sp.n_users} × {sp.n_items}")
    if features is None:
        features = getattr(data, "features", None)
    popularity = np.bincount(sp.train_items, minlength=sp.n_items).astype(np.float64)
    U, V = factors(model.spec, model.params, features, sp.warm_items, popularity=popularity)
    return evaluate_factors(U, V, sp, rows, full_ranking=full_ranking,
                            backend=get_backend(backend))


def evaluate(model, data, split="loo", *, on="test", full_ranking=False, features=None,
             backend="numpy"):
    """Evaluate a fitted ``model`` on ``data`` (a Dataset + split name, or a Split).

    Returns a flat dict: the nine metrics (HR@5/10/20, NDCG@5/10/20; ties count against the
    positive; cold test items scored by content alone) plus ``"warm"``/``"cold"`` sub-dicts,
    row counts ``"n"`` and the ``"protocol"`` (``sampled-99`` or ``full``).
    """
    res = evaluate_with_ranks(model, data, split, on=on, full_ranking=full_ranking,
                              features=features, backend=backend)
    rows = getattr(_as_split(data, split), on)
    flat = dict(res["all"])
    flat.update({"warm": res["warm"], "cold": res["cold"], "n": res["n"],
                 "protocol": "full" if (full_ranking or rows.negatives is None) else
                 f"sampled-{rows.negatives.shape[1]}"})
    return flat
