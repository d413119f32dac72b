"""The Python API: a model object with ``fit``, ``score``, ``recommend``, ``recommend_many``,
``save``/``load``, and ``evaluate``. The CLI (:mod:`amrlite.cli`) is a thin layer over this module.

>>> import amrlite
>>> data = amrlite.load_dataset()                       # the embedded synthetic set
>>> mf = amrlite.Model("mf", epochs=5).fit(data)
>>> amr = amrlite.Model("amr", epochs=5).fit(data, init=mf)
>>> amrlite.evaluate(amr, data)["NDCG@10"]             # doctest: +SKIP
"""
from __future__ import annotations

import copy
import inspect
import json
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .version import __version__
from .backends import get_backend
from .containers import Split, as_split, id_hint, raw_indices
from .data import append_ids, id_map, load_dataset
from .eals import EalsEpochs
from .errors import AmrliteError, option_error, quote
from .evaluation import evaluate_params
from .jsonio import atomic_write, dumps
from .negatives import csr, user_label
from .modalities import (RECIPE_NOT_COMPARED, check_distinct_ids, describe, is_path,
                         normalize_like)
from .models import ITEM_BLOCKS, KIND_DEFAULTS, ModelSpec, carry_over, factors, init_params, \
    item_factors
from .train import BprEpochs, History, TrainConfig, run_epochs


#: The layout of a model file this amrlite writes and reads (``format_version`` in the header;
#: files without one are version 1). Raise it when a change makes older amrlite misread a file.
MODEL_FORMAT = 1


