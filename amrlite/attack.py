r"""Test-time robustness: perturb the item content features and measure what the ranking loses.

An attacker may move each item's feature vector ``c_k`` to ``c_k + Δ_k`` with ``‖Δ_k‖ ≤ ε``.
There is *one* Δ per item, shared by every user (an image is the same for everyone). The model
is fixed; only the features change. Models without content (POP, MF-BPR, MF-eALS) are unaffected
by construction: their drop is exactly 0 at every ε.

Kinds (see ``docs/robustness.md``):

* ``adversarial`` (fast gradient method, the paper's Eq. 7): ``Δ_k = ε Γ_k / ‖Γ_k‖`` with Γ the
  gradient of a BPR loss with respect to the features; with ``steps = S > 1`` projected
  gradient ascent on the ε-ball (step ``2.5 ε / S``, Γ recomputed at ``c + Δ`` each step; the
  iterate with the largest attacked loss is kept, the one-step point included, so it is never
  weaker than one step *by that loss*).
* ``sign``: ``Δ_k = ε sign(Γ_k)`` (FGSM, the L∞ ball: ‖Δ_k‖₂ can reach ε√D).
* ``random``: a Gaussian direction of norm ε per item, metrics averaged over ``repeats`` draws.
* ``certified``: no perturbation at all, but the worst case over *every* Δ in the L2 ε-ball,
  per evaluation row; a lower bound on the metrics that no L2 attack of radius ε can beat.

Objectives of Γ:

* ``test``: the BPR loss of every evaluation row's positive against each of its (sampled)
  negatives (all non-training items under full ranking): a white-box attack on the evaluation;
* ``train``: the BPR loss over the training pairs, each with one seeded negative drawn
  uniformly from the pool the model was trained with (``Model.warm``: the warm items by
  default, every item with ``negative_pool="all"``). Items outside that pool never occur in the
  objective: Γ is zero for them and they are not moved.

Γ in closed form: ``Γ_k = Ẽᵀ ṽ_k`` with ``ṽ_k`` a segment sum of ``±s g̃_u`` over the objective's
pairs (``docs/closed-form-adversary.md``, last section), so the pairs only ever meet K-dim
vectors: a sparse (items × users) matrix of summed ±s times the user table, then one
(n_items × K′)·(K′ × D) product. No (pairs × D) array is formed.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse

from .containers import as_split
from .errors import AmrliteError, option_error
from .evaluation import evaluate_factors
from .kernels import reference as ref
from .metrics import METRIC_NAMES, metrics_from_ranks
from .models import content_user_vectors, factors
from .recommender import check_sizes, model_id_items

KINDS = ("adversarial", "random", "sign", "certified")
OBJECTIVES = ("test", "train")
TOP_N = 10
#: feature values (item rows × D) an attack holds at once in float64: Γ, Δ and c + Δ are formed
#: block by block of item rows (32 MB each), so memory stays bounded at any catalogue size; a
#: catalogue that fits in one block is computed exactly as one whole array
BLOCK_VALUES = 1 << 22
#: objective pairs (u, i, j) handled at once: their scores and their sparse (items × users)
#: matrix of ±dℓ/dx are formed a chunk at a time, so memory does not grow with the pairs
PAIR_CHUNK = 1 << 20
#: pairs scored at once within a chunk (their gathered K-vectors: 32 MB each at K = 64)
SCORE_CHUNK = 1 << 16
#: full-ranking objective and certified bound: at most this many (row, item) float64 scores in
#: one block (32 MB)
OBJECTIVE_SCORES = 1 << 22


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------

def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def eps_key(eps):
    """The JSON key of one ε: ``repr`` of the float, so 0.1 → ``"0.1"``, 1 → ``"1.0"``."""
    return repr(float(eps))


def eps_entry(eps_dict, eps):
    """The entry for ``eps`` of an attack result's ``"eps"`` dict (keyed by :func:`eps_key`
    text; matched with :func:`math.isclose`), or None."""
    for k, v in eps_dict.items():
        if math.isclose(float(k), float(eps)):
            return v
    return None


def parse_eps_list(text):
    """``"0.01,0.05,0.1"`` → ``[0.01, 0.05, 0.1]``; AmrliteError on anything else."""
    if isinstance(text, (int, float)):
        text = str(text)
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",")]
    else:
        parts = list(text)
    if not parts or any(p == "" for p in parts):
        raise option_error("eps", "give a comma-separated list of numbers ≥ 0, e.g. 0.01,0.05,0.1",
                           repr(text))
    out = []
    for p in parts:
        try:
            v = float(p)
        except (TypeError, ValueError):
            raise option_error("eps", f"{p!r} is not a number (give e.g. 0.01,0.05,0.1)", "") \
                from None
        if not math.isfinite(v) or v < 0:
            raise option_error("eps", f"{p!r} must be a finite number ≥ 0", "")
        out.append(v)
    return out


def _check(kind, objective, steps, repeats):
    if kind not in KINDS:
        raise AmrliteError(f"unknown attack kind {kind!r}; choose one of {', '.join(KINDS)}")
    if objective not in OBJECTIVES:
        raise AmrliteError(f"unknown attack objective {objective!r}; choose test or train")
    if int(steps) != steps or steps < 1:
        raise option_error("steps", "must be an integer ≥ 1", repr(steps))
    if int(repeats) != repeats or repeats < 1:
        raise option_error("repeats", "must be an integer ≥ 1", repr(repeats))


def attack_context(model, dataset, split, on):
    """What an attack of ``model`` reads: the model as trained (:meth:`Model.trained_part
    <amrlite.recommender.Model.trained_part>`: without items added after training), the split
    (:func:`~amrlite.containers.as_split`), its ``on`` rows (``"test"`` or ``"valid"``) and the
    item features, checked against the model (its users × items, features when it reads
    them). Returns ``(model, split, rows, features)``."""
    model = model.trained_part()
    sp = as_split(dataset, split)
    rows = getattr(sp, on, None)
    if rows is None:
        raise AmrliteError(f"split {sp.name!r} has no {on} rows")
    check_sizes(model, sp)
    features = getattr(dataset, "features", None)
    if model.spec.has_content and features is None:
        raise AmrliteError(f"{model.spec.label} reads item features, but the data set has none")
    return model, sp, rows, features


def _metric_summary(res):
    """Flat nine metrics + warm/cold sub-dicts + row counts (as :func:`recommender.evaluate`)."""
    out = dict(res["all"])
    out.update({"warm": res["warm"], "cold": res["cold"], "n": res["n"]})
    return out


def _average(summaries):
    if len(summaries) == 1:
        return summaries[0]
    out = {k: float(np.mean([s[k] for s in summaries])) for k in METRIC_NAMES}
    for part in ("warm", "cold"):
        out[part] = {k: float(np.mean([s[part][k] for s in summaries])) for k in METRIC_NAMES}
    out["n"] = summaries[0]["n"]
    return out


def relative_drops(clean, attacked):
    """Relative drop ``(clean − attacked) / clean`` per metric (None where clean is 0)."""
    return {k: (None if clean[k] == 0 else float((clean[k] - attacked[k]) / clean[k]))
            for k in METRIC_NAMES}


# ---------------------------------------------------------------------------------------------
# item-row blocks: Γ and Δ without an (n_items × D) float64 array
# ---------------------------------------------------------------------------------------------

def item_blocks(n_items, n_features):
    """``(start, stop)`` of consecutive item rows, at most :data:`BLOCK_VALUES` values each."""
    step = max(1, BLOCK_VALUES // max(1, int(n_features)))
    return [(s, min(int(n_items), s + step)) for s in range(0, int(n_items), step)] or [(0, 0)]


class Rows:
    """An ``n_items × D`` float64 array given block by block: ``block(s, e)`` computes rows
    ``s:e`` (the last block is kept, so a one-block catalogue computes it once);
    :meth:`dense` the whole array. Perturbations Δ and gradients Γ are ``Rows``: the attacks
    only ever read them a block at a time."""

    def __init__(self, shape, compute):
        self.shape = tuple(shape)
        self._compute = compute
        self._last = None

    @classmethod
    def of(cls, array):
        """A dense array as ``Rows`` (None stays None)."""
        if array is None or isinstance(array, Rows):
            return array
        return cls(array.shape, lambda s, e: array[s:e])

    def block(self, s, e):
        if self._last is None or self._last[:2] != (s, e):
            self._last = (s, e, self._compute(s, e))
        return self._last[2]

    def dense(self):
        return self.block(0, self.shape[0])


def _gamma_rows(v, a, E, w):
    """Γ = v E (+ a wᵀ) (``docs/closed-form-adversary.md``) as :class:`Rows`."""
    def compute(s, e):
        gamma = v[s:e] @ E
        if w is not None:
            gamma += a[s:e, None] * w[None, :]
        return gamma
    return Rows((v.shape[0], E.shape[1]), compute)


def _step_rows(delta, gamma, eps, kind, alpha=None):
    """One attack step as :class:`Rows`: ``ε dir(Γ)`` (``alpha`` None), else the projected
    ascent step ``Π_ε(Δ + α dir(Γ))`` from ``delta``."""
    def compute(s, e):
        direction = _direction(gamma.block(s, e), kind)
        if alpha is None:
            return eps * direction
        prev = np.zeros((e - s, gamma.shape[1])) if delta is None else delta.block(s, e)
        return _project(prev + alpha * direction, eps, kind)
    return Rows(gamma.shape, compute)


def _random_rows(shape, eps, rng):
    """``ε z_k / ‖z_k‖`` with ``z ~ N(0, I)`` drawn by ``rng`` row after row (the same numbers
    as one ``rng.standard_normal(shape)``), as :class:`Rows`; ``rng`` is moved past them."""
    state = rng.bit_generator.state
    for s, e in item_blocks(*shape):
        rng.standard_normal((e - s, shape[1]))
    replay = {"rng": None, "at": None}

    def compute(s, e):
        if replay["at"] != s:                      # restart the stream and skip to row s
            replay["rng"] = np.random.Generator(type(rng.bit_generator)())
            replay["rng"].bit_generator.state = state
            if s:
                replay["rng"].standard_normal((s, shape[1]))
        z = replay["rng"].standard_normal((e - s, shape[1]))
        replay["at"] = e
        return eps * _unit_rows(z)
    return Rows(shape, compute)


# ---------------------------------------------------------------------------------------------
# the attacker: Γ, the attacked loss, the perturbed metrics
# ---------------------------------------------------------------------------------------------

class Attacker:
    """Everything one model × split × objective needs, computed once: the pairs (u, i, j) of
    the objective, the loss and its gradient Γ w.r.t. the item features (:meth:`loss_and_gamma`)
    and the metrics at perturbed features (:meth:`ranks_and_metrics`). Built by
    :func:`attack` and :func:`rank_change` (and the pixel attack), passed to
    :func:`perturbation`."""

    def __init__(self, model, sp, rows, features, objective, seed, full_ranking):
        self.spec, self.params = model.spec, model.params
        self.sp, self.rows, self.features = sp, rows, features
        self.id_items = model_id_items(model, sp)
        self.full = bool(full_ranking or rows.negatives is None)
        self.popularity = np.bincount(sp.train_items, minlength=sp.n_items).astype(np.float64)
        if not self.spec.has_content:
            return
        p64 = {k: np.asarray(v, dtype=np.float64) for k, v in self.params.items()}
        self.p64 = p64
        self.g = content_user_vectors(self.spec, p64)                  # n_users × K
        self.E = p64["E"]                                              # K × D
        self.w = p64.get("w") if self.spec.has_bias else None
        self.c = features                      # read block by block, never copied whole
        self.blocks = item_blocks(*features.shape)
        self.objective = objective
        self.train_pairs = None
        if objective == "train":               # one seeded epoch's triples: linear in the data
            indptr, indices = sp.train_csr
            pool = np.flatnonzero(self.id_items).astype(np.int32)
            rng = np.random.default_rng([seed, 7])
            self.train_pairs = ref.sample_epoch(sp.train_users, sp.train_items, indptr, indices,
                                                pool, rng)

    # ---- the pairs of the objective
    @property
    def dense_objective(self):
        """True when the objective is every (row, candidate) pair of a full ranking: it is
        then formed as blocks of rows × all items, never as a list of pairs."""
        return self.objective == "test" and self.full

    def pair_chunks(self, chunk=None):
        """The objective's triples ``(u, i, j)`` as consecutive chunks of at most ``chunk``
        (default :data:`PAIR_CHUNK`) pairs, in one fixed order: the training triples of one
        seeded epoch (``train``), or each evaluation row's positive against each of its sampled
        negatives (``test``). Not for the full-ranking test objective (:attr:`dense_objective`):
        there :meth:`pairs` lists them, for checks on small problems."""
        chunk = PAIR_CHUNK if chunk is None else int(chunk)
        if self.train_pairs is not None:
            u, i, j = self.train_pairs
            for s in range(0, len(u), chunk):
                yield u[s:s + chunk], i[s:s + chunk], j[s:s + chunk]
            return
        if self.dense_objective:
            raise AmrliteError("the full-ranking objective is formed in dense blocks, not pairs")
        rows, n = self.rows, self.rows.negatives.shape[1]
        step = max(1, chunk // max(1, n))
        for s in range(0, len(rows), step):
            sl = slice(s, s + step)
            yield (np.repeat(rows.users[sl], n), np.repeat(rows.items[sl], n),
                   np.asarray(rows.negatives[sl]).ravel())

    def pairs(self):
        """Every triple ``(u, i, j)`` of the objective at once (the full-ranking test objective:
        each row's positive against every item outside the user's training set): the definition
        :meth:`loss_and_gamma` computes, for checks on small problems."""
        if not self.dense_objective:
            return next(self.pair_chunks(chunk=1 << 62), (np.zeros(0, np.int64),) * 3)
        indptr, indices = self.sp.train_csr
        us, ps, ns = [], [], []
        for u, i in zip(self.rows.users, self.rows.items):
            mask = np.ones(self.sp.n_items, dtype=bool)
            mask[indices[indptr[u]:indptr[u + 1]]] = False
            mask[i] = False
            cand = np.flatnonzero(mask)
            us.append(np.full(len(cand), u))
            ps.append(np.full(len(cand), i))
            ns.append(cand)
        return tuple(np.concatenate(a).astype(np.int64) for a in (us, ps, ns))

    # ---- the content projection at features c + Δ, block by block
    def projected(self, params, delta):
        """:func:`amrlite.models.projected_content` at ``c + Δ`` in ``params``' dtype:
        ``(c + Δ)`` is formed one block of item rows at a time (``Δ`` an array, :class:`Rows`
        or None)."""
        delta = Rows.of(delta)
        dtype = params["P"].dtype
        n_items = self.c.shape[0]
        content = np.empty((n_items, params["E"].shape[0]), dtype=dtype)
        visual = np.empty(n_items, dtype=dtype) if self.spec.has_bias else None
        for s, e in self.blocks:
            c = self.c[s:e] if delta is None else self.c[s:e] + delta.block(s, e)
            c = np.asarray(c, dtype=dtype)
            content[s:e] = c @ params["E"].T
            if visual is not None:
                visual[s:e] = c @ params["w"]
        return content, visual

    # ---- loss and Γ at features c + Δ
    def loss_and_gamma(self, delta, want_gamma=True):
        """The objective's BPR loss at ``c + Δ`` and its gradient Γ (n_items × D, float64;
        None unless ``want_gamma``)."""
        loss, gamma = self.loss_and_gamma_rows(delta, want_gamma)
        return loss, None if gamma is None else gamma.dense()

    def loss_and_gamma_rows(self, delta, want_gamma=True):
        """:meth:`loss_and_gamma` with Γ as :class:`Rows` (formed a block at a time).

        The loss ``Σ softplus(−x_uij)`` and ``ṽ`` (summed ``±s g_u`` per item, ``s = dℓ/dx``)
        are accumulated over chunks of pairs (:meth:`pair_chunks`), or over blocks of rows ×
        all items for the full-ranking objective, so memory does not grow with the number of
        pairs; an objective that fits in one chunk is summed exactly as one whole."""
        U, V = factors(self.spec, self.p64, None, self.id_items,
                       projected=self.projected(self.p64, delta))
        n_items = self.sp.n_items
        v = np.zeros((n_items, self.g.shape[1])) if want_gamma else None
        a = np.zeros(n_items) if want_gamma and self.w is not None else None
        accumulate = self._dense_terms if self.dense_objective else self._pair_terms
        loss = accumulate(U, V, v, a)
        if not want_gamma:
            return loss, None
        return loss, _gamma_rows(v, a, self.E, self.w)                 # Γ = v E (+ a wᵀ)

    def _pair_terms(self, U, V, v, a):
        """Add each chunk of pairs' ``±s g_u`` to ``v`` (and ``±s`` to ``a``); the loss."""
        loss = 0.0
        n_items, n_users = self.sp.n_items, self.sp.n_users
        for u, i, j in self.pair_chunks():
            x = np.empty(len(u))
            for k in range(0, len(u), SCORE_CHUNK):             # gathers of K-vectors: small
                sl = slice(k, k + SCORE_CHUNK)
                x[sl] = np.einsum("bf,bf->b", U[u[sl]], V[i[sl]] - V[j[sl]])
            loss += float(_softplus(-x).sum())
            if v is None:
                continue
            s = -_sigmoid(-x)                                          # dℓ/dx, in (−1, 0)
            A = scipy.sparse.coo_matrix(
                (np.concatenate([s, -s]), (np.concatenate([i, j]), np.concatenate([u, u]))),
                shape=(n_items, n_users)).tocsr()                      # summed ±s per (item, user)
            v += A @ self.g
            if a is not None:
                a += np.asarray(A.sum(axis=1)).ravel()
        return loss

    def _dense_terms(self, U, V, v, a):
        """The full-ranking objective a block of rows at a time: ``x = s_ui − s_uj`` for every
        item j (training items and the positive set to ``s_uj = −∞``, where ``softplus(−x)``
        and ``s`` are exactly 0), then ``ṽ_j −= Σ_r s_rj g_u`` (one product) and
        ``ṽ_i += (Σ_j s_rj) g_u``."""
        loss = 0.0
        rows, (indptr, indices) = self.rows, self.sp.train_csr
        step = ref.score_rows(V.shape[0], budget=OBJECTIVE_SCORES)
        for s0 in range(0, len(rows), step):
            ub = np.asarray(rows.users[s0:s0 + step], dtype=np.int64)
            ib = np.asarray(rows.items[s0:s0 + step], dtype=np.int64)
            Ur = U[ub]
            pos = np.einsum("rf,rf->r", Ur, V[ib])
            scores = Ur @ V.T                                          # rows × n_items
            ref.mask_rows(scores, ub, indptr, indices)
            scores[np.arange(len(ub)), ib] = -np.inf
            x = pos[:, None] - scores
            del scores
            loss += float(_softplus(-x).sum())
            if v is None:
                continue
            s = -_sigmoid(-x)
            del x
            g = self.g[ub]
            v -= s.T @ g
            row_sum = s.sum(axis=1)
            np.add.at(v, ib, row_sum[:, None] * g)
            if a is not None:
                a -= s.sum(axis=0)
                np.add.at(a, ib, row_sum)
        return loss

    # ---- metrics
    def ranks_and_metrics(self, delta=None):
        """Per-row ranks and the metric summary of the model at features ``c + Δ``."""
        projected = None
        if self.spec.has_content:
            projected = self.projected(self.params, delta)
        U, V = factors(self.spec, self.params, self.features, self.id_items,
                       popularity=self.popularity, projected=projected)
        res = evaluate_factors(U, V, self.sp, self.rows, full_ranking=self.full)
        return res["ranks"], _metric_summary(res)


