"""The Numba backend against the NumPy reference.

Tolerances. float64: every gradient and the closed-form adversary agree with the reference's
explicit D-dimensional computation to rel. err < 1e-10. float32: the backend reorders sums
(BLAS, fastmath reassociation, closed-form Δ), so parameters after one step and after 3 epochs
agree to ``max|θ_numba − θ_ref| ≤ 2e-6 · max|θ_ref|`` per block (observed ≤ 3e-7), losses to
rel. 1e-6. Evaluation ranks are identical.
"""
import numpy as np
import pytest

from amrlite import metrics
from amrlite.gradcheck import TOLERANCE, check_model, tiny_problem
from amrlite.kernels import cpu, cpu_ranking
from amrlite.kernels import reference as ref
from amrlite.models import ModelSpec, init_params
from amrlite.train import TrainConfig
from helpers import random_split

MODELS = [("mf", "eq4"), ("duif", "eq4"), ("vbpr", "eq4"), ("vbpr", "hm"), ("amr", "eq4"),
          ("amr", "hm")]
F32_TOL = 2e-6


def problem(kind, form, dtype, seed=0, n_users=40, n_items=70, dim=8, n_features=24, n=300,
            zero_gamma=True):
    """Random parameters and triples with repeated items, unused (cold) items and, for content
    models, one user with a zero content vector (its items get Γ = 0 in the Eq. 4 form)."""
    spec = ModelSpec(kind, form)
    rng = np.random.default_rng(seed)
    params = init_params(spec, n_users, n_items, dim, n_features if spec.has_content else 0,
                         seed=seed, std=0.3, dtype=dtype)
    for name in ("b", "w"):
        if name in params:
            params[name] = (rng.standard_normal(params[name].shape) * 0.3).astype(dtype)
    features = rng.standard_normal((n_items, n_features)).astype(dtype)
    u = rng.integers(0, n_users - 1, n).astype(np.int32)
    i = rng.integers(0, n_items - 10, n).astype(np.int32)          # items ≥ n_items−10: cold
    j = rng.integers(0, n_items - 10, n).astype(np.int32)
    if zero_gamma and spec.has_content:
        params["H" if spec.separate_content_user else "P"][n_users - 1] = 0
        u[5], i[5], j[5] = n_users - 1, n_items - 10, n_items - 9   # items seen only by it
    hp = TrainConfig(reg=0.01, reg_e=0.02, eps=0.3, lmd=0.7, lr=0.05, batch_size=64,
                     dtype=np.dtype(dtype).name)
    return spec, params, features, (u, i, j), hp


def dense(g, shape):
    if isinstance(g, tuple):
        out = np.zeros(shape, dtype=np.float64)
        out[g[0]] = g[1]
        return out
    return g


@pytest.mark.parametrize("kind,form", MODELS)
def test_gradcheck_numba(kind, form):
    for block, err in check_model(kind, form, "numba").items():
        assert err < TOLERANCE, (block, err)


@pytest.mark.parametrize("kind,form", MODELS)
def test_batch_gradients_match_reference_float64(kind, form):
    spec, params, features, (u, i, j), hp = problem(kind, form, np.float64)
    u, i, j = u[:64], i[:64], j[:64]
    l_ref, g_ref = ref.batch_gradients(spec, params, features, u, i, j, hp)
    l_nb, g_nb = cpu.batch_gradients(spec, params, features, u, i, j, hp)
    assert abs(l_ref - l_nb) <= 1e-12 * abs(l_ref)
    assert set(g_ref) == set(g_nb)
    for name in g_ref:
        if isinstance(g_ref[name], tuple):
            np.testing.assert_array_equal(g_ref[name][0], g_nb[name][0])
        a, b = dense(g_ref[name], params[name].shape), dense(g_nb[name], params[name].shape)
        assert np.linalg.norm(a - b) <= 1e-10 * np.linalg.norm(a), name


