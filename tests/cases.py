"""The parity suite's cases: ONE table of named, tagged problems and the tolerance each backend
must meet on each check against the NumPy reference (in the style of the ``CASES`` of
``numpy/linalg/tests/test_linalg.py``). A plain module, imported by test modules; it collects
no tests.

Tolerances are ``rel(a, b) = max|a − b| / max(max|a|, max|b|)`` over one parameter block (or
gradient, or Γ), per backend:

========  ==================  =======  ================  =======
dtype     check               numba    numpy-arraylevel  cupy
========  ==================  =======  ================  =======
float64   step, Γ             1e-10    1e-12             1e-10
float64   adagrad_update      1e-14    0 (bit for bit)   1e-10
float64   epochs (3)          1e-10    1e-12             1e-10
float64   loss (one batch)    1e-12    1e-12             1e-10
float32   step, Γ             2e-6     2e-5              5e-4
float32   adagrad_update      1e-6     0 (bit for bit)   5e-4
float32   epochs (3)          2e-6     2e-5              5e-3
float32   loss (one batch)    1e-6     2e-5              5e-4
float64   eALS (4 epochs)     1e-10    0 (bit for bit)   1e-10
========  ==================  =======  ================  =======

numba and cupy are as before this table existed (tests/test_cpu_backend.py and
tests/test_gpu_backend.py); numpy-arraylevel is tighter than its old 1e-12/1e-9 (float64) and
2e-4/2e-3 (float32): observed ≤ 1.3e-15 and ≤ 6e-7. Epoch losses take the epochs tolerance
(numba float32: 1e-6). ``adagrad_update`` is checked on the reference's gradients (observed:
numba 2.2e-16 / 1.2e-7). The ``sign``/``random`` adversaries need Δ itself; numba runs the
reference for them (tolerance 0: bit for bit, except its own ``adagrad_update`` kernel);
numpy-arraylevel and cupy draw the ``random`` directions per occurrence / from CuPy's
generator, not as the reference does, so their tolerance is None: only "finite, the right
dtype, and training changed every block" is checked.
Ranks are integers: identical everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from amrlite.kernels import reference as ref
from amrlite.models import ModelSpec, init_params
from amrlite.train import TrainConfig
from helpers import random_split

#: the backends checked against the reference (cupy only where a CUDA GPU is present)
BACKENDS = ("numba", "numpy-arraylevel", "cupy")

_STEP = {"numba": (1e-10, 2e-6), "numpy-arraylevel": (1e-12, 2e-5), "cupy": (1e-10, 5e-4)}
#: check → backend → (float64, float32) tolerance
TOLERANCES = {
    "step": _STEP, "content": _STEP,
    "adagrad": {"numba": (1e-14, 1e-6), "numpy-arraylevel": (0.0, 0.0), "cupy": (1e-10, 5e-4)},
    "epochs": {"numba": (1e-10, 2e-6), "numpy-arraylevel": (1e-12, 2e-5), "cupy": (1e-10, 5e-3)},
    "loss": {"numba": (1e-12, 1e-6), "numpy-arraylevel": (1e-12, 2e-5), "cupy": (1e-10, 5e-4)},
    "epoch_loss": {"numba": (1e-10, 1e-6), "numpy-arraylevel": (1e-12, 2e-5),
                   "cupy": (1e-10, 5e-3)},
}
_EALS = {"eals": {"numba": 1e-10, "numpy-arraylevel": 0.0, "cupy": 1e-10}}
_RANKS = {"ranks": {"numba": 0.0, "numpy-arraylevel": 0.0, "cupy": 0.0}}


@dataclass(frozen=True)
class Case:
    """One problem of the table. ``kind`` is a model kind (``mf``, ``duif``, ``vbpr``, ``amr``),
    ``eals`` or ``ranks``; ``tol[check][backend]`` the tolerance of ``check`` on ``backend``
    (None: not comparable, see the module docstring); ``params`` extra problem knobs."""

    name: str
    kind: str
    form: str = "eq4"
    adversary: str = "grad"
    dtype: type = np.float64
    tol: dict = field(default_factory=dict, compare=False, repr=False)
    tags: frozenset = frozenset()
    params: tuple = ()

    def tolerance(self, check, backend):
        return self.tol[check][backend]

    @property
    def spec(self):
        return ModelSpec(self.kind, self.form)


def _bpr(kind, form="eq4", adversary="grad", dtype=np.float64):
    spec = ModelSpec(kind, form)
    k = 0 if dtype == np.float64 else 1
    tol = {check: {be: t[k] for be, t in per.items()} for check, per in TOLERANCES.items()}
    tags = {"bpr", np.dtype(dtype).name, form}
    if spec.has_content:
        tags.add("content")
    if spec.adversarial:
        tags.add("adversarial")
    if adversary != "grad":
        tags.add("explicit-adversary")
        for check, t in tol.items():
            if check != "adagrad":                   # numba's adagrad_update is its own kernel
                t["numba"] = 0.0                     # numba runs the reference for these
        if adversary == "random":
            for t in tol.values():
                t["numpy-arraylevel"] = t["cupy"] = None
    name = "-".join([kind, form] + ([adversary] if adversary != "grad" else [])
                    + [np.dtype(dtype).name])
    return Case(name, kind, form, adversary, dtype, tol, frozenset(tags))


MODELS = [("mf", "eq4"), ("duif", "eq4"), ("vbpr", "eq4"), ("vbpr", "hm"), ("amr", "eq4"),
          ("amr", "hm")]

CASES = (
    [_bpr(kind, form, dtype=dt) for dt in (np.float64, np.float32) for kind, form in MODELS]
    + [_bpr("amr", form, "sign", dt) for dt in (np.float64, np.float32) for form in ("eq4", "hm")]
    + [_bpr("amr", "eq4", "random", np.float64), _bpr("amr", "hm", "random", np.float32)]
    + [Case(f"ranks-{name}-{np.dtype(dt).name}", "ranks", dtype=dt, tol=_RANKS,
            tags=frozenset({"ranks", name}))
       for name, dt in (("ties", np.float32), ("ties", np.float64), ("random", np.float32),
                        ("random", np.float64), ("pop", np.float64))]
    + [Case(f"eals-seed{seed}-k{dim}", "eals", tol=_EALS, tags=frozenset({"eals"}),
            params=(("seed", seed), ("dim", dim)))
       for seed, dim in ((0, 4), (1, 7), (2, 1))]
)


def cases(*tags, exclude=()):
    """The cases carrying every tag in ``tags`` and none in ``exclude``."""
    return [c for c in CASES if set(tags) <= c.tags and not (set(exclude) & c.tags)]


#: the cases by name
CASE = {c.name: c for c in CASES}
assert len(CASE) == len(CASES)


# ----------------------------------------------------------------------------------------------
# problems
# ----------------------------------------------------------------------------------------------

def rel(a, b):
    """``max|a − b| / max(max|a|, max|b|)`` in float64 (0 when both are 0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(a).max(initial=0), np.abs(b).max(initial=0))
    return 0.0 if scale == 0 else float(np.abs(a - b).max() / scale)