def _unit_rows(gamma):
    norm = np.sqrt(np.einsum("kd,kd->k", gamma, gamma))[:, None]
    return np.where(norm > 0, gamma / np.where(norm > 0, norm, 1), 0.0)


def _project(delta, eps, kind):
    if kind == "sign":
        return np.clip(delta, -eps, eps)
    norm = np.sqrt(np.einsum("kd,kd->k", delta, delta))[:, None]
    return np.where(norm > eps, delta * (eps / np.where(norm > 0, norm, 1)), delta)


def _direction(gamma, kind):
    return np.sign(gamma) if kind == "sign" else _unit_rows(gamma)


def perturbation(attacker, eps, kind, steps=1, rng=None, damage=None):
    """Δ (n_items × D, float64) of one attack at radius ``eps``, and its attacked loss
    (None for ``random``).

    With ``steps > 1`` (PGD) the most damaging iterate is kept, the one-step point included, so
    PGD is never weaker than one step. Damage is the attacked loss, or ``damage(Δ)`` when given
    (the test objective passes the drop of NDCG@10 on the evaluation rows: the surrogate loss
    and the ranking metric need not agree at large ε). :func:`perturbation_rows` gives the same
    Δ a block of items at a time."""
    delta, loss = perturbation_rows(attacker, eps, kind, steps, rng, damage)
    return delta.dense(), loss