def _run(backend, spec, params, features, triples, hp, epochs):
    p = {k: v.copy() for k, v in params.items()}
    acc = {k: np.zeros_like(v) for k, v in params.items()}
    losses = [backend.train_epoch(spec, p, acc, features, triples, hp) for _ in range(epochs)]
    return p, acc, losses


@pytest.mark.parametrize("kind,form", MODELS)
@pytest.mark.parametrize("steps", ["one-step", "three-epochs"])
def test_training_parity_float32(kind, form, steps):
    spec, params, features, triples, hp = problem(kind, form, np.float32)
    if steps == "one-step":
        triples = tuple(a[:hp.batch_size] for a in triples)
    epochs = 1 if steps == "one-step" else 3
    p_ref, a_ref, l_ref = _run(ref, spec, params, features, triples, hp, epochs)
    p_nb, a_nb, l_nb = _run(cpu, spec, params, features, triples, hp, epochs)
    np.testing.assert_allclose(l_nb, l_ref, rtol=1e-6)
    for name in params:
        assert p_nb[name].dtype == np.float32
        scale = np.abs(p_ref[name]).max()
        assert np.abs(p_nb[name] - p_ref[name]).max() <= F32_TOL * scale, name
        assert np.abs(a_nb[name] - a_ref[name]).max() <= F32_TOL * max(np.abs(a_ref[name]).max(), 1e-30), name


@pytest.mark.parametrize("form", ["eq4", "hm"])
def test_closed_form_equals_explicit_delta(form):
    """‖Γ_k‖, E Δ_k and w·Δ_k from K×K algebra equal the explicit D-dim Γ → Δ (float64)."""
    for seed in range(3):
        spec, params, features, (u, i, j), hp = problem("amr", form, np.float64, seed=seed,
                                                        n_features=50, dim=6)
        u, i, j = u[:64], i[:64], j[:64]
        items, gamma = ref.content_gradient(spec, params, features, u, i, j)
        delta = ref.adversarial_perturbation(gamma, hp.eps)
        c_items, norm, e_delta, w_delta = cpu.adversarial_closed_form(spec, params, features,
                                                                       u, i, j, hp.eps)
        np.testing.assert_array_equal(items, c_items)
        true_norm = np.linalg.norm(gamma, axis=1)
        assert np.abs(norm - true_norm).max() <= 1e-10 * true_norm.max()
        if form == "eq4":
            assert (true_norm == 0).any() and np.all(norm[true_norm == 0] == 0)
        explicit = delta @ params["E"].T
        assert np.linalg.norm(e_delta - explicit) <= 1e-10 * np.linalg.norm(explicit)
        w_explicit = delta @ params["w"] if form == "hm" else np.zeros(len(items))
        assert np.abs(w_delta - w_explicit).max() <= 1e-10 * max(np.abs(w_explicit).max(), 1)
        # and Γ itself through Γ = V E + a wᵀ
        _, gamma_nb = cpu.content_gradient(spec, params, features, u, i, j)
        assert np.linalg.norm(gamma_nb - gamma) <= 1e-10 * np.linalg.norm(gamma)


def test_zero_gamma_item_of_tiny_problem_gets_no_perturbation():
    spec = ModelSpec("amr")
    params, features, (u, i, j) = tiny_problem(spec)
    items, norm, e_delta, _ = cpu.adversarial_closed_form(spec, params, features, u, i, j, 0.3)
    k = list(items).index(6)
    assert norm[k] == 0 and np.all(e_delta[k] == 0)