def copy(d):
    return {k: v.copy() for k, v in d.items()}


class Problem(NamedTuple):
    spec: ModelSpec
    split: object
    features: np.ndarray
    params: dict
    accum: dict
    hp: TrainConfig
    zero_user: int | None


#: problem sizes: 40 users × 8 training items, 70 items of which 0..9 cold, K = 8, D = 24;
#: 320 triples an epoch, batches of 48 (the last one short)
N_USERS, N_ITEMS, COLD, DIM, N_FEATURES, BATCH = 40, 70, 10, 8, 24, 48


def problem(case, seed=0):
    """Random parameters (std 0.3; b and w random too), features and a split for ``case``.

    The triples (:func:`triples_of`) repeat items within a batch (as positive and negative),
    leave items 2..9 cold (never in a batch) and, for content models, make triple 5 of every
    epoch ``(zero_user, 0, 1)``: the last user's content vector g_u (P in the Eq. 4 form, H in
    He & McAuley's) is zero and items 0, 1 occur nowhere else, so in the Eq. 4 form their Γ
    rows are exactly 0 (the adversary's ‖Γ‖ = 0 branch)."""
    spec = case.spec
    dtype = case.dtype
    split, features = random_split(n_users=N_USERS, n_items=N_ITEMS, per_user=8,
                                   n_features=N_FEATURES, seed=seed, cold=COLD)
    params = init_params(spec, N_USERS, N_ITEMS, DIM, N_FEATURES if spec.has_content else 0,
                         seed=seed, std=0.3, dtype=dtype)
    rng = np.random.default_rng(seed)
    for name in ("b", "w"):
        if name in params:
            params[name] = (rng.standard_normal(params[name].shape) * 0.3).astype(dtype)
    zero_user = None
    if spec.has_content:
        zero_user = N_USERS - 1
        params["H" if spec.separate_content_user else "P"][zero_user] = 0
    accum = {k: np.full_like(v, 0.1) for k, v in params.items()}
    hp = TrainConfig(reg=0.01, reg_e=0.02, eps=0.3, lmd=0.7, lr=0.05, batch_size=BATCH,
                     adversary=case.adversary, dtype=np.dtype(dtype).name)
    return Problem(spec, split, features.astype(dtype), params, accum, hp, zero_user)