def perturbation_rows(attacker, eps, kind, steps=1, rng=None, damage=None):
    """:func:`perturbation` with Δ as :class:`Rows`: memory bounded at any catalogue size (PGD
    recomputes earlier steps block by block when Δ spans several blocks: S² instead of S
    gradient products)."""
    shape = attacker.c.shape
    if eps == 0:
        return Rows(shape, lambda s, e: np.zeros((e - s, shape[1]))), None
    if kind == "random":
        return _random_rows(shape, eps, rng), None
    loss0, gamma = attacker.loss_and_gamma_rows(None)
    one_step = _step_rows(None, gamma, eps, kind)
    best_loss, _ = attacker.loss_and_gamma_rows(one_step, want_gamma=False)
    best = one_step
    if steps == 1:
        return best, best_loss
    best_damage = best_loss if damage is None else damage(one_step)
    alpha = 2.5 * eps / steps
    delta = None
    for _ in range(steps):
        delta = _step_rows(delta, gamma, eps, kind, alpha)
        loss, gamma = attacker.loss_and_gamma_rows(delta)
        harm = loss if damage is None else damage(delta)
        if harm > best_damage:
            best, best_loss, best_damage = delta, loss, harm
    return best, best_loss


# ---------------------------------------------------------------------------------------------
# certified bound
# ---------------------------------------------------------------------------------------------