@pytest.mark.parametrize("form", ["eq4", "hm"])
def test_lambda_zero_is_vbpr_bit_for_bit(form):
    """With λ = 0, AMR trains exactly as VBPR, on any CPU and BLAS kernel, by construction.

    The AMR batch (kernels/cpu_bpr.py ``_batch``) computes every VBPR quantity — scores,
    ``s``, the content term ``ct = s f``, the row gradients, ``∂Ẽ = (g̃ ⊙ s_id)ᵀ diff + 2β_E Ẽ``,
    the loss and the regulariser — with the very same compiled functions as VBPR, none of
    which reads the ``adv`` flag, on the same inputs. The adversary's terms come last, each in a
    statement of its own outside fastmath: ``s_id = s + s̃``, ``ct += s̃ f̃_adv``,
    ``∂Ẽ += M̃ Ẽ``, ``L += λ L̃``. λ = 0 makes ``s̃ = λ·(−σ(−x̃)) = 0``, hence ``m̃ = 0`` and
    ``M̃ = 0``, so each of them adds an exact zero (``x + 0 = x``): nothing a BLAS kernel or
    the compiler's regrouping does to the shared products can differ between the two models.
    """
    _, params, features, triples, hp = problem("amr", form, np.float32)
    hp.lmd = 0.0
    p_amr, _, l_amr = _run(cpu, ModelSpec("amr", form), params, features, triples, hp, 2)
    p_vbpr, _, l_vbpr = _run(cpu, ModelSpec("vbpr", form), params, features, triples, hp, 2)
    assert l_amr == l_vbpr
    for name in params:
        assert np.array_equal(p_amr[name], p_vbpr[name]), name


@pytest.mark.parametrize("adversary", ["sign", "random"])
def test_explicit_adversaries_fall_back_to_the_reference(adversary):
    spec, params, features, triples, hp = problem("amr", "eq4", np.float32)
    hp.adversary = adversary
    p_ref = {k: v.copy() for k, v in params.items()}
    p_nb = {k: v.copy() for k, v in params.items()}
    for p, be in ((p_ref, ref), (p_nb, cpu)):
        be.train_epoch(spec, p, {k: np.zeros_like(v) for k, v in p.items()}, features, triples,
                       hp, np.random.default_rng(3))
    for name in params:
        np.testing.assert_array_equal(p_ref[name], p_nb[name])


def test_sampler_valid_and_deterministic():
    split, _ = random_split(n_users=25, n_items=40, per_user=10, cold=5, seed=1)
    indptr, indices = split.train_csr
    pool = np.flatnonzero(split.warm_items)
    a = cpu.sample_epoch(split.train_users, split.train_items, indptr, indices, pool,
                         np.random.default_rng(0))
    b = cpu.sample_epoch(split.train_users, split.train_items, indptr, indices, pool,
                         np.random.default_rng(0))
    c = cpu.sample_epoch(split.train_users, split.train_items, indptr, indices, pool,
                         np.random.default_rng(1))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[2], c[2])
    u, i, j = a
    pairs = set(zip(split.train_users.tolist(), split.train_items.tolist()))
    assert sorted(zip(u.tolist(), i.tolist())) == sorted(pairs)
    assert not any((x, y) in pairs for x, y in zip(u.tolist(), j.tolist()))
    assert split.warm_items[j].all() and len(set(j.tolist())) > 15


def test_sampler_is_uniform_over_the_pool_and_chunked():
    """Many chunks (≥ 2 seeds): the negatives of a user with one positive are uniform."""
    n = 3 * cpu.SAMPLE_CHUNK + 17
    users = np.zeros(n, np.int32)
    items = np.zeros(n, np.int32)
    indptr, indices = np.array([0, 1]), np.array([0], np.int32)
    pool = np.arange(10, dtype=np.int32)
    _, _, j = cpu.sample_epoch(users, items, indptr, indices, pool, np.random.default_rng(5))
    counts = np.bincount(j, minlength=10)
    assert counts[0] == 0
    expected = n / 9
    assert np.all(np.abs(counts[1:] - expected) < 5 * np.sqrt(expected))


