"""Model specifications: which parameter blocks a model has and how it scores.

Every model in amrlite is a special case of one scoring function,

    x_ui = b_i + p_u · q_i + g_u · (E c_i) + w · c_i,              (1)

with ``c_i`` the fixed content feature of item i (D-dim), ``E`` the K×D projection, and

* ``mf``   (MF-BPR):  only ``p_u · q_i``;
* ``duif``:           only ``p_u · (E c_i)`` (g_u = p_u, no ID embedding);
* ``vbpr`` / ``amr`` in the paper's Eq. 4 form (``form="eq4"``, the default):
  ``p_u · (q_i + E c_i)`` — the user vector is shared (g_u = p_u);
* ``vbpr`` / ``amr`` in He & McAuley's original form (``form="hm"``):
  ``b_i + p_u · q_i + h_u · (E c_i) + w · c_i`` — a second user vector ``h_u`` and the item and
  visual bias terms ``b_i``, ``w · c_i``;
* ``pop``: the item's training popularity (no parameters are trained).

AMR is VBPR trained with the adversarial term; its parameters are VBPR's. Parameter blocks
have one-letter names, as in the derivations: ``P`` (users × K), ``Q`` (items × K), ``H``
(users × K), ``E`` (K × D), ``b`` (items), ``w`` (D).

Scoring factorises: (1) is ``U[u] · V[i]`` with user rows ``[p_u, h_u, 1]`` and item rows
``[q_i, E c_i, b_i + w · c_i]`` (blocks absent from a model are dropped, and for the tied form
``q_i + E c_i`` is one block). :func:`factors` builds ``U`` and ``V`` once, so evaluation,
recommendation and the attacks are a gather and a dot product on any array module.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import AmrliteError

MODEL_KINDS = ("pop", "mf", "duif", "vbpr", "amr", "eals")
FORMS = ("eq4", "hm")

#: hyper-parameters in which a model kind departs from :class:`amrlite.train.TrainConfig`'s
#: defaults — the one place they live (``Model``, the CLI and the experiments read them here).
#: eALS's λ multiplies a sum over *all* items, so it wants far more than BPR's β (10: the best
#: value found on ml100k split-loo when MF-eALS was added).
KIND_DEFAULTS = {"eals": {"reg": 10.0}}


@dataclass(frozen=True)
class ModelSpec:
    """What a model is: its kind and, for VBPR/AMR, its form."""

    kind: str
    form: str = "eq4"

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise AmrliteError(f"unknown model {self.kind!r}; choose one of {', '.join(MODEL_KINDS)}")
        if self.form not in FORMS:
            raise AmrliteError(f"unknown form {self.form!r}; choose one of {', '.join(FORMS)}")
        if self.form == "hm" and self.kind not in ("vbpr", "amr"):
            raise AmrliteError(f"form 'hm' (He & McAuley) applies to vbpr and amr, not {self.kind}")

    @property
    def trains_by_bpr(self) -> bool:
        return self.kind in ("mf", "duif", "vbpr", "amr")

    @property
    def adversarial(self) -> bool:
        return self.kind == "amr"

    @property
    def has_item_factors(self) -> bool:
        """``q_i`` present (MF, VBPR, AMR, eALS)."""
        return self.kind in ("mf", "vbpr", "amr", "eals")

    @property
    def has_content(self) -> bool:
        """``E c_i`` present (DUIF, VBPR, AMR)."""
        return self.kind in ("duif", "vbpr", "amr")

    @property
    def separate_content_user(self) -> bool:
        """``h_u`` separate from ``p_u`` (He & McAuley form)."""
        return self.form == "hm"

    @property
    def has_bias(self) -> bool:
        """Item bias ``b_i`` and visual bias ``w · c_i`` (He & McAuley form)."""
        return self.form == "hm"

    @property
    def blocks(self) -> tuple[str, ...]:
        """Names of the trained parameter blocks, in a fixed order."""
        if self.kind == "pop":
            return ()
        out = ["P"]
        if self.has_item_factors:
            out.append("Q")
        if self.separate_content_user:
            out.append("H")
        if self.has_content:
            out.append("E")
        if self.has_bias:
            out += ["b", "w"]
        return tuple(out)

    @property
    def label(self) -> str:
        names = {"pop": "POP", "mf": "MF-BPR", "duif": "DUIF", "vbpr": "VBPR", "amr": "AMR",
                 "eals": "MF-eALS"}
        return names[self.kind] + (" (He & McAuley form)" if self.form == "hm" else "")


#: blocks indexed by user row, by item row, and dense blocks
USER_BLOCKS = ("P", "H")
ITEM_BLOCKS = ("Q", "b")
DENSE_BLOCKS = ("E", "w")


def block_shape(name, n_users, n_items, dim, n_features):
    return {"P": (n_users, dim), "H": (n_users, dim), "Q": (n_items, dim),
            "E": (dim, n_features), "b": (n_items,), "w": (n_features,)}[name]


def init_params(spec, n_users, n_items, dim, n_features, *, seed=0, std=0.01, dtype=np.float32):
    """Draw every block of ``spec`` from N(0, std²) (biases start at 0), seeded."""
    if spec.has_content and n_features == 0:
        raise AmrliteError(f"model {spec.kind} needs item features, but the data set has none")
    rng = np.random.default_rng(seed)
    params = {}
    for name in spec.blocks:
        shape = block_shape(name, n_users, n_items, dim, n_features)
        if name in ("b", "w"):
            params[name] = np.zeros(shape, dtype=dtype)
        else:
            params[name] = (rng.standard_normal(shape) * std).astype(dtype)
    return params


def carry_over(params, init_params_, spec):
    """Copy blocks of a pre-trained model (``init_params_``) into ``params`` where names and shapes
    agree: the MF-BPR → VBPR → AMR chain carries ``P`` and ``Q`` (and ``E`` from VBPR to AMR)."""
    carried = []
    for name in spec.blocks:
        src = init_params_.get(name)
        if src is not None and src.shape == params[name].shape:
            params[name] = np.array(src, dtype=params[name].dtype)
            carried.append(name)
    return carried


def projected_content(spec, params, features, *, xp=np):
    """``(E c_i, w · c_i)`` of every item: ``features @ Eᵀ`` (n_items × K) and, in the He &
    McAuley form, ``features @ w`` (else None), in the parameters' dtype; ``(None, None)`` for a
    model without content."""
    if not spec.has_content:
        return None, None
    dtype = params["P"].dtype
    c = xp.asarray(features, dtype=dtype)          # converted once (a copy unless it is dtype)
    content = c @ params["E"].T
    visual = c @ params["w"] if spec.has_bias else None
    return content, visual


def factors(spec, params, features, warm=None, *, xp=np, popularity=None, projected=None):
    """User and item matrices ``U`` (n_users × F), ``V`` (n_items × F) with score(u,i) = U[u]·V[i]:
    :func:`user_factors` and :func:`item_factors`. ``xp`` is the array module (numpy or cupy);
    all arrays must live on it. ``popularity`` gives POP's item scores (``U`` is None).
    ``projected``: the items' :func:`projected_content`, computed elsewhere (``features`` is
    then not read)."""
    if spec.kind == "pop":
        V = xp.asarray(popularity, dtype=xp.float64)[:, None]
        return None, V
    return user_factors(spec, params, xp=xp), item_factors(spec, params, features, warm, xp=xp,
                                                            projected=projected)


def user_factors(spec, params, *, xp=np):
    """``U``: rows ``p_u`` (Eq. 4, MF, DUIF) or ``[p_u, h_u, 1]`` (He & McAuley)."""
    P = params["P"]
    if spec.separate_content_user:
        return xp.concatenate([P, params["H"], xp.ones((P.shape[0], 1), dtype=P.dtype)], axis=1)
    return P


def item_factors(spec, params, features, warm=None, *, xp=np, projected=None):
    """``V``: one row per row of ``features`` (and of ``params["Q"]``/``["b"]``).

    ``warm`` (bool mask over those items) zeroes the ID parts ``q_i`` and ``b_i`` of cold
    items, which are then scored by content alone: their row is ``E c_i`` (Eq. 4, DUIF),
    ``[0, E c_i, w · c_i]`` (He & McAuley: score ``h_u · E c_i + w · c_i``) or zero (MF). A row
    depends on its own item's parameters and features only. ``projected``: the items'
    :func:`projected_content`, computed elsewhere (``features`` is then not read).
    """
    dtype = params["P"].dtype
    keep = None if warm is None else xp.asarray(warm, dtype=dtype)[:, None]

    def ids(block):
        return block if keep is None else block * keep

    items = []
    content, visual = (projected_content(spec, params, features, xp=xp) if projected is None
                       else projected)                                     # n_items × K, n_items
    if spec.separate_content_user:                                         # He & McAuley
        bias = visual + params["b"] * (1 if keep is None else keep[:, 0])
        items += [ids(params["Q"]), content, bias[:, None]]
    elif spec.has_item_factors and content is not None:                   # Eq. 4
        items.append(ids(params["Q"]) + content)
    elif spec.has_item_factors:                                            # MF
        items.append(ids(params["Q"]))
    else:                                                                  # DUIF
        items.append(content)
    return items[0] if len(items) == 1 else xp.concatenate(items, axis=1)


def content_user_vectors(spec, params):
    """``g_u``: the user-side vector multiplying ``E c_i`` (``p_u`` tied, ``h_u`` separate)."""
    return params["H"] if spec.separate_content_user else params["P"]