def _radius_per_user(attacker):
    r"""``‖Eᵀ g_u + w‖`` per user without forming users × D: ``gᵀ(EEᵀ)g + 2 g·(Ew) + ‖w‖²``."""
    g, E = attacker.g, attacker.E
    sq = np.einsum("uk,kl,ul->u", g, E @ E.T, g)
    if attacker.w is not None:
        sq = sq + 2 * g @ (E @ attacker.w) + attacker.w @ attacker.w
    return np.sqrt(np.maximum(sq, 0))


def _candidate_scores(attacker, chunk=None):
    """Yield ``(slice, pos, neg)`` per chunk of rows: the positive's clean score and the
    candidates' clean scores (float64; −inf where an item is not a candidate), computed with the
    model's own dtype exactly as the evaluation does."""
    sp, rows = attacker.sp, attacker.rows
    U, V = factors(attacker.spec, attacker.params, attacker.features, attacker.id_items)
    indptr, indices = sp.train_csr
    if chunk is None:
        chunk = ref.score_rows(V.shape[0], budget=OBJECTIVE_SCORES) if attacker.full \
            else ref.RANK_CHUNK
    for s in range(0, len(rows), chunk):
        sl = slice(s, s + chunk)
        Ur = U[rows.users[sl]]
        pos = np.einsum("rf,rf->r", Ur, V[rows.items[sl]]).astype(np.float64)
        if not attacker.full:
            neg = np.einsum("rf,rnf->rn", Ur, V[rows.negatives[sl]]).astype(np.float64)
        else:
            neg = (Ur @ V.T).astype(np.float64)
            ref.mask_rows(neg, np.asarray(rows.users[sl], dtype=np.int64), indptr, indices)
            neg[np.arange(len(pos)), rows.items[sl]] = -np.inf
        yield sl, pos, neg