class Model:
    """A recommender: POP, MF-BPR, MF-eALS, DUIF, VBPR or AMR (``kind``), in the Eq. 4 or He &
    McAuley ``form``, with the hyper-parameters of :class:`amrlite.train.TrainConfig` as
    keywords (those not given take :data:`amrlite.models.KIND_DEFAULTS`, then TrainConfig's).

    After ``fit``: ``params`` (host NumPy arrays by block name), ``history``, the item-side
    scoring matrix used by ``score``/``recommend`` (so a loaded model needs no data set), and
    ``warm``: the mask of items scored with their ID embedding (the pool its training negatives
    came from, see :attr:`amrlite.train.TrainConfig.negative_pool`); the rest by content alone.
    """

    def __init__(self, kind="amr", *, form="eq4", backend="auto", **hyper):
        self.spec = ModelSpec(kind, form)
        self.config = TrainConfig(**{**KIND_DEFAULTS.get(kind, {}), **hyper}).validate()
        self.backend_name = backend
        self.params: dict = {}
        self.accum: dict = {}
        self.history = History()
        self.header: dict = {}
        self._U = self._V = None
        self._seen = None       # training CSR (indptr, indices)
        #: every interaction of the data set trained on (training, validation and test rows) as
        #: a CSR of distinct sorted items: what recommend_many(exclude="seen") excludes
        self._interactions = None
        self.warm = None
        self.popularity = None
        self.user_ids = self.item_ids = None   # raw ids of the data trained on (None: index = id)

    @property
    def kind(self):
        return self.spec.kind

    # ------------------------------------------------------------------ training
    def fit(self, data, *, split="loo", features=None, init=None, progress=False, log_file=None,
            evaluate_on="valid", callback=None, keep="best"):
        """Train on ``data``.

        Parameters
        ----------
        data : Dataset or Split
            With a Dataset, ``split`` names the split (or is a Split).
        split : str or Split
        features : ndarray, optional
            Item features (default: ``data.features``).
        init : Model or path, optional
            A fitted model whose matching blocks start this one (the MF-BPR → VBPR → AMR chain).
        progress : bool
            A progress bar on stderr.
        log_file : file, optional
            One JSON line per epoch is appended.
        evaluate_on : {"valid", "test", None}
            The rows validated every ``eval_every`` epochs (NDCG@10 picks the best epoch).
        callback : callable, optional
            ``callback(info)`` after every epoch with an :class:`amrlite.train.EpochInfo`
            (``epoch``, ``loss``, ``seconds``, ``valid`` metrics or None, ``params()``);
            returning True stops training (as in implicit and scipy.optimize).
        keep : {"best", "last"}
            Keep the best validation epoch's parameters (the last epoch's when nothing was
            validated) or the last epoch's.

        Returns
        -------
        Model
            ``self``, fitted. Ctrl-C stops training and keeps what was learned
            (``history.interrupted``).
        """
        sp = as_split(data, split)
        if features is None:
            features = getattr(data, "features", None)
        self._dataset_info(data, sp)
        cfg = self.config
        backend = get_backend(self.backend_name)
        self.backend_used = backend.NAME
        self.warm = (sp.id_items(cfg.negative_pool) if self.spec.trains_by_bpr
                     else sp.warm_items).copy()
        self.popularity = np.bincount(sp.train_items, minlength=sp.n_items).astype(np.float64)
        self._seen = sp.train_csr
        self._interactions = _interaction_csr(data, sp)
        self.history = History()
        self.user_ids = getattr(data, "user_ids", None)
        self.item_ids = getattr(data, "item_ids", None)
        if self.spec.trains_by_bpr:
            _check_negatives_exist(sp, self.warm, self.user_ids)
        if self.spec.kind == "pop":
            self._refresh_factors(None)
            return self
        n_features = 0 if features is None else features.shape[1]
        self.params = init_params(self.spec, sp.n_users, sp.n_items, cfg.dim, n_features,
                                  seed=cfg.seed, std=cfg.init_std, dtype=np.dtype(cfg.dtype))
        stages = []
        if init is not None:
            init = Model.load(init) if isinstance(init, (str, Path)) else init
            carried = carry_over(self.params, init.params, self.spec)
            if not carried:
                raise option_error("init", f"the {init.spec.label} model shares no parameter block "
                                   f"of matching shape with {self.spec.label} (dim {cfg.dim})", "")
            self.header["init"] = {"kind": init.kind, "blocks": carried}
            stages = training_stages(init)
        self.accum = {k: np.zeros_like(v) for k, v in self.params.items()}
        if self.spec.kind == "eals":
            runner = EalsEpochs(self.params, sp, cfg, backend)
            features = None
        else:
            runner = BprEpochs(self.spec, self.params, self.accum, sp, features, cfg, backend)
        rows = getattr(sp, evaluate_on) if evaluate_on else None

        def validate(params):
            return evaluate_params(self.spec, params, features, sp, rows, id_items=self.warm,
                                   backend=backend)["all"]
        self.params, self.history = run_epochs(
            runner, cfg, evaluate=None if rows is None else validate, callback=callback, keep=keep,
            progress=progress, log_file=log_file)
        h = self.history
        self.header["stages"] = stages + [{
            "kind": self.kind, "form": self.spec.form, "split": sp.name,
            "epochs_run": len(h.losses), "best_epoch": h.best_epoch, "kept_epoch": h.kept_epoch}]
        self._refresh_factors(features)
        return self

    def _dataset_info(self, data, sp):
        """Record what :func:`model_data` needs to load the same data the same way later: the
        data set's absolute path, every load option (paths made absolute), the split's name,
        seed and sampled negatives, and the fingerprint that detects other data."""
        fp = data.fingerprint() if hasattr(data, "fingerprint") else None
        synthetic = bool(getattr(data, "synthetic", False))
        source = getattr(data, "source", None)
        if source is not None and not synthetic:
            source = str(Path(source).resolve())
        negatives = (None if sp.test is None else 0 if sp.test.negatives is None
                     else int(sp.test.negatives.shape[1]))
        self.header.update({
            "dataset": source, "dataset_name": getattr(data, "name", None),
            "synthetic": synthetic, "fingerprint": fp,
            "split": sp.name, "split_seed": sp.seed,
            "n_users": int(sp.n_users), "n_items": int(sp.n_items), "n_negatives": negatives,
            "features": list(getattr(data, "feature_info", []) or []),
            "filters": dict(getattr(data, "filters", {}) or {}),
            "load_options": absolute_options(getattr(data, "options", {}) or {}),
            "raw_ids": getattr(data, "user_ids", None) is not None
            or getattr(data, "item_ids", None) is not None,
        })

    def _refresh_factors(self, features):
        self._U, self._V = factors(self.spec, self.params, features, self.warm,
                                   popularity=self.popularity)

    # ------------------------------------------------------------------ scoring
    def score(self, users, items):
        """Scores ``x_ui`` for the pairs ``(users[k], items[k])`` (broadcasting like NumPy)."""
        users, items = np.asarray(users), np.asarray(items)
        V = self._V[items]
        if self._U is None:
            return V[..., 0]
        return np.einsum("...f,...f->...", self._U[users], V)

    def recommend(self, user, n=10, *, exclude_seen=True):
        """The ``n`` best items for ``user``: ``(items, scores)``, best first (fewer than ``n``
        where fewer items are left), as :meth:`recommend_many` for one known user with
        ``exclude="seen"`` (or ``"none"`` for ``exclude_seen=False``).

        For data read with raw ids (:attr:`user_ids` set) ``user`` is a raw user id and the items
        are raw item ids; otherwise both are indices.
        """
        chunk = next(iter(self.recommend_many(
            [user], n, exclude="seen" if exclude_seen else "none", unknown="error",
            _param="user")))
        k = int(chunk.counts[0])
        return chunk.items[0, :k], chunk.scores[0, :k].astype(np.float64)

    def recommend_many(self, users=None, n=10, *, exclude="seen", candidates="all",
                       unknown="popular", chunk_size=None, backend="auto", _param="users"):
        r"""Top-``n`` lists for many users, computed and yielded one chunk of users at a time.

        Every user's list is ``argmax-n`` over the candidate items of ``x_ui = U[u]·V[i]`` (the
        scores of :meth:`score`), best first, ties by the lower item index; only finite scores
        count, so a list is shorter than ``n`` when fewer candidates are left. The work is one
        fused kernel of the backend (``top_items``): score blocks of a few hundred users × a
        few thousand items, each merged into the users' top lists while in cache — memory
        O(chunk_size · n) plus the kernel's blocks, at any catalogue size.

        Parameters
        ----------
        users : iterable of ids, optional
            Raw user ids (indices for data without raw ids; ``"42"`` finds 42). Default: every
            user of the model, in index order. Repeats are answered repeatedly.
        n : int
            List length (≥ 1).
        exclude : {"seen", "none"}
            ``"seen"``: never recommend an item the user interacted with anywhere in the data
            set the model was trained on (training, validation and test rows; a model file of an
            older amrlite knows its training rows only, and says so in a warning).
        candidates : {"all", "new"} or iterable of item ids
            The items that may be recommended: the whole catalogue; the items without any
            interaction in the data set (scored by their features alone); or the given items.
        unknown : {"popular", "error"}
            A user the model does not know gets the most popular candidates (training
            interactions, ties by item index; ``source`` ``"popular"``, scores the counts), or
            raises :class:`~amrlite.errors.AmrliteError` naming it before anything is computed.
        chunk_size : int, optional
            Users per yielded chunk (default 4096). Every chunk's scores come from kernel calls
            of the same shapes, so the lists do not depend on it.
        backend : str
            ``auto``, ``numba``, ``numpy`` or ``cupy`` (:mod:`amrlite.backends`).

        Returns
        -------
        iterator of Recommendations
            One :class:`Recommendations` per chunk, in the order of ``users``. Arguments are
            checked (and every user looked up) when this is called, before the first chunk.
        """
        n = _positive(n, "n")
        chunk_size = _positive(4096 if chunk_size is None else chunk_size, "chunk_size")
        if exclude not in ("seen", "none"):
            raise option_error("exclude", "choose seen or none", repr(exclude))
        if unknown not in ("popular", "error"):
            raise option_error("unknown", "choose popular or error", repr(unknown))
        plan = _RecommendPlan(self, users, exclude, candidates, unknown, _param)
        return plan.chunks(n, chunk_size, get_backend(backend))

    def catalogue_items(self, which="new"):
        """Item indices: ``"new"`` — the items without any interaction in the data set the
        model was trained on (an older model file: without training interactions); ``"all"``."""
        n_items = len(self._V)
        if which == "all":
            return np.arange(n_items)
        indptr, indices = self._exclusions()
        return np.flatnonzero(np.bincount(indices, minlength=n_items) == 0)

    def _exclusions(self):
        """The CSR that ``exclude="seen"`` removes: every interaction, or (older model files)
        the training rows, with a warning."""
        if self._interactions is not None:
            return self._interactions
        warnings.warn("this model file records only its training interactions (saved by an "
                      "older amrlite): 'seen' items and 'new' items are judged by the training "
                      "rows alone; refit to use every interaction")
        return self._seen

    # ------------------------------------------------------------------ new products
    def add_items(self, ids, features, *, recipe=None, source="features"):
        """Add new items (products without interactions) to a fitted DUIF, VBPR or AMR model
        without retraining. Each is scored by its features alone, exactly as the model scores
        any item without an ID embedding (a catalogue item it was trained with, under the
        default ``negative_pool="warm"``):

            x_ui = p_u · (E c_i)                    (Eq. 4 and DUIF)
            x_ui = h_u · (E c_i) + w · c_i          (He & McAuley: no q_i, no b_i)

        with ``c_i`` the item's raw feature row put through the normalisation the model
        recorded for each modality (``l2`` row by row; ``maxabs`` divided by the training
        data's scale, not a new one).

        Parameters
        ----------
        ids : sequence
            Raw ids of the new items, distinct, none already an item of the model.
        features : ndarray ``[len(ids), D]``
            Raw (not normalised) feature rows: the model's modalities side by side, in its
            order (:func:`amrlite.modalities.load_new_items` reads them from ``.npz`` files).
        recipe : dict or list, optional
            The features' recipe record (:func:`amrlite.modalities.read_recipe`), one per
            modality; where the model recorded one too, they must agree.
        source : str
            How messages name the features (the CLI: the file).

        Returns
        -------
        Model
            ``self``: the new items are appended (indices ``n_items...``) with zero ID
            parameters, ``warm`` False and popularity 0; ``header["n_items"]`` grows and
            ``header["added_items"]`` records them. Saved and reloaded it scores the same.
        """
        if not self.spec.has_content:
            raise AmrliteError(f"a {self.spec.label} model has no content term (E c_i) to score "
                               "an item without interactions: add items to a DUIF, VBPR or AMR "
                               "model")
        if "E" not in self.params:
            raise AmrliteError("the model is not fitted: fit it before adding items")
        info = list(self.header.get("features") or [])
        ids = np.asarray(ids)
        if ids.ndim != 1 or not len(ids):
            raise AmrliteError(f"{source}: ids must be a non-empty 1-D sequence, got shape "
                               f"{ids.shape}")
        rows = normalize_like(info, features, source=source)
        if rows.shape != (len(ids), self.params["E"].shape[1]):
            raise AmrliteError(f"{source}: {rows.shape[0]} rows of {rows.shape[1]} features for "
                               f"{len(ids)} ids; the model needs one row of "
                               f"{self.params['E'].shape[1]} features per id")
        _check_recipes(info, recipe, source)
        new_ids = _extend_ids(self.item_ids, int(self.header["n_items"]), ids, source)
        m, blocks = len(ids), {}
        for name in ITEM_BLOCKS:
            if name in self.params:
                blocks[name] = np.zeros((m, *self.params[name].shape[1:]), self.params[name].dtype)
        V_new = item_factors(self.spec, {**self.params, **blocks}, rows, np.zeros(m, bool))
        for name, zeros in blocks.items():
            self.params[name] = np.concatenate([self.params[name], zeros])
            if name in self.accum:
                self.accum[name] = np.concatenate([self.accum[name], zeros])
        self._V = np.concatenate([self._V, np.asarray(V_new, dtype=self._V.dtype)])
        self.warm = np.concatenate([self.warm, np.zeros(m, dtype=bool)])
        self.popularity = np.concatenate([self.popularity, np.zeros(m)])
        self.item_ids = new_ids
        self.header["n_items"] = int(self.header["n_items"]) + m
        self.header.setdefault("added_items", []).append({"n": m, "source": str(source)})
        return self

    def trained_part(self):
        """The model as trained: without the items :meth:`add_items` appended (``self`` when
        it has none). Those items have no interactions in the data set the model was trained
        on, so evaluating or attacking it there scores this part (and gives what the model
        gave before the items were added)."""
        added = sum(int(a["n"]) for a in self.header.get("added_items", []))
        if not added:
            return self
        n = int(self.header["n_items"]) - added
        part = copy.copy(self)
        part.params = {k: v[:n] if k in ITEM_BLOCKS else v for k, v in self.params.items()}
        part.accum = {k: v[:n] if k in ITEM_BLOCKS else v for k, v in self.accum.items()}
        part._V, part.warm, part.popularity = self._V[:n], self.warm[:n], self.popularity[:n]
        part.item_ids = None if self.item_ids is None else id_map(np.asarray(self.item_ids)[:n])
        part.header = {k: v for k, v in self.header.items() if k != "added_items"}
        part.header["n_items"] = n
        return part

    # ------------------------------------------------------------------ persistence
    def save(self, path):
        """Write an ``.npz``: every parameter block and Adagrad accumulator, the scoring factors,
        the training CSR (for ``recommend``) and a JSON header (kind, form, hyper-parameters,
        data fingerprint, amrlite version, :data:`MODEL_FORMAT`). Written atomically
        (:func:`amrlite.jsonio.atomic_write`); a read-only ``path`` is refused."""
        path = Path(path)
        header = {"format": "amrlite-model", "format_version": MODEL_FORMAT,
                  "version": __version__, "kind": self.spec.kind,
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
        if self._interactions is not None:
            arrays["interactions_indptr"], arrays["interactions_indices"] = self._interactions
        for key in ("user_ids", "item_ids"):          # int64 or unicode: no pickle needed
            if getattr(self, key) is not None:
                arrays[key] = getattr(self, key)
        arrays["header"] = np.frombuffer(dumps(header).encode(), dtype=np.uint8)
        with atomic_write(path) as fh:
            np.savez(fh, **arrays)
        return path

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save`; it scores exactly as the saved one did.

        Refused with one line naming ``path``: a file that is not a complete amrlite model, a
        header that does not parse, a format version newer than :data:`MODEL_FORMAT` (files
        without one are version 1)."""
        path = Path(path)
        if not path.exists():
            raise AmrliteError(f"{path}: no such model file")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise AmrliteError(f"{path}: not an amrlite model file ({quote(str(exc), 80)})") \
                from None
        header = _read_header(path, arrays.pop("header", None))
        missing = [k for k in ("factor_V", "warm", "popularity", "seen_indptr", "seen_indices")
                   if k not in arrays]
        if missing:
            raise AmrliteError(f"{path}: not a complete amrlite model file (no {missing[0]})")
        try:
            model = cls(header["kind"], form=header.get("form", "eq4"),
                        backend=header.get("backend") or "auto",
                        **TrainConfig.from_dict(header.get("config", {})).to_dict())
        except (AmrliteError, TypeError) as exc:
            raise AmrliteError(f"{path}: damaged model header ({exc})") from None
        model.header = {k: v for k, v in header.items()
                        if k not in ("format", "format_version", "kind", "form", "config")}
        model.params = {k[6:]: v for k, v in arrays.items() if k.startswith("param_")}
        model.accum = {k[6:]: v for k, v in arrays.items() if k.startswith("accum_")}
        model._U = arrays.get("factor_U")
        model._V = arrays["factor_V"]
        model.warm = arrays["warm"]
        model.popularity = arrays["popularity"]
        model._seen = (arrays["seen_indptr"], arrays["seen_indices"])
        if "interactions_indptr" in arrays:      # older files: None (recommend says so)
            model._interactions = (arrays["interactions_indptr"], arrays["interactions_indices"])
        model.user_ids, model.item_ids = arrays.get("user_ids"), arrays.get("item_ids")
        model.backend_used = header.get("backend")
        return model

    def __repr__(self):
        return f"Model({self.spec.kind!r}, form={self.spec.form!r}, dim={self.config.dim})"


def _interaction_csr(data, sp):
    """``(indptr int64, indices int32)``: each user's distinct items over every interaction —
    the data set's log where ``data`` is a Dataset, and the split's training, validation and
    test rows — sorted."""
    parts = [(sp.train_users, sp.train_items)]
    parts += [(r.users, r.items) for r in (sp.valid, sp.test) if r is not None]
    if getattr(data, "users", None) is not None and not isinstance(data, Split):
        parts.append((data.users, data.items))
    users, items = (np.concatenate([np.asarray(p[k], dtype=np.int64) for p in parts])
                    for k in (0, 1))
    indptr, indices = csr(sp.n_users, users, items)
    return indptr, indices.astype(np.int32)


def _positive(value, name):
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise option_error(name, "must be a whole number of at least 1", repr(value))
    return int(value)


@dataclass
class Recommendations:
    """One chunk of :meth:`Model.recommend_many`: ``m`` users' top-``n`` lists.

    Attributes
    ----------
    users : ndarray [m]
        The users: raw ids (indices for data without raw ids) as the model knows them, and an
        unknown user as it was given (then an object array).
    user_index : ndarray int64 [m]
        Their indices in the model, −1 for a user it does not know.
    source : ndarray str [m]
        ``"model"`` (scored by the model) or ``"popular"`` (an unknown user).
    item_index : ndarray int64 [m, n]
        Item indices, best first; −1 past the end of a short list.
    items : ndarray [m, n]
        The raw item ids (indices for data without raw ids) of ``item_index``; entries past
        ``counts`` are filler.
    scores : ndarray [m, n]
        ``x_ui`` in the model's dtype (the popularity count for ``source == "popular"``); −∞
        past the end of a short list.
    """

    users: np.ndarray
    user_index: np.ndarray
    source: np.ndarray
    item_index: np.ndarray
    items: np.ndarray
    scores: np.ndarray

    @property
    def counts(self):
        """Items in each user's list (``n`` unless fewer candidates were left)."""
        return (self.item_index >= 0).sum(axis=1)

    def __len__(self):
        return len(self.users)

    def rows(self):
        """``(user, rank, item, score, source)`` tuples (rank from 1), list by list, best
        first; ids and scores as Python values."""
        for r, (user, k) in enumerate(zip(self.users.tolist(), self.counts.tolist())):
            src = str(self.source[r])
            for rank, (item, score) in enumerate(zip(self.items[r, :k].tolist(),
                                                     self.scores[r, :k].tolist()), 1):
                yield user, rank, item, score, src


class _RecommendPlan:
    """What :meth:`Model.recommend_many` resolves before computing anything: the users'
    indices, the candidate items and the exclusion CSR restricted to them."""

    def __init__(self, model, users, exclude, candidates, unknown, param):
        self.model = model
        n_users = len(model._seen[0]) - 1
        self.users, self.index = self._users(users, n_users, unknown, param)
        self.candidates = self._candidates(candidates)
        self.V = model._V if self.candidates is None else model._V[self.candidates]
        if exclude == "seen" and (self.index >= 0).any():
            self.indptr, self.indices = _restrict(*model._exclusions(), self.candidates,
                                                  len(model._V))
        else:
            self.indptr, self.indices = np.zeros(n_users + 1, np.int64), np.zeros(0, np.int32)

    def _users(self, users, n_users, unknown, param):
        """``(ids, indices)``: the users as the model knows them (an unknown one as given,
        index −1)."""
        ids = self.model.user_ids
        if users is None:
            return (np.arange(n_users) if ids is None else np.asarray(ids),
                    np.arange(n_users, dtype=np.int64))
        given = [users] if isinstance(users, (str, bytes, int, np.integer)) else list(users)
        index = raw_indices(ids, n_users, given)
        known = index if ids is None else ids[index]
        missing = np.flatnonzero(index < 0)
        if len(missing) and unknown == "error":
            raise option_error(param, "no such user (" + id_hint(ids, n_users, "user") + ")",
                               given[missing[0]])
        if len(missing):
            known = np.array([k if i >= 0 else g for k, i, g in zip(known.tolist(), index,
                                                                    given)], dtype=object)
        return known, index

    def _candidates(self, candidates):
        """Sorted candidate item indices (None: every item)."""
        model = self.model
        if isinstance(candidates, str) and candidates in ("all", "new"):
            if candidates == "all":
                return None
            new = model.catalogue_items("new")
            if not len(new):
                raise option_error("candidates", "every item of the model's catalogue has "
                                   "interactions, so there is no new item to recommend", "'new'")
            return new
        if isinstance(candidates, str):
            raise option_error("candidates", "choose all, new or a list of item ids",
                               repr(candidates))
        listed = list(candidates)
        index = raw_indices(model.item_ids, len(model._V), listed)
        if (index < 0).any():
            raise option_error("candidates", f"item {listed[np.flatnonzero(index < 0)[0]]}: no "
                               "such item (" + id_hint(model.item_ids, len(model._V), "item")
                               + ")", "")
        if not len(index):
            raise option_error("candidates", "the list of items is empty", "")
        return np.unique(index)

    def _item_ids(self, local):
        """``(item indices, raw item ids)`` of candidate positions ``local`` (−1 kept)."""
        idx = local if self.candidates is None else np.where(
            local >= 0, self.candidates[np.maximum(local, 0)], -1)
        ids = self.model.item_ids
        return idx, (idx if ids is None else ids[np.maximum(idx, 0)])

    def chunks(self, n, chunk_size, backend):
        """Yield :class:`Recommendations`, ``chunk_size`` users at a time."""
        model = self.model
        U = None if model._U is None else backend.to_device(model._U)
        V = backend.to_device(self.V)
        dtype = self.V.dtype if model._U is None else np.result_type(model._U, self.V)
        popular = None
        if (self.index < 0).any():
            pop = np.asarray(model.popularity, dtype=np.float64)
            pop = pop if self.candidates is None else pop[self.candidates]
            popular = backend.top_items(None, backend.to_device(pop[:, None]),
                                        np.zeros(1, np.int64), n, np.zeros(2, np.int64),
                                        np.zeros(0, np.int32))
        for start in range(0, len(self.index), chunk_size):
            index = self.index[start:start + chunk_size]
            known = index >= 0
            local = np.full((len(index), n), -1, dtype=np.int64)
            scores = np.full((len(index), n), -np.inf, dtype=dtype)
            if known.any():
                local[known], scores[known] = backend.top_items(
                    U, V, index[known], n, self.indptr, self.indices)
            if not known.all():
                local[~known], scores[~known] = popular[0][0], popular[1][0]
            idx, ids = self._item_ids(local)
            yield Recommendations(
                users=self.users[start:start + chunk_size], user_index=index,
                source=np.where(known, "model", "popular"), item_index=idx, items=ids,
                scores=scores)


def _restrict(indptr, indices, cand, n_items):
    """The CSR ``(indptr, indices)`` restricted to the sorted items ``cand`` and renumbered to
    their positions (still sorted); unchanged for ``cand`` None."""
    if cand is None:
        return indptr, indices
    pos = np.full(n_items, -1, dtype=np.int64)
    pos[cand] = np.arange(len(cand))
    mapped = pos[indices]
    keep = mapped >= 0
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))[keep]
    out = np.zeros_like(indptr)
    np.cumsum(np.bincount(rows, minlength=len(indptr) - 1), out=out[1:])
    return out, mapped[keep].astype(np.int32)


def _read_header(path, blob):
    """The JSON header of a model file, checked: an object of this format and a format version
    this amrlite reads (absent: version 1)."""
    if blob is None:
        raise AmrliteError(f"{path}: not an amrlite model file (no header)")
    try:
        header = json.loads(blob.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise AmrliteError(f"{path}: damaged model header (not valid JSON: {exc})") from None
    if not isinstance(header, dict) or header.get("format", "amrlite-model") != "amrlite-model":
        raise AmrliteError(f"{path}: not an amrlite model file (its header is not an amrlite "
                           "model header)")
    version = header.get("format_version", 1)
    if type(version) is not int or version < 1:
        raise AmrliteError(f"{path}: damaged model header (format_version "
                           f"{quote(str(version), 20)} is not a positive integer)")
    if version > MODEL_FORMAT:
        raise AmrliteError(f"{path}: model format version {version} is newer than this amrlite "
                           f"{__version__} reads (format version {MODEL_FORMAT}); upgrade amrlite")
    if not isinstance(header.get("kind"), str) or not isinstance(header.get("config", {}), dict):
        raise AmrliteError(f"{path}: damaged model header (no model kind or configuration)")
    return header


def _check_negatives_exist(sp, pool, user_ids):
    """BPR draws each training negative from the ``pool`` items (a mask: the warm items, or all
    with ``negative_pool="all"``) the user has not seen: a user who has seen every one of them (a
    tiny or degenerate split) has none to draw."""
    if not sp.n_train:
        raise AmrliteError(f"split {sp.name!r} has no training rows")
    n_pool = int(pool.sum())
    what = "items" if pool.all() else "training items"
    per_user = np.diff(sp.train_csr[0])
    full = np.flatnonzero(per_user >= n_pool)
    if len(full):
        raise AmrliteError(f"split {sp.name!r}: user {user_label(user_ids, int(full[0]))} has "
                           f"interacted with all {n_pool} {what}, so BPR has no negative "
                           f"to draw for it ({len(full)} user(s)); the data set is too small "
                           "(add items or users, or drop such users)")


def _check_recipes(info, recipe, source):
    """New items' features must be made as the model's were: the recipe records (one per
    modality) are compared where both are known; a side without one is only a warning."""
    if recipe is None:
        return
    recipes = [recipe] if isinstance(recipe, dict) else list(recipe)
    if info and len(recipes) != len(info):
        raise AmrliteError(f"{source}: {len(recipes)} features file(s), but the model has "
                           f"{len(info)} modalities ({describe(info)}): give one per modality, "
                           "in this order")
    for mine, theirs in zip(info, recipes):
        ours = mine.get("recipe")
        if ours is None or theirs is None:
            if (ours is None) != (theirs is None):
                warnings.warn(f"{source}: the recipe of the new {mine['name']} features cannot "
                              "be checked (" + ("they have" if ours is None else "the model has")
                              + " no recipe record)")
            continue
        diff = sorted(k for k in set(ours) | set(theirs)
                      if k not in RECIPE_NOT_COMPARED and ours.get(k) != theirs.get(k))
        if diff:
            raise AmrliteError(
                f"{source}: made with another recipe than the model's {mine['name']} features "
                f"({mine['file']}): " + "; ".join(
                    f"{k} {theirs.get(k)!r} here, {ours.get(k)!r} in the model" for k in diff))


def _extend_ids(item_ids, n_items, new, source):
    """The model's raw item ids (``None``: the indices) followed by ``new``: integers stay
    int64 (``None`` again where they are exactly ``0..n-1``), anything else becomes strings.
    An id that the model already has, or that is given twice, is refused."""
    old = np.arange(n_items) if item_ids is None else np.asarray(item_ids)
    keys = np.asarray([str(x) for x in new.tolist()])
    check_distinct_ids(keys, source, "ids")
    taken = np.isin(keys, old.astype(str))
    if taken.any():
        raise AmrliteError(f"{source}: id {str(keys[taken][0])!r} is already an item of the model "
                           f"({int(taken.sum())} of {len(keys)} new ids are)")
    return id_map(append_ids(old, keys))


def _check_same_ids(model, data, n_added=0):
    """A model trained on raw ids applies only to data whose ids map to the same indices
    (``n_added``: the model's last items were added after training, and are not compared)."""
    for key, what in (("user_ids", "user"), ("item_ids", "item")):
        mine, theirs = getattr(model, key, None), getattr(data, key, None)
        if key == "item_ids" and n_added and mine is not None:
            mine = id_map(np.asarray(mine)[:len(mine) - n_added])
        if mine is None and theirs is None:
            continue
        same = (mine is not None and theirs is not None and len(mine) == len(theirs)
                and np.array_equal(np.asarray(mine).astype(str), np.asarray(theirs).astype(str)))
        if not same:
            raise AmrliteError(f"the model's {what} ids differ from the data's ("
                               + ("the model has no raw ids" if mine is None else
                                  "the data has no raw ids" if theirs is None else
                                  f"{len(mine)} vs {len(theirs)}, or in another order")
                               + "): it was trained on other data or another id order")


def _features_label(info, detail=False, normalize=False):
    """``image (l2)+text`` (``detail``: with file and dimension; ``normalize``: ``text
    (none)`` too), or ``no features``."""
    if not info:
        return "no features"
    return "+".join(m["name"] + (f" ({m['file']}, {m['dim']}-d, {m.get('normalize', 'none')})"
                                 if detail else f" ({m.get('normalize', 'none')})"
                                 if normalize or m.get("normalize", "none") != "none" else "")
                    for m in info)


def check_same_features(model, data, param="features", loaded=False):
    """A model trained on some features refuses data with others, compared by file, dimension
    and normalisation (E was fitted to those features at that scale); a model without a content
    term only where the width differs (the data is then another data set). Data that records
    no features (a Split, a data set made in memory) is not checked unless ``loaded`` (it was
    read by :func:`model_data`: none means none). The error names ``param``: ``option
    'features': the model was trained with image (l2), the data set has text``."""
    mine = model.header.get("features")
    theirs = getattr(data, "feature_info", None)
    if mine is None or theirs is None or not theirs and not loaded:
        return
    key = lambda info: [(m["file"], m["dim"], m.get("normalize", "none"))  # noqa: E731
                        for m in info]
    width = lambda info: sum(m["dim"] for m in info)  # noqa: E731
    if key(mine) == key(theirs) or not model.spec.has_content and width(mine) == width(theirs):
        return
    norms = lambda info: [m.get("normalize", "none") for m in info]  # noqa: E731
    a, b = (_features_label(info, normalize=norms(mine) != norms(theirs))
            for info in (mine, theirs))
    if a == b:
        a, b = _features_label(mine, True), _features_label(theirs, True)
    raise option_error(param, f"the model was trained with {a}, the data set has {b}")


# ---------------------------------------------------------------------- the model's data
#: the load options that name files: recorded as absolute paths (``features`` may mix paths
#: and modality names of the data folder; only its paths are resolved)
PATH_OPTIONS = ("items",)


def absolute_options(options):
    """``options`` (:attr:`amrlite.containers.Dataset.options`) with every file path resolved
    against the working directory, so that a model's record of them holds from anywhere."""
    out = dict(options)
    for key in PATH_OPTIONS:
        if out.get(key) is not None:
            out[key] = str(Path(out[key]).resolve())
    if out.get("features") is not None:
        parts = [p.strip() for p in str(out["features"]).split(",")]
        out["features"] = ",".join(str(Path(p).resolve()) if is_path(p) else p for p in parts)
    return out


def _load_defaults():
    """``{keyword: default}`` of :func:`amrlite.data.load_dataset`'s data options."""
    return {k: p.default for k, p in inspect.signature(load_dataset).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and k != "name"}


def model_data(model, data=None, *, split=None, n_negatives=None, split_seed=None,
               check="data", **options):
    """The data set ``model`` was trained on, read the way it was read, and its split.

    The model records its data set's absolute path and every load option
    (:func:`amrlite.data.load_dataset`'s keywords: features, normalisation, columns, filters,
    id order, items file ...), the split's name, seed and sampled negatives. Each may be
    replaced here; what is not given is taken from the record.

    Parameters
    ----------
    model : Model
    data : str or Path, optional
        Replaces only the path (default: the recorded one; the synthetic data set for a model
        trained on it). A model of an older amrlite may record a relative path: it is read
        against the working directory.
    split, n_negatives, split_seed : optional
        The split (name), its sampled negatives per held-out row and its seed (default: the
        model's; for a model that records none, the data set's default split, 99 and 2019).
    check : {"data", "ids", None}
        ``"data"``: the data set must be the model's (same users and items in the same order,
        same interactions, same features for a content model); ``"ids"``: only the same users
        and items (what ``fit --init`` needs to carry parameters over); ``None``: no check. A
        mismatch raises an error naming the option that differs, e.g. ``option 'features': the
        model was trained with image (l2), the data set has text``.
    **options
        :func:`~amrlite.data.load_dataset` keywords that override the recorded ones (``None``:
        not given).

    Returns
    -------
    (Dataset, Split)
    """
    h = model.header
    defaults = _load_defaults()
    given = {k: v for k, v in options.items() if v is not None}
    unknown = [k for k in given if k not in defaults]
    if unknown:
        raise AmrliteError(f"model_data(): unknown load option {unknown[0]!r} (known: "
                           f"{', '.join(defaults)})")
    recorded = {k: v for k, v in (h.get("load_options") or {}).items() if k in defaults}
    path = data
    if path is None:
        if not h.get("synthetic"):
            path = h.get("dataset")
            if not path:
                raise option_error("data", "the model records no data set (it was trained on "
                                   "data given in memory); give the data set")
            if not Path(path).exists():
                raise option_error("data", f"the model was trained on {path}, which is not "
                                   "there any more; give the data set's new place")
    merged = {**recorded, **given}
    ds = load_dataset(path, **merged)
    if check:
        changed = {k: (recorded.get(k, defaults[k]), v) for k, v in given.items()
                   if v != recorded.get(k, defaults[k])}
        was = None if h.get("synthetic") else h.get("dataset")
        if data is not None and (was is None or Path(data).resolve() != Path(was).resolve()):
            changed["data"] = (was or "the synthetic data set", str(data))
        _check_model_data(model, ds, changed, ids_only=check == "ids")
    name = split if split is not None else h.get("split")
    negatives = n_negatives if n_negatives is not None else h.get("n_negatives")
    seed = split_seed if split_seed is not None else h.get("split_seed")
    sp = ds.split(name, **{k: v for k, v in (("seed", seed), ("n_negatives", negatives))
                           if v is not None})            # else Dataset.split's defaults
    return ds, sp


def _check_model_data(model, ds, changed, ids_only=False):
    """Refuse a data set that is not the one ``model`` was trained on, naming the option that
    makes it differ: of ``changed`` (``{option: (recorded value, value given)}``), ``data``
    (another path) before the others, else ``data`` (the file changed on disk)."""
    h = model.header
    if not ids_only:
        check_same_features(model, ds, "normalize" if "normalize" in changed
                             and "features" not in changed else "features", loaded=True)
    problem = None
    added = sum(int(a["n"]) for a in h.get("added_items", []))    # by add_items, after training
    if h.get("n_users") is not None \
            and (h["n_users"], h["n_items"] - added) != (ds.n_users, ds.n_items):
        problem = (f"{ds.n_users} users × {ds.n_items} items; the model was trained on "
                   f"{h['n_users']} × {h['n_items'] - added}")
    else:
        try:
            _check_same_ids(model, ds, added)
        except AmrliteError as exc:
            problem = str(exc)
        if problem is None and not ids_only and h.get("fingerprint") \
                and h["fingerprint"] != ds.fingerprint():
            problem = (f"other interactions (fingerprint {ds.fingerprint()}; the model's "
                       f"{h['fingerprint']})")
    if problem is None:
        return
    param = "data" if "data" in changed else next(iter(changed), None)
    if param is None:
        raise option_error("data", f"{ds.source} has changed since the model was trained on it: "
                           f"{problem}")
    if param == "data":
        raise option_error("data", f"the model was trained on {changed['data'][0]}; "
                           f"{ds.source} holds other data: {problem}")
    was, now = changed[param]
    raise option_error(param, ("the model was trained without it" if was is None else
                               f"the model was trained with {was!r}")
                       + f"; with {now!r} the data set differs: {problem}")


def training_stages(model):
    """The runs that made ``model``, first to last: its pre-training chain (``--init`` models,
    recursively) and itself; each a dict with ``kind``, ``form``, ``split``, ``epochs_run``,
    ``best_epoch`` and ``kept_epoch`` (the epoch whose parameters were kept, ``None`` where a
    model of an older amrlite does not say)."""
    stages = model.header.get("stages")
    if stages is not None:
        return [dict(s) for s in stages]
    cfg = model.config
    return [{"kind": model.kind, "form": model.spec.form, "split": model.header.get("split"),
             "epochs_run": None, "best_epoch": None,
             "kept_epoch": cfg.epochs if not cfg.eval_every else None}]


def trained_epochs(model, kind=None):
    """The epochs a new run of ``kind`` (default: ``model``'s own) trains to repeat ``model``'s
    schedule: the kept epoch (best validation epoch, else the epochs run) of the last stage of
    that kind among :func:`training_stages`. ``model`` is a Model or a path. Typical use:
    validate on a split, then train the production model on every interaction
    (``split="none"``) for the epoch the validation chose."""
    where = model if isinstance(model, (str, Path)) else "the model"
    model = Model.load(model) if isinstance(model, (str, Path)) else model
    kind = kind or model.kind
    stage = next((s for s in reversed(training_stages(model)) if s["kind"] == kind), None)
    if stage is None:
        have = ", ".join(s["kind"] for s in training_stages(model))
        raise option_error("epochs_from", f"{where} records no {kind} run (its runs: {have}); "
                           "give the epochs")
    if stage.get("kept_epoch") is None:
        raise option_error("epochs_from", f"{where} does not record which epoch its {kind} "
                           "parameters come from (saved by an older amrlite); give the epochs")
    return int(stage["kept_epoch"])


# ---------------------------------------------------------------------- the pre-training chain
def pretraining_chain(kind, form="eq4"):
    """The ``(kind, form)`` stages that train ``kind`` from nothing: AMR is trained from VBPR,
    which is trained from MF-BPR (the paper's MF-BPR → VBPR → AMR); any other kind alone."""
    if kind == "amr":
        return [("mf", "eq4"), ("vbpr", form), ("amr", form)]
    return [(kind, form)]


def fit_chain(stages, data, split="loo", *, init=None, backend="auto", hyper=None,
              progress=False, log_file=None, on_stage=None, epochs_from=None):
    """Train ``stages`` (``(kind, form)`` pairs) in order, each from the model before it.

    Parameters
    ----------
    stages : list of (str, str)
        E.g. :func:`pretraining_chain` ``("amr")``.
    data, split
        As for :meth:`Model.fit`.
    init : Model or path, optional
        What the first stage starts from.
    backend : str
    hyper : dict, optional
        The hyper-parameters every stage gets (each kind's :data:`~amrlite.models.KIND_DEFAULTS`
        fill the rest; without ``dim``, a stage started from ``init`` takes its K).
    on_stage : callable, optional
        ``on_stage(model, last)`` before each stage is trained (``last`` True for the final one).
    epochs_from : Model or path, optional
        Each stage trains :func:`trained_epochs` ``(epochs_from, kind)`` epochs (instead of
        ``hyper["epochs"]``): e.g. a validated chain's best epochs, to train on every
        interaction (``split="none"``).

    Returns
    -------
    list of Model
        The fitted models, one per stage; fewer when a stage was interrupted (Ctrl-C ends the
        chain after that stage, which keeps what it learned).
    """
    models = []
    for model in iter_chain(stages, data, split, init=init, backend=backend, hyper=hyper,
                            progress=progress, log_file=log_file, epochs_from=epochs_from):
        if on_stage is not None:
            on_stage(model, len(models) == len(stages) - 1)
        models.append(model)
    return models


def iter_chain(stages, data, split="loo", *, init=None, backend="auto", hyper=None,
               progress=False, log_file=None, epochs_from=None):
    """:func:`fit_chain` one stage at a time: yields each stage's model just *before* it is
    trained (its configuration set, for a caller to announce), and trains it when resumed; an
    interrupted stage ends the chain."""
    if isinstance(epochs_from, (str, Path)):
        epochs_from = Model.load(epochs_from)
    if isinstance(init, (str, Path)):
        init = Model.load(init)
    epochs = [None if epochs_from is None else trained_epochs(epochs_from, kind)
              for kind, _ in stages]                   # refused before any stage trains
    for (kind, form), n_epochs in zip(stages, epochs):
        stage_hyper = dict(hyper or {})
        if init is not None and "dim" not in stage_hyper:
            stage_hyper["dim"] = int(init.config.dim)      # K of the model it starts from
        if n_epochs is not None:
            stage_hyper["epochs"] = n_epochs
        model = Model(kind, form=form, backend=backend, **stage_hyper)
        yield model
        model.fit(data, split=split, init=init, progress=progress, log_file=log_file)
        if model.history.interrupted:
            return
        init = model


# ---------------------------------------------------------------------- evaluation
def evaluate_with_ranks(model, data, split="loo", *, on="test", full_ranking=False,
                        features=None, backend="numpy"):
    """Score ``model`` on ``data``'s ``on`` rows; returns :func:`amrlite.evaluation.evaluate_factors`' dict (with
    the per-row ``"ranks"``, for significance tests and attacks). A model with items added
    after training is evaluated as trained (:meth:`Model.trained_part`)."""
    model = model.trained_part()
    sp = as_split(data, split)
    rows = getattr(sp, on)
    if rows is None:
        raise AmrliteError(f"split {sp.name!r} has no {on} rows" + (
            " (it trains on every interaction and holds nothing out: evaluate on another split)"
            if sp.test is None else ""))
    if features is None:
        check_same_features(model, data)
    fp = data.fingerprint() if hasattr(data, "fingerprint") else None
    saved_fp = model.header.get("fingerprint")
    if fp and saved_fp and fp != saved_fp:
        raise AmrliteError(f"the model was trained on another data set (fingerprint {saved_fp}, "
                           f"data {fp})")
    check_sizes(model, sp)
    _check_same_ids(model, data)
    if features is None:
        features = getattr(data, "features", None)
    popularity = np.bincount(sp.train_items, minlength=sp.n_items).astype(np.float64)
    return evaluate_params(model.spec, model.params, features, sp, rows,
                           id_items=model_id_items(model, sp), popularity=popularity,
                           full_ranking=full_ranking, backend=get_backend(backend))


def check_sizes(model, sp, who=""):
    """Refuse the split ``sp`` unless its users × items are ``model``'s (``who``: a prefix
    naming the model in the message)."""
    if (model.header.get("n_items") not in (None, sp.n_items)
            or model.header.get("n_users") not in (None, sp.n_users)):
        raise AmrliteError(f"{who}the model knows {model.header.get('n_users')} users × "
                           f"{model.header.get('n_items')} items; the data has "
                           f"{sp.n_users} × {sp.n_items}")


def model_id_items(model, sp):
    """The items ``model`` scores with their ID embedding (:attr:`Model.warm`: the pool its
    negatives were drawn from), or ``sp``'s warm items for a model that records none."""
    return sp.warm_items if model.warm is None else np.asarray(model.warm, dtype=bool)


def evaluate(model, data, split="loo", *, on="test", full_ranking=False, features=None,
             backend="numpy"):
    """Evaluate a fitted ``model`` on ``data`` (a Dataset + split name, or a Split).

    Returns a flat dict: the nine metrics (HR@5/10/20, NDCG@5/10/20; ties count against the
    positive; cold test items scored by content alone) plus ``"warm"``/``"cold"`` sub-dicts,
    row counts ``"n"`` and the ``"protocol"`` (``sampled-99`` or ``full``).
    """
    res = evaluate_with_ranks(model, data, split, on=on, full_ranking=full_ranking,
                              features=features, backend=backend)
    rows = getattr(as_split(data, split), on)
    flat = dict(res["all"])
    flat.update({"warm": res["warm"], "cold": res["cold"], "n": res["n"],
                 "protocol": "full" if (full_ranking or rows.negatives is None) else
                 f"sampled-{rows.negatives.shape[1]}"})
    return flat
