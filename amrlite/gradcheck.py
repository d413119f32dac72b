r"""Check every analytic gradient against central finite differences.

For a parameter entry θ the central difference

    (L(θ + h) − L(θ − h)) / 2h = ∂L/∂θ + O(h²)

is compared with the backend's ``batch_gradients``. Each block is reported by its relative error
``‖g_analytic − g_numeric‖ / max(‖g_analytic‖, ‖g_numeric‖)`` over *all* its entries (rows a
batch never touches must come out as exact zeros). Everything runs in float64 on a small random
problem built to reach the corner cases: items repeated within the batch (as positive and as
negative), cold items that never occur, and an item whose Γ row is exactly zero.

For AMR the adversarial Δ is computed once at the unperturbed parameters and then held fixed,
exactly as in training (the model does not differentiate through the adversary).
"""
from __future__ import annotations

import numpy as np

from .backends import get_backend
from .kernels import reference as ref
from .models import ModelSpec, init_params
from .train import TrainConfig

TOLERANCE = 1e-6
CHECKED = (("mf", "eq4"), ("duif", "eq4"), ("vbpr", "eq4"), ("vbpr", "hm"), ("amr", "eq4"),
           ("amr", "hm"))


def tiny_problem(spec, seed=0, n_users=6, n_items=10, dim=3, n_features=5):
    """A small float64 problem: ``(params, features, (u, i, j))``.

    The batch repeats items (item 1 is a positive twice and a negative once), items 7–9 never
    occur (cold), and item 6 occurs only with user 5, whose content vector ``g_u`` is zero, so
    that its Γ row is exactly zero (for the Eq. 4 form; He & McAuley's visual bias ``w`` makes
    every Γ row ``Eᵀv + a w`` non-zero unless ``a = 0`` too).
    """
    rng = np.random.default_rng(seed)
    params = init_params(spec, n_users, n_items, dim, n_features if spec.has_content else 0,
                         seed=seed, std=0.5, dtype=np.float64)
    for name in ("b", "w"):
        if name in params:
            params[name] = rng.standard_normal(params[name].shape) * 0.5
    if spec.has_content:
        params["H" if spec.separate_content_user else "P"][5] = 0.0
    features = rng.standard_normal((n_items, n_features))
    u = np.array([0, 1, 2, 0, 3, 4, 5], dtype=np.int32)
    i = np.array([1, 1, 2, 3, 4, 5, 6], dtype=np.int32)
    j = np.array([2, 3, 1, 4, 5, 0, 0], dtype=np.int32)
    return params, features, (u, i, j)


def objective(spec, params, features, u, i, j, hp, delta=None):
    """``L_BPR + λ L_BPR(c + Δ) + R`` with ``Δ`` given (fixed), in float64."""
    loss = ref.bpr_loss(spec, params, features, u, i, j)
    if spec.adversarial:
        loss += hp.lmd * ref.bpr_loss(spec, params, features, u, i, j, delta)
    return loss + ref.regulariser(spec, params, u, i, j, hp.reg, hp.reg_e)


def dense_gradient(grad, shape):
    """Turn a row-sparse ``(rows, G)`` gradient into a dense array (dense ones pass through)."""
    if isinstance(grad, tuple):
        rows, g = grad
        out = np.zeros(shape)
        out[np.asarray(rows)] = np.asarray(g)
        return out
    return np.asarray(grad)


def relative_error(a, b):
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


def numeric_gradient(f, array, h=1e-6):
    """Central differences of ``f()`` with respect to every entry of ``array`` (perturbed in place)."""
    out = np.zeros_like(array, dtype=np.float64)
    flat, gflat = array.reshape(-1), out.reshape(-1)
    for k in range(flat.size):
        keep = flat[k]
        flat[k] = keep + h
        up = f()
        flat[k] = keep - h
        down = f()
        flat[k] = keep
        gflat[k] = (up - down) / (2 * h)
    return out


def check_model(kind, form="eq4", backend="numpy", seed=0, hp=None):
    """``backend``'s analytic gradients against central differences of the reference objective.

    Parameters
    ----------
    kind, form : str
        The model (``mf``, ``duif``, ``vbpr``, ``amr``; ``eq4`` or ``hm``).
    backend : str
        Any backend name; its ``batch_gradients`` and ``content_gradient`` are checked.
    seed : int
        Seed of the tiny random problem (:func:`tiny_problem`, float64).
    hp : TrainConfig, optional
        β, β_E, ε, λ of the objective (default: all non-zero, so every term is exercised).

    Returns
    -------
    dict
        Relative error per parameter block, and ``"Gamma"`` (Γ = ∂L_BPR/∂c) for content
        models; :data:`TOLERANCE` is what ``amrlite gradcheck`` accepts.
    """
    spec = ModelSpec(kind, form)
    hp = hp or TrainConfig(reg=0.01, reg_e=0.02, eps=0.3, lmd=0.7, dtype="float64")
    params, features, (u, i, j) = tiny_problem(spec, seed)
    be = get_backend(backend)
    dev = {k: be.to_device(v) for k, v in params.items()}
    _, grads = be.batch_gradients(spec, dev, be.to_device(features), *(be.to_device(a) for a in (u, i, j)), hp)
    delta = None
    if spec.adversarial:
        items, gamma = ref.content_gradient(spec, params, features, u, i, j)
        delta = (items, ref.adversarial_perturbation(gamma, hp.eps, "grad"))
    errors = {}
    for name, array in params.items():
        numeric = numeric_gradient(lambda: objective(spec, params, features, u, i, j, hp, delta), array)
        analytic = dense_gradient(tuple(be.to_host(g) for g in grads[name])
                                  if isinstance(grads[name], tuple) else be.to_host(grads[name]),
                                  array.shape)
        errors[name] = relative_error(analytic, numeric)
    if spec.has_content:
        items, gamma = be.content_gradient(spec, dev, be.to_device(features), *(be.to_device(a) for a in (u, i, j)))
        analytic = dense_gradient((be.to_host(items), be.to_host(gamma)), features.shape)
        numeric = numeric_gradient(lambda: ref.bpr_loss(spec, params, features, u, i, j), features)
        errors["Gamma"] = relative_error(analytic, numeric)
    return errors


def check_all(backend="numpy", models=CHECKED, seed=0):
    """:func:`check_model` for every ``(kind, form)`` in ``models``.

    Returns
    -------
    dict
        ``{(kind, form): {block: relative error}}``.
    """
    return {(k, f): check_model(k, f, backend, seed) for k, f in models}