def certified_ranks(attacker, eps_list, top_n=TOP_N):
    r"""Worst-case ranks over every per-item L2 perturbation of radius ε, and the per-row
    smallest ε at which the positive can leave the top ``top_n``.

    The score is linear in ``c_k``: ``x_uk(c + Δ) = x_uk(c) + r_u·Δ_k``, ``r_u = Eᵀ g_u + w``.
    By Cauchy–Schwarz ``|r_u·Δ_k| ≤ ε‖r_u‖``, and every candidate is a distinct item with its own
    Δ, so the worst case lowers the positive by ε‖r_u‖ and raises each negative by ε‖r_u‖:

        worst rank = #{n : x_un + ε‖r_u‖ ≥ x_ui − ε‖r_u‖}.

    It leaves the top N once the N-th largest negative ``x_(N)`` reaches the positive's lower
    bound: ``ε* = max(0, (x_ui − x_(N)) / (2‖r_u‖))`` (∞ when ``r_u = 0`` or fewer than N
    candidates). Worst rank < N ⇔ ε < ε*.
    """
    radius = _radius_per_user(attacker)
    ranks = {e: [] for e in eps_list}
    flip = []
    for sl, pos, neg in _candidate_scores(attacker):
        rad = radius[attacker.rows.users[sl]]
        for e in eps_list:
            margin = 2 * e * rad
            ranks[e].append((neg >= (pos - margin)[:, None]).sum(axis=1))
        if neg.shape[1] >= top_n:
            nth = -np.partition(-neg, top_n - 1, axis=1)[:, top_n - 1]
        else:
            nth = np.full(len(pos), -np.inf)
        gap = pos - nth
        with np.errstate(divide="ignore", invalid="ignore"):
            e_star = np.where(rad > 0, gap / (2 * rad), np.inf)
        e_star = np.where(np.isfinite(nth), np.maximum(e_star, 0.0), np.inf)
        e_star = np.where(gap <= 0, 0.0, e_star)
        flip.append(e_star)
    return {e: np.concatenate(r) for e, r in ranks.items()}, np.concatenate(flip)