def test_sampler_does_not_depend_on_the_thread_count():
    import numba
    split, _ = random_split(n_users=30, n_items=50, per_user=8, seed=2)
    indptr, indices = split.train_csr
    pool = np.flatnonzero(split.warm_items)
    args = (split.train_users, split.train_items, indptr, indices, pool)
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one thread only")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = cpu.sample_epoch(*args, np.random.default_rng(9))
        numba.set_num_threads(2)
        two = cpu.sample_epoch(*args, np.random.default_rng(9))
    finally:
        numba.set_num_threads(before)
    assert all(np.array_equal(x, y) for x, y in zip(one, two))


def test_same_seed_same_training_run():
    from helpers import assert_seed_decides_training
    assert assert_seed_decides_training("numba").backend_used == "numba"


def test_adagrad_matches_reference():
    rng = np.random.default_rng(0)
    params = {"P": rng.standard_normal((6, 3)), "E": rng.standard_normal((2, 4)),
              "b": rng.standard_normal(6), "w": rng.standard_normal(4)}
    accum = {k: rng.random(v.shape) for k, v in params.items()}
    grads = {"P": (np.array([1, 4]), rng.standard_normal((2, 3))), "E": rng.standard_normal((2, 4)),
             "b": (np.array([0, 5]), rng.standard_normal(2)), "w": rng.standard_normal(4)}
    p1, a1 = {k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in accum.items()}
    ref.adagrad_update(p1, a1, grads, 0.1)
    cpu.adagrad_update(params, accum, grads, 0.1)
    for k in params:
        np.testing.assert_allclose(params[k], p1[k], rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(accum[k], a1[k], rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rank_kernels_equal_metrics(dtype):
    split, _ = random_split(n_users=40, n_items=90, per_user=10, seed=4, n_neg=30)
    rng = np.random.default_rng(1)
    U = rng.integers(-3, 4, (40, 5)).astype(dtype)          # small integers: many exact ties
    V = rng.integers(-3, 4, (90, 5)).astype(dtype)
    rows = split.test
    negatives = rows.negatives.copy()
    negatives[:, 0] = rows.items                             # the positive among its negatives
    np.testing.assert_array_equal(
        cpu.sampled_ranks(U, V, rows.users, rows.items, negatives),
        metrics.sampled_ranks(U, V, rows.users, rows.items, negatives))
    indptr, indices = split.train_csr
    np.testing.assert_array_equal(
        cpu.full_ranks(U, V, rows.users, rows.items, indptr, indices),
        metrics.full_ranks(U, V, rows.users, rows.items, indptr, indices))
    Ur, Vr = rng.standard_normal((40, 7)).astype(dtype), rng.standard_normal((90, 7)).astype(dtype)
    np.testing.assert_array_equal(
        cpu_ranking.full_ranks(Ur, Vr, rows.users, rows.items, indptr, indices, chunk=7),
        metrics.full_ranks(Ur, Vr, rows.users, rows.items, indptr, indices))
    pop = rng.integers(0, 5, 90).astype(np.float64)[:, None]
    np.testing.assert_array_equal(
        cpu.sampled_ranks(None, pop, rows.users, rows.items, negatives),
        metrics.sampled_ranks(None, pop, rows.users, rows.items, negatives))


def test_backend_protocol_names():
    """The face module provides every protocol name with exactly the protocol's signature."""
    import inspect
    from amrlite.kernels import protocol
    for name in protocol.TRAINING_NAMES + protocol.CHECKING_NAMES:
        assert hasattr(cpu, name), name
        if name == "NAME":
            continue
        surface = (protocol.TrainingBackend if name in protocol.TRAINING_NAMES
                   else protocol.CheckingBackend)
        want = list(inspect.signature(getattr(surface, name)).parameters.values())[1:]
        got = list(inspect.signature(getattr(cpu, name)).parameters.values())
        assert [(p.name, p.default) for p in got] == [(p.name, p.default) for p in want], name
    assert not hasattr(cpu, "xp") and not hasattr(cpu, "train_batch")
    from amrlite.kernels import get_backend
    assert get_backend("numba") is cpu and cpu.NAME == "numba"