def triples_of(prob, seed):
    """One epoch's triples of ``prob`` (:func:`reference.sample_epoch`, seeded), with the
    zero-Γ triple at position 5 for content models (see :func:`problem`)."""
    split = prob.split
    indptr, indices = split.train_csr
    u, i, j = ref.sample_epoch(split.train_users, split.train_items, indptr, indices,
                               np.flatnonzero(split.warm_items), np.random.default_rng(seed))
    if prob.zero_user is not None:
        u[5], i[5], j[5] = prob.zero_user, 0, 1
    return u, i, j


def rank_problem(case):
    """``(U, V, users, items, negatives, indptr, indices)`` of a rank case: ``ties`` — small
    integer factors (many exact ties), ``random`` — Gaussian ones, ``pop`` — U None and integer
    popularity scores; the positive is also among each row's negatives (a tie with itself)."""
    split, _ = random_split(n_users=40, n_items=90, per_user=10, seed=4, n_neg=30)
    rng = np.random.default_rng(1)
    dt = case.dtype
    if "ties" in case.tags:
        U, V = rng.integers(-3, 4, (40, 5)).astype(dt), rng.integers(-3, 4, (90, 5)).astype(dt)
    elif "random" in case.tags:
        U, V = rng.standard_normal((40, 7)).astype(dt), rng.standard_normal((90, 7)).astype(dt)
    else:
        U, V = None, rng.integers(0, 5, 90).astype(dt)[:, None]
    rows = split.test
    negatives = rows.negatives.copy()
    negatives[:, 0] = rows.items
    indptr, indices = split.train_csr
    return U, V, rows.users, rows.items, negatives, indptr, indices


def eals_arrays(split, seed, dim, c0=512.0, alpha=0.4, random_w=False):
    """``(indptr, indices, P, Q, conf, w)`` of an MF-eALS run on ``split`` (float64)."""
    indptr, indices = split.train_csr
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    rng = np.random.default_rng(seed)
    P = rng.standard_normal((split.n_users, dim)) * 0.3
    Q = rng.standard_normal((split.n_items, dim)) * 0.3
    conf = ref.eals_confidence(np.bincount(split.train_items, minlength=split.n_items), c0, alpha)
    w = 1.0 + rng.random(len(indices)) if random_w else np.ones(len(indices))
    return indptr, indices, P, Q, conf, w


def eals_problem(seed=0, dim=4, n_users=25, n_items=40, per_user=7):
    """A small MF-eALS problem: 3 cold items, random pair weights w ∈ [1, 2), c0 = 30:
    ``(split, indptr, indices, P, Q, conf, w)``."""
    split, _ = random_split(n_users=n_users, n_items=n_items, per_user=per_user, seed=seed,
                            cold=3)
    return (split,) + eals_arrays(split, seed, dim, c0=30.0, alpha=0.5, random_w=True)