def _distribution(values):
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]

    def q(p):
        return float(np.quantile(finite, p)) if len(finite) else None
    return {"n": int(len(v)), "share_already_out": float(np.mean(v == 0)) if len(v) else None,
            "share_never": float(np.mean(~np.isfinite(v))) if len(v) else None,
            "min": q(0.0), "q1": q(0.25), "median": q(0.5), "q3": q(0.75), "max": q(1.0),
            "mean": float(finite.mean()) if len(finite) else None}


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------

def attack(model, dataset, split="loo", eps_list=(0.01, 0.05, 0.1, 0.2, 0.5), *,
           kind="adversarial", objective="test", steps=1, repeats=5, seed=0, on="test",
           full_ranking=False):
    """Metrics of ``model`` on ``split``'s ``on`` rows with item features perturbed at each ε.

    Returns a JSON-serialisable dict::

        {"clean": {nine metrics, "warm": {...}, "cold": {...}, "n": {...}},
         "eps": {"0.1": {nine metrics, "warm", "cold", "n",
                         "drop": {metric: (clean − attacked) / clean}, ...}, ...},
         "kind": ..., "objective": ..., "steps": ..., "repeats": ..., "model": ...,
         "affected": bool, "note": str (models without content)}

    ``adversarial``/``sign`` entries also carry ``"attacked_loss"`` (the objective's BPR loss at
    ``c + Δ``) and ``"clean_loss"``; ``certified`` adds ``"flip_eps"``: the distribution of the
    per-row smallest ε at which the positive can leave the top 10.
    """
    _check(kind, objective, steps, repeats)
    eps_list = parse_eps_list(eps_list) if isinstance(eps_list, str) else [float(e) for e in eps_list]
    if any(not math.isfinite(e) or e < 0 for e in eps_list):
        raise AmrliteError(f"eps {eps_list}: every ε must be a finite number ≥ 0")
    model, sp, rows, features = attack_context(model, dataset, split, on)
    if kind == "certified" and not model.spec.has_content:
        raise AmrliteError(f"certified bound: {model.spec.label} has no content features, so a "
                           "feature perturbation cannot change its scores; nothing to certify")
    attacker = Attacker(model, sp, rows, features, objective, seed, full_ranking)
    clean_ranks, clean = attacker.ranks_and_metrics(None)
    out = {"clean": clean, "eps": {}, "kind": kind, "objective": objective, "steps": int(steps),
           "repeats": int(repeats) if kind == "random" else 1, "model": model.spec.label,
           "split": sp.name, "on": on, "protocol": "full" if attacker.full else
           f"sampled-{rows.negatives.shape[1]}", "affected": bool(model.spec.has_content)}
    if not model.spec.has_content:
        out["note"] = (f"{model.spec.label} does not read item features: perturbing them leaves "
                       "every score unchanged (drop 0 at every ε)")
        for e in eps_list:
            out["eps"][eps_key(e)] = {**clean, "drop": {k: 0.0 for k in METRIC_NAMES}}
        return out
    if kind == "certified":
        ranks, flip = certified_ranks(attacker, eps_list)
        warm = sp.warm_items[rows.items]
        for e in eps_list:
            r = ranks[e]
            m = metrics_from_ranks(r)
            m.update({"warm": metrics_from_ranks(r[warm]), "cold": metrics_from_ranks(r[~warm]),
                      "n": clean["n"]})
            m["drop"] = relative_drops(clean, m)
            out["eps"][eps_key(e)] = m
        out["flip_eps"] = {"top_n": TOP_N, **_distribution(flip)}
        return out
    clean_loss = attacker.loss_and_gamma(None, want_gamma=False)[0]
    out["clean_loss"] = clean_loss
    for e in eps_list:
        if kind == "random":
            rng = np.random.default_rng([seed, 11, int(round(e * 1e9))])
            runs = [attacker.ranks_and_metrics(perturbation_rows(attacker, e, kind, rng=rng)[0])[1]
                    for _ in range(repeats)] if e > 0 else [clean]
            m = _average(runs)
        else:
            damage = None
            if objective == "test" and steps > 1:
                def damage(d):
                    return -attacker.ranks_and_metrics(d)[1]["NDCG@10"]
            delta, loss = perturbation_rows(attacker, e, kind, steps, damage=damage)
            m = clean if e == 0 else attacker.ranks_and_metrics(delta)[1]
            m = dict(m)
            m["attacked_loss"] = clean_loss if loss is None else loss
        m["drop"] = relative_drops(clean, m)
        out["eps"][eps_key(e)] = m
    return out


def rank_change(model, dataset, split="loo", eps=0.1, *, kind="adversarial", objective="test",
                steps=1, seed=0, on="test", full_ranking=False):
    """Per-row ``rank_before − rank_after`` under one attack of radius ``eps`` (the paper's
    Fig. 5; negative = the positive fell). ``random`` uses one seeded draw; ``certified`` the
    worst-case rank.

    Returns ``{"per_row": int array, "before": ..., "after": ..., "summary": {mean, median, q1,
    q3, share_worse, share_better, share_same}}`` (``summary`` is JSON-serialisable).
    """
    _check(kind, objective, steps, 1)
    model, sp, rows, features = attack_context(model, dataset, split, on)
    attacker = Attacker(model, sp, rows, features, objective, seed, full_ranking)
    before, _ = attacker.ranks_and_metrics(None)
    if not model.spec.has_content or eps == 0:
        after = before.copy()
    elif kind == "certified":
        after = certified_ranks(attacker, [float(eps)])[0][float(eps)]
    else:
        rng = np.random.default_rng([seed, 11, int(round(eps * 1e9))])
        delta, _ = perturbation_rows(attacker, float(eps), kind, steps, rng=rng)
        after = attacker.ranks_and_metrics(delta)[0]
    diff = before.astype(np.int64) - after.astype(np.int64)
    return {"per_row": diff, "before": before, "after": after,
            "summary": rank_change_summary(diff, eps, kind)}


def rank_change_summary(diff, eps, kind):
    """The JSON summary of per-row rank changes ``before − after`` (negative = fell)."""
    diff = np.asarray(diff)
    n = len(diff)
    return {"eps": float(eps), "kind": kind, "n": int(n),
            "mean": float(diff.mean()) if n else None,
            "median": float(np.median(diff)) if n else None,
            "q1": float(np.quantile(diff, 0.25)) if n else None,
            "q3": float(np.quantile(diff, 0.75)) if n else None,
            "share_worse": float(np.mean(diff < 0)) if n else None,
            "share_better": float(np.mean(diff > 0)) if n else None,
            "share_same": float(np.mean(diff == 0)) if n else None}
